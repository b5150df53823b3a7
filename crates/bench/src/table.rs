//! Markdown pipe tables, padded so they read well in a terminal too. Pure.

/// A table: one header row, then data rows; the first column is left-aligned (labels), the
/// others right-aligned (figures).
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: AsRef<str>>(header: &[S]) -> Table {
        Table {
            header: header.iter().map(|h| h.as_ref().to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells render empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as Markdown.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(c, s)| {
                    if c == 0 {
                        format!("{s:<w$}", w = widths[c])
                    } else {
                        format!("{s:>w$}", w = widths[c])
                    }
                })
                .collect();
            format!("| {} |\n", parts.join(" | "))
        };
        let mut out = line(&self.header);
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(c, w)| {
                if c == 0 {
                    format!(":{}", "-".repeat(w - 1))
                } else {
                    format!("{}:", "-".repeat(w - 1))
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned_markdown() {
        let mut t = Table::new(&["subject", "N=1"]);
        t.row(vec!["nsnet CLI".into(), "5.12".into()]);
        t.row(vec!["floor".into(), "12.3".into()]);
        assert_eq!(
            t.render(),
            "| subject   |  N=1 |\n\
             | :-------- | ---: |\n\
             | nsnet CLI | 5.12 |\n\
             | floor     | 12.3 |\n"
        );
    }

    #[test]
    fn pads_short_rows_and_drops_extra_cells() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["x".into()]);
        t.row(vec!["y".into(), "1".into(), "extra".into()]);
        let out = t.render();
        assert!(out.contains("| x   |     |\n"), "{out}");
        assert!(!out.contains("extra"), "{out}");
    }
}
