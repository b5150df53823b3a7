//! The words of the CLI and of topology files for what gets past an engine refusal: the
//! engine says what is in the way (`EngineError::hint`), each face names its own flag or key.

use nsnet_engine::{EngineError, Hint};

/// The CLI's flag (or syntax) after the refusal it gets past.
fn cli(h: Hint) -> &'static str {
    match h {
        Hint::Force => " or use --force",
        Hint::OtherBridge => " (choose another with --bridge)",
        Hint::OtherInterface => " (choose another with --ifname)",
        Hint::NameInterface => "; pick one with --ifname",
        Hint::OtherName => "; choose another --name",
        Hint::GiveNetwork => ": give one with --network",
        Hint::GiveCommand => ": nsnet run [OPTIONS] -- CMD ARGS...",
    }
}

/// A topology file's key after the refusal it gets past.
fn topology(h: Hint) -> &'static str {
    match h {
        // `apply` removes what is in the way itself, in order.
        Hint::Force => "",
        Hint::OtherBridge => " (choose another `bridge:` for the network)",
        Hint::OtherInterface | Hint::NameInterface => " (choose another `ifname:`)",
        Hint::OtherName => " (rename the container)",
        Hint::GiveNetwork => " (give the container `networks:`)",
        Hint::GiveCommand => " (give the container a `command:`)",
    }
}

/// The engine error in a chain, if any.
fn engine_error(err: &anyhow::Error) -> Option<&EngineError> {
    err.chain().find_map(|e| e.downcast_ref::<EngineError>())
}

/// An error as the CLI prints it: the chain, then the flag that gets past it.
pub fn cli_line(err: &anyhow::Error) -> String {
    let hint = engine_error(err).and_then(EngineError::hint);
    format!("{err:#}{}", hint.map_or("", cli))
}

/// An engine error of a topology command, with the file's key that gets past it. The result
/// holds no `EngineError`, so the CLI adds no flag of its own.
pub fn topology_error(err: EngineError) -> anyhow::Error {
    let words = err.hint().map_or("", topology);
    // The whole chain, as the CLI would print it.
    let line = format!("{:#}", anyhow::Error::from(err));
    anyhow::anyhow!("{line}{words}")
}

#[cfg(test)]
mod tests {
    use nsnet_core::names::{IfName, NetName};
    use nsnet_engine::Conflict;

    use super::*;

    fn in_use() -> EngineError {
        Conflict::NetworkInUse {
            network: NetName::new("lan").unwrap(),
            netns: vec!["a".into()],
        }
        .into()
    }

    #[test]
    fn each_face_names_its_own_way_past_a_refusal() {
        let err = anyhow::Error::from(in_use().during("remove network lan"));
        assert_eq!(
            cli_line(&err.context("in state /x")),
            "in state /x: remove network lan: network lan still has 1 endpoint(s) (a); disconnect them or use --force"
        );
        let bridge = || -> EngineError {
            Conflict::BridgeOnHost {
                bridge: IfName::new("br0").unwrap(),
            }
            .into()
        };
        let topo = topology_error(bridge().during("create network n"));
        assert_eq!(
            topo.to_string(),
            "create network n: bridge br0 already exists on the host (choose another `bridge:` for the network)"
        );
        // Nothing of the CLI's is added to what the topology face said.
        assert_eq!(cli_line(&topo), topo.to_string());
        // No hint, no words.
        let plain = anyhow::Error::from(EngineError::from(Conflict::ContainerNotRunning {
            name: "x".into(),
        }));
        assert_eq!(cli_line(&plain), "container x is not running");
    }
}
