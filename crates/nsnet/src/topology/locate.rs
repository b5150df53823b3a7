//! Finding the line of a field in a YAML file from its path (`networks.lan.subnets[0]`), for
//! errors found after parsing (cross-references, overlapping subnets). Block-style YAML only;
//! when the path cannot be followed, no line is given.

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path, rendered like `networks.lan.subnets[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(pub Vec<Seg>);

impl Path {
    /// This path with a key appended.
    pub fn key(&self, k: &str) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    /// This path with a list index appended.
    pub fn index(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// The 1-based line where `path` is written in `src`, if it can be found.
pub fn locate(src: &str, path: &Path) -> Option<usize> {
    let lines: Vec<&str> = src.lines().collect();
    // (line index, indentation) of the current node; the document root spans everything.
    let (mut at, mut depth): (usize, Option<usize>) = (0, None);
    let mut first = true;
    for seg in &path.0 {
        let start = if first { 0 } else { at + 1 };
        first = false;
        let inside = |l: &str| depth.is_none_or(|d| indent(l) > d);
        match seg {
            Seg::Key(k) => {
                let mut found = None;
                let mut child_indent = None;
                for (i, l) in lines.iter().enumerate().skip(start) {
                    if !is_content(l) {
                        continue;
                    }
                    if !inside(l) && i > at {
                        break;
                    }
                    let t = l.trim_start().trim_start_matches("- ");
                    let ind = l.len() - t.len();
                    let ci = *child_indent.get_or_insert(ind);
                    if ind == ci
                        && (t.starts_with(&format!("{k}:")) || t.starts_with(&format!("\"{k}\":")))
                    {
                        found = Some((i, ind));
                        break;
                    }
                    // Keys inline in a flow mapping on the node's own line: `{ a: 1, k: 2 }`.
                    if i == at && l.contains(&format!(" {k}:")) {
                        found = Some((i, ind));
                        break;
                    }
                }
                let (i, ind) = found.or_else(|| {
                    let l = lines.get(at)?;
                    (l.contains(&format!("{k}:"))).then_some((at, indent(l)))
                })?;
                at = i;
                depth = Some(ind);
            }
            Seg::Index(n) => {
                let mut count = 0;
                let mut found = None;
                for (i, l) in lines.iter().enumerate().skip(start) {
                    if !is_content(l) {
                        continue;
                    }
                    if !inside(l) {
                        break;
                    }
                    if l.trim_start().starts_with("- ") || l.trim() == "-" {
                        if count == *n {
                            found = Some((i, indent(l)));
                            break;
                        }
                        count += 1;
                    }
                }
                match found {
                    Some((i, ind)) => {
                        at = i;
                        depth = Some(ind);
                    }
                    // A flow sequence on one line: `[a, b]`.
                    None => return Some(at + 1),
                }
            }
        }
    }
    Some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: t\nnamespaces: [red, blue]\nnetworks:\n  lan:\n    subnets:\n      - 10.0.0.0/24\n      - fd00::/64\n    endpoints:\n      red: { ip: [10.0.0.5] }\n      blue:\nlinks:\n  - a: { netns: red }\n    b: { netns: blue }\n  - a: { netns: red, ifname: x }\n    b: { netns: blue }\n";

    fn p(segs: &[&str]) -> Path {
        Path(
            segs.iter()
                .map(|s| match s.parse::<usize>() {
                    Ok(n) => Seg::Index(n),
                    Err(_) => Seg::Key(s.to_string()),
                })
                .collect(),
        )
    }

    #[test]
    fn finds_lines() {
        assert_eq!(locate(DOC, &p(&["name"])), Some(1));
        assert_eq!(locate(DOC, &p(&["namespaces", "1"])), Some(2));
        assert_eq!(
            locate(DOC, &p(&["networks", "lan", "subnets", "1"])),
            Some(7)
        );
        assert_eq!(
            locate(DOC, &p(&["networks", "lan", "endpoints", "red", "ip"])),
            Some(9)
        );
        assert_eq!(
            locate(DOC, &p(&["networks", "lan", "endpoints", "blue"])),
            Some(10)
        );
        assert_eq!(locate(DOC, &p(&["links", "1", "a", "ifname"])), Some(14));
        assert_eq!(locate(DOC, &p(&["links", "1", "b"])), Some(15));
        assert_eq!(p(&["links", "1", "b"]).to_string(), "links[1].b");
    }
}
