//! What kind of failure an error is. Every error type of the library says it itself, beside
//! its variants ([`ExitClass`]); the CLI turns the class into its exit code by walking an
//! error's chain ([`of`] for each link), without knowing any type's variants.

use std::error::Error as StdError;

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Bad input: profiles, image specs, arguments.
    User,
    /// The environment: a tool, the network, a mirror, the file system.
    Env,
    /// A test ran and failed.
    Test,
    /// An internal error: a bug in picaboot.
    Bug,
    /// Standard output was closed by its reader (`| head`): a quiet exit 0, nothing printed.
    Quiet,
}

/// An error type that says which class of failure it is.
pub trait ExitClass {
    /// The class of this error.
    fn exit_class(&self) -> Class;
}

/// Implements [`ExitClass`] with one fixed class for each type listed.
macro_rules! fixed_class {
    ($class:expr; $($t:ty),* $(,)?) => {$(
        impl $crate::exit_class::ExitClass for $t {
            fn exit_class(&self) -> $crate::exit_class::Class {
                $class
            }
        }
    )*};
}
pub(crate) use fixed_class;

// A bare I/O error, EPIPE included (a child's stdin that closed is the environment's): only
// a write to stdout that failed with EPIPE is quiet, and the CLI types that one itself.
fixed_class!(Class::Env; std::io::Error);

/// Tries each listed type on one link of a chain.
macro_rules! first_of {
    ($c:expr; $($t:ty),* $(,)?) => {{
        let c: &(dyn StdError + 'static) = $c;
        None$(.or_else(|| c.downcast_ref::<$t>().map(ExitClass::exit_class)))*
    }};
}

/// The class of one link of an error chain when it is one of the library's error types.
/// Only the types are listed here; what each variant is, each type says.
pub fn of(c: &(dyn StdError + 'static)) -> Option<Class> {
    use crate::*;
    first_of!(c;
        std::io::Error,
        archive::ArchiveError,
        exec::ExecError,
        serve::mirror::MirrorError,
        qemu::guest::GuestError,
        storage::PlanError,
        profile::Diagnostics,
        profile::ProfileError,
        image::SpecError,
        render::RenderError,
        output::OutputError,
        debian::DebianError,
        netboot::NetbootError,
        install::harness::HarnessError,
        serve::ServeError,
        registry::RegistryError,
        image::build::BuildError,
        image::runtest::CheckError,
        amt::AmtError,
        ops::OpsError,
        ops::form::FormError,
        ops::form_plan::PlanError,
        ops::reinstall::Refusal,
        ops::reinstall::run::ReinstallError,
        vm::VmError,
        services::ServicesError,
        services::apply::ApplyError,
        services::test_registry::TestRegistryError,
        vm::system::SystemError,
        serve::session::SessionError,
        install::scenario::InstallError,
        qemu::podman::ImageVmError,
        limits::TooLarge,
        vm::VmArgError,
        vm::test_vm::TestVmError,
        vm::apply::ApplyError,
        vm::create::Refusal,
        vm::create::StateError,
        backup::KeyError,
        backup::proxmox::StateError,
        backup::plan::FormError,
        ops::backup_form::BackupPlanError,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wrapper that forwards its inner error transparently (`#[error(transparent)]` hides
    /// the inner error from `source()`) is classified by its own impl, which asks the inner.
    #[test]
    fn wrappers_are_classified_through_their_own_impl() {
        use crate::netboot::NetbootError;
        use crate::ops::reinstall::run::ReinstallError;
        let e = ReinstallError::from(NetbootError::Mirror("--mirror ftp://x".into()));
        assert_eq!(of(&e), Some(Class::User));
        let e = ReinstallError::Failed("alice: the install failed".into());
        assert_eq!(of(&e), Some(Class::Test));
        let e = crate::serve::session::SessionError::Syslog {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: std::io::Error::other("in use"),
        };
        assert_eq!(of(&e), Some(Class::Env));
    }
}
