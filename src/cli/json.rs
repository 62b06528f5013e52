//! Errors as JSON: with `--json`, a failing command prints one JSON object on stdout (beside
//! its exit code) instead of prose on stderr, so that a script reading stdout always gets JSON.
//!
//! `{"error": "<message with its context chain>", "code": <exit code>}`, plus `"file"` and
//! `"line"` when the error points into a file (the first problem), and `"problems"`
//! (`[{file, line, field, reason}]`) when the profiles or image specs are invalid.

use serde_json::{json, Value};

use crate::profile::{Diagnostics, ProfileError};

/// The JSON object describing `err`, which exits with `code`.
pub fn error_object(err: &anyhow::Error, code: i32) -> Value {
    let diags: Option<&Diagnostics> = err.chain().find_map(|c| {
        if let Some(ProfileError::Invalid(d)) = c.downcast_ref::<ProfileError>() {
            Some(d)
        } else if let Some(crate::image::SpecError::Invalid(d)) =
            c.downcast_ref::<crate::image::SpecError>()
        {
            Some(d)
        } else {
            None
        }
    });
    let mut v = json!({ "error": format!("{err:#}"), "code": code });
    if let Some(d) = diags {
        v["problems"] = d
            .0
            .iter()
            .map(|x| json!({"file": x.file, "line": x.line, "field": x.field, "reason": x.reason}))
            .collect();
        if let Some(first) = d.0.first() {
            v["file"] = json!(first.file);
            v["line"] = json!(first.line);
        }
    }
    v
}

/// Prints [`error_object`] on stdout (one line), ignoring a closed pipe.
pub fn print_error(err: &anyhow::Error, code: i32) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", error_object(err, code));
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_is_one_object_with_its_code() {
        let e = anyhow::anyhow!("inner").context("outer");
        let v = super::error_object(&e, 2);
        assert_eq!(v["error"], "outer: inner");
        assert_eq!(v["code"], 2);
        assert!(v.get("file").is_none());
    }
}
