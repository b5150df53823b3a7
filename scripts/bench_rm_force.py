#!/usr/bin/env python3
# `network rm --force` of a network with K endpoints (one published port each), for several
# nsnet binaries and the floor, interleaved, as ratios against the first:
#   ./scripts/bench_rm_force.py base=PATH cand=PATH floor=floor
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each
# subject works in its own network namespace and keeps a second network, so the tables stay and
# only the network, its bridge and its endpoints go (the floor deletes the veths and the bridge
# in one `ip -batch` and its table with `nft -f`). ENDPOINTS=K (default 3), ROUNDS=N.
import subprocess, sys, time, statistics, tempfile, os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
bins = dict(a.split('=', 1) for a in sys.argv[1:])
N = int(os.environ.get('ROUNDS', '20'))
K = int(os.environ.get('ENDPOINTS', '3'))
res = {b: [] for b in bins}
env, fds = {}, {}
import atexit
from benchkit import stop_responders
from floor import Floor
floors = {}
atexit.register(lambda: stop_responders(e['NSNET_STATE_DIR'] for e in env.values()))
def run(b, args):
    if bins[b] == 'floor':
        floors.setdefault(b, Floor(fds[b])).run(args)
        return
    fd = fds[b]
    p = subprocess.run([bins[b]] + args, env=env[b], capture_output=True, preexec_fn=lambda: libc.setns(fd, 0x40000000))
    if p.returncode:
        sys.exit(f'{b}: {args}: {p.stderr.decode().strip()}')
for i, b in enumerate(bins):
    env[b] = dict(os.environ, NSNET_STATE_DIR=tempfile.mkdtemp())
    subprocess.run(['ip', 'netns', 'add', f'host{i}'], check=True)
    fds[b] = os.open(f'/run/netns/host{i}', os.O_RDONLY)
    for j in range(K):
        subprocess.run(['ip', 'netns', 'add', f'c{i}x{j}'], check=True)
    if bins[b] != 'floor':
        run(b, ['network', 'create', 'keep', '--subnet', '10.99.0.0/24'])
for r in range(N):
    for i, b in enumerate(bins):
        run(b, ['network', 'create', 'lan', '--subnet', '10.1.0.0/24'])
        for j in range(K):
            run(b, ['network', 'connect', 'lan', f'c{i}x{j}', '--publish', f'{8080 + j}:80'])
        t = time.perf_counter()
        if bins[b] == 'floor':
            run(b, ['network', 'rm', 'lan'])
        else:
            run(b, ['network', 'rm', 'lan', '--force'])
        res[b].append(time.perf_counter() - t)
print(f'{N} rounds, {K} endpoints, load average {os.getloadavg()[0]:.2f} at the end')
base = list(bins)[0]
for b in bins:
    m = statistics.median(res[b]) * 1000
    print(f'{b:>6} network rm --force median {m:6.2f} ms (x{m / (statistics.median(res[base]) * 1000):.2f})')
