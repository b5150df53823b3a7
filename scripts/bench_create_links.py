#!/usr/bin/env python3
# `network create` / `network rm` against the host's link count, for several nsnet binaries,
# interleaved, as ratios against the first binary with no other links:
#   ./scripts/bench_create_links.py base=PATH cand=PATH
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns. Each
# (binary, link count) pair works in its own network namespace holding LINKS (default "0 500")
# other links: veth pairs whose host end is up with IPv6 on and whose peer sits in a side
# namespace, as a container's would. A second network is kept so the nft tables stay (the cost
# measured is the create itself, not the skeleton's). ROUNDS=N.
import subprocess, sys, time, statistics, tempfile, os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
bins = dict(a.split('=', 1) for a in sys.argv[1:])
N = int(os.environ.get('ROUNDS', '30'))
LINKS = [int(x) for x in os.environ.get('LINKS', '0 500').split()]
cases = [(b, l) for b in bins for l in LINKS]
res = {c: {'create': [], 'rm': []} for c in cases}
env, fds = {}, {}
for i, (name, links) in enumerate(cases):
    env[(name, links)] = dict(os.environ, NSNET_STATE_DIR=tempfile.mkdtemp())
    ns, side = f'cl{i}', f'cl{i}side'
    subprocess.run(['ip', 'netns', 'add', ns], check=True)
    subprocess.run(['ip', 'netns', 'add', side], check=True)
    batch = ''.join(f'link add h{j} type veth peer name p{j} netns {side}\nlink set h{j} up\n' for j in range(links))
    subprocess.run(['ip', '-n', ns, '-batch', '-'], input=batch, text=True, check=True)
    fds[(name, links)] = os.open(f'/run/netns/{ns}', os.O_RDONLY)
import atexit
from benchkit import stop_responders
atexit.register(lambda: stop_responders(e['NSNET_STATE_DIR'] for e in env.values()))
def run(case, args):
    fd = fds[case]
    p = subprocess.run([bins[case[0]]] + args, env=env[case], check=False, capture_output=True, preexec_fn=lambda: libc.setns(fd, 0x40000000))
    if p.returncode:
        sys.exit(f'{case}: {args}: {p.stderr.decode().strip()}')
for case in cases:
    run(case, ['network', 'create', 'keep', '--subnet', '10.99.0.0/24'])
for r in range(N):
    for case in cases:
        t = time.perf_counter(); run(case, ['network', 'create', 'c', '--subnet', '10.80.0.0/24'])
        res[case]['create'].append(time.perf_counter() - t)
        t = time.perf_counter(); run(case, ['network', 'rm', 'c'])
        res[case]['rm'].append(time.perf_counter() - t)
base = cases[0]
for case in cases:
    print(f'{case[0]:>6} links={case[1]:<5}', '  '.join(f"{op} median {statistics.median(v)*1000:6.2f} ms (x{statistics.median(v)/statistics.median(res[base][op]):.2f})" for op, v in res[case].items()))
