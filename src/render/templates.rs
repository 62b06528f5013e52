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
        "Dockerfile",
        include_str!("../../templates/Dockerfile.tera"),
    ),
];

/// The shared tera instance (templates are parsed once per process).
pub fn tera() -> &'static Tera {
    static TERA: OnceLock<Tera> = OnceLock::new();
    TERA.get_or_init(|| {
        let mut t = Tera::default();
        super::filters::register(&mut t);
        t.add_raw_templates(TEMPLATES.iter().copied())
            .expect("embedded templates parse (checked by unit test)");
        t.autoescape_on(vec![]);
        t
    })
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
}
