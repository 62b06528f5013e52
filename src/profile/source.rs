//! Profile source files and diagnostics that point into them.
//!
//! Every problem found in a profile is reported as `file:line: field: reason`. The typed profile
//! structs carry no spans: a problem names its field by a dotted path (`network.routed[1].ipv4`)
//! and the [`SourceFile`] it came from turns that path into a line, by walking a span-preserving
//! parse of the same text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, Table, Value};

/// One problem in one profile file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The file, as given to the loader (relative to the profiles directory's parent when the
    /// caller passed a relative directory).
    pub file: PathBuf,
    /// 1-based line of the field (or of its closest enclosing table when the field is absent).
    pub line: usize,
    /// Dotted path of the field, e.g. `network.ipv4-gateway`.
    pub field: String,
    /// What is wrong, in one sentence.
    pub reason: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Field names and reasons may quote the profile's own text (a key with a NUL byte or
        // ESC in it, found by the `profile_load` fuzz target): never hand such characters to a
        // terminal.
        write!(
            f,
            "{}:{}: {}: {}",
            visible(&self.file.display().to_string()),
            self.line,
            visible(&self.field),
            visible(&self.reason)
        )
    }
}

/// `s` with every control character (but the newlines of multi-line reasons) written as
/// `\u{..}`.
fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n') {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\n' {
                    format!("\\u{{{:x}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Every problem found in a set of profiles, sorted by file and line.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// True when no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds one problem.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Sorts and removes exact duplicates (the same check reached through two paths).
    pub fn finish(mut self) -> Self {
        self.0.sort();
        self.0.dedup();
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// One segment of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `a.b[2].c` into segments.
fn parse_path(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                out.push(Segment::Key(rest[..open].to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']').unwrap_or(stripped.len());
                if let Ok(i) = stripped[..close].parse() {
                    out.push(Segment::Index(i));
                }
                rest = stripped.get(close + 1..).unwrap_or("");
            }
        } else {
            out.push(Segment::Key(rest.to_string()));
        }
    }
    out
}

/// A node of the span-preserving document, whichever of toml_edit's types holds it.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Item(&'a Item),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Table(t) => t.span(),
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
        }
    }

    /// The child under `key`, with the span of the key itself.
    fn child_key(self, key: &str) -> Option<(Node<'a>, Option<Range<usize>>)> {
        match self {
            Node::Table(t) => t
                .get(key)
                .map(|i| (Node::Item(i), t.key(key).and_then(|k| k.span()))),
            Node::Item(Item::Table(t)) => Node::Table(t).child_key(key),
            Node::Item(Item::Value(v)) => Node::Value(v).child_key(key),
            Node::Value(Value::InlineTable(t)) => t
                .get(key)
                .map(|v| (Node::Value(v), t.key(key).and_then(|k| k.span()))),
            _ => None,
        }
    }

    fn child_index(self, index: usize) -> Option<Node<'a>> {
        match self {
            Node::Item(Item::ArrayOfTables(a)) => a.get(index).map(Node::Table),
            Node::Item(Item::Value(v)) => Node::Value(v).child_index(index),
            Node::Value(Value::Array(a)) => a.get(index).map(Node::Value),
            _ => None,
        }
    }

    /// Every child with its path segment and the span that best locates it.
    fn children(self) -> Vec<(Segment, Node<'a>, Option<Range<usize>>)> {
        let mut out = Vec::new();
        match self {
            Node::Table(t) => {
                for (k, _) in t.iter() {
                    if let Some((n, ks)) = self.child_key(k) {
                        out.push((Segment::Key(k.to_string()), n, ks));
                    }
                }
            }
            Node::Item(Item::Table(t)) => return Node::Table(t).children(),
            Node::Item(Item::ArrayOfTables(a)) => {
                for (i, t) in a.iter().enumerate() {
                    out.push((Segment::Index(i), Node::Table(t), t.span()));
                }
            }
            Node::Item(Item::Value(v)) => return Node::Value(v).children(),
            Node::Value(Value::InlineTable(t)) => {
                for (k, _) in t.iter() {
                    if let Some((n, ks)) = self.child_key(k) {
                        out.push((Segment::Key(k.to_string()), n, ks));
                    }
                }
            }
            Node::Value(Value::Array(a)) => {
                for (i, v) in a.iter().enumerate() {
                    out.push((Segment::Index(i), Node::Value(v), v.span()));
                }
            }
            _ => {}
        }
        out
    }
}

/// A profile file's text, kept to turn field paths into lines.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
    doc: Option<ImDocument<String>>,
}

impl SourceFile {
    /// Wraps a file's text; a text that does not parse as TOML still reports at line 1.
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let doc = ImDocument::parse(text.clone()).ok();
        SourceFile {
            path: path.into(),
            text,
            doc,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line of a byte offset.
    pub fn line_of_offset(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// Line of the field at `path`, or of the deepest part of it that exists.
    pub fn line_of(&self, path: &str) -> usize {
        let Some(doc) = &self.doc else { return 1 };
        let mut node = Node::Table(doc.as_table());
        let mut best: Option<usize> = None;
        for seg in parse_path(path) {
            let next = match &seg {
                Segment::Key(k) => node
                    .child_key(k)
                    .map(|(n, ks)| (n, ks.or_else(|| n.span()))),
                Segment::Index(i) => node.child_index(*i).map(|n| (n, n.span())),
            };
            match next {
                Some((n, span)) => {
                    if let Some(s) = span {
                        best = Some(s.start);
                    }
                    node = n;
                }
                None => break,
            }
        }
        best.map_or(1, |o| self.line_of_offset(o))
    }

    /// Dotted path of the innermost field whose key or value covers `offset` (used to name the
    /// field of a deserialization error, which carries only a span).
    pub fn path_at(&self, offset: usize) -> Option<String> {
        let doc = self.doc.as_ref()?;
        let mut node = Node::Table(doc.as_table());
        let mut path = String::new();
        'descend: loop {
            for (seg, child, key_span) in node.children() {
                let covers = |s: &Option<Range<usize>>| {
                    s.as_ref()
                        .is_some_and(|r| r.start <= offset && offset < r.end.max(r.start + 1))
                };
                let value_span = child.span();
                let contains_descendant = child_contains(child, offset);
                if covers(&key_span) || covers(&value_span) || contains_descendant {
                    match seg {
                        Segment::Key(k) => {
                            if !path.is_empty() {
                                path.push('.');
                            }
                            path.push_str(&k);
                        }
                        Segment::Index(i) => path.push_str(&format!("[{i}]")),
                    }
                    node = child;
                    continue 'descend;
                }
            }
            break;
        }
        (!path.is_empty()).then_some(path)
    }

    /// A diagnostic for `field` in this file.
    pub fn diag(&self, field: impl Into<String>, reason: impl Into<String>) -> Diagnostic {
        let field = field.into();
        Diagnostic {
            file: self.path.clone(),
            line: self.line_of(&field),
            field,
            reason: reason.into(),
        }
    }
}

/// True when any node below `node` has a span covering `offset` (tables of an array of tables
/// only span their header, so their keys must be searched).
fn child_contains(node: Node<'_>, offset: usize) -> bool {
    node.children().into_iter().any(|(_, n, ks)| {
        let hit = |s: Option<Range<usize>>| s.is_some_and(|r| r.start <= offset && offset < r.end);
        hit(ks) || hit(n.span()) || child_contains(n, offset)
    })
}

crate::exit_class::fixed_class!(crate::exit_class::Class::User; Diagnostics);

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "a = 1\n[net]\nip = \"x\"\n[[net.routed]]\nip = 1\n[[net.routed]]\nip = 2\nlist = [\"p\", \"q\"]\n";

    #[test]
    fn lines_follow_paths() {
        let f = SourceFile::new("f.toml", TEXT.to_string());
        assert_eq!(f.line_of("a"), 1);
        assert_eq!(f.line_of("net.ip"), 3);
        assert_eq!(f.line_of("net.routed[1].ip"), 7);
        assert_eq!(f.line_of("net.routed[1].list[1]"), 8);
        assert_eq!(f.line_of("net.missing"), 2);
    }

    /// Found by the `profile_load` fuzz target: NUL bytes in a bare key reached the terminal.
    #[test]
    fn diagnostics_never_print_control_characters() {
        let d = Diagnostic {
            file: "hosts/alice.toml".into(),
            line: 59,
            field: "network.nat-bridge.\0\0address".into(),
            reason: "invalid key \u{1b}[2J".into(),
        };
        assert_eq!(
            d.to_string(),
            "hosts/alice.toml:59: network.nat-bridge.\\u{0}\\u{0}address: invalid key \\u{1b}[2J"
        );
    }

    #[test]
    fn paths_follow_offsets() {
        let f = SourceFile::new("f.toml", TEXT.to_string());
        let at = TEXT.find("ip = 2").unwrap();
        assert_eq!(f.path_at(at).as_deref(), Some("net.routed[1].ip"));
        let at = TEXT.find("\"q\"").unwrap();
        assert_eq!(f.path_at(at).as_deref(), Some("net.routed[1].list[1]"));
    }
}
