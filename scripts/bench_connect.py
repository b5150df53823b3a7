#!/usr/bin/env python3
# `network connect --publish` / `network disconnect` of several nsnet binaries and the floor,
# interleaved, as ratios against the first: ./scripts/bench_connect.py base=PATH cand=PATH floor
# (`floor`: the same work by `ip -batch` + `nft -f`, scripts/floor.py).
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each subject
# works in its own network namespace (own nft tables) holding one network with three other
# endpoints; each round connects a fresh container namespace with one published port, then
# disconnects it. ROUNDS=N. Besides wall time, the CPU time of the subject's processes (user +
# system, from the children's rusage), which a loaded machine disturbs far less.
import subprocess, sys, time, statistics, tempfile, os, ctypes, resource
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit import stop_responders, run_in_netns
import floor as floor_mod
from floor import Floor
libc = ctypes.CDLL(None, use_errno=True)
bins = dict(a.split('=', 1) if '=' in a else (a, None) for a in sys.argv[1:])
N = int(os.environ.get('ROUNDS', '100'))
res = {b: {'connect': [], 'disconnect': []} for b in bins}
cpu = {b: {'connect': [], 'disconnect': []} for b in bins}
env, fds, floors = {}, {}, {}
import atexit
atexit.register(lambda: stop_responders(e['NSNET_STATE_DIR'] for e in env.values()))
def floor_sh(self, argv, stdin):
    # Floor._sh, started as the nsnet binaries are (run_in_netns), so both pay the same per process.
    p = run_in_netns(self.host_fd, argv, input=stdin.encode(), capture_output=True)
    if p.returncode:
        raise RuntimeError(f"floor: {' '.join(argv)}: {p.stderr.decode().strip()}\n{stdin}")
floor_mod.Floor._sh = floor_sh
def run(b, args):
    if b in floors:
        return floors[b].run(args)
    fd = fds[b]
    p = run_in_netns(fd, [bins[b]] + args, env=env[b], capture_output=True)
    if p.returncode:
        sys.exit(f'{b}: {args}: {p.stderr.decode().strip()}')
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
for i, b in enumerate(bins):
    subprocess.run(['ip', 'netns', 'add', f'host{i}'], check=True)
    fds[b] = os.open(f'/run/netns/host{i}', os.O_RDONLY)
    if bins[b] is None:
        floors[b] = Floor(fds[b])
    else:
        env[b] = dict(os.environ, NSNET_STATE_DIR=tempfile.mkdtemp())
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
