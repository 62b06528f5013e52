//! The VM's disk image: the cached [`base`](super::base) copied, picaboot's files written into
//! it, its units enabled, no host key and no machine id (made at first boot, one per VM), then
//! made into a BIOS-bootable raw disk ([`disk`](super::disk)). Cached by a key over the base and
//! every file: a second build with nothing changed reuses the image.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::render::{self, BootInfo};
use super::system::VmSystem;
use super::{base, disk, VmError};
use crate::exec;

/// Bumped whenever the way an image is assembled changes (disk.rs, this file).
const FORMAT: &str = "picaboot-vm-image-v3";

/// Size of the system disk (sparse; Proxmox grows it with `qm disk resize`).
pub const IMAGE_MIB: u64 = 3072;

/// Units enabled in every VM system.
const UNITS: &[&str] = &[
    "systemd-networkd.service",
    "picaboot-vm-setup.service",
    "picaboot-vm-selftest.service",
];

/// A built (or reused) image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltImage {
    /// Cache key over the base and every file.
    pub key: String,
    /// The raw disk image (never written to by the tests: they boot an overlay).
    pub disk: PathBuf,
    /// The kernel inside it (for the accelerator probe).
    pub kernel: PathBuf,
    /// The image was reused from the cache.
    pub cached: bool,
    /// The Debian base was reused from the cache.
    pub base_cached: bool,
    /// Seconds this build took.
    pub seconds: f64,
}

/// Builds `system`'s image (the base from `build_mirror`), or finds it in `cache`.
pub fn build(system: &VmSystem, build_mirror: &str, cache: &Path) -> Result<BuiltImage, VmError> {
    let start = Instant::now();
    system.validate()?;
    let (base, base_cached) = base::ensure(&system.suite, &system.packages, build_mirror, cache)?;
    let key = image_key(system, &base)?;
    let uuid = uuid_of(&key);
    let dir = cache
        .join("vm-systems")
        .join("images")
        .join(format!("{}-{key}", system.hostname));
    let done = |cached| BuiltImage {
        key: key.clone(),
        disk: dir.join("disk.raw"),
        kernel: dir.join("vmlinuz"),
        cached,
        base_cached,
        seconds: start.elapsed().as_secs_f64(),
    };
    if dir.join("complete").exists() {
        return Ok(done(true));
    }
    let tmp = super::build_dir(&dir)?;
    let stage = tmp.path().join("root");
    exec::run_deadline(
        "copy the VM base",
        Command::new("cp")
            .args(["-a", "--one-file-system"])
            .arg(&base.tree)
            .arg(&stage),
        None,
        Duration::from_secs(600),
    )?;
    let boot = BootInfo {
        root_uuid: uuid.clone(),
        kernel: base.kernel.clone(),
        initrd: base.initrd.clone(),
    };
    customise(system, &boot, &stage)?;
    disk::make(&stage, &uuid, &tmp.path().join("disk.raw"), IMAGE_MIB)?;
    let k = base.tree.join("boot").join(&base.kernel);
    std::fs::copy(&k, tmp.path().join("vmlinuz")).map_err(VmError::io("copy", &k))?;
    std::fs::remove_dir_all(&stage).map_err(VmError::io("remove", &stage))?;
    std::fs::write(tmp.path().join("complete"), &key).map_err(VmError::io("write", tmp.path()))?;
    super::image::publish(tmp, &dir)?;
    Ok(done(false))
}

/// The key over the base, the image size, every rendered file (with a placeholder UUID: the
/// UUID is derived from this key) and root's password hash.
pub fn image_key(system: &VmSystem, base: &base::Base) -> Result<String, VmError> {
    let boot = BootInfo {
        root_uuid: "ROOT-UUID".into(),
        kernel: base.kernel.clone(),
        initrd: base.initrd.clone(),
    };
    let mut h = Sha256::new();
    for p in [
        FORMAT,
        &base.key,
        &IMAGE_MIB.to_string(),
        &UNITS.join(","),
        &disk::CORE_MODULES.join(","),
        &disk::early_config("ROOT-UUID"),
    ] {
        h.update(p.as_bytes());
        h.update([0]);
    }
    for f in render::files(system, &boot)? {
        h.update(f.path.as_bytes());
        h.update(f.mode.to_be_bytes());
        h.update((f.bytes.len() as u64).to_be_bytes());
        h.update(&f.bytes);
    }
    h.update(
        system
            .root_password_hash
            .as_deref()
            .unwrap_or("")
            .as_bytes(),
    );
    Ok(hex::encode(&h.finalize()[..12]))
}

/// A filesystem UUID made from `key` (the same image, the same UUID).
pub fn uuid_of(key: &str) -> String {
    let h = hex::encode(Sha256::digest(key.as_bytes()));
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Writes picaboot's files into `stage`, enables the units, removes what must be per VM.
fn customise(system: &VmSystem, boot: &BootInfo, stage: &Path) -> Result<(), VmError> {
    for f in render::files(system, boot)? {
        put(&stage.join(&f.path), &f.bytes, f.mode)?;
    }
    exec::run_deadline(
        "enable the VM's units",
        Command::new("chroot")
            .arg(stage)
            .args(["systemctl", "enable"])
            .args(UNITS),
        None,
        Duration::from_secs(120),
    )?;
    let ssh = stage.join("etc/ssh");
    for e in std::fs::read_dir(&ssh)
        .map_err(VmError::io("read", &ssh))?
        .flatten()
    {
        if e.file_name().to_string_lossy().starts_with("ssh_host_") {
            std::fs::remove_file(e.path()).map_err(VmError::io("remove", &ssh))?;
        }
    }
    // No machine id: systemd makes one at first boot, one per VM (dbus's copy would be
    // taken over otherwise, the same in every VM).
    let mid = stage.join("etc/machine-id");
    std::fs::write(&mid, "").map_err(VmError::io("write", &mid))?;
    let dbus_id = stage.join("var/lib/dbus/machine-id");
    if dbus_id.symlink_metadata().is_ok() {
        std::fs::remove_file(&dbus_id).map_err(VmError::io("remove", &dbus_id))?;
    }
    std::fs::set_permissions(
        stage.join("root/.ssh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(VmError::io("chmod", stage))?;
    set_root_password(stage, system.root_password_hash.as_deref())
}

/// Sets root's hash in `/etc/shadow` (`*`: no password login when there is none).
fn set_root_password(stage: &Path, hash: Option<&str>) -> Result<(), VmError> {
    let p = stage.join("etc/shadow");
    let text = std::fs::read_to_string(&p).map_err(VmError::io("read", &p))?;
    let out: String = text
        .lines()
        .map(|l| match l.split_once(':') {
            Some(("root", rest)) => {
                let tail = rest.split_once(':').map(|(_, t)| t).unwrap_or("");
                format!("root:{}:{tail}\n", hash.unwrap_or("*"))
            }
            _ => format!("{l}\n"),
        })
        .collect();
    // In place: /etc/shadow keeps its owner and group (root:shadow).
    crate::output::write_file(&p, out.as_bytes(), 0o640).map_err(|e| VmError::Io {
        what: "write",
        path: p.clone(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Writes a file of the staged tree: parents made, and whatever was at `path` (a symlink that
/// would point out of the tree, e.g. `/etc/resolv.conf`) removed first.
fn put(path: &Path, bytes: &[u8], mode: u32) -> Result<(), VmError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(VmError::io("create", parent))?;
    }
    if path.symlink_metadata().is_ok() {
        std::fs::remove_file(path).map_err(VmError::io("remove", path))?;
    }
    crate::output::write_file(path, bytes, mode).map_err(|e| VmError::Io {
        what: "write",
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Renames the finished build `tmp` to `dir`. Entries are only ever renamed into place
/// complete, so when another run got there first (a concurrent build of the same key), its
/// entry is the same and is kept: never removed while that run may be using it.
pub fn publish(tmp: tempfile::TempDir, dir: &Path) -> Result<(), VmError> {
    if dir.join("complete").exists() {
        return Ok(()); // tmp is removed on drop
    }
    let built = tmp.keep();
    match std::fs::rename(&built, dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.join("complete").exists() => {
            let _ = std::fs::remove_dir_all(&built);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&built);
            Err(VmError::Io {
                what: "rename into place",
                path: dir.to_path_buf(),
                source: e,
            })
        }
    }
}
