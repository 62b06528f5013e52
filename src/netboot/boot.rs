//! Boot entries: the installer's kernel command line, `boot.ipxe`, a netboot.xyz custom menu,
//! a PXELINUX config named after the install NIC's MAC, and a GRUB config with a menu entry
//! per MAC of the host.
//!
//! Paths are relative to the `netboot/` directory: iPXE resolves them against the script's
//! own URL (HTTP or TFTP); PXELINUX and GRUB expect that directory as their TFTP root.
//! netboot.xyz loads its custom menu from elsewhere, so that file uses absolute URLs under
//! `--base-url` (the URL of the served output directory).

use crate::profile::{Frontend, Host, NicRole};

/// `aa:bb:…` -> `aa-bb-…`, lower case.
pub fn mac_dashes(mac: &str) -> String {
    mac.to_ascii_lowercase().replace(':', "-")
}

/// PXELINUX's per-MAC config name: `01-aa-bb-cc-dd-ee-ff` (ARP type 1, Ethernet).
pub fn pxelinux_name(mac: &str) -> String {
    format!("01-{}", mac_dashes(mac))
}

/// The installer's kernel arguments (without `initrd=`): unattended (`auto=true
/// priority=critical`, preseed from the initrd), the install NIC by `BOOTIF`, a serial console
/// for the text frontend, the profile's kernel parameters, and a final `---` so that none of
/// these is copied to the installed system (its parameters come from the rendered GRUB
/// drop-in).
pub fn kernel_args(host: &Host, frontend: Frontend, mac: &str) -> String {
    let mut a = vec![
        "auto=true".to_string(),
        "priority=critical".to_string(),
        "interface=auto".to_string(),
        format!("BOOTIF=01-{}", mac_dashes(mac)),
        format!("hostname={}", host.hostname),
        format!("domain={}", host.domain),
    ];
    if frontend == Frontend::Text {
        a.push("console=ttyS0,115200".to_string());
    }
    a.extend(host.install.kernel_params.iter().cloned());
    a.push("---".to_string());
    a.join(" ")
}

/// `boot.ipxe`.
pub fn ipxe(host: &Host, args: &str) -> String {
    format!(
        "#!ipxe\n# picaboot: unattended Debian install of {name} (generated; do not edit)\n\
         echo picaboot: installing {name}\n\
         kernel linux initrd=initrd.gz {args}\n\
         initrd initrd.gz\n\
         boot\n",
        name = host.name
    )
}

/// `netbootxyz-custom.ipxe`: a netboot.xyz custom menu with one entry for this host; the
/// files are fetched from `BASE/HOST/netboot/`.
pub fn netbootxyz(host: &Host, args: &str, base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let name = &host.name;
    format!(
        "#!ipxe\n\
         ### picaboot: netboot.xyz custom menu (generated; do not edit)\n\
         :custom\n\
         clear custom_choice\n\
         menu picaboot hosts\n\
         item --gap Unattended reinstall (erases the disks)\n\
         item picaboot_{name} ${{space}} Reinstall {name} (Debian {suite}, preseeded)\n\
         choose custom_choice || goto custom_exit\n\
         echo ${{cls}}\n\
         goto ${{custom_choice}}\n\
         goto custom_exit\n\
         :picaboot_{name}\n\
         kernel {base}/{name}/netboot/linux initrd=initrd.gz {args}\n\
         initrd {base}/{name}/netboot/initrd.gz\n\
         boot || goto custom_exit\n\
         :custom_exit\n\
         exit\n",
        suite = host.install.suite
    )
}

/// `pxelinux.cfg/01-<mac>`.
pub fn pxelinux(host: &Host, args: &str) -> String {
    format!(
        "# picaboot: unattended Debian install of {name} (generated; do not edit)\n\
         DEFAULT picaboot\n\
         PROMPT 0\n\
         TIMEOUT 0\n\
         LABEL picaboot\n\
         \x20 MENU LABEL Reinstall {name}\n\
         \x20 KERNEL linux\n\
         \x20 APPEND initrd=initrd.gz {args}\n",
        name = host.name
    )
}

/// `grub.cfg`: one menu entry per NIC of the host (the install NIC first and default), each
/// passing that NIC as `BOOTIF`, chosen automatically when GRUB booted from that MAC.
pub fn grub(host: &Host, frontend: Frontend, install_mac: &str) -> String {
    let mut nics: Vec<_> = host.nics.iter().collect();
    nics.sort_by_key(|n| (n.role != NicRole::Install, n.name.clone()));
    let mut s = format!(
        "# picaboot: unattended Debian install of {} (generated; do not edit)\n\
         set timeout=5\n\
         set default=0\n",
        host.name
    );
    for (i, nic) in nics.iter().enumerate() {
        s.push_str(&format!(
            "if [ \"$net_default_mac\" = \"{}\" ]; then set default={i}; fi\n",
            nic.mac.to_ascii_lowercase()
        ));
    }
    for nic in &nics {
        let args = kernel_args(host, frontend, &nic.mac);
        let note = if nic.mac.eq_ignore_ascii_case(install_mac) {
            "install NIC"
        } else {
            "other NIC"
        };
        s.push_str(&format!(
            "menuentry 'Reinstall {} via {} {} ({note})' {{\n\
             \x20 linux /linux {args}\n\
             \x20 initrd /initrd.gz\n\
             }}\n",
            host.name,
            nic.name,
            nic.mac.to_ascii_lowercase()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_forms() {
        assert_eq!(pxelinux_name("02:50:1C:a1:00:00"), "01-02-50-1c-a1-00-00");
    }
}
