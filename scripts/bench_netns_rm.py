#!/usr/bin/env python3
# `netns rm` of a namespace connected to K networks (a published port on each), for several
# nsnet binaries, interleaved, as ratios against the first:
#   ./scripts/bench_netns_rm.py base=PATH cand=PATH
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each
# subject works in its own network namespace, with K networks and a second namespace on the
# first of them (so neither the networks nor the tables go). No floor: it has no namespace
# removal of its own. NETWORKS=K (default 3), ROUNDS=N.
import sys, time, statistics, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Subjects
bins = Subjects(sys.argv[1:])
run = bins.run
N = int(os.environ.get('ROUNDS', '20'))
K = int(os.environ.get('NETWORKS', '3'))
res = {b: [] for b in bins}
for i, b in enumerate(bins):
    for k in range(K):
        run(b, ['network', 'create', f'n{k}', '--subnet', f'10.{k + 1}.0.0/24'])
    run(b, ['netns', 'add', f'stay{i}'])
    run(b, ['network', 'connect', 'n0', f'stay{i}'])
for r in range(N):
    for i, b in enumerate(bins):
        ns = f'c{i}'
        run(b, ['netns', 'add', ns])
        for k in range(K):
            run(b, ['network', 'connect', f'n{k}', ns, '--publish', f'{8080 + k}:80'])
        t = time.perf_counter()
        run(b, ['netns', 'rm', ns])
        res[b].append(time.perf_counter() - t)
print(f'{N} rounds, {K} networks, load average {os.getloadavg()[0]:.2f} at the end')
base = list(bins)[0]
for b in bins:
    m = statistics.median(res[b]) * 1000
    print(f'{b:>6} netns rm median {m:6.2f} ms (x{m / (statistics.median(res[base]) * 1000):.2f})')
