//! String safety for everything a profile holds: profile text never becomes code.
//!
//! Rendered files are shell scripts (rc.local, the first-boot storage script, late_command),
//! debconf answers, config files and Dockerfiles, all line-oriented. So every string of every
//! profile file is one line of printable text ([`check_document`]): no control character
//! (newline, CR, NUL, ESC, DEL, C1), no Unicode line or paragraph separator, no bidirectional
//! override (text that displays differently from what runs), and at most [`MAX_LEN`]
//! characters. Fields with a grammar are checked against it on top ([`device_path`],
//! [`interface_name`], [`comment_text`]). Templates quote every value that reaches shell code
//! anyway (the `shell_quote` filter), so that even a value that passes is inert.

use toml_edit::{ImDocument, Item, Value};

use super::source::{Diagnostic, Diagnostics, SourceFile};

/// The longest string a profile may hold (an SSH public key of 16384 bits fits).
pub const MAX_LEN: usize = 4096;

/// The most entries a list of a profile may hold (nameservers, packages, arrays, volumes,
/// port forwards, …): far beyond any real host, small enough that rendered files stay small.
pub const MAX_LIST: usize = 64;

fn too_many(n: usize) -> String {
    format!("holds {n} entries (a list holds at most {MAX_LIST})")
}

/// The longest description (it lands in comments of rendered files).
pub const MAX_DESCRIPTION: usize = 200;

/// Why `s` is not one line of printable text, if it is not.
pub fn one_line(s: &str) -> Result<(), String> {
    if let Some(c) = s.chars().find(|&c| forbidden(c)) {
        return Err(format!(
            "holds {} (U+{:04X}): profile strings are one line of printable text",
            describe(c),
            c as u32
        ));
    }
    let n = s.chars().count();
    if n > MAX_LEN {
        return Err(format!("is {n} characters long (at most {MAX_LEN})"));
    }
    Ok(())
}

fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' | '\u{feff}'
        )
}

fn describe(c: char) -> &'static str {
    match c {
        '\n' => "a newline",
        '\r' => "a carriage return",
        '\0' => "a NUL byte",
        '\t' => "a tab",
        '\u{1b}' => "an escape character",
        '\u{2028}' => "a Unicode line separator",
        '\u{2029}' => "a Unicode paragraph separator",
        '\u{feff}' => "a byte order mark",
        c if c.is_control() => "a control character",
        _ => "a bidirectional formatting character",
    }
}

/// Checks every string (and key) of a parsed TOML document, reporting each bad one at its line
/// with its dotted field path. Returns whether all were fine.
pub fn check_document(src: &SourceFile, diags: &mut Diagnostics) -> bool {
    let Ok(doc) = ImDocument::parse(src.text()) else {
        // Syntax errors are reported by the deserializer.
        return true;
    };
    let before = diags.0.len();
    walk_table(src, doc.as_table(), "", diags);
    diags.0.len() == before
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn report(src: &SourceFile, diags: &mut Diagnostics, field: String, offset: usize, why: String) {
    diags.push(Diagnostic {
        file: src.path().to_path_buf(),
        line: src.line_of_offset(offset),
        field,
        reason: why,
    });
}

fn walk_table(
    src: &SourceFile,
    t: &dyn toml_edit::TableLike,
    prefix: &str,
    diags: &mut Diagnostics,
) {
    for (k, item) in t.iter() {
        let field = join(prefix, k);
        if let Err(why) = one_line(k) {
            let at = t.key(k).and_then(|key| key.span()).map_or(0, |s| s.start);
            report(src, diags, field.clone(), at, format!("key {why}"));
            continue;
        }
        walk_item(src, item, &field, diags);
    }
}

fn walk_item(src: &SourceFile, item: &Item, field: &str, diags: &mut Diagnostics) {
    match item {
        Item::Value(v) => walk_value(src, v, field, diags),
        Item::Table(t) => walk_table(src, t, field, diags),
        Item::ArrayOfTables(a) => {
            if a.len() > MAX_LIST {
                let at = a.span().map_or(0, |s| s.start);
                report(src, diags, field.to_string(), at, too_many(a.len()));
                return;
            }
            for (i, t) in a.iter().enumerate() {
                walk_table(src, t, &format!("{field}[{i}]"), diags);
            }
        }
        Item::None => {}
    }
}

fn walk_value(src: &SourceFile, v: &Value, field: &str, diags: &mut Diagnostics) {
    match v {
        Value::String(s) => {
            if let Err(why) = one_line(s.value()) {
                let at = s.span().map_or(0, |r| r.start);
                report(src, diags, field.to_string(), at, why);
            }
        }
        Value::Array(a) => {
            if a.len() > MAX_LIST {
                let at = a.span().map_or(0, |s| s.start);
                report(src, diags, field.to_string(), at, too_many(a.len()));
                return;
            }
            for (i, x) in a.iter().enumerate() {
                walk_value(src, x, &format!("{field}[{i}]"), diags);
            }
        }
        Value::InlineTable(t) => walk_table(src, t, field, diags),
        _ => {}
    }
}

/// A device path: `/dev/` then letters, digits and `._+:-`, with `/` between non-empty
/// components that are not `.` or `..` (`/dev/disk/by-id/ata-Samsung_SSD_860-S3Z9NB0K`).
/// Anything else (`;`, `$`, `}`, quotes, spaces) is refused rather than quoted.
pub fn device_path(dev: &str) -> Result<(), String> {
    let Some(rest) = dev.strip_prefix("/dev/") else {
        return Err(format!("`{dev}` is not a device path under /dev/"));
    };
    let ok = !rest.is_empty()
        && dev.len() <= 255
        && rest.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._+:-".contains(ch))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{dev}` is not a device path under /dev/ (letters, digits and `._+:-` between `/`, no `..`)"
        ))
    }
}

/// A mount point: `/`, or `/` then components of letters, digits and `._+-` (no `.`, `..`,
/// spaces or shell characters: it lands in fstab, partman recipes and shell lines).
pub fn mount_point(m: &str) -> bool {
    m == "/"
        || (m.starts_with('/')
            && m.len() <= 255
            && m[1..].split('/').all(|c| {
                !c.is_empty()
                    && c != "."
                    && c != ".."
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "._+-".contains(ch))
            }))
}

/// A URL as the installer, apt and shell lines may carry it unquoted: letters, digits and
/// `._~:/@%+=,-` only (no quotes, spaces, `$`, backticks, `;`, braces or `?&#`).
pub fn url_chars(u: &str) -> bool {
    u.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._~:/@%+=,-".contains(c))
}

/// A DNS domain: dot-separated labels of letters, digits and `-`, not starting or ending with
/// `-`, at least two labels.
pub fn dns_domain(d: &str) -> bool {
    d.len() <= 253
        && d.split('.').count() >= 2
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A locale such as `en_US.UTF-8` or `fr_FR@euro`.
pub fn locale(l: &str) -> bool {
    l.contains('_')
        && l.len() <= 64
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c))
}

/// An xkb keymap name such as `fr`, `us` or `de-latin1`.
pub fn keymap(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

/// A time zone such as `Europe/Paris`, `Etc/GMT+1` or `UTC`: components of letters, digits
/// and `_+-`, no `.` or `..`.
pub fn timezone(t: &str) -> bool {
    (t.contains('/') || t == "UTC")
        && t.len() <= 64
        && t.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_+-".contains(ch))
        })
}

/// A Linux interface name (also bridges): 1 to 15 of letters, digits and `-_.`, not `.` or
/// `..`.
pub fn interface_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// The longest kernel parameter accepted (the whole command line is 2048 bytes on x86).
pub const MAX_KERNEL_PARAM: usize = 256;

/// A kernel command-line parameter: `name` or `name=value`. The name is letters, digits and
/// `_.-` (dots separate a module from its parameter, as in `i915.modeset`), not starting with
/// `-` or `.`; the value is letters, digits and `_.,:/+=@%-`. The kernel's parser
/// (`next_arg` in lib/cmdline.c) gives quotes a meaning and splits at whitespace, and GRUB's
/// `/etc/default/grub` is sourced by a shell, so quotes, whitespace, `$`, backticks,
/// backslashes, `;`, `&`, `|`, `<>`, `()`, `{}`, `*?[]`, `~`, `!`, `#` and `'` are refused
/// rather than quoted.
pub fn kernel_param(p: &str) -> Result<(), String> {
    let (name, value) = match p.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (p, None),
    };
    let name_ok = !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let value_ok = value.is_none_or(|v| {
        v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.,:/+=@%-".contains(c))
    });
    if p.len() > MAX_KERNEL_PARAM {
        return Err(format!(
            "is {} characters long (a kernel parameter has at most {MAX_KERNEL_PARAM})",
            p.len()
        ));
    }
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(format!(
            "`{p}` is not one kernel parameter: `name` or `name=value`, the name of letters, digits and `_.-`, the value of letters, digits and `_.,:/+=@%-`"
        ))
    }
}

/// A Debian binary package name (Debian Policy 5.6.1): at least two characters of lower-case
/// letters, digits and `+.-`, starting with a letter or digit (so never an option such as
/// `--allow-unauthenticated`, nor `""` or `..`).
pub fn debian_package(p: &str) -> bool {
    p.len() >= 2
        && p.len() <= 128
        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
}

/// A description that lands in comments: one line (checked for every string) and short.
pub fn comment_text(s: &str) -> Result<(), String> {
    one_line(s)?;
    let n = s.chars().count();
    if n > MAX_DESCRIPTION {
        return Err(format!(
            "is {n} characters long (a description holds at most {MAX_DESCRIPTION})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn kernel_parameter_grammar() {
        for ok in [
            "quiet",
            "i915.modeset=0",
            "console=ttyS0,115200n8",
            "a-b_c=x:y/z@1%2+3=4",
        ] {
            assert!(super::kernel_param(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "=x", "-x", ".x", "$(id)", "`id`", "${PATH}", "x\\", "a b", "x=\"y\"", "x;y",
            "x'y", "x=a|b",
        ] {
            assert!(super::kernel_param(bad).is_err(), "{bad}");
        }
        assert!(super::kernel_param(&"a".repeat(super::MAX_KERNEL_PARAM + 1)).is_err());
    }

    #[test]
    fn debian_package_grammar() {
        for ok in ["vim", "g++", "libc6", "0ad", "lib.x-y"] {
            assert!(super::debian_package(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "..",
            "--allow-unauthenticated",
            "Vim",
            "-x",
            ".x",
            "a_b",
            "a b",
        ] {
            assert!(!super::debian_package(bad), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn one_line_refuses_what_could_end_a_line_or_hide_text() {
        assert!(one_line("pica01 services: web, mail").is_ok());
        assert!(one_line("été à Compiègne").is_ok());
        for bad in [
            "a\nb",
            "a\rb",
            "a\0b",
            "a\u{1b}[2Jb",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{202e}b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\tb",
        ] {
            assert!(one_line(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            one_line("x\ntouch /tmp/x").unwrap_err(),
            "holds a newline (U+000A): profile strings are one line of printable text"
        );
        assert!(one_line(&"a".repeat(MAX_LEN)).is_ok());
        assert!(one_line(&"a".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn device_paths_have_a_grammar() {
        for ok in [
            "/dev/sdc",
            "/dev/disk/by-id/ata-ST4000_Z1Z2-part1",
            "/dev/md/md2",
            "/dev/nvme0n1",
        ] {
            assert!(device_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/dev/",
            "/dev/sdc;reboot",
            "/dev/sd$(id)",
            "/dev/sdc}",
            "/dev/../etc/passwd",
            "/dev/a b",
            "/dev/'x'",
            "/dev//sda",
            "/etc/passwd",
            "/dev/sd`id`",
        ] {
            assert!(device_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_string_of_a_document_is_checked_at_its_line() {
        let src = SourceFile::new(
            "hosts/x.toml",
            "a = \"fine\"\n[net]\nlist = [\"ok\", \"bad\\u001b\"]\n[[net.routed]]\ndescription = \"x\\ntouch /tmp/x\"\n"
                .to_string(),
        );
        let mut d = Diagnostics::default();
        assert!(!check_document(&src, &mut d));
        let text = d.to_string();
        assert_eq!(
            text,
            "hosts/x.toml:3: net.list[1]: holds an escape character (U+001B): profile strings are one line of printable text\n\
             hosts/x.toml:5: net.routed[0].description: holds a newline (U+000A): profile strings are one line of printable text"
        );
    }
}
