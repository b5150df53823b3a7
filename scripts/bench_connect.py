#!/usr/bin/env python3
# `network connect --publish` / `network disconnect` of several nsnet binaries and the floor,
# interleaved, as ratios against the first: ./scripts/bench_connect.py base=PATH cand=PATH floor
# (`floor`: the same work by `ip -batch` + `nft -f`, scripts/floor.py).
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each subject
# works in its own network namespace (own nft tables) holding one network with three other
# endpoints; each round connects a fresh container namespace with one published port, then
# disconnects it. ROUNDS=N. Besides wall time, the CPU time of the subject's processes (user +
# system, from the children's rusage), which a loaded machine disturbs far less.
import subprocess, sys, time, statistics, os, resource
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Subjects
bins = Subjects(sys.argv[1:])
run = bins.run
N = int(os.environ.get('ROUNDS', '100'))
res = {b: {'connect': [], 'disconnect': []} for b in bins}
cpu = {b: {'connect': [], 'disconnect': []} for b in bins}
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
for i, b in enumerate(bins):
    run(b, ['network', 'create', 'lan', '--subnet', '10.1.0.0/20'])
    for j in range(3):
        # Container namespaces are files, so any namespace may hold them; the link's peer is
        # moved there by the binary from inside its host namespace.
        subprocess.run(['ip', 'netns', 'add', f'o{i}x{j}'], check=True)
        run(b, ['network', 'connect', 'lan', f'o{i}x{j}'])
    subprocess.run(['ip', 'netns', 'add', f'c{i}'], check=True)
for r in range(N):
    for i, b in enumerate(bins):
        for op, args in (('connect', ['network', 'connect', 'lan', f'c{i}', '--publish', '8080:80']),
                         ('disconnect', ['network', 'disconnect', 'lan', f'c{i}'])):
            c, t = children_cpu(), time.perf_counter()
            run(b, args)
            res[b][op].append(time.perf_counter() - t)
            cpu[b][op].append(children_cpu() - c)
base = list(bins)[0]
print(f'load average {os.getloadavg()[0]:.2f}, {N} rounds')
for b in bins:
    print(f'{b:>6}', '  '.join(f"{op} median {statistics.median(v)*1000:6.2f} ms p10 {sorted(v)[len(v)//10]*1000:6.2f} (x{statistics.median(v)/statistics.median(res[base][op]):.2f}) cpu {statistics.median(cpu[b][op])*1000:5.2f} ms (x{statistics.median(cpu[b][op])/statistics.median(cpu[base][op]):.2f})" for op, v in res[b].items()))
