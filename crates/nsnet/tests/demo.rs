//! The README's first command: `nsnet demo` runs the whole seed walkthrough in its own
//! sandbox, proving each step with traffic, and leaves nothing behind.

mod common;

#[test]
fn demo_runs_the_whole_seed() {
    if !common::root() {
        return;
    }
    let out = std::process::Command::new(common::NSNET)
        .arg("demo")
        .env_remove("NSNET_STATE_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "Process namespace",
        "veth pair",
        "Linux bridge v-net-0",
        "Routes through the host",
        "NAT masquerade",
        "Port forwarding",
        "nothing left behind",
        "Done",
    ] {
        assert!(text.contains(step), "demo output lacks {step:?}");
    }
    assert!(text.matches("proof:").count() >= 12, "{text}");
}
