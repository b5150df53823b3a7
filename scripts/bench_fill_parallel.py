#!/usr/bin/env python3
# Fills one network with N containers through the CLI (`network connect --publish`) from two
# callers at once (two threads, each starting one process after the other, N/2 each), as an
# engine starting pods concurrently does; then the same fill from one caller, for comparison:
# ./scripts/bench_fill_parallel.py base=PATH cand=PATH floor
# Subjects are interleaved tenth by tenth (each tenth: every subject's two callers connect
# N/20 containers each, then the next subject). Prints, per subject and mode, the total wall
# time, its ratio to the one-caller fill, and the CPU time of the commands. Run as root inside
# an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. N=1000 by default (env N).
import os, resource, subprocess, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Subjects
# Python switches threads on blocking calls; a forced switch inside the floor's bookkeeping
# (address and name counters) could hand two containers the same address.
sys.setswitchinterval(10.0)
N = int(os.environ.get('N', '1000'))
results = {}
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
for mode, callers in (('2 callers', 2), ('1 caller', 1)):
    bins = Subjects(sys.argv[1:], prefix=f'pp{callers}h')
    for b in bins:
        bins.run(b, ['network', 'create', 'lan', '--subnet', '10.8.0.0/16'])
    subprocess.run(['ip', '-batch', '-'], input=''.join(
        f'netns add p{callers}s{i}c{j}\n' for j in range(N) for i in range(len(bins))).encode(), check=True)
    wall = {b: 0.0 for b in bins}
    cpu = {b: 0.0 for b in bins}
    per = N // 10
    for tenth in range(10):
        for i, b in enumerate(bins):
            js = list(range(tenth * per, (tenth + 1) * per))
            parts = [js[k::callers] for k in range(callers)]
            def work(part):
                for j in part:
                    bins.run(b, ['network', 'connect', 'lan', f'p{callers}s{i}c{j}', '--publish', f'{10000 + j}:80'])
            c, t = children_cpu(), time.perf_counter()
            threads = [threading.Thread(target=work, args=(p,)) for p in parts]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            wall[b] += time.perf_counter() - t
            cpu[b] += children_cpu() - c
    results[mode] = (wall, cpu)
print(f'load average {os.getloadavg()[0]:.2f}, N = {N}')
for b in results['1 caller'][0]:
    one = results['1 caller'][0][b]
    for mode, (wall, cpu) in results.items():
        print(f'{b:>6} {mode:>9}: total {wall[b]:6.2f} s ({wall[b] / N * 1000:5.2f} ms per container, x{wall[b] / one:.2f} of one caller)  cpu {cpu[b]:6.2f} s')
