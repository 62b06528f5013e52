//! The Debian base of every VM system: `debootstrap --variant=minbase` from the verified
//! archive (Debian's archive keyring, the signed chain of `InRelease`) with the kernel, GRUB's
//! BIOS modules, systemd-networkd, sshd, LVM and sfdisk; cached by a key over the suite and packages
//! (the mirror is not part of it: the same signed packages from another mirror are the same).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::VmError;
use crate::exec;

/// Bumped whenever the way a base is made changes.
const FORMAT: &str = "picaboot-vm-base-v1";

/// Seconds debootstrap may take (measured: about 100 s here); coreutils' `timeout` then ends
/// its whole process group (dpkg and the chroots included).
const DEBOOTSTRAP_LIMIT: u32 = 1800;

/// Packages beyond minbase.
pub const PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "initramfs-tools",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "iproute2",
    "procps",
    "openssh-server",
    "lvm2",
    "e2fsprogs",
    // sfdisk: picaboot-vm-setup grows the root partition to the disk Proxmox resized (partx,
    // in util-linux, then tells the kernel; resize2fs grows the filesystem online).
    "fdisk",
    "grub-pc-bin",
];

/// A built base: its tree and the kernel it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// Cache key.
    pub key: String,
    /// The root tree.
    pub tree: PathBuf,
    /// Kernel file name in `/boot`.
    pub kernel: String,
    /// Initrd file name in `/boot`.
    pub initrd: String,
}

/// The key of the base of `suite` with `extra` packages (sorted) beyond [`PACKAGES`].
pub fn key(suite: &str, extra: &[String]) -> String {
    let mut h = Sha256::new();
    for p in [FORMAT, suite, &PACKAGES.join(",")] {
        h.update(p.as_bytes());
        h.update([0]);
    }
    // Without extra packages, the key is the one bases had before roles added any.
    if !extra.is_empty() {
        h.update(extra.join(",").as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..12])
}

/// The cached base of `suite` with the `extra` packages (a VM's roles'), built from `mirror`
/// first when needed; `cached` tells which.
pub fn ensure(
    suite: &str,
    extra: &[String],
    mirror: &str,
    cache: &Path,
) -> Result<(Base, bool), VmError> {
    let key = key(suite, extra);
    let dir = cache.join("vm-systems").join("base").join(&key);
    if dir.join("complete").exists() {
        return Ok((found(&key, &dir)?, true));
    }
    let tmp = super::build_dir(&dir)?;
    let tree = tmp.path().join("tree");
    let spin = crate::progress::spinner(&format!(
        "debootstrap of the VM base ({suite}, verified with {}); cached in {}",
        crate::debian::DEFAULT_KEYRING,
        dir.display()
    ));
    exec::run_lines(
        "debootstrap the VM base",
        Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "timeout", "--kill-after=30"])
            .arg(DEBOOTSTRAP_LIMIT.to_string())
            .args(["debootstrap", "--variant=minbase"])
            .arg(format!("--keyring={}", crate::debian::DEFAULT_KEYRING))
            .arg(format!("--include={}", includes(extra)))
            .arg(suite)
            .arg(&tree)
            .arg(mirror),
        &mut |l| spin.line(l),
    )?;
    spin.finish("VM base: debootstrap done");
    for d in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        remove_files_in(&tree.join(d));
    }
    std::fs::write(tmp.path().join("complete"), &key).map_err(VmError::io("write", tmp.path()))?;
    super::image::publish(tmp, &dir)?;
    Ok((found(&key, &dir)?, false))
}

/// debootstrap's `--include`: the base's packages, then the extra ones.
fn includes(extra: &[String]) -> String {
    let all: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect();
    all.join(",")
}

/// The base in `dir`: its tree and newest kernel and initrd.
fn found(key: &str, dir: &Path) -> Result<Base, VmError> {
    let tree = dir.join("tree");
    let boot = tree.join("boot");
    let newest = |prefix: &str| -> Option<String> {
        let mut v: Vec<String> = std::fs::read_dir(&boot)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect();
        v.sort();
        v.pop()
    };
    match (newest("vmlinuz-"), newest("initrd.img-")) {
        (Some(kernel), Some(initrd)) => Ok(Base {
            key: key.to_string(),
            tree,
            kernel,
            initrd,
        }),
        _ => Err(VmError::NoKernel(boot)),
    }
}

/// Removes the regular files directly in `dir` (apt's caches).
fn remove_files_in(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
