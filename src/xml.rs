//! The one XML writer of picaboot: [`Element`], a small typed builder serialised with one set
//! of escape rules ([`escape`]: valid XML 1.0 whatever the input holds), attributes in the
//! order given, so the same input always gives the same bytes. Both XML producers use it: the
//! JUnit reports of `test install` and the QEMU image tests ([`JUnit`]), and every WS-Man
//! envelope sent to Intel AMT (`amt::wsman`). No XML is built with `format!` elsewhere.

use std::fmt::{self, Write as _};

/// `s` as XML 1.0 text or attribute value: markup and both quotes escaped, and every
/// character XML 1.0 does not allow (NUL, ESC and the other C0 controls, U+FFFE/U+FFFF, the
/// discouraged C1 controls) written as a visible `\u{..}` instead, so a guest's console bytes
/// never make a report invalid. Tab, CR and LF are kept as character references (attribute
/// value normalisation would otherwise turn them into spaces).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if xml_char(c) => out.push(c),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    out
}

/// The XML 1.0 `Char` production, minus the discouraged C1 controls (U+007F..U+009F), which
/// terminals interpret as they do ESC.
fn xml_char(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// The XML 1.0 `NameStartChar` production.
fn name_start_char(c: char) -> bool {
    matches!(c, ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{c0}'..='\u{d6}' | '\u{d8}'..='\u{f6}'
        | '\u{f8}'..='\u{2ff}' | '\u{370}'..='\u{37d}' | '\u{37f}'..='\u{1fff}'
        | '\u{200c}'..='\u{200d}' | '\u{2070}'..='\u{218f}' | '\u{2c00}'..='\u{2fef}'
        | '\u{3001}'..='\u{d7ff}' | '\u{f900}'..='\u{fdcf}' | '\u{fdf0}'..='\u{fffd}'
        | '\u{10000}'..='\u{effff}')
}

/// The XML 1.0 `NameChar` production.
fn name_char(c: char) -> bool {
    name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{b7}' | '\u{300}'..='\u{36f}' | '\u{203f}'..='\u{2040}')
}

/// Writes `name` as an XML `Name`. Names are the program's own (constants, or names read from
/// a parsed XML document, which are valid already); a character a name cannot hold is written
/// as `_` (and an empty name as `_`), so the output stays well-formed whatever it is given.
fn write_name(out: &mut String, name: &str) {
    if name.is_empty() {
        out.push('_');
    }
    for (i, c) in name.chars().enumerate() {
        let ok = if i == 0 {
            name_start_char(c)
        } else {
            name_char(c)
        };
        out.push(if ok { c } else { '_' });
    }
}

/// What an element holds: elements and text, in order.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Element(Element),
    Text(String),
}

/// One XML element: a name, attributes in the order given, and children (elements and text),
/// written with [`escape`] for every text and attribute value. Built with chained calls:
///
/// ```
/// use picaboot::xml::Element;
/// let e = Element::new("a:Root")
///     .attr("xmlns:a", "urn:x")
///     .child(Element::new("a:Name").text("<me>"))
///     .child(Element::new("a:Empty"));
/// assert_eq!(
///     e.to_string(),
///     r#"<a:Root xmlns:a="urn:x"><a:Name>&lt;me&gt;</a:Name><a:Empty/></a:Root>"#
/// );
/// ```
///
/// An element without children is written `<a/>`, unless it has text (even empty text) or is
/// [`expanded`](Element::expanded). A [`block`](Element::block) element puts each child on a
/// line of its own, indented by two spaces per level (the JUnit layout); every other element
/// is written on one line, its children inline.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    expanded: bool,
    block: bool,
}

impl Element {
    /// An element named `name` (a qualified name such as `s:Envelope`), empty.
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
            expanded: false,
            block: false,
        }
    }

    /// Adds the attribute `name="value"` after those already given.
    pub fn attr(mut self, name: impl Into<String>, value: impl fmt::Display) -> Self {
        self.attrs.push((name.into(), value.to_string()));
        self
    }

    /// Adds the attribute when `value` is `Some`.
    pub fn attr_opt(self, name: impl Into<String>, value: Option<impl fmt::Display>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// Appends a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Appends child elements (an `Option` appends none or one).
    pub fn children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        self.children
            .extend(children.into_iter().map(Node::Element));
        self
    }

    /// Appends text (numbers included: anything `Display`).
    pub fn text(mut self, text: impl fmt::Display) -> Self {
        self.children.push(Node::Text(text.to_string()));
        self
    }

    /// Written `<a></a>` when empty instead of `<a/>` (AMT's method inputs and the SOAP body
    /// are sent so, as MeshCommander sends them).
    pub fn expanded(mut self) -> Self {
        self.expanded = true;
        self
    }

    /// Each child on a line of its own, indented (the JUnit layout); always written with an
    /// end tag.
    pub fn block(mut self) -> Self {
        self.block = true;
        self
    }

    /// A whole document: the XML declaration with this `encoding` label, then this element as
    /// the root. A block root puts the declaration and itself on lines of their own, ending
    /// in a newline (a text file); any other root follows the declaration on the same line
    /// (a SOAP message).
    pub fn document(&self, encoding: &str) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"");
        out.push_str(&escape(encoding));
        out.push_str("\"?>");
        let sep = if self.block { "\n" } else { "" };
        out.push_str(sep);
        self.write(&mut out, 0);
        out.push_str(sep);
        out
    }

    /// Appends this element, at indentation level `depth`, to `out`.
    fn write(&self, out: &mut String, depth: usize) {
        out.push('<');
        write_name(out, &self.name);
        for (name, value) in &self.attrs {
            out.push(' ');
            write_name(out, name);
            out.push_str("=\"");
            out.push_str(&escape(value));
            out.push('"');
        }
        if self.children.is_empty() && !self.expanded && !self.block {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            if self.block {
                out.push('\n');
                indent(out, depth + 1);
            }
            match child {
                Node::Element(e) => e.write(out, depth + 1),
                Node::Text(t) => out.push_str(&escape(t)),
            }
        }
        if self.block {
            out.push('\n');
            indent(out, depth);
        }
        out.push_str("</");
        write_name(out, &self.name);
        out.push('>');
    }
}

/// Two spaces per level.
fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

impl fmt::Display for Element {
    /// The element alone (no declaration), as [`Element::document`] writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out, 0);
        f.write_str(&out)
    }
}

/// One test case of a JUnit report.
#[derive(Debug, Clone)]
pub struct Case<'a> {
    /// `classname`.
    pub class: &'a str,
    /// `name`.
    pub name: &'a str,
    /// Seconds, when timed.
    pub seconds: Option<f64>,
    /// Passed.
    pub passed: bool,
    /// What was seen: `system-out` of a passed case (when not empty), the failure's message.
    pub detail: &'a str,
}

/// A JUnit report: one `testsuite` with its properties and cases.
#[derive(Debug, Clone, Default)]
pub struct JUnit<'a> {
    /// Suite name.
    pub suite: &'a str,
    /// Seconds in all.
    pub seconds: f64,
    /// `(name, value)` properties.
    pub properties: Vec<(&'a str, String)>,
    /// The cases.
    pub cases: Vec<Case<'a>>,
}

impl Case<'_> {
    /// The `testcase` element: a failure's message, a passed case's `system-out` when there
    /// is one.
    fn element(&self) -> Element {
        let case = Element::new("testcase")
            .attr("classname", self.class)
            .attr("name", self.name)
            .attr_opt("time", self.seconds.map(|t| format!("{t:.1}")));
        if !self.passed {
            case.child(Element::new("failure").attr("message", self.detail))
        } else if self.detail.is_empty() {
            case
        } else {
            case.child(Element::new("system-out").text(self.detail))
        }
    }
}

impl JUnit<'_> {
    /// The report as XML (an [`Element`] document, one line per case).
    pub fn to_xml(&self) -> String {
        let failures = self.cases.iter().filter(|c| !c.passed).count();
        let properties = (!self.properties.is_empty()).then(|| {
            Element::new("properties").block().children(
                self.properties
                    .iter()
                    .map(|(k, v)| Element::new("property").attr("name", k).attr("value", v)),
            )
        });
        Element::new("testsuite")
            .block()
            .attr("name", self.suite)
            .attr("tests", self.cases.len())
            .attr("failures", failures)
            .attr("time", format!("{:.1}", self.seconds))
            .children(properties)
            .children(self.cases.iter().map(Case::element))
            .document("UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_xml_valid() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("\u{1b}[31m\0"), "\\u{1b}[31m\\u{0}");
        assert_eq!(escape("x\ty\nz"), "x&#9;y&#10;z");
    }

    #[test]
    fn junit_counts_and_shapes_cases() {
        let j = JUnit {
            suite: "s",
            seconds: 1.5,
            properties: vec![("k", "v&".into())],
            cases: vec![
                Case {
                    class: "c",
                    name: "ok",
                    seconds: Some(2.0),
                    passed: true,
                    detail: "",
                },
                Case {
                    class: "c",
                    name: "bad",
                    seconds: None,
                    passed: false,
                    detail: "<no>",
                },
            ],
        };
        let x = j.to_xml();
        assert!(x.contains("tests=\"2\" failures=\"1\" time=\"1.5\""), "{x}");
        assert!(x.contains("<property name=\"k\" value=\"v&amp;\"/>"), "{x}");
        assert!(x.contains("name=\"ok\" time=\"2.0\"/>"), "{x}");
        assert!(x.contains("<failure message=\"&lt;no&gt;\"/>"), "{x}");
    }

    /// Markup, both quotes, tab/LF/CR, ESC, NUL, DEL, a C1 control, a non-character,
    /// non-ASCII and `]]>`.
    const HOSTILE: &str = "a<b>&\"c\"'d'\t\n\r\u{1b}[31m\0\u{7f}\u{85}\u{fffe}é😀]]>";

    fn case<'a>(
        class: &'a str,
        name: &'a str,
        seconds: Option<f64>,
        passed: bool,
        detail: &'a str,
    ) -> Case<'a> {
        Case {
            class,
            name,
            seconds,
            passed,
            detail,
        }
    }

    fn golden_reports() -> Vec<(&'static str, JUnit<'static>)> {
        let class = "install-pve1";
        let install = vec![
            ("udeb-source", "deb.example http://x/?a=1&b=2".into()),
            ("accelerator", "tcg".into()),
        ];
        vec![
            ("empty", JUnit::default()),
            (
                "props-only",
                JUnit {
                    suite: "s",
                    seconds: 0.04,
                    properties: vec![("k", "v".into()), (HOSTILE, HOSTILE.into())],
                    cases: vec![],
                },
            ),
            (
                "install",
                JUnit {
                    suite: class,
                    seconds: 1234.56,
                    properties: install,
                    cases: vec![
                        case(class, "boot", Some(12.25), true, ""),
                        case(class, "ssh", Some(0.05), true, "seen <ok> & \"fine\""),
                        case(class, "md", Some(99.95), false, HOSTILE),
                        case(class, "none", None, false, ""),
                    ],
                },
            ),
            (
                "hostile",
                JUnit {
                    suite: HOSTILE,
                    seconds: -1.25,
                    properties: vec![],
                    cases: vec![
                        case(HOSTILE, HOSTILE, None, true, HOSTILE),
                        case(HOSTILE, HOSTILE, Some(f64::NAN), false, HOSTILE),
                        case("c", "d", Some(1e9), true, "\n"),
                    ],
                },
            ),
        ]
    }

    /// tests/fixtures/xml/junit-*.xml were written by the `write!`-built `to_xml` that
    /// [`Element`] replaced (main at 8133082, same inputs): CI systems read the same bytes.
    #[test]
    fn junit_is_byte_identical_to_the_write_built_one() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/xml");
        for (name, report) in golden_reports() {
            let path = format!("{dir}/junit-{name}.xml");
            let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            pretty_assertions::assert_eq!(report.to_xml(), want, "{path}");
        }
    }

    #[test]
    fn elements_keep_attribute_order_and_escape_values() {
        let e = Element::new("r")
            .attr("z", "1")
            .attr("a", "<\"&'>")
            .attr_opt("none", None::<u8>)
            .attr_opt("some", Some(2.5))
            .child(Element::new("t").text("x<y"))
            .child(Element::new("empty"))
            .child(Element::new("open").expanded())
            .child(Element::new("blank").text(""));
        assert_eq!(
            e.to_string(),
            "<r z=\"1\" a=\"&lt;&quot;&amp;&apos;&gt;\" some=\"2.5\"><t>x&lt;y</t><empty/>\
             <open></open><blank></blank></r>"
        );
    }

    #[test]
    fn blocks_indent_their_children_and_documents_end_in_a_newline() {
        let e = Element::new("a")
            .block()
            .child(Element::new("b").block().child(Element::new("c")))
            .child(Element::new("d").child(Element::new("e")));
        assert_eq!(
            e.document("UTF-8"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>\n  <b>\n    <c/>\n  </b>\n  \
             <d><e/></d>\n</a>\n"
        );
        let empty = Element::new("a").block().document("utf-8");
        assert_eq!(
            empty,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<a>\n</a>\n"
        );
        let inline = Element::new("a").document("utf-8");
        assert_eq!(inline, "<?xml version=\"1.0\" encoding=\"utf-8\"?><a/>");
    }

    #[test]
    fn names_a_name_cannot_hold_are_replaced() {
        let e = Element::new("1a<b>").attr("x y=\"", "v").attr("", "w");
        assert_eq!(e.to_string(), "<_a_b_ x_y__=\"v\" _=\"w\"/>");
        let ok = Element::new("h:Name-1.x_\u{e9}");
        assert_eq!(ok.to_string(), "<h:Name-1.x_\u{e9}/>");
        roxmltree::Document::parse(&Element::new(HOSTILE).attr(HOSTILE, HOSTILE).to_string())
            .expect("well-formed");
    }
}
