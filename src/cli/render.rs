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
}

/// Renders hosts and publishes their trees atomically.
pub fn render(c: RenderConfig) -> anyhow::Result<()> {
    let project = project::open(&c.profiles.profiles)?;
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
    let rendered = render_hosts(&project, &names, RenderOptions { locked: c.locked })?;
    let mut staged = Vec::new();
    for (name, tree) in &rendered.trees {
        let target = c.output.join(name);
        staged.push(
            output::stage(tree, &target)
                .with_context(|| format!("writing {}", target.display()))?,
        );
    }
    output::publish(staged).context("publishing the rendered trees")?;
    for (path, cluster_name, lock) in &rendered.lock_updates {
        cluster::write_lock(path, cluster_name, lock)
            .with_context(|| format!("recording config_version in {}", path.display()))?;
        eprintln!(
            "picaboot: corosync.conf of cluster {cluster_name} changed: config_version is now {} (recorded in {}; commit it)",
            lock.config_version,
            path.display()
        );
    }
    for (name, tree) in &rendered.trees {
        println!(
            "{}: {} files in {}",
            name,
            tree.files().count(),
            c.output.join(name).display()
        );
    }
    Ok(())
}
