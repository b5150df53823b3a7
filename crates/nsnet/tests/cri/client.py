#!/usr/bin/python3
"""A CRI client for nsnet's tests: JSON calls on stdin, one per line
({"method": "RunPodSandbox", "request": {...}}), answered on stdout, one line each
({"ok": {...}, "seconds": 0.12} or {"error": "..."}). Messages are cri.proto's, compiled by
the test with protoc into PB_DIR; gRPC over the runtime's unix socket, as kubelet dials it.

Usage: client.py SOCKET PB_DIR
"""

import json
import sys
import time

import grpc
from google.protobuf import json_format


def main():
    socket, pb_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, pb_dir)
    import cri_pb2  # noqa: E402  (generated at test time)

    service = cri_pb2.DESCRIPTOR.services_by_name["RuntimeService"]
    channel = grpc.insecure_channel("unix://" + socket)
    calls = {}
    for m in service.methods:
        req = getattr(cri_pb2, m.input_type.name)
        resp = getattr(cri_pb2, m.output_type.name)
        calls[m.name] = (
            req,
            channel.unary_unary(
                "/runtime.v1.RuntimeService/" + m.name,
                request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString,
            ),
        )
    for line in sys.stdin:
        call = json.loads(line)
        req_type, stub = calls[call["method"]]
        req = json_format.ParseDict(call.get("request", {}), req_type())
        start = time.monotonic()
        try:
            resp = stub(req, timeout=call.get("timeout", 60))
            out = {
                "ok": json_format.MessageToDict(
                    resp,
                    preserving_proto_field_name=True,
                    including_default_value_fields=True,
                ),
                "seconds": time.monotonic() - start,
            }
        except grpc.RpcError as e:
            out = {"error": "%s: %s" % (e.code(), e.details())}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
