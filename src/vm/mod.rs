//! The VMs on the cluster's nodes: whether they fit their node ([`fit`]), the Proxmox side
//! (`vm create`: the `qm` sequence over SSH, [`create`] and [`apply`]), and their own
//! systems: [`system::VmSystem`] (what a VM needs), the files picaboot renders for it
//! ([`render`]), the Debian base ([`base`]), the bootable disk image ([`image`]) and its proof
//! in QEMU ([`proof`], `picaboot test vm NAME`).

pub mod apply;
pub mod base;
pub mod create;
pub mod disk;
pub mod fit;
pub mod from_profile;
pub mod image;
pub mod proof;
pub mod render;
pub mod roles;
pub mod system;
pub mod test_vm;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::exec::ExecError;

/// Why a VM system could not be built or tested.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The system's description is unusable.
    #[error(transparent)]
    System(#[from] system::SystemError),
    /// A tool failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A template failed to render.
    #[error("rendering the VM's files: {0}")]
    Render(#[from] tera::Error),
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
    /// The base has no kernel.
    #[error("no kernel/initrd in {0} after debootstrap")]
    NoKernel(PathBuf),
}

/// A temporary directory beside `dir` (same filesystem), where a cache entry is built before
/// it is renamed into place.
pub(crate) fn build_dir(dir: &Path) -> Result<tempfile::TempDir, VmError> {
    let parent = dir.parent().expect("has a parent");
    std::fs::create_dir_all(parent).map_err(VmError::io("create", parent))?;
    tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(parent)
        .map_err(VmError::io("create a directory in", parent))
}

impl VmError {
    /// An I/O error mapper for `what` on `path`.
    pub fn io<'a>(
        what: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> VmError + 'a {
        move |source| VmError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl crate::exit_class::ExitClass for VmError {
    fn exit_class(&self) -> crate::exit_class::Class {
        match self {
            VmError::System(_) => crate::exit_class::Class::User,
            _ => crate::exit_class::Class::Env,
        }
    }
}

/// A VM asked for on the command line that the profiles do not have, or a missing argument.
#[derive(Debug, thiserror::Error)]
pub enum VmArgError {
    /// No such VM profile.
    #[error("no VM profile `{name}` (vms/{name}.toml); known: {known}")]
    Unknown {
        /// Name asked for.
        name: String,
        /// Names known.
        known: String,
    },
    /// `vm create` without `--dry-run` needs the image.
    #[error("vm create {0}: --image FILE names the system image to import")]
    NoImage(String),
}

crate::exit_class::fixed_class!(crate::exit_class::Class::User; VmArgError);

/// `pica01 (alice, vmid 101): 2 cores, 8 GiB, disks 40 GiB + 200 GiB; net0 vmbr0 …`.
pub fn summary(v: &crate::profile::Vm) -> String {
    let nics: Vec<String> = v
        .nics
        .iter()
        .map(|n| {
            let addrs: Vec<String> = n
                .ipv4
                .map(|a| a.to_string())
                .into_iter()
                .chain(n.ipv6.map(|a| a.to_string()))
                .collect();
            format!("{} {} {}", n.name, n.bridge, addrs.join(" "))
        })
        .collect();
    format!(
        "{} ({}, vmid {}): {} cores, {}, disks {}{}; {}",
        v.name,
        v.node,
        v.vmid,
        v.cores,
        fit::gib(v.memory_bytes),
        fit::gib(v.system_disk.size_bytes),
        v.data_disk
            .as_ref()
            .map(|d| format!(
                " + {} ({}/{} on {})",
                fit::gib(d.disk.size_bytes),
                d.volume_group,
                d.volume,
                d.mount
            ))
            .unwrap_or_default(),
        nics.join("; ")
    )
}
