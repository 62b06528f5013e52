//! [`Secret`]: a password, token or authorization header that never shows in `Debug` or
//! `Display` output (so never in a log line, an error message or a panic), for AMT and the
//! registry alike.

use std::fmt;

/// A secret string: printed as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that must send it (or hash it into a digest).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The first line of a credentials file (the rest is ignored); `Err` names the file and says
/// why (unreadable, or an empty first line). The secret itself never appears in the error.
pub fn first_line_of(path: &std::path::Path) -> Result<Secret, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    match text.lines().next() {
        Some(line) if !line.is_empty() => Ok(Secret::new(line)),
        _ => Err(format!("{}: the first line is empty", path.display())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_and_display_never_show_the_secret() {
        let s = super::Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn first_line_of_a_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c");
        std::fs::write(&p, "admin:pw\nignored\n").unwrap();
        assert_eq!(super::first_line_of(&p).unwrap().expose(), "admin:pw");
        std::fs::write(&p, "\nadmin:pw\n").unwrap();
        let e = super::first_line_of(&p).unwrap_err();
        assert!(e.ends_with(": the first line is empty"), "{e}");
        assert!(super::first_line_of(&d.path().join("none"))
            .unwrap_err()
            .starts_with("reading "));
    }
}
