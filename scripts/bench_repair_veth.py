#!/usr/bin/env python3
# `nsnet repair` with a container's veth pair deleted by hand, against the way back without it
# (`network disconnect` + `network connect`), interleaved, as ratios against the first subject:
#   ./scripts/bench_repair_veth.py base=PATH new=PATH
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each
# subject works in its own network namespace holding one network with ENDPOINTS containers
# (one with a published port). Each round times, per subject: `repair` with nothing to do;
# then, after `ip -n C link del eth0` in one container, `repair` (which makes the pair again
# when the binary can; the container's eth0 is checked) and, when it did not, `disconnect` +
# `connect` of that container. ROUNDS=N.
import subprocess, sys, time, statistics, os, resource
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Subjects
bins = Subjects(sys.argv[1:])
run = bins.run
N = int(os.environ.get('ROUNDS', '20'))
E = int(os.environ.get('ENDPOINTS', '50'))
res = {b: {'repair (healthy)': [], 'repair (one veth gone)': [], 'disconnect+connect': []}
       for b in bins}
cpu = {b: {op: [] for op in res[b]} for b in bins}
remade = {b: 0 for b in bins}
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
for i, b in enumerate(bins):
    run(b, ['network', 'create', 'lan', '--subnet', '10.1.0.0/20'])
    for j in range(E):
        subprocess.run(['ip', 'netns', 'add', f'c{i}x{j}'], check=True)
        run(b, ['network', 'connect', 'lan', f'c{i}x{j}'] +
            (['--publish', '8080:80'] if j == 0 else []))
def timed(b, op, args):
    c, t = children_cpu(), time.perf_counter()
    run(b, args)
    res[b][op].append(time.perf_counter() - t)
    cpu[b][op].append(children_cpu() - c)
for r in range(N):
    for i, b in enumerate(bins):
        ns = f'c{i}x0'
        timed(b, 'repair (healthy)', ['repair'])
        subprocess.run(['ip', '-n', ns, 'link', 'del', 'eth0'], check=True)
        timed(b, 'repair (one veth gone)', ['repair'])
        back = subprocess.run(['ip', '-n', ns, 'link', 'show', 'eth0'],
                              capture_output=True).returncode == 0
        if back:
            remade[b] += 1
        else:
            c, t = children_cpu(), time.perf_counter()
            run(b, ['network', 'disconnect', 'lan', ns])
            run(b, ['network', 'connect', 'lan', ns, '--publish', '8080:80'])
            res[b]['disconnect+connect'].append(time.perf_counter() - t)
            cpu[b]['disconnect+connect'].append(children_cpu() - c)
base = list(bins)[0]
print(f'load average {os.getloadavg()[0]:.2f}, {N} rounds, {E} endpoints')
for b in bins:
    cols = []
    for op, v in res[b].items():
        if not v:
            cols.append(f'{op}: -')
            continue
        ratio = (f' (x{statistics.median(v)/statistics.median(res[base][op]):.2f})'
                 if res[base][op] else '')
        c = cpu[b][op]
        cratio = (f' (x{statistics.median(c)/statistics.median(cpu[base][op]):.2f})'
                  if cpu[base][op] else '')
        cols.append(f'{op} median {statistics.median(v)*1000:7.2f} ms{ratio} '
                    f'cpu {statistics.median(c)*1000:6.2f} ms{cratio}')
    print(f'{b:>6}', '\n       '.join(cols), f'\n       pairs made again {remade[b]}/{N}')
