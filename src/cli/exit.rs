//! The exit-code contract, in one place for every command: 0 ok, 1 bad input (profiles,
//! specs, arguments), 2 environment (a missing tool, the network, a mirror serving bad data,
//! the file system), 3 a test that ran and failed, [`EXIT_BUG`] an internal error.
//!
//! An error is classified by the first typed error in its chain that says what it is. An
//! error that no type in the chain explains is not guessed to be the environment's fault: it
//! is reported as a bug in picaboot.

use std::error::Error as StdError;

use crate::archive::ArchiveError;
use crate::debian::DebianError;
use crate::exec::ExecError;
use crate::image::build::BuildError;
use crate::image::runtest::CheckError;
use crate::image::SpecError;
use crate::netboot::NetbootError;
use crate::output::OutputError;
use crate::profile::ProfileError;
use crate::qemu::guest::GuestError;
use crate::qemu::podman::ImageVmError;
use crate::registry::RegistryError;
use crate::render::RenderError;
use crate::serve::mirror::MirrorError;
use crate::serve::ServeError;

use super::{TestFailed, UsageError, EXIT_ENV, EXIT_TEST, EXIT_USER};

/// Exit code: an internal error (a bug in picaboot), as `EX_SOFTWARE` of sysexits.h.
pub const EXIT_BUG: i32 = 70;

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
}

impl Class {
    /// The exit code of this class.
    pub fn code(self) -> i32 {
        match self {
            Class::User => EXIT_USER,
            Class::Env => EXIT_ENV,
            Class::Test => EXIT_TEST,
            Class::Bug => EXIT_BUG,
        }
    }
}

/// A failure of the environment detected by the CLI itself (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(pub String);

/// Classifies an error by the first cause in its chain whose type says what it is.
pub fn classify(err: &anyhow::Error) -> Class {
    err.chain().find_map(cause).unwrap_or(Class::Bug)
}

fn cause(c: &(dyn StdError + 'static)) -> Option<Class> {
    if c.is::<TestFailed>() {
        return Some(Class::Test);
    }
    if c.is::<UsageError>() {
        return Some(Class::User);
    }
    if c.is::<EnvError>() || c.is::<std::io::Error>() || c.is::<ArchiveError>() {
        return Some(Class::Env);
    }
    if c.is::<ExecError>() || c.is::<MirrorError>() || c.is::<GuestError>() {
        return Some(Class::Env);
    }
    if c.is::<crate::storage::PlanError>() || c.is::<crate::profile::Diagnostics>() {
        return Some(Class::User);
    }
    if c.is::<ProfileError>() {
        // Invalid profiles, or an unreadable profiles directory (a wrong `--profiles`).
        return Some(Class::User);
    }
    if let Some(e) = c.downcast_ref::<SpecError>() {
        return Some(spec(e));
    }
    if let Some(e) = c.downcast_ref::<RenderError>() {
        return Some(match e {
            RenderError::UnknownHost { .. } | RenderError::LockedVersion { .. } => Class::User,
            // Contexts are typed: a template that fails is picaboot's fault.
            RenderError::Template { .. } => Class::Bug,
            RenderError::Output(o) => output(o),
        });
    }
    if let Some(e) = c.downcast_ref::<OutputError>() {
        return Some(output(e));
    }
    if let Some(e) = c.downcast_ref::<DebianError>() {
        return Some(debian(e));
    }
    if let Some(e) = c.downcast_ref::<NetbootError>() {
        return Some(match e {
            NetbootError::Profile { .. } => Class::User,
            NetbootError::Installer(_) => Class::Env,
            NetbootError::Debian(d) => debian(d),
            NetbootError::Exec(_) => Class::Env,
            NetbootError::Output(o) => output(o),
        });
    }
    if let Some(e) = c.downcast_ref::<crate::install::harness::HarnessError>() {
        use crate::install::harness::HarnessError as H;
        return Some(match e {
            H::Debian(d) => debian(d),
            H::StaleIndex { .. } | H::Exec(_) | H::Other(_) => Class::Env,
        });
    }
    if let Some(e) = c.downcast_ref::<ServeError>() {
        return Some(match e {
            ServeError::Root { .. } => Class::User,
            _ => Class::Env,
        });
    }
    if let Some(e) = c.downcast_ref::<RegistryError>() {
        return Some(if e.is_user_error() {
            Class::User
        } else {
            Class::Env
        });
    }
    if let Some(e) = c.downcast_ref::<BuildError>() {
        return Some(match e {
            BuildError::Spec(s) => spec(s),
            _ => Class::Env,
        });
    }
    if let Some(e) = c.downcast_ref::<CheckError>() {
        return Some(match e {
            CheckError::Failed { .. } => Class::Test,
            _ => Class::Env,
        });
    }
    if let Some(e) = c.downcast_ref::<crate::amt::AmtError>() {
        return Some(match e {
            crate::amt::AmtError::Credentials(_)
            | crate::amt::AmtError::WrongCredentials { .. } => Class::User,
            _ => Class::Env,
        });
    }
    if let Some(e) = c.downcast_ref::<crate::ops::OpsError>() {
        return Some(match e {
            crate::ops::OpsError::NoVpro(_) | crate::ops::OpsError::UnknownHost { .. } => {
                Class::User
            }
            _ => Class::Env,
        });
    }
    if let Some(e) = c.downcast_ref::<crate::ops::form::FormError>() {
        use crate::ops::form::FormError as F;
        return Some(match e {
            F::NoPassword | F::PasswordFile { .. } => Class::User,
            F::NotFormed(_) => Class::Test,
            _ => Class::Env,
        });
    }
    if c.is::<crate::ops::reinstall::Refusal>() {
        return Some(Class::Env);
    }
    if let Some(e) = c.downcast_ref::<crate::install::scenario::InstallError>() {
        use crate::install::harness::HarnessError;
        use crate::install::scenario::InstallError as I;
        return Some(match e {
            I::Profile(_) | I::Shape(_) | I::Harness(HarnessError::StaleIndex { .. }) => {
                Class::User
            }
            I::Render(r) => match r {
                RenderError::UnknownHost { .. } | RenderError::LockedVersion { .. } => Class::User,
                RenderError::Template { .. } => Class::Bug,
                RenderError::Output(o) => output(o),
            },
            I::Netboot(NetbootError::Profile { .. }) => Class::User,
            _ => Class::Env,
        });
    }
    if let Some(e) = c.downcast_ref::<ImageVmError>() {
        return Some(match e {
            ImageVmError::BadName(_) => Class::User,
            _ => Class::Env,
        });
    }
    None
}

fn spec(e: &SpecError) -> Class {
    match e {
        SpecError::Invalid(_) | SpecError::Unknown(_) | SpecError::Io { .. } => Class::User,
    }
}

fn output(e: &OutputError) -> Class {
    match e {
        // Output paths come from picaboot's own trees, never from the user.
        OutputError::BadPath(_) => Class::Bug,
        OutputError::NotReplaceable { .. } | OutputError::Collision { .. } => Class::User,
        OutputError::Io { .. } => Class::Env,
    }
}

fn debian(e: &DebianError) -> Class {
    match e {
        DebianError::Exec(_) | DebianError::Archive(_) => Class::Env,
        // Network, a mirror that serves bad or stale data, no mirror or keyring on this
        // machine, the cache: all the environment.
        _ => Class::Env,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_code() {
        let user: anyhow::Error = UsageError("x".into()).into();
        assert_eq!(classify(&user).code(), 1);
        let env = anyhow::Error::from(std::io::Error::other("disk full")).context("writing out/");
        assert_eq!(classify(&env).code(), 2);
        let test: anyhow::Error = TestFailed("a check failed".into()).into();
        assert_eq!(classify(&test.context("image test")).code(), 3);
        let no_mirror: anyhow::Error = DebianError::NoMirror("none in apt's sources".into()).into();
        assert_eq!(classify(&no_mirror.context("serve")).code(), 2);
        let bug = anyhow::anyhow!("an invariant broke");
        assert_eq!(classify(&bug), Class::Bug);
        assert_eq!(classify(&bug).code(), EXIT_BUG);
        let bad_path: anyhow::Error = OutputError::BadPath("../x".into()).into();
        assert_eq!(classify(&bad_path), Class::Bug);
    }

    #[test]
    fn the_first_typed_cause_decides() {
        // Context added on top of a typed error does not change its class.
        let e = anyhow::Error::from(NetbootError::Exec(ExecError::NotFound {
            task: "t".into(),
            program: "gpgv".into(),
            package: "gpgv".into(),
        }))
        .context("netboot alice");
        assert_eq!(classify(&e), Class::Env);
    }
}
