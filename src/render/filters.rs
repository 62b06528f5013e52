//! Tera filters for the shell scripts picaboot renders.
//!
//! `shell_quote` makes any value one inert shell word: a value made only of characters no
//! POSIX shell treats specially (`A-Za-z0-9@%+=:,./_-`) is written as it is, so rendered files
//! stay readable and unchanged for ordinary values; anything else is wrapped in single quotes,
//! each `'` written as `'\''`. Numbers and booleans are printed as they are.

use std::collections::HashMap;

use tera::{Result, Value};

/// Quotes `s` as one POSIX shell word (see the module documentation).
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The tera filter `shell_quote`.
pub fn shell_quote_filter(value: &Value, _args: &HashMap<String, Value>) -> Result<Value> {
    let s = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(tera::Error::msg(format!(
                "shell_quote: expected a string or number, got {other}"
            )))
        }
    };
    Ok(Value::String(shell_quote(&s)))
}

/// Registers every filter of this module.
pub fn register(t: &mut tera::Tera) {
    t.register_filter("shell_quote", shell_quote_filter);
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("91.224.148.84/32"), "91.224.148.84/32");
        assert_eq!(
            shell_quote("/dev/disk/by-id/ata-X_1"),
            "/dev/disk/by-id/ata-X_1"
        );
        assert_eq!(shell_quote("fe80::1/64"), "fe80::1/64");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$(touch /tmp/x)"), "'$(touch /tmp/x)'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("`id`;}"), "'`id`;}'");
    }

    #[test]
    fn sh_reads_back_the_same_word() {
        for v in [
            "plain", "a b", "$(id)", "`id`", "it's", "\"q\"", ";}", "a\\b", "*?[x]", "~root", "!x",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(v)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), v, "{v}");
        }
    }
}
