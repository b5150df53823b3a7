//! `nsnet graph`: the picture a user gets, rendered by Graphviz, read back from the SVG.

mod common;

use common::{Sandbox, root};

/// The text of every `<text>` element of an SVG, in document order.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].to_string())
        })
        .map(|t| {
            t.replace("&#45;", "-")
                .replace("&gt;", ">")
                .replace("&lt;", "<")
                .replace("&amp;", "&")
        })
        .collect()
}

/// The SVG group Graphviz wrote for the object whose DOT id is `title`.
fn group<'a>(svg: &'a str, title: &str) -> &'a str {
    let at = svg
        .find(&format!("<title>{title}</title>"))
        .unwrap_or_else(|| panic!("no {title} in {svg}"));
    let start = svg[..at].rfind("<g ").unwrap();
    let end = at + svg[at..].find("</g>").unwrap();
    &svg[start..end]
}

/// Three networks (one internal, one routed), a namespace on both with a published port, a link, a route
/// and a container.
fn small_topology() -> Sandbox {
    let s = Sandbox::new();
    s.ok(&["network", "create", "front", "--subnet", "10.60.1.0/24"]);
    s.ok(&[
        "network",
        "create",
        "back",
        "--subnet",
        "10.60.2.0/24",
        "--internal",
    ]);
    s.ok(&[
        "network",
        "create",
        "edge",
        "--subnet",
        "10.60.3.0/24",
        "--routed",
    ]);
    s.ok(&["netns", "add", "web"]);
    s.ok(&["netns", "add", "db"]);
    s.ok(&["network", "connect", "front", "web", "--publish", "8080:80"]);
    s.ok(&["network", "connect", "back", "web"]);
    s.ok(&["network", "connect", "back", "db"]);
    s.ok(&[
        "link",
        "add",
        "web",
        "db",
        "--ifname-a",
        "pa",
        "--ifname-b",
        "pb",
        "--addr",
        "192.168.15.1/30",
        "--addr",
        "192.168.15.2/30",
    ]);
    s.ok(&[
        "route",
        "add",
        "db",
        "198.51.100.0/24",
        "via",
        "192.168.15.1",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--network",
        "front",
        "--",
        "sleep",
        "300",
    ]);
    s
}

/// The rendered picture shows each fact on its own line and no escaped `\n`.
#[test]
fn svg_shows_networks_namespaces_links_and_routes_on_separate_lines() {
    if !root() {
        return;
    }
    let s = small_topology();
    let svg = s.ok(&["graph", "--svg"]);
    assert!(svg.contains("<svg"), "{svg}");
    let texts = svg_texts(&svg);
    assert!(
        texts.iter().all(|t| !t.contains("\\n")),
        "a literal \\n is drawn: {texts:?}"
    );
    for line in [
        "front",
        "back",
        "driver bridge, nsbr-front",
        "10.60.1.0/24 gw 10.60.1.1",
        "10.60.2.0/24 gw 10.60.2.1",
        "internal",
        "routed",
        "web",
        "db",
        "publish 8080:80/tcp",
        "route 198.51.100.0/24 via 192.168.15.1",
        "host",
        "app",
        "container",
    ] {
        assert!(
            texts.iter().any(|t| t == line),
            "no text line {line:?} in {texts:?}"
        );
    }
    // Isolation at a glance: each network is a cluster; the internal one has a dashed border.
    assert!(
        group(&svg, "cluster_net_back").contains("stroke-dasharray"),
        "internal network not dashed"
    );
    assert!(
        !group(&svg, "cluster_net_front").contains("stroke-dasharray"),
        "ordinary network dashed"
    );
    assert!(
        group(&svg, "cluster_net_edge").contains("stroke-width=\"2\""),
        "routed network not bold"
    );
    // The primary network's edge is drawn bold (thicker than the others).
    let edges: Vec<&str> = svg.split("class=\"edge\"").skip(1).collect();
    let primary = edges
        .iter()
        .find(|e| e.contains("<title>net:front&#45;&#45;ns:web</title>"))
        .expect("web's edge to front");
    assert!(primary.contains("stroke-width=\"2\""), "{primary}");

    // Deterministic: the same state draws the same picture.
    assert_eq!(svg, s.ok(&["graph", "--svg"]));
}

/// `--html`: one page a browser opens offline, the SVG inline, each element's details as
/// its tooltip.
#[test]
fn html_page_is_self_contained_with_details_on_hover() {
    if !root() {
        return;
    }
    let s = small_topology();
    let page = s.ok(&["graph", "--html"]);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    let svg_at = page.find("<svg").expect("inline svg");
    assert!(page[svg_at..].contains("</svg>"));
    assert!(page.contains("<script>") && !page.contains("<script src"));
    // Nothing to fetch: the only URL is the SVG namespace (a name, never fetched).
    let urls: Vec<&str> = page
        .match_indices("http")
        .map(|(i, _)| page[i..].split(['"', ' ', '<']).next().unwrap())
        .collect();
    assert!(
        urls.iter().all(|u| *u == "http://www.w3.org/2000/svg"),
        "{urls:?}"
    );
    // Inspect details on hover: MAC and host-side veth of web's endpoints, the primary mark,
    // the network's settings.
    let web_tip = page
        .split("<title>ns:web</title>")
        .nth(1)
        .and_then(|t| t.split("xlink:title=\"").nth(1))
        .expect("web's tooltip");
    assert!(web_tip.contains("mac 0a:58:"), "{web_tip}");
    assert!(web_tip.contains("host side nsv"), "{web_tip}");
    assert!(page.contains("(primary: default route)"));
    assert!(
        page.contains("masquerade true, icc true, 2 endpoint(s)"),
        "{page}"
    );
    assert_eq!(page, s.ok(&["graph", "--html"]), "not deterministic");
}
