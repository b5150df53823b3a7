//! What a user's shell and terminal see: completions sourced in a real bash, manual pages
//! rendered by groff, progress on a terminal (under `script`, a real pty) and silence in pipes,
//! `--quiet` and `NO_COLOR`.

mod common;

use std::path::Path;

use common::{NSNET, Sandbox};

/// Whether `tool` is installed; a test needing it skips visibly, or fails under `CI`.
fn have(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        assert!(!ci, "{tool} is missing (scripts/deps.sh installs it)");
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

/// PATH with the nsnet under test first: the completion script calls `nsnet` by name.
fn path_with_nsnet() -> String {
    let dir = Path::new(NSNET).parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

/// What bash offers for `line` (the word under the cursor is its last word; a trailing
/// space starts a new, empty one), through the generated script's completion function.
fn bash_complete(sb: &Sandbox, line: &str) -> Vec<String> {
    let script = format!(
        "source <(nsnet completions bash) || exit 3\n\
         COMP_LINE={line:?}; COMP_POINT=${{#COMP_LINE}}\n\
         read -ra COMP_WORDS <<< \"$COMP_LINE\"\n\
         [[ \"$COMP_LINE\" == *' ' ]] && COMP_WORDS+=('')\n\
         COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
         complete -p nsnet >/dev/null || exit 4\n\
         _clap_complete_nsnet nsnet \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    );
    let out = sb
        .command("bash", &["--norc", "--noprofile", "-c", &script])
        .env("PATH", path_with_nsnet())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bash completion of {line:?} failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The values offered, without the flags clap adds when the word is still empty.
fn values(offered: Vec<String>) -> Vec<String> {
    offered
        .into_iter()
        .filter(|w| !w.starts_with('-'))
        .collect()
}

#[test]
fn bash_completes_names_from_the_store() {
    if !common::root() || !have("bash") {
        return;
    }
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "blue", "--subnet", "10.77.0.0/24"]);
    sb.ok(&["network", "create", "green", "--subnet", "10.78.0.0/24"]);
    sb.ok(&["netns", "add", "red"]);
    sb.ok(&[
        "run",
        "--name",
        "web1",
        "-d",
        "--network",
        "blue",
        "--",
        "sleep",
        "60",
    ]);

    // The grammar, from the clap definition.
    assert!(bash_complete(&sb, "nsnet netw").contains(&"network".to_string()));
    assert!(bash_complete(&sb, "nsnet network ").contains(&"connect".to_string()));
    assert!(bash_complete(&sb, "nsnet network create x --int").contains(&"--internal".to_string()));
    // Names, from the store and /run/netns, at the moment TAB is pressed.
    assert_eq!(bash_complete(&sb, "nsnet network inspect bl"), ["blue"]);
    let offered = bash_complete(&sb, "nsnet network rm ");
    assert!(offered.contains(&"--force".to_string()), "{offered:?}");
    assert_eq!(values(offered), ["blue", "green"]);
    assert_eq!(bash_complete(&sb, "nsnet network connect green r"), ["red"]);
    assert_eq!(bash_complete(&sb, "nsnet netns exec r"), ["red"]);
    assert_eq!(bash_complete(&sb, "nsnet inspect ho"), ["host"]);
    assert_eq!(bash_complete(&sb, "nsnet logs w"), ["web1"]);
    assert_eq!(bash_complete(&sb, "nsnet run --network gr"), ["green"]);
    // A --state-dir typed on the line is the store completed from.
    let other = sb.state_dir().join("other");
    let made = sb
        .command(
            NSNET,
            &[
                "--state-dir",
                other.to_str().unwrap(),
                "network",
                "create",
                "violet",
                "--subnet",
                "10.76.0.0/24",
            ],
        )
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let line = format!("nsnet --state-dir {} network inspect ", other.display());
    assert_eq!(values(bash_complete(&sb, &line)), ["violet"]);
    // A name made after the script was sourced is offered too (nothing is cached).
    sb.ok(&["network", "create", "blue2", "--subnet", "10.79.0.0/24"]);
    assert_eq!(
        bash_complete(&sb, "nsnet network inspect bl"),
        ["blue", "blue2"]
    );
    sb.ok(&["rm", "-f", "web1"]);
    sb.command(
        NSNET,
        &[
            "--state-dir",
            other.to_str().unwrap(),
            "network",
            "rm",
            "violet",
        ],
    )
    .output()
    .unwrap();
}

#[test]
fn completion_without_a_store_offers_no_names_and_creates_nothing() {
    if !common::root() || !have("bash") {
        return;
    }
    let sb = Sandbox::new();
    let state = sb.state_dir().join("never-made");
    let script = "source <(nsnet completions bash); COMP_WORDS=(nsnet network inspect ''); \
                  COMP_CWORD=3; _clap_complete_nsnet nsnet '' inspect; printf '%s\\n' \"${COMPREPLY[@]}\"";
    let out = sb
        .command("bash", &["--norc", "-c", script])
        .env("PATH", path_with_nsnet())
        .env("NSNET_STATE_DIR", &state)
        .output()
        .unwrap();
    let offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    assert!(offered.contains(&"--help".to_string()), "{offered:?}");
    assert_eq!(values(offered), Vec::<String>::new());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!state.exists(), "completion created the state directory");
}

#[test]
fn zsh_and_fish_scripts_call_back_into_nsnet() {
    for shell in ["zsh", "fish"] {
        let out = std::process::Command::new(NSNET)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("NSNET_COMPLETE"), "{shell}: {text}");
        assert!(text.contains("nsnet"), "{shell}: {text}");
    }
    let bad = std::process::Command::new(NSNET)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("tcsh") && err.contains("bash, zsh, fish"),
        "{err}"
    );
}

/// Every command's page (leaf or group), as clap knows them from `--help`.
fn commands() -> Vec<String> {
    fn subcommands(prefix: &[&str]) -> Vec<String> {
        let mut args: Vec<&str> = prefix.to_vec();
        args.push("--help");
        let help = std::process::Command::new(NSNET)
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8(help.stdout).unwrap();
        let Some((_, list)) = text.split_once("Commands:\n") else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for line in list.lines().take_while(|l| l.starts_with("  ")) {
            let name = line.split_whitespace().next().unwrap();
            if name == "help" {
                continue;
            }
            let mut path = prefix.to_vec();
            path.push(name);
            found.push(path.join("-"));
            found.extend(subcommands(&path));
        }
        found
    }
    subcommands(&[])
}

#[test]
fn man_pages_render_for_every_subcommand() {
    if !have("groff") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(NSNET)
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected: Vec<String> = commands().iter().map(|c| format!("nsnet-{c}.1")).collect();
    expected.push("nsnet.1".into());
    expected.sort();
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, expected);
    assert!(files.len() > 30, "{files:?}");
    for f in &files {
        // -ww: every groff warning; -z: format without output. A clean page warns about nothing.
        let r = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(dir.path().join(f))
            .output()
            .unwrap();
        assert!(
            r.status.success() && r.stderr.is_empty(),
            "{f}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    // What a reader sees: the page of a nested subcommand, its usage and a flag's help.
    let text = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou"])
        .arg(dir.path().join("nsnet-network-create.1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("nsnet network create"), "{text}");
    assert!(text.contains("--internal"), "{text}");
    assert!(text.contains("No default route for endpoints"), "{text}");
    // Without --dir: nsnet.1 on stdout.
    let one = std::process::Command::new(NSNET)
        .arg("man")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&one.stdout).starts_with(".ie \\n(.g .ds Aq"));
}

/// A topology with enough objects for progress to matter: `n` namespaces on one network.
fn many(n: usize) -> String {
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let mut yaml = format!(
        "name: many\nnamespaces: [{}]\nnetworks:\n  wide:\n    subnets: [10.88.0.0/24]\n    endpoints:\n",
        names.join(", ")
    );
    for name in &names {
        yaml.push_str(&format!("      {name}: {{}}\n"));
    }
    yaml
}

/// Runs `nsnet ARGS` in the sandbox with a pseudo-terminal as stdout and stderr (util-linux
/// `script`), as a user at a terminal would; returns what the terminal received.
fn on_terminal(sb: &Sandbox, args: &str, env: &[(&str, &str)]) -> String {
    let mut c = sb.command("script", &["-qec", &format!("{NSNET} {args}"), "/dev/null"]);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn progress_on_a_terminal_silence_in_pipes_and_with_quiet() {
    if !common::root() || !have("script") {
        return;
    }
    let sb = Sandbox::new();
    let file = sb.state_dir().join("many.yaml");
    std::fs::write(&file, many(24)).unwrap();
    let file = file.to_str().unwrap();

    // Piped: the result on stdout, nothing at all on stderr.
    let piped = sb.nsnet(&["apply", "-f", file]);
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert!(
        piped.stdout.contains("applied 49 change(s)"),
        "{}",
        piped.stdout
    );
    assert_eq!(piped.stderr, "");
    let piped = sb.nsnet(&["gc"]);
    assert_eq!(
        (piped.code, piped.stdout.as_str(), piped.stderr.as_str()),
        (0, "nothing to collect\n", "")
    );

    // A terminal: one line redrawn in place (carriage return, erase line), erased at the end.
    let tty = on_terminal(&sb, "repair", &[]);
    assert!(tty.contains("\r\x1b[2Krepair "), "{tty:?}");
    assert!(tty.contains("[2/2]\x1b[0m installing"), "{tty:?}");
    assert!(
        tty.contains("firewall rebuilt: 1 network(s), 24 endpoint(s)"),
        "{tty:?}"
    );
    let tty = on_terminal(&sb, "gc", &[]);
    assert!(tty.contains("gc \x1b[2m["), "{tty:?}");
    assert!(tty.contains("[25/25]\x1b[0m network wide"), "{tty:?}");
    assert!(tty.ends_with("nothing to collect\r\n"), "{tty:?}");
    let tty = on_terminal(&sb, &format!("destroy -f {file}"), &[("NO_COLOR", "1")]);
    assert!(tty.contains("\r\x1b[2Kdestroy [25/25] - netns"), "{tty:?}");
    assert!(
        tty.contains("removed 25 object(s) of topology many"),
        "{tty:?}"
    );
    // NO_COLOR: cursor control only, no colour (SGR) sequence.
    assert!(
        !tty.contains("\x1b[2m") && !tty.contains("\x1b[0m"),
        "{tty:?}"
    );

    // --quiet: nothing on a terminal, nothing in a pipe, and the work is still done.
    assert_eq!(
        on_terminal(&sb, &format!("--quiet apply -f {file}"), &[]),
        ""
    );
    assert_eq!(sb.json(&["network", "ls"]).as_array().unwrap().len(), 1);
    let quiet = sb.nsnet(&["-q", "destroy", "-f", file]);
    assert_eq!(
        (quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()),
        (0, "", "")
    );
    sb.assert_clean();
    // NSNET_QUIET=1 is --quiet; NSNET_QUIET=0 is not.
    let env_quiet = sb
        .command(NSNET, &["gc"])
        .env("NSNET_QUIET", "1")
        .output()
        .unwrap();
    assert!(env_quiet.status.success() && env_quiet.stdout.is_empty());
    let env_loud = sb
        .command(NSNET, &["gc"])
        .env("NSNET_QUIET", "0")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&env_loud.stdout),
        "nothing to collect\n"
    );
    // Errors still speak under --quiet.
    sb.fails(1, &["-q", "network", "rm", "nosuch"], &["nosuch"]);
}

#[test]
fn colour_only_on_terminals_without_no_color() {
    if !common::root() || !have("script") {
        return;
    }
    let sb = Sandbox::new();
    sb.ok(&["network", "create", "blue", "--subnet", "10.77.0.0/24"]);
    let coloured = on_terminal(&sb, "doctor", &[]);
    assert!(coloured.contains("\x1b[32mOK  \x1b[0m"), "{coloured:?}");
    let plain = on_terminal(&sb, "doctor", &[("NO_COLOR", "1")]);
    assert!(plain.contains("OK    "), "{plain:?}");
    assert!(!plain.contains("\x1b["), "{plain:?}");
    let piped = sb.nsnet(&["doctor"]);
    assert!(
        piped.stdout.contains("OK    ") && !piped.stdout.contains('\x1b'),
        "{}",
        piped.stdout
    );
    // An empty NO_COLOR does not count (no-color.org).
    assert!(on_terminal(&sb, "doctor", &[("NO_COLOR", "")]).contains("\x1b[32m"));
}

/// Mean wall time of `f` over `n` runs, in milliseconds.
fn mean_ms(n: u32, mut f: impl FnMut()) -> f64 {
    let start = std::time::Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
}

/// Figures for BENCHMARKS.md: what a TAB costs against starting nsnet at all, and what
/// drawing progress costs an apply/destroy cycle against the same cycle with --quiet (both on
/// a pty). `cargo test --release -p nsnet --test ux -- --ignored --nocapture figures`
#[test]
#[ignore]
fn figures() {
    if !common::root() || !have("script") {
        return;
    }
    let sb = Sandbox::new();
    for i in 0..50 {
        sb.ok(&[
            "network",
            "create",
            &format!("n{i}"),
            "--subnet",
            &format!("10.90.{i}.0/24"),
        ]);
    }
    let version = mean_ms(50, || {
        assert!(sb.nsnet(&["--version"]).code == 0);
    });
    // What the bash script runs for `nsnet network inspect <TAB>`.
    let tab = mean_ms(50, || {
        let out = sb
            .command(NSNET, &["--", "nsnet", "network", "inspect", ""])
            .env("NSNET_COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", "3")
            .env("_CLAP_IFS", "\n")
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_COMPLETE_SPACE", "true")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("n49"));
    });
    println!(
        "completion of 50 network names: {tab:.1} ms per TAB, {:.2}x `nsnet --version` ({version:.1} ms)",
        tab / version
    );
    for i in 0..50 {
        sb.ok(&["network", "rm", &format!("n{i}")]);
    }
    let file = sb.state_dir().join("many.yaml");
    std::fs::write(&file, many(60)).unwrap();
    let file = file.to_str().unwrap();
    let cycle = |quiet: &str| {
        mean_ms(3, || {
            on_terminal(&sb, &format!("{quiet} apply -f {file}"), &[]);
            on_terminal(&sb, &format!("{quiet} destroy -f {file}"), &[]);
        })
    };
    let quiet = cycle("--quiet");
    let drawn = cycle("");
    println!(
        "apply (121 changes) + destroy of 60 namespaces on a pty: {drawn:.0} ms with progress, {:.3}x the same with --quiet ({quiet:.0} ms)",
        drawn / quiet
    );
    sb.assert_clean();
}
