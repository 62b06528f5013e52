//! The guest's machine-readable console lines and the JUnit report made from them.
//!
//! A guest prints `PICABOOT-CHECK <name> PASS|FAIL [detail]` per check and
//! `PICABOOT-DONE rc=<n>` at the end. Anything else on the console is ignored.

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

    /// JUnit XML for CI systems (every check, and the failures that are not checks).
    pub fn junit(&self, suite: &str, seconds: f64) -> String {
        let failures = self.failures();
        let extra = failures.iter().filter(|f| !self.checks.contains(f));
        crate::xml::JUnit {
            suite,
            seconds,
            properties: Vec::new(),
            cases: self
                .checks
                .iter()
                .chain(extra)
                .map(|c| crate::xml::Case {
                    class: suite,
                    name: &c.name,
                    seconds: None,
                    passed: c.passed,
                    detail: if c.passed { "" } else { &c.detail },
                })
                .collect(),
        }
        .to_xml()
    }
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
