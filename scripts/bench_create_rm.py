#!/usr/bin/env python3
# Interleaved `network create` / `network rm` timing of several nsnet binaries, as ratios against
# the first: ./scripts/bench_create_rm.py base=PATH cand=PATH [floor=floor], run as root inside an
# `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each binary works in its own
# network namespace (the nft tables are per namespace). ROUNDS=N; KEEP=1 keeps a second network
# so the tables stay (the not-last create and rm).
import subprocess, sys, time, statistics, tempfile, os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
bins = dict(a.split('=', 1) for a in sys.argv[1:])
N = int(os.environ.get('ROUNDS', '30'))
KEEP = os.environ.get('KEEP')  # keep another network so the tables stay (not-last rm)
res = {n: {'create': [], 'rm': []} for n in bins}
env, fds = {}, {}
for i, name in enumerate(bins):
    env[name] = dict(os.environ, NSNET_STATE_DIR=tempfile.mkdtemp())
    subprocess.run(['ip', 'netns', 'add', f'bench{i}'], check=True)
    fds[name] = os.open(f'/run/netns/bench{i}', os.O_RDONLY)
import atexit
from benchkit import stop_responders
from floor import Floor
floors = {}
atexit.register(lambda: stop_responders(e['NSNET_STATE_DIR'] for e in env.values()))
def run(name, args):
    if bins[name] == 'floor':
        floors.setdefault(name, Floor(fds[name])).run(args)
        return
    fd = fds[name]
    subprocess.run([bins[name]] + args, env=env[name], check=True, capture_output=True, preexec_fn=lambda: libc.setns(fd, 0x40000000))
if KEEP:
    for name in bins:
        run(name, ['network', 'create', 'keep', '--subnet', '10.99.0.0/24'])
for r in range(N):
    for i, name in enumerate(bins):
        t = time.perf_counter(); run(name, ['network', 'create', 'c', '--subnet', '10.80.0.0/24'])
        res[name]['create'].append(time.perf_counter() - t)
        t = time.perf_counter(); run(name, ['network', 'rm', 'c'])
        res[name]['rm'].append(time.perf_counter() - t)
base = list(bins)[0]
for name in bins:
    print(name, ' '.join(f"{op} median {statistics.median(v)*1000:.2f} ms p90 {sorted(v)[int(len(v)*0.9)]*1000:.2f} (x{statistics.median(v)/statistics.median(res[base][op]):.2f})" for op, v in res[name].items()))
