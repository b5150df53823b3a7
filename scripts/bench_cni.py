#!/usr/bin/env python3
# CNI ADD / DEL against the CLI's `network connect --publish` / `network disconnect` doing the same
# work, interleaved, for several nsnet binaries: ./scripts/bench_cni.py base=PATH cand=PATH
# Run as root inside an `unshare -n -m` sandbox with tmpfs /run/netns and /etc/netns.
# Each (binary, face) pair works in its own network namespace (own nft tables, own state
# directory) holding one network with three other endpoints; each round attaches a fresh
# container namespace with one published TCP port, then removes it. The CNI side is fed what a
# runtime sends (crates/nsnet/tests/cnidriver): the configuration on stdin, CNI_* variables,
# runtimeConfig.portMappings. ROUNDS=N. Prints medians and CNI / CLI ratios from the same run.
import subprocess, sys, time, statistics, tempfile, os, ctypes, json, resource
libc = ctypes.CDLL(None, use_errno=True)
bins = dict(a.split('=', 1) for a in sys.argv[1:])
N = int(os.environ.get('ROUNDS', '60'))
subjects = [(b, face) for b in bins for face in ('cli', 'cni')]
res = {s: {'attach': [], 'detach': []} for s in subjects}
cpu = {s: {'attach': [], 'detach': []} for s in subjects}  # user+system CPU of the process
def cpu_now():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
env, fds, conf = {}, {}, {}
import atexit
from benchkit import stop_responders
atexit.register(lambda: stop_responders(e['NSNET_STATE_DIR'] for e in env.values()))

def conf_of(s, port):
    c = dict(conf[s])
    c['runtimeConfig'] = {'portMappings': [{'hostPort': port, 'containerPort': 80, 'protocol': 'tcp'}]}
    return json.dumps(c).encode()

def run(s, argv, extra_env=None, stdin=None):
    fd = fds[s]
    e = dict(env[s], **(extra_env or {}))
    p = subprocess.run([bins[s[0]]] + argv, env=e, input=stdin, capture_output=True,
                       preexec_fn=lambda: libc.setns(fd, 0x40000000))
    if p.returncode:
        sys.exit(f'{s}: {argv} {extra_env}: {p.stdout.decode().strip()} {p.stderr.decode().strip()}')

def cni(s, command, ns, port):
    run(s, [], {'CNI_COMMAND': command, 'CNI_CONTAINERID': ns, 'CNI_NETNS': f'/run/netns/{ns}',
                'CNI_IFNAME': 'eth0', 'CNI_PATH': '/usr/lib/cni'}, conf_of(s, port))

def attach(s, ns, port):
    if s[1] == 'cli':
        run(s, ['network', 'connect', 'lan', ns, '--publish', f'{port}:80'])
    else:
        cni(s, 'ADD', ns, port)

def detach(s, ns, port):
    if s[1] == 'cli':
        run(s, ['network', 'disconnect', 'lan', ns])
    else:
        cni(s, 'DEL', ns, port)

for i, s in enumerate(subjects):
    state = tempfile.mkdtemp()
    env[s] = dict(os.environ, NSNET_STATE_DIR=state)
    subprocess.run(['ip', 'netns', 'add', f'host{i}'], check=True)
    fds[s] = os.open(f'/run/netns/host{i}', os.O_RDONLY)
    # The CLI network's defaults: masquerade, the gateway the first address, nsnet's DNS
    # responder (signalled on every attach and detach); the CNI configuration asks for the same.
    conf[s] = {'cniVersion': '1.0.0', 'name': 'lan', 'type': 'nsnet', 'bridge': 'nsnet-lan',
               'isGateway': True, 'ipMasq': True, 'hairpinMode': True, 'stateDir': state,
               'dnsResponder': True,
               'capabilities': {'portMappings': True},
               'ipam': {'type': 'host-local', 'ranges': [[{'subnet': '10.1.0.0/20'}]],
                        'routes': [{'dst': '0.0.0.0/0'}]}}
    if s[1] == 'cli':
        run(s, ['network', 'create', 'lan', '--subnet', '10.1.0.0/20'])
    for j in range(3):
        subprocess.run(['ip', 'netns', 'add', f'o{i}x{j}'], check=True)
        attach(s, f'o{i}x{j}', 9000 + j)
    subprocess.run(['ip', 'netns', 'add', f'c{i}'], check=True)
for r in range(N):
    for i, s in enumerate(subjects):
        c, t = cpu_now(), time.perf_counter(); attach(s, f'c{i}', 8080)
        res[s]['attach'].append(time.perf_counter() - t); cpu[s]['attach'].append(cpu_now() - c)
        c, t = cpu_now(), time.perf_counter(); detach(s, f'c{i}', 8080)
        res[s]['detach'].append(time.perf_counter() - t); cpu[s]['detach'].append(cpu_now() - c)
print(f'{N} rounds, load average {os.getloadavg()[0]:.2f} at the end')
m = lambda v: statistics.median(v) * 1000
for b in bins:
    cli, cn = res[(b, 'cli')], res[(b, 'cni')]
    print(f'{b:>6} CLI connect {m(cli["attach"]):6.2f} ms disconnect {m(cli["detach"]):6.2f} ms | '
          f'CNI ADD {m(cn["attach"]):6.2f} ms (x{m(cn["attach"])/m(cli["attach"]):.2f}) '
          f'DEL {m(cn["detach"]):6.2f} ms (x{m(cn["detach"])/m(cli["detach"]):.2f})')
print('CPU time (user+system) of the process, medians:')
for b in bins:
    cli, cn = cpu[(b, 'cli')], cpu[(b, 'cni')]
    print(f'{b:>6} CLI connect {m(cli["attach"]):6.2f} ms disconnect {m(cli["detach"]):6.2f} ms | '
          f'CNI ADD {m(cn["attach"]):6.2f} ms (x{m(cn["attach"])/m(cli["attach"]):.2f}) '
          f'DEL {m(cn["detach"]):6.2f} ms (x{m(cn["detach"])/m(cli["detach"]):.2f})')
