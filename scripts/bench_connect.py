#!/usr/bin/env python3
# `network connect --publish` / `network disconnect` of several nsnet binaries, interleaved, as
# ratios against the first: ./scripts/bench_connect.py base=PATH cand=PATH [floor=floor]
# (`floor` runs scripts/floor.py: the same work done by ip -batch and nft -f).
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each binary
# works in its own network namespace (own nft tables) holding one network with three other
# endpoints; each round connects a fresh container namespace with one published port, then
# disconnects it. ROUNDS=N.
import subprocess, sys, time, statistics, tempfile, os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
bins = dict(a.split('=', 1) for a in sys.argv[1:])
N = int(os.environ.get('ROUNDS', '100'))
res = {b: {'connect': [], 'disconnect': []} for b in bins}
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
    run(b, ['network', 'create', 'lan', '--subnet', '10.1.0.0/20'])
    for j in range(3):
        # Container namespaces are files, so any namespace may hold them; the link's peer is
        # moved there by the binary from inside its host namespace.
        subprocess.run(['ip', 'netns', 'add', f'o{i}x{j}'], check=True)
        run(b, ['network', 'connect', 'lan', f'o{i}x{j}'])
    subprocess.run(['ip', 'netns', 'add', f'c{i}'], check=True)
for r in range(N):
    for b in bins:
        i = list(bins).index(b)
        t = time.perf_counter(); run(b, ['network', 'connect', 'lan', f'c{i}', '--publish', '8080:80'])
        res[b]['connect'].append(time.perf_counter() - t)
        t = time.perf_counter(); run(b, ['network', 'disconnect', 'lan', f'c{i}'])
        res[b]['disconnect'].append(time.perf_counter() - t)
base = list(bins)[0]
for b in bins:
    print(f'{b:>6}', '  '.join(f"{op} median {statistics.median(v)*1000:6.2f} ms p10 {sorted(v)[len(v)//10]*1000:6.2f} (x{statistics.median(v)/statistics.median(res[base][op]):.2f})" for op, v in res[b].items()))
