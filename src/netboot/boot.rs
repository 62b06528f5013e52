//! Boot entries: the installer's kernel command line, `boot.ipxe`, a netboot.xyz custom menu,
//! a PXELINUX config named after the install NIC's MAC, and a GRUB config with a menu entry
//! per MAC of the host.
//!
//! Paths are relative to the `netboot/` directory: iPXE resolves them against the script's
//! own URL (HTTP or TFTP); PXELINUX and GRUB expect that directory as their TFTP root.
//! netboot.xyz loads its custom menu from elsewhere, so that file uses absolute URLs under
//! `--base-url` (the URL of the served output directory).

use std::net::SocketAddrV4;

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
pub fn kernel_args(host: &Host, frontend: Frontend, mac: &str) -> KernelCmdline {
    let mut c = KernelCmdline::default();
    for w in [
        "auto=true".to_string(),
        "priority=critical".to_string(),
        "interface=auto".to_string(),
        format!("BOOTIF=01-{}", mac_dashes(mac)),
        format!("hostname={}", host.hostname),
        format!("domain={}", host.domain),
    ] {
        c.installer(w);
    }
    if frontend == Frontend::Text {
        c.installer("console=ttyS0,115200".to_string());
    }
    for p in &host.install.kernel_params {
        c.installer(p.clone());
    }
    c
}

/// An installer's kernel command line: the words for the installer's own boot, then `---`,
/// then those the installer copies to the installed system's boot loader (none today: the
/// installed system's parameters come from the rendered GRUB drop-in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCmdline {
    installer: Vec<String>,
    installed: Vec<String>,
}

impl KernelCmdline {
    /// Adds a word to the installer's own boot (a word already there is not added again).
    pub fn installer(&mut self, word: String) {
        if !self.installer.contains(&word) {
            self.installer.push(word);
        }
    }

    /// With reporting to `picaboot serve` at `to`, for the installer's boot only (never the
    /// installed system's): `log_host=`/`log_port=` (d-i's `S10syslog` then forwards its
    /// syslog there over UDP, which `reinstall` follows phase by phase) and
    /// `picaboot.progress=` (the late command's end-of-install report, which makes `serve`
    /// answer the host's `boot.ipxe` with a boot from disk).
    pub fn with_reporting(mut self, to: SocketAddrV4, host: &Host) -> Self {
        self.installer(format!("log_host={}", to.ip()));
        self.installer(format!("log_port={}", to.port()));
        self.installer(format!("picaboot.progress={}", progress_url(to, host)));
        self
    }
}

impl std::fmt::Display for KernelCmdline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ---", self.installer.join(" "))?;
        for w in &self.installed {
            write!(f, " {w}")?;
        }
        Ok(())
    }
}

/// `args` with `params` added before a final `---` (the installer copies what follows `---`
/// to the installed system's boot loader, so these stay in the installer's boot only), else
/// at the end; a word already there is not added again.
pub fn before_separator(args: &str, params: &[&str]) -> String {
    let mut words: Vec<&str> = args.split_whitespace().collect();
    let mut at = words
        .iter()
        .rposition(|w| *w == "---")
        .unwrap_or(words.len());
    for p in params {
        if !words.contains(p) {
            words.insert(at, p);
            at += 1;
        }
    }
    words.join(" ")
}

/// The progress URL of `host` on the `serve` at `to` (query added by the caller).
pub fn progress_url(to: SocketAddrV4, host: &Host) -> String {
    format!("http://{to}/progress/{}", host.name)
}

#[derive(serde::Serialize)]
struct HostArgs<'a> {
    name: &'a str,
    args: &'a str,
}

#[derive(serde::Serialize)]
struct MenuHost<'a> {
    name: &'a str,
    suite: &'a str,
    args: &'a str,
}

#[derive(serde::Serialize)]
struct Menu<'a> {
    base: &'a str,
    hosts: Vec<MenuHost<'a>>,
}

#[derive(serde::Serialize)]
struct GrubNic {
    name: String,
    mac: String,
    note: &'static str,
    args: String,
}

#[derive(serde::Serialize)]
struct Grub<'a> {
    name: &'a str,
    nics: Vec<GrubNic>,
}

/// Renders an embedded boot template (they are parsed and exercised by the unit tests, so a
/// failure here is a bug in the shipped template).
fn render<C: serde::Serialize>(name: &str, ctx: &C) -> String {
    crate::render::templates::render(name, ctx)
        .unwrap_or_else(|e| panic!("embedded template {name}: {e:?}"))
}

/// `boot.ipxe` (template `templates/boot/boot.ipxe.tera`).
pub fn ipxe(host: &Host, args: &str) -> String {
    render(
        "boot/boot.ipxe",
        &HostArgs {
            name: &host.name,
            args,
        },
    )
}

/// `netbootxyz-custom.ipxe`: a netboot.xyz custom menu with one entry for this host; the
/// files are fetched from `BASE/HOST/netboot/`.
pub fn netbootxyz(host: &Host, args: &str, base_url: &str) -> String {
    netbootxyz_menu(&[(host, args.to_string())], base_url)
}

/// A netboot.xyz custom menu with one entry per `(host, kernel args)`, in the order given
/// (`netboot --all` writes one for every host; template
/// `templates/boot/netbootxyz-custom.ipxe.tera`).
pub fn netbootxyz_menu(hosts: &[(&Host, String)], base_url: &str) -> String {
    render(
        "boot/netbootxyz-custom.ipxe",
        &Menu {
            base: base_url.trim_end_matches('/'),
            hosts: hosts
                .iter()
                .map(|(h, args)| MenuHost {
                    name: &h.name,
                    suite: &h.install.suite,
                    args,
                })
                .collect(),
        },
    )
}

/// `pxelinux.cfg/01-<mac>` (template `templates/boot/pxelinux.tera`).
pub fn pxelinux(host: &Host, args: &str) -> String {
    render(
        "boot/pxelinux",
        &HostArgs {
            name: &host.name,
            args,
        },
    )
}

/// `grub.cfg`: one menu entry per NIC of the host (the install NIC first and default), each
/// passing that NIC as `BOOTIF`, chosen automatically when GRUB booted from that MAC
/// (template `templates/boot/grub.cfg.tera`).
pub fn grub(host: &Host, frontend: Frontend, install_mac: &str) -> String {
    let mut nics: Vec<_> = host.nics.iter().collect();
    nics.sort_by_key(|n| (n.role != NicRole::Install, n.name.clone()));
    render(
        "boot/grub.cfg",
        &Grub {
            name: &host.name,
            nics: nics
                .iter()
                .map(|nic| GrubNic {
                    name: nic.name.clone(),
                    mac: nic.mac.to_ascii_lowercase(),
                    note: if nic.mac.eq_ignore_ascii_case(install_mac) {
                        "install NIC"
                    } else {
                        "other NIC"
                    },
                    args: kernel_args(host, frontend, &nic.mac).to_string(),
                })
                .collect(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reporting_goes_before_the_separator_and_never_twice() {
        let p = crate::project::open(std::path::Path::new("profiles")).unwrap();
        let alice = &p.loaded.profiles.hosts["alice"];
        let to: SocketAddrV4 = "10.0.2.2:8080".parse().unwrap();
        let mut c = KernelCmdline::default();
        c.installer("auto=true".into());
        c.installed.push("quiet".into());
        let args = c.with_reporting(to, alice);
        assert_eq!(
            args.to_string(),
            "auto=true log_host=10.0.2.2 log_port=8080 \
             picaboot.progress=http://10.0.2.2:8080/progress/alice --- quiet"
        );
        assert_eq!(args.clone().with_reporting(to, alice), args);
        assert_eq!(before_separator("a", &["b", "a", "c"]), "a b c");
    }

    #[test]
    fn combined_menu_lists_every_host_once_with_its_entry() {
        let p = crate::project::open(std::path::Path::new("profiles")).unwrap();
        let hosts: Vec<(&Host, String)> = p
            .loaded
            .profiles
            .hosts
            .values()
            .map(|h| (h, kernel_args(h, Frontend::Gtk, &h.nics[0].mac).to_string()))
            .collect();
        assert!(hosts.len() >= 2);
        let menu = netbootxyz_menu(&hosts, "http://boot:8080/");
        assert!(menu.starts_with("#!ipxe\n"));
        for (h, args) in &hosts {
            let item = format!("item picaboot_{} ", h.name);
            assert_eq!(menu.matches(&item).count(), 1, "{menu}");
            assert!(menu.contains(&format!(
                ":picaboot_{n}\nkernel http://boot:8080/{n}/netboot/linux initrd=initrd.gz {args}\n",
                n = h.name
            )));
        }
        assert_eq!(menu.matches("choose custom_choice").count(), 1);
        assert!(menu.ends_with(":custom_exit\nexit\n"));
    }

    #[test]
    fn mac_forms() {
        assert_eq!(pxelinux_name("02:50:1C:a1:00:00"), "01-02-50-1c-a1-00-00");
    }
}
