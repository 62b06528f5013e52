//! The one XML writer: escaping for text and attribute values (valid XML 1.0 whatever the
//! input holds), and the JUnit reports of `test install` and the QEMU image tests. WS-Man
//! envelopes (`amt::wsman`) escape their values here too.

use std::fmt::Write as _;

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

impl JUnit<'_> {
    /// The report as XML.
    pub fn to_xml(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let failures = self.cases.iter().filter(|c| !c.passed).count();
        let _ = writeln!(
            x,
            "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{:.1}\">",
            escape(self.suite),
            self.cases.len(),
            self.seconds
        );
        if !self.properties.is_empty() {
            x.push_str("  <properties>\n");
            for (k, v) in &self.properties {
                let _ = writeln!(
                    x,
                    "    <property name=\"{}\" value=\"{}\"/>",
                    escape(k),
                    escape(v)
                );
            }
            x.push_str("  </properties>\n");
        }
        for c in &self.cases {
            let _ = write!(
                x,
                "  <testcase classname=\"{}\" name=\"{}\"",
                escape(c.class),
                escape(c.name)
            );
            if let Some(t) = c.seconds {
                let _ = write!(x, " time=\"{t:.1}\"");
            }
            if !c.passed {
                let _ = writeln!(x, "><failure message=\"{}\"/></testcase>", escape(c.detail));
            } else if c.detail.is_empty() {
                x.push_str("/>\n");
            } else {
                let _ = writeln!(
                    x,
                    "><system-out>{}</system-out></testcase>",
                    escape(c.detail)
                );
            }
        }
        x.push_str("</testsuite>\n");
        x
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
}
