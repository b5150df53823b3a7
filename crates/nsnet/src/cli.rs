//! Command-line grammar (docker and `ip netns` habits).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::complete::{containers, namespaces, namespaces_or_host, networks};

/// Container networking for Linux: namespaces, veth links, bridge networks, routes.
#[derive(Debug, Parser)]
#[command(name = "nsnet", version, about, propagate_version = true)]
pub struct Cli {
    /// State directory (SQLite store).
    #[arg(long, global = true, env = "NSNET_STATE_DIR", default_value = nsnet_store::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Output format of ls, inspect and create commands.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print errors only: no tables, messages or progress (JSON asked for with `--format json`,
    /// and what graph, logs, exec, completions and man exist to produce, are still written).
    #[arg(short, long, global = true, env = "NSNET_QUIET", value_parser = clap::builder::FalseyValueParser::new())]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
// Every command is a new process: `defer` builds a subcommand's arguments only when it is the
// one invoked (help, completions and manual pages build the whole tree), instead of all of
// them at every start.
#[command(defer = true)]
pub enum Command {
    /// Named network namespaces (iproute2-compatible: /run/netns/NAME).
    #[command(subcommand)]
    Netns(NetnsCmd),
    /// Point-to-point veth links between two namespaces ("host" is the machine's own).
    #[command(subcommand)]
    Link(LinkCmd),
    /// Bridge networks with subnets, gateways and address management.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Extra routes inside a namespace.
    #[command(subcommand)]
    Route(RouteCmd),
    /// Published ports (DNAT from host ports to a namespace's primary endpoint).
    #[command(subcommand)]
    Port(PortCmd),
    /// Rebuild nsnet's firewall tables and elements from the store (e.g. after `nft flush ruleset`).
    Repair,
    /// Show what `apply` would create, change and remove for a topology file (changes nothing).
    Plan(TopologyFile),
    /// Converge the machine to a topology file with the fewest changes (repairs drift too).
    Apply(TopologyFile),
    /// Remove everything a topology file created, and nothing else.
    Destroy(TopologyFile),
    /// The live topology as Graphviz DOT (SVG with --svg, an HTML page with --html; both need Graphviz).
    Graph {
        /// Only the objects a topology file declares.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Render SVG with Graphviz's `dot`.
        #[arg(long)]
        svg: bool,
        /// One self-contained HTML page (the SVG inline, details on hover and click).
        #[arg(long, conflicts_with = "svg")]
        html: bool,
    },
    /// A namespace's interfaces, addresses, routes, networks and links ("host" for the machine).
    Inspect {
        /// Namespace name, or "host".
        #[arg(add = namespaces_or_host())]
        netns: String,
        /// Check each endpoint of the namespace against what nsnet made (bridge, veth,
        /// addresses, MAC, default routes, firewall elements); exit 1 when anything differs.
        #[arg(long)]
        check: bool,
    },
    /// Remove leftovers of interrupted operations, of namespaces deleted by hand, and
    /// containers that exited.
    Gc,
    /// What this machine supports and what nsnet will do about it (OK / WARN / FAIL with the
    /// fix); changes nothing. Exit 1 when a check fails.
    Doctor,
    /// Run a command in a new container: its own PID, mount, UTS, IPC and network namespaces.
    Run(RunArgs),
    /// Run a command inside a running container (joins all of its namespaces).
    Exec {
        #[arg(add = containers())]
        name: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// List running containers (all of them with -a).
    Ps {
        #[arg(short, long)]
        all: bool,
    },
    /// Print the output of a detached container.
    Logs {
        #[arg(add = containers())]
        name: String,
    },
    /// Stop containers: SIGTERM, then SIGKILL after --time seconds; their network is released.
    Stop {
        #[arg(required = true, add = containers())]
        names: Vec<String>,
        /// Seconds to wait between SIGTERM and SIGKILL.
        #[arg(short, long, default_value_t = 10, value_name = "SECONDS")]
        time: u64,
    },
    /// Remove containers: endpoints, published ports, namespace, log and state.
    Rm {
        /// Kill running containers first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true, add = containers())]
        names: Vec<String>,
    },
    /// Run the seed walkthrough live in a throwaway sandbox, proving each step with traffic.
    Demo,
    /// Print the completion script of a shell, e.g.
    /// `nsnet completions bash > /etc/bash_completion.d/nsnet` (regenerate it after upgrades).
    Completions {
        #[arg(value_enum)]
        shell: crate::complete::Shell,
    },
    /// Print nsnet's manual page, or write one page per subcommand into --dir, e.g.
    /// `nsnet man --dir /usr/local/share/man/man1`.
    Man {
        /// Directory for nsnet.1, nsnet-network.1, nsnet-network-create.1, ...
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Container names over DNS: what the responder serves.
    #[command(subcommand)]
    Dns(DnsCmd),
    /// Overlay networks that span hosts (`driver: vxlan` in topology files).
    #[command(subcommand)]
    Overlay(OverlayCmd),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum DnsCmd {
    /// Names served, per network: namespace, aliases, addresses (and the responder's pid).
    Ls,
    /// The responder itself (started by nsnet on first need; not for humans).
    #[command(hide = true)]
    Serve,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum OverlayCmd {
    /// Follow the file's hosts as they come and go (keeping this host's etcd lease alive), and
    /// converge the overlay peers each time; runs until stopped.
    Watch {
        #[command(flatten)]
        topology: TopologyFile,
        /// How often to look, in milliseconds.
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        interval_ms: u64,
    },
    /// Converge only the overlay peers to the file's hosts, once (what each round of `watch`
    /// does; `apply` does it after everything else).
    Sync(TopologyFile),
    /// Follow the nodes of a CNI vxlan network (its configuration's `etcd`), keeping this
    /// node's lease alive and converging the peers; runs until stopped (what a Kubernetes
    /// node runs beside kubelet, e.g. from a DaemonSet).
    Cni {
        /// The CNI network configuration (.conflist or .conf) holding the nsnet plugin.
        conf: PathBuf,
        /// How often to look, in milliseconds.
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        interval_ms: u64,
        /// Converge once and exit.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Container name, also the name of its network namespace (default: generated).
    #[arg(long)]
    pub name: Option<String>,
    /// Connect to a network, optionally at an address: NET[:IP]. Repeat for more networks.
    #[arg(long = "network", value_name = "NET[:IP]", add = networks())]
    pub networks: Vec<String>,
    /// Publish a port (on the first network): [HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/PROTO].
    #[arg(long = "publish", short = 'p', value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Hostname inside the container (default: the name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Environment variable KEY=VALUE (KEY alone copies nsnet's own). Repeat for more.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Directory to pivot into as the container's root (default: the host's files).
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Detach: print the name and leave it running; its output goes to `nsnet logs NAME`.
    #[arg(short, long)]
    pub detach: bool,
    /// Another name the container answers to over DNS on its networks. Repeat for more.
    #[arg(long = "alias", value_name = "NAME")]
    pub aliases: Vec<String>,
    /// The command and its arguments, after `--`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TopologyFile {
    /// Topology file (YAML; see examples/).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Which of the file's `hosts` this machine is (default: the one whose underlay address
    /// an interface here holds).
    #[arg(long = "host")]
    pub host: Option<String>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum NetnsCmd {
    /// Create a namespace (with lo up).
    Add { name: String },
    /// List namespaces, including ones made by `ip netns add`.
    Ls,
    /// Remove namespaces, disconnecting their endpoints and removing their links first.
    Rm {
        #[arg(required = true, add = namespaces())]
        names: Vec<String>,
    },
    /// Run a command inside a namespace, with /etc/netns/NAME/* over /etc like `ip netns exec`.
    Exec {
        #[arg(add = namespaces())]
        name: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum LinkCmd {
    /// Join two namespaces with one veth pair; addresses set, both ends up.
    Add(LinkAdd),
    /// List links.
    Ls,
    /// Shape an interface's egress live: delay, jitter, loss, rate (netem).
    Set(LinkSet),
    /// Remove the link between two namespaces.
    Rm {
        #[arg(add = namespaces_or_host())]
        netns_a: String,
        #[arg(add = namespaces_or_host())]
        netns_b: String,
        /// Interface name at either end, when several links join the two.
        #[arg(long)]
        ifname: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct LinkAdd {
    #[arg(add = namespaces_or_host())]
    pub netns_a: String,
    #[arg(add = namespaces_or_host())]
    pub netns_b: String,
    /// Address of end A, then of end B (CIDR, e.g. 192.168.15.1/24).
    #[arg(long = "addr", value_name = "CIDR", num_args = 1, action = clap::ArgAction::Append)]
    pub addrs: Vec<String>,
    /// Interface name in NETNS_A (default veth-NETNS_B).
    #[arg(long)]
    pub ifname_a: Option<String>,
    /// Interface name in NETNS_B (default veth-NETNS_A).
    #[arg(long)]
    pub ifname_b: Option<String>,
    #[arg(long)]
    pub mtu: Option<u32>,
}

#[derive(Debug, Args)]
pub struct LinkSet {
    /// Namespace of the interface ("host" for the machine's own).
    #[arg(add = namespaces_or_host())]
    pub netns: String,
    /// A link end or endpoint interface made by nsnet.
    pub ifname: String,
    /// Added delay, e.g. 50ms.
    #[arg(long)]
    pub delay: Option<String>,
    /// Delay variation, e.g. 5ms (needs --delay).
    #[arg(long)]
    pub jitter: Option<String>,
    /// Packet loss, e.g. 1%.
    #[arg(long)]
    pub loss: Option<String>,
    /// Rate limit, e.g. 10mbit.
    #[arg(long)]
    pub rate: Option<String>,
    /// Remove all shaping.
    #[arg(long, conflicts_with_all = ["delay", "jitter", "loss", "rate"])]
    pub clear: bool,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Create a network: a bridge holding the gateway address of each subnet.
    Create(NetworkCreate),
    /// List networks.
    Ls,
    /// Show a network: subnets, gateways, bridge, endpoints, address usage.
    Inspect {
        #[arg(add = networks())]
        name: String,
    },
    /// Remove a network (refused while endpoints exist, unless --force).
    Rm {
        #[arg(add = networks())]
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Attach a namespace to a network.
    Connect(NetworkConnect),
    /// Detach a namespace from a network.
    Disconnect {
        #[arg(add = networks())]
        network: String,
        #[arg(add = namespaces())]
        netns: String,
    },
}

#[derive(Debug, Args)]
pub struct NetworkCreate {
    pub name: String,
    /// Subnet (IPv4 and/or IPv6 CIDR); repeat for dual stack.
    #[arg(long = "subnet", required = true, value_name = "CIDR")]
    pub subnets: Vec<String>,
    /// Gateway address (default: first host of each subnet); repeat per subnet.
    #[arg(long = "gateway", value_name = "IP")]
    pub gateways: Vec<String>,
    /// Bridge interface name (default nsbr-NAME).
    #[arg(long)]
    pub bridge: Option<String>,
    #[arg(long)]
    pub mtu: Option<u32>,
    /// No default route for endpoints and no traffic beyond the network.
    #[arg(long)]
    pub internal: bool,
    /// Do not masquerade traffic leaving the network (it keeps the endpoints' addresses).
    #[arg(long)]
    pub no_masquerade: bool,
    /// Inter-container communication on this network (`--icc=false` blocks it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub icc: bool,
    /// Accept traffic routed from outside straight to the endpoints' addresses (by default
    /// only published ports, this network and the host itself reach them).
    #[arg(long)]
    pub routed: bool,
    /// The switch that carries the network's frames: bridge (a Linux bridge), ovs (Open
    /// vSwitch, whose daemons nsnet starts itself) or vxlan (an overlay across hosts, see
    /// `hosts` in topology files).
    #[arg(long, default_value = "bridge", value_name = "DRIVER")]
    pub driver: String,
    /// Answer container names over DNS on the gateway addresses (the default).
    #[arg(long, overrides_with = "no_dns")]
    pub dns: bool,
    /// No DNS responder for this network: containers get the host's nameservers.
    #[arg(long, overrides_with = "dns")]
    pub no_dns: bool,
    /// The VXLAN network identifier of a vxlan network (default: a hash of its name, the
    /// same on every host).
    #[arg(long, value_name = "N")]
    pub vni: Option<u32>,
}

#[derive(Debug, Args)]
pub struct NetworkConnect {
    #[arg(add = networks())]
    pub network: String,
    #[arg(add = namespaces())]
    pub netns: String,
    /// Requested address (one per subnet); default: the lowest free.
    #[arg(long = "ip", value_name = "IP")]
    pub ips: Vec<String>,
    #[arg(long)]
    pub mac: Option<String>,
    /// Interface name inside the namespace (default eth0, eth1, ...).
    #[arg(long)]
    pub ifname: Option<String>,
    /// Publish a port: [HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|udp|sctp].
    #[arg(long = "publish", short = 'p', value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Another name the namespace answers to over DNS on this network. Repeat for more.
    #[arg(long = "alias", value_name = "NAME")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum PortCmd {
    /// Publish ports of a namespace: [HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/PROTO].
    Add {
        #[arg(add = namespaces())]
        netns: String,
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<String>,
    },
    /// List published ports (of one namespace, or all).
    Ls {
        #[arg(add = namespaces())]
        netns: Option<String>,
    },
    /// Unpublish ports of a namespace.
    Rm {
        #[arg(add = namespaces())]
        netns: String,
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum RouteCmd {
    /// Add a route: `nsnet route add NETNS DEST via GATEWAY` (DEST may be `default`).
    Add {
        #[arg(add = namespaces())]
        netns: String,
        dest: String,
        #[arg(value_parser = ["via"], hide_possible_values = true)]
        via: String,
        gateway: String,
    },
    /// List the routes of a namespace.
    Ls {
        #[arg(add = namespaces())]
        netns: String,
    },
    /// Remove a route from a namespace.
    Rm {
        #[arg(add = namespaces())]
        netns: String,
        dest: String,
    },
}
