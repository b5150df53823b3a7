#!/usr/bin/env python3
# `network create` of the last network with no DNS responder running (the previous one has
# exited: a pause follows each `network rm`), for several nsnet binaries, interleaved, as ratios
# against the first: ./scripts/bench_create_cold.py base=PATH cand=PATH, run as root inside an
# `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Every create then starts a
# responder (bench_create_rm.py's back-to-back creates mostly find the previous one still
# running and only signal it). ROUNDS=N (default 40), PAUSE=seconds after each rm (0.25).
import os, statistics, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Subjects
bins = Subjects(sys.argv[1:], prefix='cold')
N = int(os.environ.get('ROUNDS', '40'))
PAUSE = float(os.environ.get('PAUSE', '0.25'))
res = {n: [] for n in bins}
for r in range(N):
    for name in bins:
        t = time.perf_counter()
        bins.run(name, ['network', 'create', 'c', '--subnet', '10.80.0.0/24'])
        res[name].append(time.perf_counter() - t)
        bins.run(name, ['network', 'rm', 'c'])
    time.sleep(PAUSE)
base = statistics.median(res[list(bins)[0]])
for name, v in res.items():
    m = statistics.median(v)
    print(f"{name} create median {m*1000:.2f} ms p10 {sorted(v)[len(v)//10]*1000:.2f} (x{m/base:.2f})")
