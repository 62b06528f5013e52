//! `picaboot backup form NAME [--dry-run] [--replace]`.

use anyhow::Context;

use super::ProfilesArg;
use crate::ops::backup_form::BackupForm;
use crate::project;

/// `backup` subcommands.
#[derive(Debug, clap::Args)]
pub struct BackupCmd {
    #[command(subcommand)]
    what: BackupWhat,
}

impl BackupCmd {
    /// Whether the output is JSON.
    pub fn json(&self) -> bool {
        match &self.what {
            BackupWhat::Form(f) => f.json,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum BackupWhat {
    /// Set up the backups over SSH: the backup storage and vzdump job (pvesm, pvesh), each
    /// node's pull key (made on the node), the peer's restricted key line and pinned host key.
    Form(FormConfig),
}

/// Arguments of `backup form`.
#[derive(Debug, clap::Args)]
struct FormConfig {
    /// Cluster (a file name in clusters/, without .toml).
    cluster: String,
    /// Print the exact sequence and change nothing (no connection is made).
    #[arg(long)]
    dry_run: bool,
    /// Replace a storage or vzdump job that exists and differs (otherwise it is refused).
    #[arg(long)]
    replace: bool,
    /// ssh destination of a node, NODE=DEST (default: root@ the node's public IPv4 address).
    #[arg(long = "ssh", value_name = "NODE=DEST")]
    ssh: Vec<String>,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Print the plan (with --dry-run) or the commands run as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `backup`.
pub fn backup(c: BackupCmd) -> anyhow::Result<()> {
    match c.what {
        BackupWhat::Form(f) => form(f),
    }
}

fn form(c: FormConfig) -> anyhow::Result<()> {
    let project = project::open(&c.profiles.profiles)?;
    let plan = BackupForm::new(&project, &c.cluster, &c.ssh)?;
    if c.dry_run {
        return print_plan(&plan, c.json);
    }
    crate::cleanup::on_signals();
    let quiet = c.json;
    let ran = plan
        .run(c.replace, &mut |node, cmd| {
            if !quiet {
                eprintln!("[{node}] {cmd}");
            }
        })
        .with_context(|| format!("backup form {}", plan.cluster))?;
    if c.json {
        outln!("{}", serde_json::to_string_pretty(&ran)?)?;
    } else {
        outln!(
            "backup form {}: {} commands run, done",
            plan.cluster,
            ran.len()
        )?;
    }
    Ok(())
}

fn print_plan(plan: &BackupForm, json: bool) -> anyhow::Result<()> {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "cluster": plan.cluster, "ssh": plan.ssh, "pulls": plan.pulls, "steps": plan.steps,
            }))?
        )?;
        return Ok(());
    }
    outln!("backup form {} (dry run: nothing is run)", plan.cluster)?;
    for (node, dest) in &plan.ssh {
        outln!("  node {node}: ssh {dest}")?;
    }
    for p in &plan.pulls {
        outln!(
            "  {} pulls {}:{} (at {}, to {}) into {} daily at {}",
            p.node,
            p.peer,
            p.source,
            p.peer_link,
            p.node_link,
            p.dest,
            p.at
        )?;
    }
    for (i, s) in plan.steps.iter().enumerate() {
        outln!("{:2}. [{}] {}", i + 1, s.node, s.command)?;
        outln!("      {}", s.why)?;
    }
    Ok(())
}
