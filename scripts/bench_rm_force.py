#!/usr/bin/env python3
# `network rm --force` of a network with K endpoints (one published port each), for several
# nsnet binaries and the floor, interleaved, as ratios against the first:
#   ./scripts/bench_rm_force.py base=PATH cand=PATH floor=floor
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each
# subject works in its own network namespace and keeps a second network, so the tables stay and
# only the network, its bridge and its endpoints go (the floor deletes the veths and the bridge
# in one `ip -batch` and its table with `nft -f`). ENDPOINTS=K (default 3), ROUNDS=N.
import subprocess, sys, time, statistics, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Subjects
bins = Subjects(sys.argv[1:])
run = bins.run
N = int(os.environ.get('ROUNDS', '20'))
K = int(os.environ.get('ENDPOINTS', '3'))
res = {b: [] for b in bins}
for i, b in enumerate(bins):
    for j in range(K):
        subprocess.run(['ip', 'netns', 'add', f'c{i}x{j}'], check=True)
    if not bins.is_floor(b):
        run(b, ['network', 'create', 'keep', '--subnet', '10.99.0.0/24'])
for r in range(N):
    for i, b in enumerate(bins):
        run(b, ['network', 'create', 'lan', '--subnet', '10.1.0.0/24'])
        for j in range(K):
            run(b, ['network', 'connect', 'lan', f'c{i}x{j}', '--publish', f'{8080 + j}:80'])
        t = time.perf_counter()
        if bins.is_floor(b):
            run(b, ['network', 'rm', 'lan'])
        else:
            run(b, ['network', 'rm', 'lan', '--force'])
        res[b].append(time.perf_counter() - t)
print(f'{N} rounds, {K} endpoints, load average {os.getloadavg()[0]:.2f} at the end')
base = list(bins)[0]
for b in bins:
    m = statistics.median(res[b]) * 1000
    print(f'{b:>6} network rm --force median {m:6.2f} ms (x{m / (statistics.median(res[base]) * 1000):.2f})')
