//! A small synchronous etcd v3 client over the JSON gateway (`/v3/...`, plain HTTP/1.1 on the
//! client port): lease grant and keepalive, create-if-absent, put, prefix range. nsnet is
//! synchronous and needs five calls; the gateway spares a gRPC stack (tokio, tonic, protoc)
//! for them. Keys and values travel base64-encoded, 64-bit numbers as JSON strings.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Value, json};

/// How long one request may take (connect, send, answer).
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why an etcd request failed.
#[derive(Debug, thiserror::Error)]
#[error("etcd {endpoint}: {op}: {cause}")]
pub struct EtcdError {
    pub endpoint: String,
    pub op: String,
    pub cause: String,
}

/// An etcd endpoint (`HOST:PORT`).
#[derive(Debug, Clone)]
pub struct Etcd {
    endpoint: String,
    addr: SocketAddr,
}

impl Etcd {
    /// The client of `endpoint` (`HOST:PORT`, an `http://` prefix allowed).
    pub fn new(endpoint: &str) -> Result<Etcd, EtcdError> {
        let endpoint = endpoint.trim_start_matches("http://").trim_end_matches('/');
        let addr = endpoint
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| EtcdError {
                endpoint: endpoint.to_string(),
                op: "resolve".into(),
                cause: "not a HOST:PORT address".into(),
            })?;
        Ok(Etcd {
            endpoint: endpoint.to_string(),
            addr,
        })
    }

    fn err(&self, op: &str, cause: impl std::fmt::Display) -> EtcdError {
        EtcdError {
            endpoint: self.endpoint.clone(),
            op: op.to_string(),
            cause: cause.to_string(),
        }
    }

    /// POSTs `body` to `path` and returns the JSON answer (an error answer is an error).
    fn call(&self, op: &str, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let body = body.to_string();
        let mut s = TcpStream::connect_timeout(&self.addr, TIMEOUT).map_err(|e| self.err(op, e))?;
        s.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| self.err(op, e))?;
        s.set_write_timeout(Some(TIMEOUT))
            .map_err(|e| self.err(op, e))?;
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.endpoint,
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| self.err(op, e))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| self.err(op, e))?;
        let (status, payload) = parse_http(&raw).map_err(|e| self.err(op, e))?;
        let v: Value = serde_json::from_slice(&payload)
            .map_err(|e| self.err(op, format!("HTTP {status}, not JSON: {e}")))?;
        if status != 200 {
            let msg = v["message"].as_str().or(v["error"].as_str()).unwrap_or("");
            return Err(self.err(op, format!("HTTP {status}: {msg}")));
        }
        if let Some(e) = v.get("error") {
            return Err(self.err(op, e["message"].as_str().unwrap_or("error")));
        }
        Ok(v)
    }

    /// A new lease of `ttl` seconds; returns its ID.
    pub fn lease_grant(&self, ttl: u32) -> Result<i64, EtcdError> {
        let op = format!("grant a lease of {ttl}s");
        let v = self.call(&op, "/v3/lease/grant", &json!({ "TTL": ttl }))?;
        num(&v["ID"]).ok_or_else(|| self.err(&op, "no lease ID in the answer"))
    }

    /// Renews lease `id`; returns its TTL, 0 when it has expired (or never existed).
    pub fn lease_keepalive(&self, id: i64) -> Result<i64, EtcdError> {
        let op = format!("keep lease {id} alive");
        let v = self.call(&op, "/v3/lease/keepalive", &json!({ "ID": id.to_string() }))?;
        Ok(num(&v["result"]["TTL"]).unwrap_or(0))
    }

    /// Revokes lease `id`, deleting every key under it; an unknown (expired) lease is fine.
    pub fn lease_revoke(&self, id: i64) -> Result<(), EtcdError> {
        let op = format!("revoke lease {id}");
        match self.call(&op, "/v3/lease/revoke", &json!({ "ID": id.to_string() })) {
            Err(e) if e.cause.contains("lease not found") => Ok(()),
            r => r.map(drop),
        }
    }

    /// Puts `key` = `value` under lease `lease` unless the key exists. Returns `None` when
    /// it was created, else the value it holds.
    pub fn create_if_absent(
        &self,
        key: &str,
        value: &str,
        lease: i64,
    ) -> Result<Option<String>, EtcdError> {
        let op = format!("create {key}");
        let k = b64(key.as_bytes());
        let v = self.call(
            &op,
            "/v3/kv/txn",
            &json!({
                "compare": [{ "key": k, "target": "CREATE", "create_revision": "0" }],
                "success": [{ "request_put": { "key": k, "value": b64(value.as_bytes()), "lease": lease.to_string() } }],
                "failure": [{ "request_range": { "key": k } }],
            }),
        )?;
        if v["succeeded"].as_bool() == Some(true) {
            return Ok(None);
        }
        let held = v["responses"][0]["response_range"]["kvs"][0]["value"]
            .as_str()
            .map(unb64)
            .transpose()
            .map_err(|e| self.err(&op, e))?
            .unwrap_or_default();
        Ok(Some(String::from_utf8_lossy(&held).into_owned()))
    }

    /// Puts `key` = `value` under lease `lease`.
    pub fn put(&self, key: &str, value: &str, lease: i64) -> Result<(), EtcdError> {
        self.call(
            &format!("put {key}"),
            "/v3/kv/put",
            &json!({ "key": b64(key.as_bytes()), "value": b64(value.as_bytes()), "lease": lease.to_string() }),
        )
        .map(drop)
    }

    /// Every key under `prefix` with its value, in key order.
    pub fn range_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, EtcdError> {
        let op = format!("read {prefix}*");
        let v = self.call(
            &op,
            "/v3/kv/range",
            &json!({ "key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix.as_bytes())) }),
        )?;
        let mut out = Vec::new();
        for kv in v["kvs"].as_array().into_iter().flatten() {
            let k = unb64(kv["key"].as_str().unwrap_or("")).map_err(|e| self.err(&op, e))?;
            let val = unb64(kv["value"].as_str().unwrap_or("")).map_err(|e| self.err(&op, e))?;
            out.push((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&val).into_owned(),
            ));
        }
        Ok(out)
    }
}

/// A 64-bit number the gateway sends as a string (or, rarely, as a number).
fn num(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| s.parse().ok()).or(v.as_i64())
}

/// The end of the range of keys starting with `prefix`: the prefix with its last byte that
/// can be incremented, incremented.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Status and body of an HTTP/1.1 answer (Content-Length, chunked, or to the end).
fn parse_http(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete HTTP answer")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        if rest.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as the gateway's JSON encodes `bytes` fields.
fn b64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = B64
            .iter()
            .position(|&b| b == c)
            .ok_or_else(|| format!("not base64: {text:?}"))? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (plain, coded) in [
            ("", ""),
            ("a", "YQ=="),
            ("ab", "YWI="),
            ("abc", "YWJj"),
            ("/nsnet/t/hosts/h1", "L25zbmV0L3QvaG9zdHMvaDE="),
        ] {
            assert_eq!(b64(plain.as_bytes()), coded);
            assert_eq!(unb64(coded).unwrap(), plain.as_bytes());
        }
        assert!(unb64("a*b").is_err());
    }

    #[test]
    fn a_prefix_range_ends_after_the_prefix() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
    }

    #[test]
    fn http_answers_with_length_or_chunks() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_http(plain).unwrap(), (200, b"{}".to_vec()));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_http(chunked).unwrap(), (200, b"{\"a\":1}".to_vec()));
        assert!(parse_http(b"HTTP/1.1 200").is_err());
    }
}
