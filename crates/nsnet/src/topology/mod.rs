//! The topology file face: a YAML file (containerlab users write YAML) turned into the core's
//! `Desired` value. Every error names the file, the line and column, and the field, and nothing
//! is applied from an invalid file.

mod check;
mod read;
mod shape;

use std::path::Path as FsPath;

use nsnet_core::CoreError;
use nsnet_core::overlay::Membership;
use nsnet_core::topology::Desired;

use read::{Flaw, Map, Pos, Spot};

/// A topology file that cannot be used: where and why.
#[derive(Debug)]
pub struct FileError {
    pub file: String,
    /// Where in the file; `None` when the file could not be read at all.
    pub pos: Option<Pos>,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: ", self.file, p.line, p.column)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for FileError {}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, at: &Spot, message: impl std::fmt::Display) -> FileError {
        FileError {
            file: self.file.to_string(),
            pos: Some(at.pos),
            field: at.path.to_string(),
            message: message.to_string(),
        }
    }

    fn at<T>(&self, at: &Spot, r: Result<T, CoreError>) -> Result<T, FileError> {
        r.map_err(|e| self.err(at, e))
    }

    fn flaw(&self, f: Flaw) -> FileError {
        self.err(&f.at, f.message)
    }
}

/// Reads and validates a topology file.
pub fn load(path: &FsPath) -> Result<Desired, FileError> {
    load_with_hosts(path).map(|(desired, _)| desired)
}

/// Reads and validates a topology file, with where its overlay networks' hosts come from.
pub fn load_with_hosts(path: &FsPath) -> Result<(Desired, Membership), FileError> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| FileError {
        file: file.clone(),
        pos: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    parse_with_hosts(&file, &src)
}

/// Parses and validates topology text (`file` names it in errors).
#[cfg(test)]
pub fn parse(file: &str, src: &str) -> Result<Desired, FileError> {
    parse_with_hosts(file, src).map(|(desired, _)| desired)
}

/// [`parse`], with where the file's overlay networks' hosts come from.
pub fn parse_with_hosts(file: &str, src: &str) -> Result<(Desired, Membership), FileError> {
    let ctx = Ctx { file };
    let root = read::document(src).map_err(|f| ctx.flaw(f))?;
    let shape = Map::root(&root)
        .and_then(|m| shape::File::read(&m))
        .map_err(|f| ctx.flaw(f))?;
    check::validate(&ctx, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse("t.yaml", src).unwrap_err().to_string()
    }

    #[test]
    fn the_seed_example_parses() {
        let d = load(FsPath::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/seed.yaml"
        )))
        .unwrap();
        assert_eq!(d.name, "seed");
        assert_eq!(
            d.networks[0].spec.subnets()[0].gateway.to_string(),
            "192.168.15.5"
        );
        assert!(
            d.routes
                .iter()
                .any(|r| r.dest.to_string() == "192.168.1.0/24")
        );
        let d = load(FsPath::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/three-tier.yaml"
        )))
        .unwrap();
        assert_eq!(d.networks.len(), 2);
        let (d, membership) = load_with_hosts(FsPath::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/overlay.yaml"
        )))
        .unwrap();
        assert_eq!(d.networks[0].spec.vni(), Some(42));
        assert!(matches!(membership, Membership::Static(h) if h.len() == 3));
    }

    #[test]
    fn a_repeated_key_is_refused_with_its_line_at_every_level() {
        let cases = [
            (
                "name: t\nnamespaces: [red]\nname: u\n",
                "t.yaml:3:1: ",
                "\"name\"",
            ),
            (
                "name: t\nnetworks:\n  lan: { subnets: [10.0.0.0/24] }\n  lan: { subnets: [10.1.0.0/24] }\n",
                "t.yaml:4:3: networks: ",
                "\"lan\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    internal: true\n    internal: false\n",
                "t.yaml:6:5: networks.lan: ",
                "\"internal\"",
            ),
            (
                "name: t\nnamespaces: [red]\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      red: { ip: [10.0.0.4] }\n      red: { ip: [10.0.0.5] }\n",
                "t.yaml:8:7: networks.lan.endpoints: ",
                "\"red\"",
            ),
            (
                "name: t\nnamespaces: [red]\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      red:\n        ip: [10.0.0.4]\n        ip: [10.0.0.5]\n",
                "t.yaml:9:9: networks.lan.endpoints.red: ",
                "\"ip\"",
            ),
            (
                "name: t\nnamespaces: [a, b]\nlinks:\n  - a: { netns: a, delay: 5ms, delay: 9ms }\n    b: { netns: b }\n",
                "t.yaml:4:32: links[0].a: ",
                "\"delay\"",
            ),
            (
                "name: t\nnamespaces: [a]\nroutes:\n  - netns: a\n    dest: 10.0.0.0/8\n    via: 10.0.0.1\n    dest: 10.9.0.0/16\n",
                "t.yaml:7:5: routes[0]: ",
                "\"dest\"",
            ),
            (
                "name: t\ncontainers:\n  api: { command: [sleep, infinity] }\n  api: { command: [sleep, '1'] }\n",
                "t.yaml:4:3: containers: ",
                "\"api\"",
            ),
            (
                "name: t\nnetworks:\n  lan: { subnets: [10.0.0.0/24] }\ncontainers:\n  api:\n    command: [sleep, infinity]\n    env: [A=1]\n    env: [A=2]\n",
                "t.yaml:8:5: containers.api: ",
                "\"env\"",
            ),
        ];
        for (src, prefix, key) in cases {
            let e = err(src);
            assert!(
                e.starts_with(prefix) && e.contains(&format!("key {key} is given twice")),
                "{e}"
            );
        }
    }

    #[test]
    fn errors_point_at_line_and_field() {
        let e = err(
            "name: t\nnamespaces: [red]\nnetworks:\n  lan:\n    subnets:\n      - 10.0.0.0/33\n",
        );
        assert!(
            e.starts_with("t.yaml:6:9: networks.lan.subnets[0]: invalid subnet"),
            "{e}"
        );
        let e = err(
            "name: t\nnamespaces: [red]\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      ghost: {}\n",
        );
        assert!(
            e.starts_with(
                "t.yaml:7:7: networks.lan.endpoints.ghost: namespace \"ghost\" is not declared"
            ),
            "{e}"
        );
        let e = err("name: t\nnamespaces: [red]\nbogus: 1\n");
        assert!(
            e.starts_with("t.yaml:3:1: unknown field `bogus`, expected one of `name`"),
            "{e}"
        );
        let e = err(
            "name: t\nnamespaces: [a, b]\nlinks:\n  - a: { netns: a }\n    b: { netns: b, delay: soon }\n",
        );
        assert!(
            e.starts_with("t.yaml:5:27: links[0].b.delay: invalid delay"),
            "{e}"
        );
        let e = err(
            "name: t\nnamespaces: [a]\nroutes:\n  - { netns: a, dest: 10.0.0.0/8, via: fd00::1 }\n",
        );
        assert!(
            e.starts_with("t.yaml:4:5: routes[0]: ") && e.contains("same IP version"),
            "{e}"
        );
        let e = err(
            "name: t\nnetworks:\n  one: { subnets: [10.0.0.0/16] }\n  two: { subnets: [10.0.1.0/24] }\n",
        );
        assert!(
            e.starts_with("t.yaml:4:10: networks.two.subnets: subnet 10.0.1.0/24 overlaps 10.0.0.0/16 of network one"),
            "{e}"
        );
    }

    #[test]
    fn errors_found_after_parsing_carry_the_parsers_line_and_column() {
        let cases = [
            // A quoted key and a spaced colon: valid YAML that a search of the text by
            // indentation and `key:` does not find.
            (
                "name: t\nnamespaces: [red]\nnetworks:\n  'lan':\n    subnets: [10.0.0.0/24]\n    endpoints:\n      ghost: {}\n",
                "t.yaml:7:7: networks.lan.endpoints.ghost: namespace \"ghost\" is not declared",
            ),
            (
                "name: t\nnetworks:\n  lan :\n    subnets : [10.0.0.0/24]\n    bridge : nsbr-lan\n  wan:\n    subnets: [10.1.0.0/24]\n    bridge: nsbr-lan\n",
                "t.yaml:6:3: networks.wan: bridge nsbr-lan is also used by network lan",
            ),
            // The second item of a flow list, and a key inside a flow mapping spread over lines.
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24, 10.1.0.0/33]\n",
                "t.yaml:4:28: networks.lan.subnets[1]: invalid subnet \"10.1.0.0/33\"",
            ),
            (
                "name: t\nnamespaces: [a, b]\nlinks:\n  - { a: { netns: a },\n      b: { netns: b,\n           rate: fast } }\n",
                "t.yaml:6:18: links[0].b.rate: invalid rate \"fast\"",
            ),
            // A whole-definition refusal points at the key it is about.
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    internal: true\n    routed: true\n",
                "t.yaml:6:13: networks.lan.routed: invalid network \"lan\": internal and routed exclude each other",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    driver: hub\n",
                "t.yaml:5:13: networks.lan.driver: invalid driver \"hub\": allowed: bridge, ovs",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [fd00::/64]\n    mtu: 1000\n",
                "t.yaml:5:10: networks.lan.mtu: invalid mtu \"1000\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    gateways: [10.9.0.1]\n",
                "t.yaml:5:5: networks.lan.gateways: gateway 10.9.0.1 of network lan is not inside",
            ),
            (
                "name: t\nnamespaces: [a]\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints: { a: { ifname: e1 } }\nlinks:\n  - a: { netns: a, ifname: e1 }\n    b: { netns: host }\n",
                "t.yaml:8:5: links[0].a: interface e1 in namespace a is also used at networks.lan.endpoints.a.ifname (line 6)",
            ),
            // What the parser reads wrongly typed, or not at all.
            (
                "name: t\nnetworks:\n  lan:\n    subnets: 10.0.0.0/24\n",
                "t.yaml:4:14: networks.lan.subnets: expected a list, found \"10.0.0.0/24\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    bridge: br0\n",
                "t.yaml:3:3: networks.lan: missing field `subnets`",
            ),
            (
                "name: t\nnetworks:\n  lan: { subnets: [10.0.0.0/24], internal: yes }\n",
                "t.yaml:3:44: networks.lan.internal: expected true or false, found \"yes\"",
            ),
            (
                "name: t\nnamespaces: [a, b]\nlinks:\n  - a: { netns: a }\n    b: { netns: b }\n    mtu: \"1500\"\n",
                "t.yaml:6:10: links[0].mtu: expected a whole number such as 1500, found the quoted text \"1500\"",
            ),
            (
                "name: t\nnamespaces: [a]\nlinks:\n  - a: { netns: a }\n",
                "t.yaml:4:5: links[0]: missing field `b`",
            ),
            (
                "name: t\nnamespaces:\n  - [a]\n",
                "t.yaml:3:5: namespaces[0]: expected text, found a list",
            ),
            (
                "name: t\nnetworks: [lan]\n",
                "t.yaml:2:11: networks: expected a mapping, found a list",
            ),
            (
                "name: t\nnamespaces: [a\n",
                "t.yaml:3:1: while parsing a flow sequence, expected ',' or ']'",
            ),
        ];
        for (src, want) in cases {
            let e = err(src);
            assert!(e.starts_with(want), "{e}\nwanted: {want}");
        }
    }

    #[test]
    fn nothing_and_null_mean_not_given() {
        let d = parse(
            "t.yaml",
            "name: t\nnamespaces: [red, blue]\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    bridge: ~\n    mtu:\n    gateways: null\n    endpoints:\n      red:\n      blue: ~\nlinks:\nroutes: ~\n",
        )
        .unwrap();
        let lan = &d.networks[0];
        assert_eq!(lan.spec.bridge().as_str(), "nsbr-lan");
        assert_eq!(lan.spec.mtu(), None);
        assert_eq!(lan.endpoints.len(), 2);
        assert!(
            lan.endpoints
                .iter()
                .all(|e| e.ips.is_empty() && e.ifname.is_none())
        );
        assert!(d.links.is_empty() && d.routes.is_empty());
        // Quoted, it is a name like any other (and not a valid bridge name here).
        let e = err("name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    bridge: \"\"\n");
        assert!(
            e.starts_with("t.yaml:5:13: networks.lan.bridge: invalid"),
            "{e}"
        );
    }
    #[test]
    fn zz_parse_speed() {
        let mut yaml = String::from("name: big\nnamespaces:\n");
        for i in 0..2000 {
            yaml.push_str(&format!("  - n{i}\n"));
        }
        yaml.push_str("networks:\n  east:\n    subnets: [10.60.0.0/16]\n    endpoints:\n");
        for i in 0..1000 {
            yaml.push_str(&format!("      n{i}: {{}}\n"));
        }
        yaml.push_str("  west:\n    subnets: [10.61.0.0/16]\n    endpoints:\n");
        for i in 1000..2000 {
            yaml.push_str(&format!(
                "      n{i}: {{ ip: [10.61.{}.{}] }}\n",
                i / 200,
                i % 200 + 2
            ));
        }
        yaml.push_str("links:\n");
        for i in (0..2000).step_by(4) {
            yaml.push_str(&format!("  - a: {{ netns: n{i}, addr: 10.62.{}.1/30 }}\n    b: {{ netns: n{}, addr: 10.62.{}.2/30 }}\n", i / 4 % 250, i + 1, i / 4 % 250));
        }
        let mut t = Vec::new();
        for _ in 0..5 {
            let start = std::time::Instant::now();
            parse("big.yaml", &yaml).unwrap();
            t.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "PARSE {} lines: median {:.1} ms",
            yaml.lines().count(),
            t[2]
        );
    }

    #[test]
    fn hosts_have_distinct_underlay_addresses_and_slices() {
        let ok = "name: t\nhosts:\n  h1: { underlay: 192.0.2.1 }\n  h2: { underlay: 192.0.2.7, slice: 9 }\nnetworks:\n  ov: { driver: vxlan, vni: 7, subnets: [10.200.0.0/16] }\n";
        let (d, membership) = parse_with_hosts("t.yaml", ok).unwrap();
        let Membership::Static(hosts) = membership else {
            panic!("static membership expected");
        };
        assert_eq!(d.networks[0].spec.vni(), Some(7));
        let slices: Vec<u32> = hosts.iter().map(|h| h.slice).collect();
        assert_eq!(
            slices,
            [1, 9],
            "the last byte of the underlay address, or as given"
        );
        let e =
            err("name: t\nhosts:\n  h1: { underlay: 192.0.2.1 }\n  h2: { underlay: 192.0.2.1 }\n");
        assert!(
            e.starts_with(
                "t.yaml:4:19: hosts.h2.underlay: underlay address 192.0.2.1 is also host h1's"
            ),
            "{e}"
        );
        let e = err(
            "name: t\nhosts:\n  h1: { underlay: 192.0.2.1 }\n  h2: { underlay: 198.51.100.1 }\n",
        );
        assert!(e.contains("slice 1 is also host h1's"), "{e}");
        let e = err("name: t\nhosts:\n  h1: { underlay: 2001:db8::1 }\n");
        assert!(e.contains("allowed: an IPv4 address"), "{e}");
        let e = err("name: t\nnetworks:\n  lan: { subnets: [10.0.0.0/24], vni: 5 }\n");
        assert!(
            e.starts_with("t.yaml:3:39: networks.lan.vni: invalid vni"),
            "{e}"
        );
        let e = err("name: t\nhosts:\n  h1: { slice: 1 }\n");
        assert!(e.contains("underlay"), "{e}");
    }
}
