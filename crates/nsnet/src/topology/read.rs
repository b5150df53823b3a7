//! Reading a topology file's YAML into plain values that remember where they were written.
//! The parser (marked-yaml) gives every node its line and column, so an error about any value,
//! found while reading or later while validating, points at that value: nothing is looked up
//! again in the text.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{LoadError, LoaderOptions, Marker, Node, Span};

/// A 1-based line and column (ordered by line, then column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn of(span: &Span) -> Pos {
        span.start().map_or(Pos { line: 1, column: 1 }, Pos::at)
    }

    /// Where a node starts. The parser marks a block mapping at its first key's colon, so
    /// such a mapping starts at its first key instead.
    fn of_node(n: &Node) -> Pos {
        let own = Pos::of(n.span());
        match n.as_mapping().and_then(|m| m.keys().next()) {
            Some(k) => own.min(Pos::of(k.span())),
            None => own,
        }
    }

    fn at(m: &Marker) -> Pos {
        Pos {
            line: m.line(),
            column: m.column(),
        }
    }
}

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A path, rendered like `networks.lan.subnets[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<Seg>);

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

/// Where a value is: its path and its position in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    pub pos: Pos,
    pub path: Path,
}

/// A value read from the file, with where it was written. A scalar's spot is its value's; a
/// list's or mapping's is its key's (or its own start, for a list item).
#[derive(Debug, Clone)]
pub struct At<T> {
    pub v: T,
    pub at: Spot,
}

impl<T> std::ops::Deref for At<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.v
    }
}

/// Why the file cannot be read, and where.
#[derive(Debug)]
pub struct Flaw {
    pub at: Spot,
    pub message: String,
}

fn flaw(at: &Spot, message: impl Into<String>) -> Flaw {
    Flaw {
        at: at.clone(),
        message: message.into(),
    }
}

/// Parses the text into a node tree whose root is a mapping; a repeated key anywhere is an
/// error at the repeated key (a YAML parser otherwise keeps one of the values silently).
pub fn document(src: &str) -> Result<Node, Flaw> {
    // Without coercion a quoted scalar stays text: "true" is not a flag, "null" not nothing.
    let strict = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    marked_yaml::parse_yaml_with_options(0, src, strict).map_err(|e| load_flaw(src, e))
}

fn load_flaw(src: &str, e: LoadError) -> Flaw {
    let at = |m: &Marker| Spot {
        pos: Pos::at(m),
        path: Path::default(),
    };
    match e {
        LoadError::DuplicateKey(d) => {
            let key = d.key.as_str();
            let first = Pos::of(d.prev_key.span());
            // The loader stops at the repeat, before the tree exists; the tree read with the
            // repeat allowed tells which mapping holds it. Only the path comes from it.
            let path = marked_yaml::parse_yaml(0, src)
                .ok()
                .and_then(|root| holder(&root, &Path::default(), &d.prev_key, &d.key))
                .unwrap_or_default();
            Flaw {
                at: Spot {
                    pos: Pos::of(d.key.span()),
                    path,
                },
                message: format!(
                    "key {key:?} is given twice in this mapping (first at line {}; each key may appear once)",
                    first.line
                ),
            }
        }
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => flaw(
            &at(&m),
            "the file must be a mapping of `name`, `namespaces`, `networks`, `links`, `routes` and `containers`",
        ),
        LoadError::UnexpectedAnchor(m) => flaw(
            &at(&m),
            "anchors and aliases (&name, *name) are not supported; write each value out",
        ),
        LoadError::UnexpectedTag(m) => flaw(&at(&m), "tags (!name) are not supported"),
        LoadError::MappingKeyMustBeScalar(m) => flaw(
            &at(&m),
            "a mapping key must be plain text, not a list or mapping",
        ),
        LoadError::ScanError(m, e) => flaw(&at(&m), e.info().to_string()),
    }
}

/// The path of the mapping that holds `key` (as `first` or `again`, whichever the loader kept).
fn holder(
    node: &Node,
    path: &Path,
    first: &MarkedScalarNode,
    again: &MarkedScalarNode,
) -> Option<Path> {
    let same = |k: &MarkedScalarNode| {
        k.as_str() == first.as_str()
            && (k.span().start() == first.span().start()
                || k.span().start() == again.span().start())
    };
    match node {
        Node::Scalar(_) => None,
        Node::Sequence(s) => s
            .iter()
            .enumerate()
            .find_map(|(i, n)| holder(n, &path.index(i), first, again)),
        Node::Mapping(m) => {
            if m.keys().any(same) {
                return Some(path.clone());
            }
            m.iter()
                .find_map(|(k, n)| holder(n, &path.key(k.as_str()), first, again))
        }
    }
}

/// A plain `~`, `null` or nothing: the same as leaving the key out (a quoted "null" is text).
fn is_null(n: &Node) -> bool {
    n.as_scalar().is_some_and(|s| {
        s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
    })
}

fn found(n: &Node) -> String {
    match n {
        Node::Scalar(s) if s.may_coerce() => format!("{:?}", s.as_str()),
        Node::Scalar(s) => format!("the quoted text {:?}", s.as_str()),
        Node::Sequence(_) => "a list".to_string(),
        Node::Mapping(_) => "a mapping".to_string(),
    }
}

/// A mapping being read, where every key must be one of those the reader asks for.
pub struct Map<'n> {
    /// `None` for a key written with no value (`red:`), read as an empty mapping.
    node: Option<&'n MarkedMappingNode>,
    pub at: Spot,
}

impl<'n> Map<'n> {
    /// The document's root.
    pub fn root(node: &'n Node) -> Result<Map<'n>, Flaw> {
        Map::of(
            node,
            Spot {
                pos: Pos::of_node(node),
                path: Path::default(),
            },
        )
    }

    fn of(node: &'n Node, at: Spot) -> Result<Map<'n>, Flaw> {
        if is_null(node) {
            return Ok(Map { node: None, at });
        }
        match node {
            Node::Mapping(m) => Ok(Map { node: Some(m), at }),
            other => Err(flaw(
                &value_spot(other, at.path),
                format!("expected a mapping, found {}", found(other)),
            )),
        }
    }

    /// Refuses any key not in `known`, at the key.
    pub fn only(&self, known: &[&str]) -> Result<(), Flaw> {
        for k in self.node.into_iter().flat_map(|m| m.keys()) {
            if !known.contains(&k.as_str()) {
                let expected = known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Flaw {
                    at: Spot {
                        pos: Pos::of(k.span()),
                        path: self.at.path.clone(),
                    },
                    message: format!("unknown field `{}`, expected one of {expected}", k.as_str()),
                });
            }
        }
        Ok(())
    }

    /// The key and value of `key`, unless it is absent or null.
    fn get(&self, key: &str) -> Option<(&'n MarkedScalarNode, &'n Node)> {
        let (k, v) = self.node?.get_key_value(key)?;
        (!is_null(v)).then_some((k, v))
    }

    fn spot_of_key(&self, key: &str) -> Spot {
        let pos = self
            .node
            .and_then(|m| m.get_key_value(key))
            .map_or(self.at.pos, |(k, _)| Pos::of(k.span()));
        Spot {
            pos,
            path: self.at.path.key(key),
        }
    }

    /// Refuses a mapping without `key` (written with no value counts as there).
    pub fn require(&self, key: &str) -> Result<(), Flaw> {
        match self.node.is_some_and(|m| m.contains_key(key)) {
            true => Ok(()),
            false => Err(self.missing(key)),
        }
    }

    fn missing(&self, key: &str) -> Flaw {
        flaw(&self.at, format!("missing field `{key}`"))
    }

    /// A required text value.
    pub fn text(&self, key: &str) -> Result<At<String>, Flaw> {
        self.require(key)?;
        self.opt_text(key)?
            .ok_or_else(|| flaw(&self.spot_of_key(key), "needs a value"))
    }

    /// An optional text value.
    pub fn opt_text(&self, key: &str) -> Result<Option<At<String>>, Flaw> {
        let Some((_, v)) = self.get(key) else {
            return Ok(None);
        };
        scalar(v, self.at.path.key(key)).map(Some)
    }

    /// A list of text values (absent: empty, at the key's place of the mapping).
    pub fn texts(&self, key: &str) -> Result<At<Vec<At<String>>>, Flaw> {
        let at = self.spot_of_key(key);
        let Some((_, v)) = self.get(key) else {
            return Ok(At { v: Vec::new(), at });
        };
        let items = seq(v, &at)?
            .iter()
            .enumerate()
            .map(|(i, n)| scalar(n, at.path.index(i)))
            .collect::<Result<_, _>>()?;
        Ok(At { v: items, at })
    }

    /// `true` or `false`, `default` when absent.
    pub fn flag(&self, key: &str, default: bool) -> Result<At<bool>, Flaw> {
        let Some((_, v)) = self.get(key) else {
            return Ok(At {
                v: default,
                at: self.spot_of_key(key),
            });
        };
        let at = value_spot(v, self.at.path.key(key));
        match v.as_scalar().and_then(MarkedScalarNode::as_bool) {
            Some(b) => Ok(At { v: b, at }),
            None => Err(flaw(
                &at,
                format!("expected true or false, found {}", found(v)),
            )),
        }
    }

    /// An optional whole number.
    pub fn number(&self, key: &str) -> Result<Option<At<u32>>, Flaw> {
        let Some((_, v)) = self.get(key) else {
            return Ok(None);
        };
        let at = value_spot(v, self.at.path.key(key));
        match v
            .as_scalar()
            .filter(|s| s.may_coerce())
            .and_then(|s| s.as_str().parse::<u32>().ok())
        {
            Some(n) => Ok(Some(At { v: n, at })),
            None => Err(flaw(
                &at,
                format!("expected a whole number such as 1500, found {}", found(v)),
            )),
        }
    }

    /// A required nested mapping.
    pub fn map(&self, key: &str) -> Result<Map<'n>, Flaw> {
        let Some(v) = self.node.and_then(|m| m.get(key)) else {
            return Err(self.missing(key));
        };
        Map::of(v, self.spot_of_key(key))
    }

    /// An optional nested mapping, with where its key is.
    pub fn opt_map(&self, key: &str) -> Result<Option<(Spot, Map<'n>)>, Flaw> {
        let Some(v) = self.node.and_then(|m| m.get(key)) else {
            return Ok(None);
        };
        let at = self.spot_of_key(key);
        Ok(Some((at.clone(), Map::of(v, at)?)))
    }

    /// A list of mappings (absent: empty).
    pub fn maps(&self, key: &str) -> Result<Vec<Map<'n>>, Flaw> {
        let at = self.spot_of_key(key);
        let Some((_, v)) = self.get(key) else {
            return Ok(Vec::new());
        };
        seq(v, &at)?
            .iter()
            .enumerate()
            .map(|(i, n)| Map::of(n, value_spot(n, at.path.index(i))))
            .collect()
    }

    /// A mapping of names to mappings (absent: empty), sorted by name; a name written with no
    /// value (`red:`) reads as an empty mapping.
    pub fn entries(&self, key: &str) -> Result<Vec<(At<String>, Map<'n>)>, Flaw> {
        let at = self.spot_of_key(key);
        let Some((_, v)) = self.get(key) else {
            return Ok(Vec::new());
        };
        let Node::Mapping(m) = v else {
            return Err(flaw(
                &value_spot(v, at.path),
                format!("expected a mapping, found {}", found(v)),
            ));
        };
        let mut out = m
            .iter()
            .map(|(k, v)| {
                let spot = Spot {
                    pos: Pos::of(k.span()),
                    path: at.path.key(k.as_str()),
                };
                let name = At {
                    v: k.as_str().to_string(),
                    at: spot.clone(),
                };
                Ok((name, Map::of(v, spot)?))
            })
            .collect::<Result<Vec<_>, Flaw>>()?;
        out.sort_by(|(a, _), (b, _)| a.v.cmp(&b.v));
        Ok(out)
    }
}

fn value_spot(n: &Node, path: Path) -> Spot {
    Spot {
        pos: Pos::of_node(n),
        path,
    }
}

fn scalar(n: &Node, path: Path) -> Result<At<String>, Flaw> {
    let at = value_spot(n, path);
    match n {
        Node::Scalar(s) if !is_null(n) => Ok(At {
            v: s.as_str().to_string(),
            at,
        }),
        Node::Scalar(_) => Err(flaw(&at, "needs a value")),
        other => Err(flaw(&at, format!("expected text, found {}", found(other)))),
    }
}

fn seq<'n>(n: &'n Node, at: &Spot) -> Result<&'n MarkedSequenceNode, Flaw> {
    n.as_sequence().ok_or_else(|| {
        flaw(
            &value_spot(n, at.path.clone()),
            format!("expected a list, found {}", found(n)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(src: &str) -> Result<Node, Flaw> {
        document(src)
    }

    fn fails(src: &str) -> (usize, usize, String, String) {
        let f = read(src).unwrap_err();
        (
            f.at.pos.line,
            f.at.pos.column,
            f.at.path.to_string(),
            f.message,
        )
    }

    #[test]
    fn a_repeated_key_is_refused_at_the_repeat_with_its_mapping() {
        let cases = [
            ("name: t\nname: u\n", (2, 1), "", "\"name\""),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n  lan:\n    subnets: [10.1.0.0/24]\n",
                (5, 3),
                "networks",
                "\"lan\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    subnets: [10.1.0.0/24]\n",
                (5, 5),
                "networks.lan",
                "\"subnets\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      red: {}\n      red: { ip: [10.0.0.5] }\n",
                (7, 7),
                "networks.lan.endpoints",
                "\"red\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      red: { ip: [10.0.0.4], ip: [10.0.0.5] }\n",
                (6, 30),
                "networks.lan.endpoints.red",
                "\"ip\"",
            ),
            (
                "name: t\nlinks:\n  - a: { netns: x }\n    b: { netns: y }\n    a: { netns: z }\n",
                (5, 5),
                "links[0]",
                "\"a\"",
            ),
            (
                "name: t\ncontainers:\n  api: { command: [sleep, infinity] }\n  api: { command: [true] }\n",
                (4, 3),
                "containers",
                "\"api\"",
            ),
        ];
        for (src, (line, column), path, key) in cases {
            let (l, c, p, msg) = fails(src);
            assert_eq!((l, c, p.as_str()), (line, column, path), "{src}: {msg}");
            assert!(msg.contains(key) && msg.contains("given twice"), "{msg}");
        }
        let (.., msg) = fails("name: t\nnamespaces: [a]\nname: u\n");
        assert!(msg.contains("(first at line 1;"), "{msg}");
    }

    #[test]
    fn the_same_key_in_different_mappings_is_fine() {
        read("name: t\nnetworks:\n  a: { subnets: [10.0.0.0/24] }\n  b: { subnets: [10.1.0.0/24] }\nlinks:\n  - { a: { netns: x }, b: { netns: y } }\n  - { a: { netns: x }, b: { netns: y } }\n")
            .unwrap();
    }

    #[test]
    fn what_the_loader_refuses_is_said_plainly_where_it_is() {
        for (src, want) in [
            (
                "name: &n t\nnamespaces: [*n]\n",
                (1, 10, "anchors and aliases"),
            ),
            ("name: t\nnamespaces: [*n]\n", (2, 14, "unknown anchor")),
            ("name: !x t\n", (1, 10, "tags (!name) are not supported")),
            ("- a\n- b\n", (1, 1, "the file must be a mapping")),
            ("name: t\nnamespaces: [a\n", (3, 1, "expected ',' or ']'")),
        ] {
            let (l, c, _, msg) = fails(src);
            assert_eq!((l, c), (want.0, want.1), "{src}: {msg}");
            assert!(msg.contains(want.2), "{src}: {msg}");
        }
    }

    #[test]
    fn values_carry_their_own_line_and_column() {
        let root =
            read("name: t\nlist:\n  - x\n  -   y\nflow: {a: 1,  b: true, c: \"true\"}\nn:\nq: \"null\"\nm: ~\n")
                .unwrap();
        let m = Map::root(&root).unwrap();
        let list = m.texts("list").unwrap();
        assert_eq!((list.at.pos.line, list.at.pos.column), (2, 1));
        let spots: Vec<_> = list
            .iter()
            .map(|t| (t.at.pos.line, t.at.pos.column))
            .collect();
        assert_eq!(spots, [(3, 5), (4, 7)]);
        assert_eq!(list[1].at.path.to_string(), "list[1]");
        let flow = m.map("flow").unwrap();
        let b = flow.flag("b", false).unwrap();
        assert!(b.v);
        assert_eq!((b.at.pos.line, b.at.pos.column), (5, 18));
        assert_eq!(flow.number("a").unwrap().unwrap().v, 1);
        let e = flow.flag("c", false).unwrap_err();
        assert_eq!(
            e.message,
            "expected true or false, found the quoted text \"true\""
        );
        // Nothing, `~` and `null` are all "not given"; quoted, "null" is text.
        assert!(m.opt_text("n").unwrap().is_none());
        assert!(m.opt_text("m").unwrap().is_none());
        assert_eq!(m.opt_text("q").unwrap().unwrap().v, "null");
        assert!(m.texts("n").unwrap().is_empty());
        assert!(m.flag("m", true).unwrap().v);
        let e = m.only(&["name", "list"]).unwrap_err();
        assert_eq!((e.at.pos.line, e.at.pos.column), (5, 1));
        assert_eq!(
            e.message,
            "unknown field `flow`, expected one of `name`, `list`"
        );
        let e = m.text("list").unwrap_err();
        assert_eq!(
            (
                e.at.pos.line,
                e.at.pos.column,
                e.at.path.to_string().as_str()
            ),
            (3, 3, "list")
        );
        assert_eq!(e.message, "expected text, found a list");
        let e = flow.number("b").unwrap_err();
        assert_eq!(
            e.message,
            "expected a whole number such as 1500, found \"true\""
        );
        assert_eq!(e.at.path.to_string(), "flow.b");
    }
}
