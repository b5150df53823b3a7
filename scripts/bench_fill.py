#!/usr/bin/env python3
# Fills one network with N containers through the CLI (`network connect --publish`, one
# published port each), several nsnet binaries interleaved container by container, each in its
# own network namespace: ./scripts/bench_fill.py base=PATH cand=PATH floor (`floor`: the same
# work by `ip -batch` + `nft -f`, scripts/floor.py). Prints the total and
# the median per-container time of the first and last tenth, and ratios against the first
# binary; besides wall time, the CPU time of each command (children's rusage) and the CPU time
# the binary's DNS responder spent over the whole fill (its reloads follow every command). Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns.
# N=1000 by default (env N).
import subprocess, sys, time, statistics, os, resource
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import Subjects
bins = Subjects(sys.argv[1:], prefix='fh')
run = bins.run
N = int(os.environ.get('N', '1000'))
times, cpu = {b: [] for b in bins}, {b: [] for b in bins}
for b in bins:
    run(b, ['network', 'create', 'lan', '--subnet', '10.8.0.0/16'])
subprocess.run(['ip', '-batch', '-'], input=''.join(f'netns add f{i}b{j}\n' for j in range(N) for i in range(len(bins))).encode(), check=True)
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
def responder_cpu(b):
    if bins.is_floor(b):
        return 0.0
    # utime + stime of the responder named in the state directory's pidfile, in seconds.
    try:
        pid = open(os.path.join(bins.env[b]['NSNET_STATE_DIR'], 'dns.pid')).read().strip()
        fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError):
        return 0.0
dns0 = {b: responder_cpu(b) for b in bins}
for j in range(N):
    for i, b in enumerate(bins):
        c, t = children_cpu(), time.perf_counter()
        run(b, ['network', 'connect', 'lan', f'f{i}b{j}', '--publish', f'{10000 + j}:80'])
        times[b].append(time.perf_counter() - t)
        cpu[b].append(children_cpu() - c)
dns = {b: responder_cpu(b) - dns0[b] for b in bins}
base = list(bins)[0]
tenth = max(1, N // 10)
def fig(v):
    first, last = statistics.median(v[:tenth]) * 1000, statistics.median(v[-tenth:]) * 1000
    return sum(v), first, last
print(f'load average {os.getloadavg()[0]:.2f}, N = {N}')
for b, v in times.items():
    total, first, last = fig(v)
    btotal = fig(times[base])[0]
    ctotal, cfirst, clast = fig(cpu[b])
    print(f'{b:>6} wall: total {total:6.2f} s (x{total / btotal:.2f})  first tenth {first:5.2f} ms  last tenth {last:5.2f} ms  last/first {last / first:.2f}')
    print(f'{"":>6} cpu:  total {ctotal:6.2f} s  first tenth {cfirst:5.2f} ms  last tenth {clast:5.2f} ms  last/first {clast / cfirst:.2f}; DNS responder {dns[b]:.2f} s')
