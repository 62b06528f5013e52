//! `services form` over ssh: each step of [`super::plan::plan`] on its VM (the system `ssh`,
//! the admin's config and agent, as `cluster form`), its guard first (a guard that succeeds
//! means the step is done and it is skipped), stopping at the first failure. A secret (the
//! swarm join token) is kept in memory, handed to the step that needs it on its stdin, and
//! never printed nor put on a command line.

use std::collections::BTreeMap;
use std::path::Path;

use super::plan::{token_placeholder, Step};
use crate::exec::Input;

/// Why `services form` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// ssh could not run, or the remote command failed.
    #[error("step {step} on {vm} ({command}): {reason}")]
    Step {
        /// Step number (1-based).
        step: usize,
        /// The VM.
        vm: String,
        /// The command as the plan shows it (never with a secret).
        command: String,
        /// Why.
        reason: String,
    },
}

impl crate::exit_class::ExitClass for ApplyError {
    fn exit_class(&self) -> crate::exit_class::Class {
        crate::exit_class::Class::Env
    }
}

/// What `services form` did: for each step, whether it ran or was already done.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    /// Steps run (1-based numbers).
    pub ran: Vec<usize>,
    /// Steps whose guard said they were already done.
    pub already: Vec<usize>,
}

/// The command actually sent and its stdin: a step needing a secret reads it from stdin
/// into a shell variable, so it is on no command line.
pub fn runnable(step: &Step, secrets: &BTreeMap<usize, String>) -> (String, Option<String>) {
    match step.token_from {
        Some(n) => (
            format!(
                "read -r PICABOOT_TOKEN && {}",
                step.command
                    .replace(&token_placeholder(n), "\"$PICABOOT_TOKEN\"")
            ),
            Some(format!("{}\n", secrets.get(&n).map_or("", |s| s.trim()))),
        ),
        None => (step.command.clone(), step.stdin.clone()),
    }
}

/// Runs every step as `user@` its VM's address, with ssh's config file `ssh_config` (`None`:
/// the admin's own, as [`crate::ops::ssh_config`] finds it).
pub fn run(
    steps: &[Step],
    user: &str,
    ssh_config: Option<&Path>,
    progress: &mut dyn FnMut(usize, usize, &Step, bool),
) -> Result<Outcome, ApplyError> {
    let remote = |dest: &str, command: &str, shown: &str, stdin: Option<&str>| {
        let input = stdin.map_or(Input::Nothing, |s| Input::Bytes(s.as_bytes()));
        crate::ops::remote_via(
            ssh_config,
            dest,
            command,
            shown,
            input,
            crate::ops::SSH_DEADLINE,
        )
    };
    let mut secrets = BTreeMap::new();
    let mut outcome = Outcome::default();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let dest = format!("{user}@{}", step.address);
        let fail = |reason: String| ApplyError::Step {
            step: n,
            vm: step.vm.clone(),
            command: step.command.clone(),
            reason,
        };
        if let Some(guard) = &step.unless {
            if remote(&dest, guard, guard, None).is_ok() {
                progress(n, steps.len(), step, false);
                outcome.already.push(n);
                continue;
            }
        }
        progress(n, steps.len(), step, true);
        let (command, stdin) = runnable(step, &secrets);
        let out = remote(&dest, &command, &step.command, stdin.as_deref()).map_err(|e| {
            // A failing command's stdout may be shown in its error: never a secret one's.
            fail(if step.secret {
                "failed (its output would be a secret: not shown; run it by hand to see why)".into()
            } else {
                e
            })
        })?;
        if step.secret {
            secrets.insert(n, out);
        }
        outcome.ran.push(n);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_on_stdin_never_on_the_command_line() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let s = crate::profile::load(&dir)
            .unwrap()
            .profiles
            .services
            .unwrap();
        let steps = crate::services::plan::plan(&s).unwrap();
        let join = steps.iter().find(|s| s.token_from.is_some()).unwrap();
        let n = join.token_from.unwrap();
        let secrets = BTreeMap::from([(n, "SWMTKN-1-secret\n".to_string())]);
        let (command, stdin) = runnable(join, &secrets);
        assert!(!command.contains("SWMTKN"), "{command}");
        assert!(command.starts_with("read -r PICABOOT_TOKEN && docker swarm join "));
        assert!(
            command.contains("--token \"$PICABOOT_TOKEN\" "),
            "{command}"
        );
        assert_eq!(stdin.as_deref(), Some("SWMTKN-1-secret\n"));
        assert!(join.command.contains(&token_placeholder(n)));
    }
}
