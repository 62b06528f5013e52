//! `picaboot reinstall HOST [--yes]`: the checks and the confirmation; the install itself
//! (render, netboot, serve with progress, power --pxe-once, follow, first boot, self-test)
//! waits for the install self-test and stops here before anything is changed.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::{ProfilesArg, UsageError};
use crate::ops::reinstall::{Plan, Refusal};
use crate::project;

/// Arguments of `reinstall`.
#[derive(Debug, clap::Args)]
pub struct ReinstallConfig {
    /// Host (a file name in hosts/, without .toml).
    host: String,
    /// Do not ask for confirmation (scripts).
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// File with `USER:PASSWORD` for AMT (see `power`).
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// Seconds to wait for AMT.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    timeout: u64,
}

/// `reinstall` stops after its checks: the rest needs the install self-test (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("the install self-test this step needs is not built yet: `reinstall` stops after its checks, before changing anything")]
pub struct NotYet;

/// Runs `reinstall`.
pub fn reinstall(c: ReinstallConfig) -> anyhow::Result<()> {
    let project = project::open(&c.profiles.profiles).map_err(|e| {
        let problems = match &e {
            crate::profile::ProfileError::Invalid(d) => d.0.len(),
            _ => 0,
        };
        anyhow::Error::new(e).context(Refusal::Check {
            host: c.host.clone(),
            problems,
        })
    })?;
    let profiles = &project.loaded.profiles;
    let host = profiles
        .hosts
        .get(&c.host)
        .ok_or_else(|| UsageError(format!("no host profile `{}`", c.host)))?;
    let mut client = super::power::client(
        profiles,
        &c.host,
        c.credentials.as_deref(),
        Duration::from_secs(c.timeout),
    )?;
    let target = client.target().clone();
    let vpro = match &target.jump {
        Some(j) => format!("{} (through jump host {j})", target.origin()),
        None => target.origin(),
    };
    if let Err(e) = client.status() {
        return Err(anyhow::Error::new(e).context(Refusal::VproSilent {
            host: c.host.clone(),
        }));
    }
    let plan = Plan::new(host, vpro);
    if !c.yes {
        eprint!("{}", plan.prompt());
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !plan.confirmed_by(&answer) {
            return Err(UsageError(
                Refusal::NotConfirmed {
                    host: c.host.clone(),
                }
                .to_string(),
            )
            .into());
        }
    }
    Err(NotYet.into())
}
