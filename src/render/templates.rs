//! The tera environment: every template embedded at build time, autoescape off (none of these
//! formats is HTML), and contexts passed as typed structs so that a missing field is an error.

use std::sync::OnceLock;

use tera::Tera;

/// `(name, source)` of every template shipped in `templates/`.
const TEMPLATES: &[(&str, &str)] = &[
    ("rc.local", include_str!("../../templates/rc.local.tera")),
    ("link", include_str!("../../templates/link.tera")),
    ("hosts", include_str!("../../templates/hosts.tera")),
    ("grub.cfg", include_str!("../../templates/grub.cfg.tera")),
    (
        "corosync.conf",
        include_str!("../../templates/corosync.conf.tera"),
    ),
    (
        "corosync-override.conf",
        include_str!("../../templates/corosync-override.conf.tera"),
    ),
    (
        "interfaces",
        include_str!("../../templates/interfaces.tera"),
    ),
    (
        "mdadm.conf",
        include_str!("../../templates/mdadm.conf.tera"),
    ),
    (
        "storage-setup.sh",
        include_str!("../../templates/storage-setup.sh.tera"),
    ),
    (
        "storage-setup.service",
        include_str!("../../templates/storage-setup.service.tera"),
    ),
    (
        "preseed.cfg",
        include_str!("../../templates/preseed.cfg.tera"),
    ),
    (
        "late-command.sh",
        include_str!("../../templates/late-command.sh.tera"),
    ),
    (
        "find-disks.sh",
        include_str!("../../templates/find-disks.sh.tera"),
    ),
    (
        "partman-early.sh",
        include_str!("../../templates/partman-early.sh.tera"),
    ),
    (
        "selftest.sh",
        include_str!("../../templates/selftest.sh.tera"),
    ),
    (
        "selftest.service",
        include_str!("../../templates/selftest.service.tera"),
    ),
    (
        "Dockerfile",
        include_str!("../../templates/Dockerfile.tera"),
    ),
];

/// The shared tera instance (templates are parsed once per process).
pub fn tera() -> &'static Tera {
    static TERA: OnceLock<Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut t = Tera::default();
        t.register_filter("shell_quote", shell_quote_filter);
        t.add_raw_templates(TEMPLATES.iter().copied())
            .expect("embedded templates parse (checked by unit test)");
        t.autoescape_on(vec![]);
        t
    })
}

/// Quotes a string for POSIX sh: inside single quotes, with each `'` written as `'\''`.
/// The result is one word whatever the value holds (spaces, `$`, backticks, newlines).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn shell_quote_filter(
    value: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let text = match value {
        tera::Value::String(s) => s.clone(),
        tera::Value::Number(n) => n.to_string(),
        tera::Value::Bool(b) => b.to_string(),
        tera::Value::Null => String::new(),
        other => {
            return Err(tera::Error::msg(format!(
                "shell_quote: not a scalar: {other}"
            )))
        }
    };
    Ok(tera::Value::String(shell_quote(&text)))
}

/// Renders a template with a serializable context.
pub fn render<C: serde::Serialize>(name: &str, ctx: &C) -> Result<String, tera::Error> {
    let ctx = tera::Context::from_serialize(ctx)?;
    tera().render(name, &ctx)
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_parse() {
        let _ = super::tera();
    }

    #[test]
    fn shell_quote_makes_one_inert_word() {
        assert_eq!(super::shell_quote("a b"), "'a b'");
        assert_eq!(super::shell_quote("it's"), "'it'\\''s'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf %s {}",
                super::shell_quote("x'$(touch /nonexistent/y)`id`\nz")
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "x'$(touch /nonexistent/y)`id`\nz"
        );
    }
}
