"""The floor: the same work per container as nsnet, done by `ip -batch` and `nft -f` processes.

A bench script treats `Floor` like an nsnet binary: `Floor(host_fd).run(args)` takes the argument
lists the scripts give nsnet and does what they ask with the tools an administrator would use,
in the network namespace `host_fd` (the bench's sandboxed "host"):

    network create NAME --subnet CIDR       bridge, gateway (.1), up; one nft table: masquerade
                                            of the subnet, a DNAT map for published ports
    network connect NAME NS [--publish H:C] veth with its peer moved into NS as eth0, on the
                                            bridge, up; address, lo up, default route in NS;
                                            the port's map element
    network disconnect NAME NS              the veth deleted, the port's element deleted
    network rm NAME                         the bridge and the table deleted

Each operation is the fewest processes that can do it: one `ip -batch` per namespace touched and
one `nft -f` when the firewall changes (three for a connect with a port, two for a disconnect).
The link work per container is that of nsnet-bench's floor (crates/bench/src/subject/floor.rs:
addrgenmode none on both ends, hairpin on the port); the firewall is a smaller table than
nsnet's, so this floor is, if anything, cheaper than nsnet's work. IPv4 only, TCP ports only.
"""
import ctypes
import ipaddress
import subprocess

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


class Floor:
    def __init__(self, host_fd):
        self.host_fd = host_fd
        self.nets = {}  # name -> dict(bridge, net, gw, table, next, ends)
        self.count = 0

    def _sh(self, argv, stdin):
        fd = self.host_fd
        p = subprocess.run(argv, input=stdin.encode(), capture_output=True,
                           preexec_fn=lambda: _libc.setns(fd, _CLONE_NEWNET))
        if p.returncode:
            raise RuntimeError(f"floor: {' '.join(argv)}: {p.stderr.decode().strip()}\n{stdin}")

    def run(self, args):
        op, rest = args[:2], args[2:]
        if op == ['network', 'create']:
            self.create(rest[0], rest[rest.index('--subnet') + 1])
        elif op == ['network', 'connect']:
            publish = rest[rest.index('--publish') + 1] if '--publish' in rest else None
            self.connect(rest[0], rest[1], publish)
        elif op == ['network', 'disconnect']:
            self.disconnect(rest[0], rest[1])
        elif op == ['network', 'rm']:
            self.rm(rest[0])
        else:
            raise ValueError(f'floor: no such operation: {args}')

    def create(self, name, subnet):
        net = ipaddress.ip_network(subnet)
        n = len(self.nets)
        bridge, table = f'flbr{n}', f'floor{n}'
        gw = net.network_address + 1
        self._sh(['ip', '-batch', '-'],
                 f'link add {bridge} type bridge\n'
                 f'link set dev {bridge} addrgenmode none\n'
                 f'addr add {gw}/{net.prefixlen} dev {bridge}\n'
                 f'link set {bridge} up\n')
        self._sh(['nft', '-f', '-'], f'''table ip {table} {{
	map ports {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
	chain prerouting {{
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local dnat ip to meta l4proto . th dport map @ports
	}}
	chain output {{
		type nat hook output priority -100; policy accept;
		fib daddr type local dnat ip to meta l4proto . th dport map @ports
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr {net} oifname != {bridge} masquerade
	}}
}}
''')
        self.nets[name] = dict(bridge=bridge, net=net, gw=gw, table=table, next=2, ends={})

    def connect(self, name, ns, publish=None):
        n = self.nets[name]
        addr = n['net'].network_address + n['next']
        n['next'] += 1
        self.count += 1
        end = f'flv{self.count}'
        self._sh(['ip', '-batch', '-'],
                 f'link add {end} master {n["bridge"]} type veth peer name eth0 netns {ns}\n'
                 f'link set dev {end} addrgenmode none\n'
                 f'link set dev {end} up\n'
                 f'link set dev {end} type bridge_slave hairpin on\n')
        self._sh(['ip', '-n', ns, '-batch', '-'],
                 'link set lo up\n'
                 'link set eth0 addrgenmode none\n'
                 'link set eth0 up\n'
                 f'addr add {addr}/{n["net"].prefixlen} dev eth0\n'
                 f'route add default via {n["gw"]}\n')
        element = None
        if publish:
            host, cont = publish.split(':')
            element = f'tcp . {host} : {addr} . {cont}'
            self._sh(['nft', '-f', '-'], f'add element ip {n["table"]} ports {{ {element} }}\n')
        n['ends'][ns] = (end, element)

    def disconnect(self, name, ns):
        n = self.nets[name]
        end, element = n['ends'].pop(ns)
        self._sh(['ip', '-batch', '-'], f'link del {end}\n')
        if element:
            key = element.split(' : ')[0]
            self._sh(['nft', '-f', '-'], f'delete element ip {n["table"]} ports {{ {key} }}\n')

    def rm(self, name):
        n = self.nets.pop(name)
        self._sh(['ip', '-batch', '-'],
                 ''.join(f'link del {end}\n' for end, _ in n['ends'].values())
                 + f'link del {n["bridge"]}\n')
        self._sh(['nft', '-f', '-'], f'delete table ip {n["table"]}\n')
