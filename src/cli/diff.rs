//! `picaboot diff HOST [--ssh DEST]`: the rendered rootfs against the live host.

use anyhow::Context;

use super::{ProfilesArg, TestFailed, UsageError};
use crate::ops::diff::{self, DriftKind};
use crate::project;
use crate::render::{render_hosts, RenderOptions};

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct DiffConfig {
    /// Host (a file name in hosts/, without .toml).
    host: String,
    /// ssh destination (default: root@ the host's public IPv4 address). ssh's own config and
    /// agent apply; PICABOOT_SSH_CONFIG names another config file.
    #[arg(long, value_name = "DEST")]
    ssh: Option<String>,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `diff`: exit 0 when every rendered file matches, 3 when some drifted.
pub fn diff(c: DiffConfig) -> anyhow::Result<()> {
    // Ctrl-C and SIGTERM end what the run owns (the ssh of the drift probe) first.
    crate::cleanup::on_signals();
    let project = project::open(&c.profiles.profiles)?;
    let host = project
        .loaded
        .profiles
        .hosts
        .get(&c.host)
        .ok_or_else(|| UsageError(format!("no host profile `{}`", c.host)))?;
    let dest = c
        .ssh
        .clone()
        .unwrap_or_else(|| format!("root@{}", host.network.ipv4.addr()));
    if dest.starts_with('-') || dest.contains(char::is_whitespace) {
        return Err(UsageError(format!("--ssh `{dest}` is not an ssh destination")).into());
    }
    // The render as `render` would write it now (a raised config_version included; the lock
    // file is not written by diff).
    let rendered = render_hosts(
        &project,
        std::slice::from_ref(&c.host),
        RenderOptions::default(),
    )?;
    let expected = diff::expected_from_tree(&rendered.trees[&c.host]);
    let report = diff::run(&dest, &expected).with_context(|| format!("diff {}", c.host))?;
    let printed = print_report(&c, &dest, &report);
    match printed {
        // A reader that stopped early (`diff alice | head`) does not hide the drift: the
        // exit code still says 3.
        Err(e) if !super::out::is_closed(&e) => return Err(e),
        _ => {}
    }
    if report.drift.is_empty() {
        printed
    } else {
        Err(TestFailed(format!(
            "{}: {} rendered file(s) drifted",
            c.host,
            report.drift.len()
        ))
        .into())
    }
}

/// Prints the report (JSON or one line per drifted file, then a summary).
fn print_report(c: &DiffConfig, dest: &str, report: &diff::Report) -> anyhow::Result<()> {
    if c.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "host": c.host, "report": report,
            }))?
        )?;
    } else {
        for d in &report.drift {
            match &d.kind {
                DriftKind::Missing => outln!("missing: {}", d.path)?,
                DriftKind::NotAFile => outln!("not a regular file: {}", d.path)?,
                DriftKind::Unreadable => outln!("unreadable: {}", d.path)?,
                DriftKind::Mode { expected, actual } => {
                    outln!("mode: {}: rendered {expected}, host {actual}", d.path)?
                }
                DriftKind::Content { diff, .. } => {
                    let mode = d
                        .mode_change
                        .as_ref()
                        .map(|(a, b)| format!(" (mode: rendered {a}, host {b})"))
                        .unwrap_or_default();
                    match diff {
                        Some(text) => {
                            outln!("changed: {}{mode}", d.path)?;
                            out!("{text}")?;
                        }
                        None if d.secret => {
                            outln!("changed: {}{mode} (secret: content not shown)", d.path)?
                        }
                        None => outln!("changed: {}{mode} (binary content)", d.path)?,
                    }
                }
            }
        }
        outln!(
            "{}: {} of {} rendered files drifted on {}",
            c.host,
            report.drift.len(),
            report.checked,
            dest
        )?;
    }
    Ok(())
}
