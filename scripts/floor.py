"""The floor: the same work per container as nsnet, done by `ip -batch` and `nft -f` processes.

A bench script treats `Floor` like an nsnet binary: `Floor(host_fd).run(args)` takes the argument
lists the scripts give nsnet and does what they ask with the tools an administrator would use,
in the network namespace `host_fd` (the bench's sandboxed "host"):

    network create NAME --subnet CIDR       bridge, gateway (.1), up; nsnet's firewall skeleton
                                            (the first network) and the network's elements
    network connect NAME NS [--publish H:C] veth with its peer moved into NS as eth0, on the
                                            bridge, up; address, lo up, default route in NS;
                                            the port's map element
    network disconnect NAME NS              the veth deleted, the port's element deleted
    network rm NAME                         the bridge deleted, its elements (the tables with
                                            the last network)

Each operation is the fewest processes that can do it: one `ip -batch` per namespace touched and
one `nft -f` when the firewall changes (three for a connect with a port, two for a disconnect).
The link work per container is that of nsnet-bench's floor (crates/bench/src/subject/floor.rs:
addrgenmode none on both ends, hairpin on the port), and so is the firewall: nsnet's own
skeleton (crates/core/tests/golden/skeleton.nft, the text nsnet installs) loaded by `nft -f`,
the elements nsnet gives a network, a published port as an element of nsnet's map. IPv4 only,
TCP ports only.
"""
import ipaddress
import os

from benchkit import run_in_netns

_SKELETON = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'crates', 'core', 'tests',
                         'golden', 'skeleton.nft')


class Floor:
    def __init__(self, host_fd):
        self.host_fd = host_fd
        self.nets = {}  # name -> dict(bridge, net, gw, next, ends)
        self.count = 0

    def _sh(self, argv, stdin):
        # Started as the nsnet subjects are (run_in_netns), so both pay the same per process.
        p = run_in_netns(self.host_fd, argv, input=stdin.encode(), capture_output=True)
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
        bridge = f'flbr{n}'
        gw = net.network_address + 1
        self._sh(['ip', '-batch', '-'],
                 f'link add {bridge} type bridge\n'
                 f'link set dev {bridge} addrgenmode none\n'
                 f'addr add {gw}/{net.prefixlen} dev {bridge}\n'
                 f'link set {bridge} up\n')
        # As nsnet: the tables with the first network, then the network's elements.
        skeleton = '' if self.nets else open(_SKELETON).read()
        self._sh(['nft', '-f', '-'], skeleton + ''.join(
            f'add element inet nsnet {s} {{ {k} }}\n' for s, k in self._elements(bridge)))
        self.nets[name] = dict(bridge=bridge, net=net, gw=gw, next=2, ends={})

    @staticmethod
    def _elements(bridge):
        return [('bridges', bridge), ('same_bridge', f'{bridge} . {bridge}'),
                ('masq_bridges', bridge), ('dns_bridges', bridge)]

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
            self._sh(['nft', '-f', '-'], f'add element inet nsnet pf_any4 {{ {element} }}\n')
        n['ends'][ns] = (end, element)

    def disconnect(self, name, ns):
        n = self.nets[name]
        end, element = n['ends'].pop(ns)
        self._sh(['ip', '-batch', '-'], f'link del {end}\n')
        if element:
            key = element.split(' : ')[0]
            self._sh(['nft', '-f', '-'], f'delete element inet nsnet pf_any4 {{ {key} }}\n')

    def rm(self, name):
        n = self.nets.pop(name)
        self._sh(['ip', '-batch', '-'],
                 ''.join(f'link del {end}\n' for end, _ in n['ends'].values())
                 + f'link del {n["bridge"]}\n')
        if self.nets:
            self._sh(['nft', '-f', '-'], ''.join(
                f'delete element inet nsnet {s} {{ {k} }}\n' for s, k in self._elements(n['bridge'])))
        else:
            self._sh(['nft', '-f', '-'], 'delete table inet nsnet\ndelete table bridge nsnet\n')
