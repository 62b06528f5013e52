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

/// The first line of a credentials file (the rest is ignored); `Err` says why (unreadable,
/// or an empty first line). The secret itself never appears in the error, nor does the value
/// given as the file's name when it cannot be read: a user who typed the secret where its
/// file was expected (`--credentials admin:pw`) must not see it echoed into a terminal, a log
/// or CI output.
pub fn first_line_of(path: &std::path::Path) -> Result<Secret, String> {
    first_line_of_named(
        path,
        "the credentials file given by --credentials or PICABOOT_AMT_CREDENTIALS",
    )
}

/// As [`first_line_of`], with `named_by` saying where the file's name came from (it is what
/// the error shows when the file cannot be read, instead of the name itself).
pub fn first_line_of_named(path: &std::path::Path, named_by: &str) -> Result<Secret, String> {
    // `io::Error`'s Display carries the OS reason only, never the path.
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("{named_by} could not be read ({e}); its name is not shown in case it is the secret itself")
    })?;
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
        let e = super::first_line_of(&d.path().join("none")).unwrap_err();
        assert!(
            e.starts_with("the credentials file given by --credentials"),
            "{e}"
        );
    }

    #[test]
    fn a_value_that_is_not_a_file_is_not_echoed() {
        // The secret typed where its file's name was expected.
        let e = super::first_line_of(std::path::Path::new("admin:hunter2")).unwrap_err();
        assert!(!e.contains("hunter2") && !e.contains("admin"), "{e}");
        assert!(e.contains("could not be read"), "{e}");
        let e = super::first_line_of_named(std::path::Path::new("s3cret"), "the file named by X")
            .unwrap_err();
        assert!(
            e.starts_with("the file named by X could not be read"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
    }
}
