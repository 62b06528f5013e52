//! `picaboot services render -o DIR` and `picaboot services form --dry-run`.

use std::path::PathBuf;

use super::ProfilesArg;
use crate::services::{plan, render, ServicesError};

/// `services` subcommands.
#[derive(Debug, clap::Args)]
pub struct ServicesCmd {
    #[command(subcommand)]
    what: ServicesWhat,
}

#[derive(Debug, clap::Subcommand)]
enum ServicesWhat {
    /// Write the stack file and each services VM's fstab line, docker drop-in and nftables ruleset.
    Render(RenderConfig),
    /// Form the services layer over ssh (firewall, gluster, fstab, swarm, overlay, stack);
    /// --dry-run prints the sequence and connects to nothing.
    Form(FormConfig),
}

/// Arguments of `services render`.
#[derive(Debug, clap::Args)]
struct RenderConfig {
    /// Output directory (replaced atomically).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    #[command(flatten)]
    profiles: ProfilesArg,
}

/// Arguments of `services form`.
#[derive(Debug, clap::Args)]
struct FormConfig {
    /// Print the exact sequence and change nothing (no connection is made).
    #[arg(long)]
    dry_run: bool,
    /// ssh user on the VMs (each reached at its public IPv4 address).
    #[arg(long, default_value = "root")]
    user: String,
    #[command(flatten)]
    profiles: ProfilesArg,
}

/// Runs `services`.
pub fn services(c: ServicesCmd) -> anyhow::Result<()> {
    let profiles = match &c.what {
        ServicesWhat::Render(r) => &r.profiles,
        ServicesWhat::Form(f) => &f.profiles,
    };
    let project = crate::project::open(&profiles.profiles)?;
    let s = project
        .loaded
        .profiles
        .services
        .as_ref()
        .ok_or_else(|| ServicesError::Undeclared(profiles.profiles.display().to_string()))?;
    match c.what {
        ServicesWhat::Render(r) => {
            let mut tree = crate::output::Tree::new();
            for (path, text) in render::files(s)? {
                tree.add(path, text, 0o644)?;
            }
            let staged = crate::output::stage(&tree, &r.output)?;
            crate::output::publish(vec![staged])?;
            outln!("{}: {} files", r.output.display(), tree.files().count())?;
        }
        ServicesWhat::Form(f) if !f.dry_run => form(s, &f.user)?,
        ServicesWhat::Form(_) => {
            for (i, step) in plan::plan(s)?.iter().enumerate() {
                let input = step
                    .stdin
                    .as_ref()
                    .map(|t| format!(" < ({} lines)", t.lines().count()))
                    .unwrap_or_default();
                let guard = step
                    .unless
                    .as_ref()
                    .map(|u| format!("\n      unless: {u}"))
                    .unwrap_or_default();
                outln!(
                    "{:>2}. {} ({}): {}{input}\n      why: {}{guard}",
                    i + 1,
                    step.vm,
                    step.address,
                    step.command,
                    step.why
                )?;
            }
        }
    }
    Ok(())
}

/// Runs the plan over ssh, one line per step on stderr, the outcome on stdout.
fn form(s: &crate::profile::services::Services, user: &str) -> anyhow::Result<()> {
    crate::cleanup::on_signals();
    let steps = plan::plan(s)?;
    let config = crate::ops::ssh_config();
    let outcome =
        crate::services::apply::run(&steps, user, config.as_deref(), &mut |i, n, step, run| {
            let what = if run { "" } else { " (already done)" };
            eprintln!("[{i}/{n}] {}: {}{what}", step.vm, step.why);
        })?;
    outln!(
        "services form: {} steps run, {} already done{}",
        outcome.ran.len(),
        outcome.already.len(),
        if outcome.ran.iter().all(|n| steps[n - 1].unless.is_none()) {
            " (only steps that are idempotent by themselves ran: nothing changed)"
        } else {
            ""
        }
    )?;
    Ok(())
}
