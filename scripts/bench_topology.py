#!/usr/bin/env python3
# Topology batches: apply, converged plan and destroy of a file of N namespaces on one network,
# each endpoint publishing one TCP port, for several nsnet binaries in turn (interleaved rounds),
# as ratios against the first: ./scripts/bench_topology.py base=PATH new=PATH, run as root inside
# an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each binary works in its own
# network namespace (its bridge, host veth ends and nft tables are its own). N=1000 (namespaces),
# ROUNDS=1. Prints each round and the medians.
import subprocess, sys, time, statistics, tempfile, os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
bins = dict(a.split('=', 1) for a in sys.argv[1:])
N = int(os.environ.get('N', '1000'))
ROUNDS = int(os.environ.get('ROUNDS', '1'))
env, fds, files = {}, {}, {}
for i, name in enumerate(bins):
    env[name] = dict(os.environ, NSNET_STATE_DIR=tempfile.mkdtemp())
    subprocess.run(['ip', 'netns', 'add', f'benchtopo{i}'], check=True)
    fds[name] = os.open(f'/run/netns/benchtopo{i}', os.O_RDONLY)
    # Namespace names are global (/run/netns): each binary's file has its own prefix.
    lines = [f'name: batch{i}', 'namespaces: [' + ', '.join(f't{i}n{j}' for j in range(N)) + ']',
             'networks:', '  big:', '    subnets: [10.77.0.0/20]', '    endpoints:']
    lines += [f'      t{i}n{j}: {{ publish: ["{10000 + j}:80"] }}' for j in range(N)]
    path = os.path.join(env[name]['NSNET_STATE_DIR'], 'topo.yaml')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    files[name] = path
import atexit
from benchkit import stop_responders
atexit.register(lambda: stop_responders(e['NSNET_STATE_DIR'] for e in env.values()))


def run(name, args):
    fd = fds[name]
    t = time.perf_counter()
    p = subprocess.run([bins[name]] + args + ['-f', files[name]], env=env[name], capture_output=True,
                       text=True, preexec_fn=lambda: libc.setns(fd, 0x40000000))
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f'{name} {args}: {p.stderr.strip()}')
    return dt, p.stdout


res = {n: {'apply': [], 'plan': [], 'destroy': []} for n in bins}
print(f'N={N} rounds={ROUNDS} load average {os.getloadavg()[0]:.2f}', flush=True)
for r in range(ROUNDS):
    for name in bins:
        dt, _ = run(name, ['apply'])
        res[name]['apply'].append(dt)
        dt, out = run(name, ['plan'])
        if 'no changes' not in out.lower():
            sys.exit(f'{name}: plan after apply is not converged: {out[:300]}')
        res[name]['plan'].append(dt)
        dt, _ = run(name, ['destroy'])
        res[name]['destroy'].append(dt)
        print(f'round {r} {name}: ' + ' '.join(f'{op} {v[-1]:.3f} s' for op, v in res[name].items()),
              flush=True)
base = list(bins)[0]
print(f'load average {os.getloadavg()[0]:.2f}')
for name in bins:
    print(name, ' '.join(
        f'{op} median {statistics.median(v):.3f} s (x{statistics.median(v) / statistics.median(res[base][op]):.2f})'
        for op, v in res[name].items()))
