#!/usr/bin/env python3
# Interleaved `network create` / `network rm` timing of several nsnet binaries, as ratios against
# the first: ./scripts/bench_create_rm.py base=PATH cand=PATH [floor=floor], run as root inside an
# `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each binary works in its own
# network namespace (the nft tables are per namespace). ROUNDS=N; KEEP=1 keeps a second network
# so the tables stay (the not-last create and rm). NODNS=NAME[,NAME...] gives those subjects'
# creates `--no-dns` (the same binary may be named twice: `dns=BIN nodns=BIN`).
import sys, time, statistics, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Subjects
bins = Subjects(sys.argv[1:], prefix='bench')
run = bins.run
N = int(os.environ.get('ROUNDS', '30'))
KEEP = os.environ.get('KEEP')  # keep another network so the tables stay (not-last rm)
NODNS = set(filter(None, os.environ.get('NODNS', '').split(',')))
res = {n: {'create': [], 'rm': []} for n in bins}
if KEEP:
    for name in bins:
        run(name, ['network', 'create', 'keep', '--subnet', '10.99.0.0/24']
            + (['--no-dns'] if name in NODNS else []))
for r in range(N):
    for i, name in enumerate(bins):
        extra = ['--no-dns'] if name in NODNS else []
        t = time.perf_counter(); run(name, ['network', 'create', 'c', '--subnet', '10.80.0.0/24'] + extra)
        res[name]['create'].append(time.perf_counter() - t)
        t = time.perf_counter(); run(name, ['network', 'rm', 'c'])
        res[name]['rm'].append(time.perf_counter() - t)
base = list(bins)[0]
for name in bins:
    print(name, ' '.join(f"{op} median {statistics.median(v)*1000:.2f} ms p90 {sorted(v)[int(len(v)*0.9)]*1000:.2f} (x{statistics.median(v)/statistics.median(res[base][op]):.2f})" for op, v in res[name].items()))
