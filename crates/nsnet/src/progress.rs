//! Progress of long operations on stderr: one line redrawn in place, only when stderr is a
//! terminal and `--quiet` was not given, so pipes, logs and scripts see nothing of it. The
//! engine only calls back (`done, total, what`); drawing is this module's business.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraws closer together than this are skipped (except the last step): a terminal cannot
/// show them and thousands of small writes would slow a fast apply down.
const REDRAW: Duration = Duration::from_millis(40);

/// The line a long operation redraws.
pub struct Progress {
    label: &'static str,
    enabled: bool,
    colour: bool,
    drawn: bool,
    last: Option<Instant>,
}

impl Progress {
    /// A progress line for operation `label` ("apply", "gc", ...).
    pub fn new(label: &'static str) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        Progress {
            label,
            enabled: terminal && !crate::output::quiet(),
            colour: crate::output::colour(terminal),
            drawn: false,
            last: None,
        }
    }

    /// Shows that step `done` of `total` is `what`.
    pub fn step(&mut self, done: usize, total: usize, what: &dyn std::fmt::Display) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if done < total && self.last.is_some_and(|t| now - t < REDRAW) {
            return;
        }
        self.last = Some(now);
        let line = line(
            self.label,
            done,
            total,
            &what.to_string(),
            width(),
            self.colour,
        );
        // \r and "erase line" redraw in place; they are cursor control, not colour.
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn = true;
    }
}

impl Drop for Progress {
    /// Erases the line, so what the command prints next starts on a clean line.
    fn drop(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// The text of one progress line, cut to `width` columns.
fn line(label: &str, done: usize, total: usize, what: &str, width: usize, colour: bool) -> String {
    let counter = format!("[{done}/{total}]");
    let plain = format!("{label} {counter} {what}");
    let cut: String = plain.chars().take(width.saturating_sub(1)).collect();
    if !colour {
        return cut;
    }
    // Dim counter on colour terminals; the text itself stays the same width.
    cut.replacen(&counter, &format!("\x1b[2m{counter}\x1b[0m"), 1)
}

/// Columns of the terminal on stderr (80 when unknown).
fn width() -> usize {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        80
    }
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn line_fits_the_terminal() {
        let l = line("apply", 3, 40, "create network front", 20, false);
        assert_eq!(l, "apply [3/40] create");
        assert!(l.chars().count() < 20);
    }

    #[test]
    fn colour_only_when_asked() {
        assert!(!line("gc", 1, 2, "x", 80, false).contains('\x1b'));
        assert_eq!(line("gc", 1, 2, "x", 80, true), "gc \x1b[2m[1/2]\x1b[0m x");
    }
}
