//! `picaboot render`.

use std::path::PathBuf;

use anyhow::Context;

use super::{ProfilesArg, UsageError};
use crate::render::{render_hosts, RenderOptions};
use crate::{cluster, output, project};

/// Arguments of `render`.
#[derive(Debug, clap::Args)]
pub struct RenderConfig {
    /// Host to render (a file name in hosts/, without .toml).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    host: Option<String>,
    /// Render every host.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Output directory; each host goes to OUT/HOST/.
    #[arg(short, long, value_name = "OUT", default_value = "out")]
    output: PathBuf,
    /// Fail rather than raise a cluster's corosync config_version (for CI).
    #[arg(long)]
    locked: bool,
    /// Install to another device than the profile says, e.g. `--disk ssd0=/dev/vda` (repeatable).
    #[arg(long = "disk", value_name = "ID=DEVICE", value_parser = parse_disk)]
    disks: Vec<(String, String)>,
    /// Install from this Debian mirror instead of the profiles' (URL).
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `ID=DEVICE`.
pub(crate) fn parse_disk(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| format!("`{s}` is not ID=DEVICE (e.g. ssd0=/dev/vda)"))
}

/// Writes the cluster lock files a render raised (after its output was published) and says so.
pub(crate) fn record_locks(
    updates: &[(PathBuf, String, crate::profile::ClusterLock)],
) -> anyhow::Result<()> {
    for (path, cluster_name, lock) in updates {
        cluster::write_lock(path, cluster_name, lock)
            .with_context(|| format!("recording config_version in {}", path.display()))?;
        eprintln!(
            "picaboot: corosync.conf of cluster {cluster_name} changed: config_version is now {} (recorded in {}; commit it)",
            lock.config_version,
            path.display()
        );
    }
    Ok(())
}

/// Renders hosts and publishes their trees atomically.
pub fn render(c: RenderConfig) -> anyhow::Result<()> {
    let overrides = project::Overrides {
        disk_devices: c.disks.clone(),
        mirror: c.mirror.clone(),
        ..Default::default()
    };
    let project = project::open_with(&c.profiles.profiles, &overrides)?;
    let names: Vec<String> = if c.all {
        project.loaded.profiles.hosts.keys().cloned().collect()
    } else {
        vec![c.host.clone().unwrap_or_default()]
    };
    if names.is_empty() {
        return Err(UsageError(format!(
            "no host profiles in {}",
            c.profiles.profiles.display()
        ))
        .into());
    }
    let rendered = render_hosts(
        &project,
        &names,
        RenderOptions {
            locked: c.locked,
            ..Default::default()
        },
    )?;
    let mut staged = Vec::new();
    for (name, tree) in &rendered.trees {
        let target = c.output.join(name);
        staged.push(
            output::stage(tree, &target)
                .with_context(|| format!("writing {}", target.display()))?
                .carry_over(output::FOREIGN),
        );
    }
    output::publish(staged).context("publishing the rendered trees")?;
    record_locks(&rendered.lock_updates)?;
    if c.json {
        let rows: Vec<serde_json::Value> = rendered
            .trees
            .iter()
            .map(|(name, tree)| {
                serde_json::json!({
                    "host": name,
                    "dir": c.output.join(name),
                    "files": tree.manifest(),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        for (name, tree) in &rendered.trees {
            outln!(
                "{}: {} files in {}",
                name,
                tree.files().count(),
                c.output.join(name).display()
            )?;
        }
    }
    Ok(())
}
