//! Rendering: docker-style aligned columns, or JSON with `--format json`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::cli::Format;

/// Columns with a header row, padded to the widest cell.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet`: tables, messages and progress are not written; errors and JSON still are.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Whether text for a terminal may be coloured: it is a terminal and `NO_COLOR` is unset or
/// empty (<https://no-color.org>).
pub fn colour(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether stderr gets colour.
pub fn colour_stderr() -> bool {
    colour(std::io::stderr().is_terminal())
}

/// Whether stdout gets colour.
pub fn colour_stdout() -> bool {
    colour(std::io::stdout().is_terminal())
}

/// A one-line message on stdout (the name a command acted on, a summary), unless quiet.
pub fn note(line: &str) {
    if !quiet() {
        println!("{line}");
    }
}

/// Prints `value` as JSON, or the table `table` builds from it (nothing with `--quiet`).
pub fn print<T: Serialize>(
    format: Format,
    value: &T,
    table: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Table if quiet() => {}
        Format::Table => print!("{}", table(value)),
    }
    Ok(())
}

/// Joins displayable items with ", " (or "-" when empty).
pub fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = Table::new(&["NAME", "SUBNETS"]);
        t.row(vec!["lan".into(), "10.0.0.0/24".into()]);
        t.row(vec!["a-longer".into(), "-".into()]);
        assert_eq!(
            t.render(),
            "NAME       SUBNETS\nlan        10.0.0.0/24\na-longer   -\n"
        );
    }
}
