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
