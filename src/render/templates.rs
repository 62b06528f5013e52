//! The tera environment: every template embedded at build time, autoescape off (none of these
//! formats is HTML), and contexts passed as typed structs so that a missing field is an error.

use std::sync::OnceLock;

use tera::Tera;

/// `(name, source)` of every template shipped in `templates/`.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "save-pull.sh",
        include_str!("../../templates/save-pull.sh.tera"),
    ),
    (
        "save-pull.service",
        include_str!("../../templates/save-pull.service.tera"),
    ),
    (
        "save-pull.timer",
        include_str!("../../templates/save-pull.timer.tera"),
    ),
    (
        "sshd-save.conf",
        include_str!("../../templates/sshd-save.conf.tera"),
    ),
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
        "proxmox.sources",
        include_str!("../../templates/proxmox.sources.tera"),
    ),
    (
        "proxmox-setup.sh",
        include_str!("../../templates/proxmox-setup.sh.tera"),
    ),
    (
        "proxmox.service",
        include_str!("../../templates/proxmox.service.tera"),
    ),
    (
        "Dockerfile",
        include_str!("../../templates/Dockerfile.tera"),
    ),
    (
        "boot/boot.ipxe",
        include_str!("../../templates/boot/boot.ipxe.tera"),
    ),
    (
        "boot/netbootxyz-custom.ipxe",
        include_str!("../../templates/boot/netbootxyz-custom.ipxe.tera"),
    ),
    (
        "boot/pxelinux",
        include_str!("../../templates/boot/pxelinux.tera"),
    ),
    (
        "boot/grub.cfg",
        include_str!("../../templates/boot/grub.cfg.tera"),
    ),
    (
        "vm/network",
        include_str!("../../templates/vm/network.tera"),
    ),
    (
        "vm/grub.cfg",
        include_str!("../../templates/vm/grub.cfg.tera"),
    ),
    ("vm/fstab", include_str!("../../templates/vm/fstab.tera")),
    ("vm/hosts", include_str!("../../templates/vm/hosts.tera")),
    (
        "vm/resolv.conf",
        include_str!("../../templates/vm/resolv.conf.tera"),
    ),
    (
        "vm/debian.sources",
        include_str!("../../templates/vm/debian.sources.tera"),
    ),
    (
        "vm/sshd.conf",
        include_str!("../../templates/vm/sshd.conf.tera"),
    ),
    (
        "vm/setup.service",
        include_str!("../../templates/vm/setup.service.tera"),
    ),
    (
        "vm/selftest.service",
        include_str!("../../templates/vm/selftest.service.tera"),
    ),
    (
        "vm/setup.sh",
        include_str!("../../templates/vm/setup.sh.tera"),
    ),
    (
        "vm/selftest.sh",
        include_str!("../../templates/vm/selftest.sh.tera"),
    ),
    (
        "services/stack.yml",
        include_str!("../../templates/services/stack.yml.tera"),
    ),
    (
        "services/fstab",
        include_str!("../../templates/services/fstab.tera"),
    ),
    (
        "services/docker-data.conf",
        include_str!("../../templates/services/docker-data.conf.tera"),
    ),
    (
        "services/nftables.conf",
        include_str!("../../templates/services/nftables.conf.tera"),
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

    #[test]
    fn shell_quote_makes_one_inert_word() {
        assert_eq!(crate::render::filters::shell_quote("a b"), "'a b'");
        assert_eq!(crate::render::filters::shell_quote("it's"), "'it'\\''s'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf %s {}",
                crate::render::filters::shell_quote("x'$(touch /nonexistent/y)`id`\nz")
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "x'$(touch /nonexistent/y)`id`\nz"
        );
    }
}
