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
    /// Standard output was closed by its reader (`| head`): a quiet exit 0, nothing printed.
    Quiet,
}

impl Class {
    /// The exit code of this class.
    pub fn code(self) -> i32 {
        match self {
            Class::User => EXIT_USER,
            Class::Env => EXIT_ENV,
            Class::Test => EXIT_TEST,
            Class::Bug => EXIT_BUG,
            Class::Quiet => 0,
        }
    }
}

/// A failure of the environment detected by the CLI itself (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(pub String);

/// An error type that says which exit class it is. Every typed error the CLI can meet
/// implements it here, beside the contract, so that no rule is written that cannot match.
pub trait ExitClass {
    /// The exit class of this error.
    fn exit_class(&self) -> Class;
}

/// The typed errors, in the order they are tried at each link of an error's chain.
macro_rules! classified {
    ($c:expr; $($t:ty),* $(,)?) => {{
        let c: &(dyn StdError + 'static) = $c;
        None$(.or_else(|| c.downcast_ref::<$t>().map(ExitClass::exit_class)))*
    }};
}

/// Classifies an error. A [`Refusal`] attached as context (reinstall's decision not to
/// start) decides first: anyhow's `downcast_ref` sees context objects, which `chain()`
/// hides behind their wrapper. Otherwise the first cause in the chain whose type says what
/// it is decides; an error no type explains is a bug.
///
/// [`Refusal`]: crate::ops::reinstall::Refusal
pub fn classify(err: &anyhow::Error) -> Class {
    if let Some(r) = err.downcast_ref::<crate::ops::reinstall::Refusal>() {
        return r.exit_class();
    }
    err.chain().find_map(cause).unwrap_or(Class::Bug)
}

fn cause(c: &(dyn StdError + 'static)) -> Option<Class> {
    use crate::install::harness::HarnessError;
    use crate::install::scenario::InstallError;
    use crate::ops::form::FormError;
    use crate::ops::reinstall::Refusal;
    classified!(c;
        super::out::StdoutClosed, TestFailed, UsageError, EnvError, std::io::Error,
        ArchiveError, ExecError, MirrorError, GuestError, crate::storage::PlanError,
        crate::profile::Diagnostics, ProfileError, SpecError, RenderError, OutputError,
        DebianError, NetbootError, HarnessError, ServeError, RegistryError, BuildError,
        CheckError, crate::amt::AmtError, crate::ops::OpsError, FormError, Refusal,
        InstallError, ImageVmError, crate::limits::TooLarge,
    )
}

/// Implements [`ExitClass`] with one fixed class.
macro_rules! fixed {
    ($class:expr; $($t:ty),* $(,)?) => {$(
        impl ExitClass for $t {
            fn exit_class(&self) -> Class {
                $class
            }
        }
    )*};
}

fixed!(Class::Test; TestFailed);
fixed!(Class::User; UsageError, crate::storage::PlanError, crate::profile::Diagnostics);
// Invalid profiles, or an unreadable profiles directory (a wrong `--profiles`).
fixed!(Class::User; ProfileError);
fixed!(Class::Env; EnvError, ArchiveError, ExecError, MirrorError, GuestError);
// A reply larger than the limit of its kind: the server's fault.
fixed!(Class::Env; crate::limits::TooLarge);
fixed!(Class::Quiet; super::out::StdoutClosed);

// A bare I/O error, EPIPE included (a child's stdin that closed is the environment's): only
// a write to stdout that failed with EPIPE is quiet, and `out` types it as `StdoutClosed`.
fixed!(Class::Env; std::io::Error);

impl ExitClass for SpecError {
    fn exit_class(&self) -> Class {
        spec(self)
    }
}

impl ExitClass for RenderError {
    fn exit_class(&self) -> Class {
        render(self)
    }
}

impl ExitClass for OutputError {
    fn exit_class(&self) -> Class {
        output(self)
    }
}

impl ExitClass for DebianError {
    fn exit_class(&self) -> Class {
        debian(self)
    }
}

impl ExitClass for NetbootError {
    fn exit_class(&self) -> Class {
        match self {
            NetbootError::Profile { .. } => Class::User,
            NetbootError::Installer(_) => Class::Env,
            NetbootError::Debian(d) => debian(d),
            NetbootError::Exec(_) => Class::Env,
            NetbootError::Output(o) => output(o),
        }
    }
}

impl ExitClass for crate::install::harness::HarnessError {
    fn exit_class(&self) -> Class {
        use crate::install::harness::HarnessError as H;
        match self {
            H::Debian(d) => debian(d),
            H::StaleIndex { .. } | H::Exec(_) | H::Other(_) => Class::Env,
        }
    }
}

impl ExitClass for ServeError {
    fn exit_class(&self) -> Class {
        match self {
            ServeError::Root { .. } => Class::User,
            _ => Class::Env,
        }
    }
}

impl ExitClass for RegistryError {
    fn exit_class(&self) -> Class {
        if self.is_user_error() {
            Class::User
        } else {
            Class::Env
        }
    }
}

impl ExitClass for BuildError {
    fn exit_class(&self) -> Class {
        match self {
            BuildError::Spec(s) => spec(s),
            _ => Class::Env,
        }
    }
}

impl ExitClass for CheckError {
    fn exit_class(&self) -> Class {
        match self {
            CheckError::Failed { .. } => Class::Test,
            _ => Class::Env,
        }
    }
}

impl ExitClass for crate::amt::AmtError {
    fn exit_class(&self) -> Class {
        match self {
            crate::amt::AmtError::Credentials(_)
            | crate::amt::AmtError::WrongCredentials { .. }
            | crate::amt::AmtError::ConsentNeeded
            | crate::amt::AmtError::ConsentRefused(_)
            | crate::amt::AmtError::ConsentCodeFormat => Class::User,
            _ => Class::Env,
        }
    }
}

impl ExitClass for crate::ops::OpsError {
    fn exit_class(&self) -> Class {
        match self {
            crate::ops::OpsError::NoVpro(_) | crate::ops::OpsError::UnknownHost { .. } => {
                Class::User
            }
            _ => Class::Env,
        }
    }
}

impl ExitClass for crate::ops::form::FormError {
    fn exit_class(&self) -> Class {
        use crate::ops::form::FormError as F;
        match self {
            F::NoPassword | F::PasswordFile { .. } => Class::User,
            F::NotFormed(_) => Class::Test,
            _ => Class::Env,
        }
    }
}

impl ExitClass for crate::ops::reinstall::Refusal {
    fn exit_class(&self) -> Class {
        use crate::ops::reinstall::Refusal as R;
        match self {
            // Profiles that do not check, or an operator who did not confirm: bad input.
            R::Check { .. } | R::NotConfirmed { .. } => Class::User,
            // The box's AMT does not answer: the environment.
            R::VproSilent { .. } => Class::Env,
        }
    }
}

impl ExitClass for crate::install::scenario::InstallError {
    fn exit_class(&self) -> Class {
        use crate::install::harness::HarnessError;
        use crate::install::scenario::InstallError as I;
        match self {
            I::Profile(_) | I::Shape(_) | I::Harness(HarnessError::StaleIndex { .. }) => {
                Class::User
            }
            I::Render(r) => render(r),
            I::Netboot(NetbootError::Profile { .. }) => Class::User,
            _ => Class::Env,
        }
    }
}

impl ExitClass for ImageVmError {
    fn exit_class(&self) -> Class {
        match self {
            ImageVmError::BadName(_) => Class::User,
            _ => Class::Env,
        }
    }
}

fn render(e: &RenderError) -> Class {
    match e {
        RenderError::UnknownHost { .. } | RenderError::LockedVersion { .. } => Class::User,
        // Contexts are typed: a template that fails is picaboot's fault.
        RenderError::Template { .. } => Class::Bug,
        RenderError::Output(o) => output(o),
    }
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

    #[test]
    fn a_refusal_attached_as_context_decides() {
        use crate::ops::reinstall::Refusal;
        // As cli/reinstall.rs attaches it: the AMT error (here one that would be the
        // environment's) with the refusal as context. The refusal is seen through anyhow's
        // context downcast, though `chain()` never yields it as a `Refusal`.
        let e = anyhow::Error::new(EnvError("connection refused".into())).context(
            Refusal::NotConfirmed {
                host: "alice".into(),
            },
        );
        assert!(!e.chain().any(|c| c.is::<Refusal>()));
        assert_eq!(classify(&e), Class::User);
        let e = anyhow::Error::new(UsageError("wrong password".into()))
            .context(Refusal::VproSilent {
                host: "alice".into(),
            })
            .context("reinstall alice");
        assert_eq!(classify(&e), Class::Env);
        let e = anyhow::Error::new(ProfileError::Invalid(crate::profile::Diagnostics(vec![])))
            .context(Refusal::Check {
                host: "alice".into(),
                problems: 0,
            });
        assert_eq!(classify(&e).code(), 1);
    }

    #[test]
    fn a_closed_stdout_is_a_quiet_zero_not_a_bug() {
        let e = anyhow::Error::from(super::super::out::StdoutClosed).context("render --all");
        assert_eq!(classify(&e), Class::Quiet);
        assert_eq!(classify(&e).code(), 0);
    }
}
