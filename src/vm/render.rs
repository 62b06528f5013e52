//! The files a VM's system holds beyond Debian's: rendered from [`VmSystem`] through the
//! `vm/*` templates, as `(path in the image, mode, bytes)`, sorted by path.

use serde::Serialize;

use super::system::{Nic, VmSystem};
use crate::render::templates;

/// One file of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Path below the image's root, without a leading `/`.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Content.
    pub bytes: Vec<u8>,
}

/// What the build knows about the image that the files refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootInfo {
    /// UUID of the root filesystem.
    pub root_uuid: String,
    /// Kernel file name in `/boot`.
    pub kernel: String,
    /// Initrd file name in `/boot`.
    pub initrd: String,
}

/// An address as the self-test checks it.
#[derive(Debug, Serialize)]
struct Addr {
    family: &'static str,
    cidr: String,
}

/// A default route as the self-test checks it.
#[derive(Debug, Serialize)]
struct Route {
    family: &'static str,
    via: String,
    onlink: bool,
}

#[derive(Debug, Serialize)]
struct NicCtx<'a> {
    #[serde(flatten)]
    nic: &'a Nic,
    addresses: Vec<Addr>,
    routes: Vec<Route>,
}

#[derive(Debug, Serialize)]
struct Ctx<'a> {
    #[serde(flatten)]
    system: &'a VmSystem,
    fqdn: String,
    security: String,
    own_addresses: Vec<String>,
    all_addresses: Vec<String>,
    nics: Vec<NicCtx<'a>>,
    root_uuid: &'a str,
    kernel: &'a str,
    initrd: &'a str,
}

fn nic_ctx(n: &Nic) -> NicCtx<'_> {
    let mut addresses = Vec::new();
    let mut routes = Vec::new();
    if let Some(v4) = &n.ipv4 {
        addresses.push(Addr {
            family: "inet",
            cidr: v4.cidr.clone(),
        });
        if let Some(g) = v4.gateway {
            routes.push(Route {
                family: "-4",
                via: g.to_string(),
                onlink: v4.onlink,
            });
        }
    }
    if let Some(v6) = &n.ipv6 {
        addresses.push(Addr {
            family: "inet6",
            cidr: v6.cidr.clone(),
        });
        if let Some(ll) = &v6.link_local {
            addresses.push(Addr {
                family: "inet6",
                cidr: ll.clone(),
            });
        }
        if let Some(g) = v6.gateway {
            routes.push(Route {
                family: "-6",
                via: g.to_string(),
                onlink: false,
            });
        }
    }
    NicCtx {
        nic: n,
        addresses,
        routes,
    }
}

/// The security mirror beside `mirror` (`…/debian` → `…/debian-security`).
pub fn security_mirror(mirror: &str) -> String {
    format!("{}-security", mirror.trim_end_matches('/'))
}

/// Every file picaboot puts into the image of `system`.
pub fn files(system: &VmSystem, boot: &BootInfo) -> Result<Vec<ImageFile>, tera::Error> {
    let nics: Vec<NicCtx> = system.nics.iter().map(nic_ctx).collect();
    let all_addresses: Vec<String> = nics
        .iter()
        .flat_map(|n| n.addresses.iter().map(|a| a.cidr.clone()))
        .collect();
    let own_addresses = all_addresses
        .iter()
        .filter(|a| !a.starts_with("fe80:"))
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
        .collect();
    let ctx = Ctx {
        system,
        fqdn: system.fqdn(),
        security: security_mirror(&system.mirror),
        own_addresses,
        all_addresses,
        nics,
        root_uuid: &boot.root_uuid,
        kernel: &boot.kernel,
        initrd: &boot.initrd,
    };
    let r = |t: &str| templates::render(&format!("vm/{t}"), &ctx);
    let mut out = vec![
        file("etc/hostname", 0o644, format!("{}\n", system.hostname)),
        file("etc/hosts", 0o644, r("hosts")?),
        file("etc/resolv.conf", 0o644, r("resolv.conf")?),
        file("etc/fstab", 0o644, r("fstab")?),
        file(
            "etc/apt/sources.list.d/debian.sources",
            0o644,
            r("debian.sources")?,
        ),
        file(
            "etc/ssh/sshd_config.d/picaboot.conf",
            0o644,
            r("sshd.conf")?,
        ),
        file("boot/grub/grub.cfg", 0o644, r("grub.cfg")?),
        file("usr/local/sbin/picaboot-vm-setup", 0o755, r("setup.sh")?),
        file(
            "usr/local/sbin/picaboot-vm-selftest",
            0o755,
            r("selftest.sh")?,
        ),
        file(
            "etc/systemd/system/picaboot-vm-setup.service",
            0o644,
            r("setup.service")?,
        ),
        file(
            "etc/systemd/system/picaboot-vm-selftest.service",
            0o644,
            r("selftest.service")?,
        ),
        file(
            "root/.ssh/authorized_keys",
            0o600,
            system.ssh_keys.iter().map(|k| format!("{k}\n")).collect(),
        ),
    ];
    for (i, n) in system.nics.iter().enumerate() {
        let mut c = tera::Context::from_serialize(&ctx)?;
        c.insert("nic", n);
        let text = templates::tera().render("vm/network", &c)?;
        out.push(file(&network_file(i, &n.name), 0o644, text));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The systemd-networkd file of the `i`th NIC (named `name`), relative to the root.
pub fn network_file(i: usize, name: &str) -> String {
    format!("etc/systemd/network/{:02}-{name}.network", 10 + i)
}

fn file(path: &str, mode: u32, text: String) -> ImageFile {
    ImageFile {
        path: path.to_string(),
        mode,
        bytes: text.into_bytes(),
    }
}
