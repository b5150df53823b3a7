//! Where forwarded queries go: the host's nameservers, within the client's patience.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// At most this many upstream servers are tried (glibc's MAXNS, Docker's maxExtDNS).
pub const MAX_UPSTREAMS: usize = 3;

/// Total time spent on one forwarded query: it ends before a glibc client's own 5 s
/// timeout, so the client gets our SERVFAIL rather than silence.
pub const BUDGET: Duration = Duration::from_millis(4000);

/// The nameservers of a resolv.conf text, in order, at most `MAX_UPSTREAMS`. Loopback ones
/// are kept (the responder runs in the host's namespace, where a stub on 127.0.0.53
/// answers); scoped link-local ones (`fe80::1%eth0`) are skipped, as std cannot parse them.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then_some(())?;
            w.next()?.parse::<IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .take(MAX_UPSTREAMS)
        .collect()
}

/// Time allowed to each of `n` upstream servers.
pub fn per_server(n: usize) -> Duration {
    BUDGET / u32::try_from(n.clamp(1, MAX_UPSTREAMS)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_in_order_loopback_kept_at_most_three() {
        let text = "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\n\
                    nameserver 192.0.2.1\nnameserver ::1\nnameserver 198.51.100.1\n";
        let got: Vec<String> = nameservers(text).iter().map(|s| s.to_string()).collect();
        assert_eq!(got, ["127.0.0.53:53", "192.0.2.1:53", "[::1]:53"]);
        assert!(nameservers("").is_empty());
    }

    #[test]
    fn budget_is_shared_and_ends_before_the_client_gives_up() {
        assert_eq!(per_server(1), BUDGET);
        assert!(per_server(3) * 3 <= BUDGET && per_server(3) > Duration::from_secs(1));
        assert_eq!(per_server(0), BUDGET);
        assert!(BUDGET < Duration::from_secs(5));
    }
}
