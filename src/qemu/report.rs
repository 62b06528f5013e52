//! The guest's machine-readable console lines and the JUnit report made from them.
//!
//! A guest prints `PICABOOT-CHECK <name> PASS|FAIL [detail]` per check and
//! `PICABOOT-DONE rc=<n>` at the end. Anything else on the console is ignored.

use std::fmt::Write as _;

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Check name.
    pub name: String,
    /// Passed.
    pub passed: bool,
    /// Detail (what was seen).
    pub detail: String,
}

/// Every check of one guest run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Checks in console order.
    pub checks: Vec<CheckResult>,
    /// The guest's final status, if it got that far.
    pub done_rc: Option<i32>,
    /// How the VM ended when the guest never finished (QEMU's exit status and stderr, or a
    /// timeout, and the console's last lines), set by the runner that watched it.
    pub guest_end: Option<String>,
}

impl Report {
    /// Parses a console log.
    pub fn parse(console: &str) -> Report {
        let mut r = Report::default();
        for line in console.lines() {
            // Kernel messages may be interleaved on the same line: find the marker anywhere.
            if let Some(i) = line.find("PICABOOT-CHECK ") {
                let rest = &line[i + "PICABOOT-CHECK ".len()..];
                let mut words = rest.splitn(3, ' ');
                let name = words.next().unwrap_or("").trim().to_string();
                let verdict = words.next().unwrap_or("").trim();
                let detail = words.next().unwrap_or("").trim().to_string();
                if name.is_empty() || !(verdict == "PASS" || verdict == "FAIL") {
                    r.checks.push(CheckResult {
                        name: if name.is_empty() {
                            "malformed".into()
                        } else {
                            name
                        },
                        passed: false,
                        detail: format!("malformed check line: {}", line.trim()),
                    });
                    continue;
                }
                r.checks.push(CheckResult {
                    name,
                    passed: verdict == "PASS",
                    detail,
                });
            } else if let Some(i) = line.find("PICABOOT-DONE rc=") {
                let n = &line[i + "PICABOOT-DONE rc=".len()..];
                let digits: String = n
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '-')
                    .collect();
                r.done_rc = digits.parse().ok();
            }
        }
        r
    }

    /// Parses raw console bytes; invalid UTF-8 becomes U+FFFD.
    pub fn parse_bytes(console: &[u8]) -> Report {
        Report::parse(&String::from_utf8_lossy(console))
    }

    /// The failed checks, plus a pseudo-check when the guest never finished or reported none.
    pub fn failures(&self) -> Vec<CheckResult> {
        let mut f: Vec<CheckResult> = self.checks.iter().filter(|c| !c.passed).cloned().collect();
        match self.done_rc {
            None => f.push(CheckResult {
                name: "guest-finished".into(),
                passed: false,
                detail: match &self.guest_end {
                    Some(how) => format!("the guest never printed PICABOOT-DONE: {how}"),
                    None => "the guest never printed PICABOOT-DONE".into(),
                },
            }),
            Some(rc) if rc != 0 => f.push(CheckResult {
                name: "guest-finished".into(),
                passed: false,
                detail: format!("the scenario exited with {rc}"),
            }),
            _ => {}
        }
        if self.checks.is_empty() {
            f.push(CheckResult {
                name: "checks-reported".into(),
                passed: false,
                detail: "the guest reported no check".into(),
            });
        }
        f
    }

    /// True when every check passed and the guest finished with 0.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// JUnit XML for CI systems.
    pub fn junit(&self, suite: &str, seconds: f64) -> String {
        let esc = xml_attr;
        let failures = self.failures();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total =
            self.checks.len() + failures.iter().filter(|f| !self.checks.contains(f)).count();
        let _ = writeln!(
            x,
            "<testsuite name=\"{}\" tests=\"{total}\" failures=\"{}\" time=\"{seconds:.1}\">",
            esc(suite),
            failures.len()
        );
        let extra = failures.iter().filter(|f| !self.checks.contains(f));
        for c in self.checks.iter().chain(extra) {
            let _ = write!(
                x,
                "  <testcase classname=\"{}\" name=\"{}\"",
                esc(suite),
                esc(&c.name)
            );
            if c.passed {
                let _ = writeln!(x, "/>");
            } else {
                let _ = writeln!(
                    x,
                    ">\n    <failure message=\"{}\"/>\n  </testcase>",
                    esc(&c.detail)
                );
            }
        }
        x.push_str("</testsuite>\n");
        x
    }
}

/// `s` as the value of an XML 1.0 attribute: markup escaped, and every character XML 1.0 does
/// not allow (NUL, ESC and the other C0 controls, lone surrogates cannot occur in a `str`,
/// U+FFFE/U+FFFF) written as a visible `\u{..}` instead, so a guest's console bytes never make
/// the report invalid. Tab, CR and LF are kept as character references (attribute value
/// normalisation would otherwise turn them into spaces).
pub fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passes_failures_and_interleaved_kernel_lines() {
        let log = "boot...\nPICABOOT-CHECK md2-active PASS [UU]\n[   3.1] md: x PICABOOT-CHECK vg FAIL no VG backup\nPICABOOT-DONE rc=1\n";
        let r = Report::parse(log);
        assert_eq!(r.checks.len(), 2);
        assert!(r.checks[0].passed);
        assert_eq!(r.checks[1].detail, "no VG backup");
        assert_eq!(r.done_rc, Some(1));
        let names: Vec<_> = r.failures().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["vg", "guest-finished"]);
        assert!(!r.passed());
    }

    #[test]
    fn a_guest_that_never_finishes_fails() {
        let r = Report::parse("PICABOOT-CHECK a PASS\n");
        assert!(!r.passed());
        assert_eq!(r.failures()[0].name, "guest-finished");
    }

    #[test]
    fn silence_fails_and_malformed_lines_fail() {
        assert!(!Report::parse("PICABOOT-DONE rc=0\n").passed());
        let r = Report::parse("PICABOOT-CHECK x MAYBE\nPICABOOT-DONE rc=0\n");
        assert!(!r.passed());
    }

    #[test]
    fn junit_counts_failures() {
        let r = Report::parse(
            "PICABOOT-CHECK a PASS\nPICABOOT-CHECK b FAIL <bad>\nPICABOOT-DONE rc=0\n",
        );
        let x = r.junit("s", 1.0);
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(x.contains("&lt;bad&gt;"));
    }

    #[test]
    fn console_control_bytes_are_made_visible() {
        let r = Report::parse_bytes(
            b"PICABOOT-CHECK esc FAIL \x1b[31mred\x1b[0m \x00nul\r \xff\xfe \x7f\xc2\x85.\nPICABOOT-DONE rc=0\n",
        );
        let x = r.junit("s", 1.0);
        assert!(
            x.contains(
                &(r#"message="\u{1b}[31mred\u{1b}[0m \u{0}nul&#13; "#.to_string()
                    + "\u{fffd}\u{fffd}"
                    + r#" \u{7f}\u{85}.""#)
            ),
            "{x}"
        );
        assert!(!x.chars().any(|c| c.is_control() && c != '\n'), "{x:?}");
    }
}
