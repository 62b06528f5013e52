//! The exit-code contract, in one place for every command: 0 ok, 1 bad input (profiles,
//! specs, arguments), 2 environment (a missing tool, the network, a mirror serving bad data,
//! the file system), 3 a test that ran and failed, [`EXIT_BUG`] an internal error.
//!
//! Each error type says which [`Class`] it is ([`crate::exit_class`]); this module only walks
//! an error's chain to the first link whose type says it. An error that no type in the chain
//! explains is not guessed to be the environment's fault: it is reported as a bug in picaboot.

use std::error::Error as StdError;

use crate::exit_class::fixed_class;
pub use crate::exit_class::{Class, ExitClass};

use super::{TestFailed, UsageError, EXIT_ENV, EXIT_TEST, EXIT_USER};

/// Exit code: an internal error (a bug in picaboot), as `EX_SOFTWARE` of sysexits.h.
pub const EXIT_BUG: i32 = 70;

/// The exit code of a class.
pub fn code(class: Class) -> i32 {
    match class {
        Class::User => EXIT_USER,
        Class::Env => EXIT_ENV,
        Class::Test => EXIT_TEST,
        Class::Bug => EXIT_BUG,
        Class::Quiet => 0,
    }
}

/// A failure of the environment detected by the CLI itself (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(pub String);

fixed_class!(Class::Test; TestFailed);
fixed_class!(Class::User; UsageError);
fixed_class!(Class::Env; EnvError);
fixed_class!(Class::Quiet; super::out::StdoutClosed);

/// Classifies an error. A [`Refusal`] attached as context (reinstall's decision not to
/// start) decides first: anyhow's `downcast_ref` sees context objects, which `chain()`
/// hides behind their wrapper. Otherwise the first link of the chain whose type says what
/// it is decides; an error no type explains is a bug.
///
/// [`Refusal`]: crate::ops::reinstall::Refusal
pub fn classify(err: &anyhow::Error) -> Class {
    if let Some(r) = err.downcast_ref::<crate::ops::reinstall::Refusal>() {
        return r.exit_class();
    }
    err.chain().find_map(link).unwrap_or(Class::Bug)
}

/// The class of one link: the CLI's own error types, then the library's.
fn link(c: &(dyn StdError + 'static)) -> Option<Class> {
    None.or_else(|| {
        c.downcast_ref::<super::out::StdoutClosed>()
            .map(ExitClass::exit_class)
    })
    .or_else(|| c.downcast_ref::<TestFailed>().map(ExitClass::exit_class))
    .or_else(|| c.downcast_ref::<UsageError>().map(ExitClass::exit_class))
    .or_else(|| c.downcast_ref::<EnvError>().map(ExitClass::exit_class))
    .or_else(|| crate::exit_class::of(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::DebianError;
    use crate::exec::ExecError;
    use crate::netboot::NetbootError;
    use crate::output::OutputError;
    use crate::profile::ProfileError;

    #[test]
    fn every_class_has_its_code() {
        let user: anyhow::Error = UsageError("x".into()).into();
        assert_eq!(code(classify(&user)), 1);
        let env = anyhow::Error::from(std::io::Error::other("disk full")).context("writing out/");
        assert_eq!(code(classify(&env)), 2);
        let test: anyhow::Error = TestFailed("a check failed".into()).into();
        assert_eq!(code(classify(&test.context("image test"))), 3);
        let no_mirror: anyhow::Error = DebianError::NoMirror("none in apt's sources".into()).into();
        assert_eq!(code(classify(&no_mirror.context("serve"))), 2);
        let bug = anyhow::anyhow!("an invariant broke");
        assert_eq!(classify(&bug), Class::Bug);
        assert_eq!(code(classify(&bug)), EXIT_BUG);
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
        assert_eq!(code(classify(&e)), 1);
    }

    #[test]
    fn a_closed_stdout_is_a_quiet_zero_not_a_bug() {
        let e = anyhow::Error::from(super::super::out::StdoutClosed).context("render --all");
        assert_eq!(classify(&e), Class::Quiet);
        assert_eq!(code(classify(&e)), 0);
    }
}
