//! The VMs on the cluster's nodes: whether they fit their node, the Proxmox side (`vm
//! create`: the `qm` sequence over SSH), and their system.

pub mod apply;
pub mod create;
pub mod fit;

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
