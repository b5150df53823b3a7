#!/usr/bin/env python3
# The first and the last container of a network, for several nsnet binaries and the floor,
# interleaved, as ratios against the first subject:
#   ./scripts/bench_first_last.py base=PATH cand=PATH floor=floor
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each
# subject works in its own network namespace (own nft tables), with no other network, so the
# first container's `network create` installs the firewall tables and the last container's
# `network rm` removes them (the floor makes and deletes its own table the same way). Each round:
# first = `network create` + `network connect --publish`; last = `network disconnect` +
# `network rm`. ROUNDS=N. Prints medians of each step and of both pairs.
import subprocess, sys, time, statistics, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Subjects
bins = Subjects(sys.argv[1:])
run = bins.run
N = int(os.environ.get('ROUNDS', '30'))
steps = ['create', 'connect', 'disconnect', 'rm', 'first', 'last']
res = {b: {s: [] for s in steps} for b in bins}
def timed(b, step, args):
    t = time.perf_counter(); run(b, args); d = time.perf_counter() - t
    res[b][step].append(d)
    return d
for i, b in enumerate(bins):
    subprocess.run(['ip', 'netns', 'add', f'c{i}'], check=True)
for r in range(N):
    for i, b in enumerate(bins):
        first = timed(b, 'create', ['network', 'create', 'lan', '--subnet', '10.1.0.0/24'])
        first += timed(b, 'connect', ['network', 'connect', 'lan', f'c{i}', '--publish', '8080:80'])
        res[b]['first'].append(first)
        last = timed(b, 'disconnect', ['network', 'disconnect', 'lan', f'c{i}'])
        last += timed(b, 'rm', ['network', 'rm', 'lan'])
        res[b]['last'].append(last)
print(f'{N} rounds, load average {os.getloadavg()[0]:.2f} at the end; medians in ms (x against {list(bins)[0]})')
base = list(bins)[0]
for b in bins:
    m = lambda s: statistics.median(res[b][s]) * 1000
    print(f'{b:>6}', '  '.join(f"{s} {m(s):6.2f} (x{m(s) / (statistics.median(res[base][s]) * 1000):.2f})" for s in steps))
