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
    /// The sequence that forms the services layer over ssh (gluster, fstab, swarm, overlay,
    /// firewall, stack); stage 1 prints it only (--dry-run).
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
    #[command(flatten)]
    profiles: ProfilesArg,
}

/// Runs `services`.
pub fn services(c: ServicesCmd) -> anyhow::Result<()> {
    let (profiles, rest) = match &c.what {
        ServicesWhat::Render(r) => (&r.profiles, false),
        ServicesWhat::Form(f) => (&f.profiles, f.dry_run),
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
        ServicesWhat::Form(_) if !rest => return Err(ServicesError::NotYet.into()),
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
