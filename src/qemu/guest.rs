//! Test guests: a small Debian system built once with debootstrap (the Debian kernel and the
//! packages a scenario needs), cached by content under `$XDG_CACHE_HOME/picaboot/vm/`, booted
//! with `-kernel/-initrd` from an ext4 image made by `mkfs.ext4 -d` (no loop mounts). A second,
//! read-only disk labelled `scenario` carries the script to run; the guest's PID 1 runs it,
//! prints `PICABOOT-DONE rc=N` on the console and powers off.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::exec::{self, ExecError};

/// PID 1 of every test guest.
pub const GUEST_INIT: &str = r#"#!/bin/sh
# PID 1 of picaboot's test guests: mount the basics, run /scenario/run, report, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run /tmp /scenario
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
mount -o remount,rw /
echo "PICABOOT-BOOTED"
dev=$(blkid -L scenario)
if [ -n "$dev" ] && mount -o ro "$dev" /scenario; then
	sh /scenario/run
	rc=$?
else
	echo "PICABOOT-CHECK scenario-disk FAIL no disk labelled scenario"
	rc=99
fi
echo "PICABOOT-DONE rc=$rc"
sync
echo o > /proc/sysrq-trigger
sleep 30
"#;

/// Bumped when the way a guest is built changes, to invalidate cached images.
const FORMAT: &str = "picaboot-guest-v1";

/// Why a guest could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// A tool failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The debootstrapped system has no kernel or initrd.
    #[error("no kernel/initrd in {0} after debootstrap")]
    NoKernel(PathBuf),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> GuestError + 'a {
    move |source| GuestError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// What a guest image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestRecipe {
    /// Debian suite.
    pub suite: String,
    /// Mirror URL.
    pub mirror: String,
    /// Packages beyond minbase (the kernel is always added).
    pub packages: Vec<String>,
    /// Root image size in MiB.
    pub image_mib: u64,
}

impl GuestRecipe {
    /// Content key of the image (the mirror is not part of it: the same suite and packages
    /// from another mirror are the same system).
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        for part in [FORMAT, &self.suite, GUEST_INIT, &self.image_mib.to_string()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let mut p = self.packages.clone();
        p.sort();
        h.update(p.join(",").as_bytes());
        hex::encode(&h.finalize()[..12])
    }
}

/// A built guest: kernel, initrd and root image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    /// Kernel.
    pub kernel: PathBuf,
    /// Initrd.
    pub initrd: PathBuf,
    /// ext4 root image (use it with `snapshot` so that it stays clean).
    pub root: PathBuf,
}

/// `$XDG_CACHE_HOME/picaboot` (default `~/.cache/picaboot`), shared with the Debian cache.
pub fn cache_root() -> PathBuf {
    crate::debian::cache::Cache::default_dir()
}

/// Returns the cached guest for `recipe`, building it first when needed.
pub fn build(recipe: &GuestRecipe, cache: &Path) -> Result<Guest, GuestError> {
    let dir = cache.join("vm").join(recipe.key());
    let guest = Guest {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        root: dir.join("root.img"),
    };
    if dir.join("complete").exists() {
        log::info!("guest image {} reused from cache", dir.display());
        return Ok(guest);
    }
    let parent = cache.join("vm");
    std::fs::create_dir_all(&parent).map_err(io("create", &parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(&parent)
        .map_err(io("create temporary directory in", &parent))?;
    let rootfs = tmp.path().join("rootfs");
    let mut include = vec![
        "linux-image-amd64".to_string(),
        "initramfs-tools".to_string(),
        "kmod".to_string(),
    ];
    include.extend(recipe.packages.iter().cloned());
    let spin = crate::progress::spinner(&format!(
        "building test guest ({} {}, {}) with debootstrap; cached afterwards",
        recipe.suite,
        include.join(","),
        dir.display()
    ));
    exec::run_lines(
        "debootstrap the test guest",
        Command::new("debootstrap")
            .args([
                "--variant=minbase",
                &format!("--include={}", include.join(",")),
            ])
            .arg(&recipe.suite)
            .arg(&rootfs)
            .arg(&recipe.mirror),
        &mut |l| spin.line(l),
    )?;
    spin.finish("test guest: debootstrap done");
    let init = rootfs.join("usr/local/sbin/picaboot-guest-init");
    crate::output::write_file(&init, GUEST_INIT.as_bytes(), 0o755).map_err(|e| GuestError::Io {
        what: "write",
        path: init.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    for d in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let p = rootfs.join(d);
        if let Ok(entries) = std::fs::read_dir(&p) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    let boot = rootfs.join("boot");
    let find = |prefix: &str| -> Option<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&boot)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .collect();
        v.sort();
        v.pop()
    };
    let (Some(kernel), Some(initrd)) = (find("vmlinuz-"), find("initrd.img-")) else {
        return Err(GuestError::NoKernel(rootfs));
    };
    std::fs::copy(&kernel, tmp.path().join("vmlinuz")).map_err(io("copy", &kernel))?;
    std::fs::copy(&initrd, tmp.path().join("initrd.img")).map_err(io("copy", &initrd))?;
    exec::run(
        "make the guest root image",
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "pbroot", "-d"])
            .arg(&rootfs)
            .arg(tmp.path().join("root.img"))
            .arg(format!("{}M", recipe.image_mib)),
    )?;
    std::fs::remove_dir_all(&rootfs).map_err(io("remove", &rootfs))?;
    std::fs::write(tmp.path().join("complete"), recipe.key()).map_err(io("write", tmp.path()))?;
    let built = tmp.keep();
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::rename(&built, &dir).map_err(io("rename into place", &dir))?;
    Ok(guest)
}

/// Makes the read-only `scenario` disk from a directory (its `run` script is executed), sized
/// for its content.
pub fn scenario_disk(dir: &Path, image: &Path) -> Result<(), GuestError> {
    let content = dir_size(dir);
    let mib = (content / (1 << 20)) * 12 / 10 + 64;
    exec::run(
        "make the scenario disk",
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "scenario", "-d"])
            .arg(dir)
            .arg(image)
            .arg(format!("{mib}M")),
    )?;
    Ok(())
}

/// Bytes of the regular files below `dir` (not following links).
fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Creates a sparse raw disk image of `bytes`.
pub fn sparse_disk(path: &Path, bytes: u64) -> Result<(), GuestError> {
    let f = std::fs::File::create(path).map_err(io("create", path))?;
    f.set_len(bytes).map_err(io("size", path))
}

crate::exit_class::fixed_class!(crate::exit_class::Class::Env; GuestError);
