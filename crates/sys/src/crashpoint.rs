//! Crash points: a test hook that proves every interrupted operation is recoverable.
//!
//! With `NSNET_CRASH_AT=N` in its environment, the process kills itself with SIGKILL — exactly
//! what `kill -9` does, no destructor or rollback runs — at its N-th crash point. Point `2k - 1`
//! is just before the k-th change the process makes to the kernel, point `2k` just after it.
//! Store commits happen between kernel changes, so these points cover every state a killed
//! process can leave. Without the variable, a point costs one comparison.

/// Environment variable naming the crash point to stop at.
pub const ENV: &str = "NSNET_CRASH_AT";

/// Counts crash points and kills the process at the chosen one.
#[derive(Debug, Default)]
pub struct CrashPoints {
    at: Option<u64>,
    seen: u64,
}

impl CrashPoints {
    /// Reads `NSNET_CRASH_AT` (unset or unparsable: never crash).
    pub fn from_env() -> Self {
        CrashPoints {
            at: std::env::var(ENV).ok().and_then(|v| v.parse().ok()),
            seen: 0,
        }
    }

    /// The point just before a kernel change.
    pub fn before(&mut self, what: &str) {
        self.reach("before", what);
    }

    /// The point just after a kernel change (made or failed).
    pub fn after(&mut self, what: &str) {
        self.reach("after", what);
    }

    fn reach(&mut self, when: &str, what: &str) {
        let Some(at) = self.at else { return };
        self.seen += 1;
        if self.seen == at {
            // The harness reads this line to name the point it covered.
            eprintln!("nsnet: crash point {at}: {when} {what}");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGKILL);
            // SIGKILL cannot be caught; never go on if delivery were somehow delayed.
            std::process::abort();
        }
    }
}
