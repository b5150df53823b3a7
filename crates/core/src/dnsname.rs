//! Names the DNS responder answers to: aliases users give, and the container side of it
//! (the resolv.conf of a container on a network with DNS on).

use std::net::IpAddr;

use crate::CoreError;

/// Search domain of containers' resolv.conf (the responder answers names under it and
/// never forwards them).
pub const SEARCH_DOMAIN: &str = "dns.nsnet";

/// Checks an alias: DNS labels of letters, digits, `-` and `_`, joined by dots, at most 63
/// bytes each and 253 in all.
pub fn check_alias(alias: &str) -> Result<(), CoreError> {
    let bad = |reason: &str| CoreError::InvalidValue {
        what: "alias",
        value: alias.to_string(),
        reason: reason.to_string(),
    };
    if alias.is_empty() || alias.len() > 253 {
        return Err(bad("must be 1 to 253 characters"));
    }
    for label in alias.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("each dot-separated label must be 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "allowed: letters, digits, '-', '_' and dots between labels",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label cannot start or end with '-'"));
        }
    }
    Ok(())
}

/// resolv.conf of a container whose primary network has DNS on: the responder on that
/// network's gateway, the search domain before the host's own, and the host's options; the
/// host's nameservers are the responder's upstreams, not the container's.
pub fn resolv_conf(nameservers: &[IpAddr], host: &str) -> String {
    let mut out = String::from("# nsnet: container names and forwarding by nsnet's responder\n");
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    let mut search = vec![SEARCH_DOMAIN];
    let mut options = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search" | "domain") => search.extend(words.filter(|w| *w != SEARCH_DOMAIN)),
            Some("options") => options.push(line),
            _ => {}
        }
    }
    out.push_str(&format!("search {}\n", search.join(" ")));
    for line in options {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        for ok in ["db", "web-1", "a.b", "my_svc", "X"] {
            check_alias(ok).unwrap();
        }
        let err = |a: &str| check_alias(a).unwrap_err().to_string();
        assert_eq!(
            err("a b"),
            "invalid alias \"a b\": allowed: letters, digits, '-', '_' and dots between labels"
        );
        assert!(err("").contains("1 to 253"));
        assert!(err("a..b").contains("label must be 1 to 63"));
        assert!(err(&"x".repeat(64)).contains("label must be 1 to 63"));
        assert!(err("-a").contains("start or end"));
    }

    #[test]
    fn resolv_conf_names_the_gateway_and_search_domain() {
        let host = "nameserver 127.0.0.53\nsearch corp.example\noptions edns0 trust-ad\n";
        let got = resolv_conf(&["10.1.0.1".parse().unwrap()], host);
        assert_eq!(
            got,
            "# nsnet: container names and forwarding by nsnet's responder\n\
             nameserver 10.1.0.1\nsearch dns.nsnet corp.example\noptions edns0 trust-ad\n"
        );
    }
}
