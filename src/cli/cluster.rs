//! `picaboot cluster form NAME [--dry-run]`.

use anyhow::Context;

use super::ProfilesArg;
use crate::cluster::proxmox::JoinVia;
use crate::ops::form;
use crate::ops::form_plan::FormPlan;
use crate::project;

/// `cluster` subcommands.
#[derive(Debug, clap::Args)]
pub struct ClusterCmd {
    #[command(subcommand)]
    what: ClusterWhat,
}

impl ClusterCmd {
    /// Whether the output is JSON.
    pub fn json(&self) -> bool {
        match &self.what {
            ClusterWhat::Form(f) => f.json,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum ClusterWhat {
    /// Form a Proxmox cluster over SSH: pvecm create on the first node, the others join, the
    /// rendered corosync.conf (quorum settings) goes into /etc/pve, pvecm status is read back.
    Form(FormConfig),
}

/// Arguments of `cluster form`.
#[derive(Debug, clap::Args)]
struct FormConfig {
    /// Cluster (a file name in clusters/, without .toml).
    cluster: String,
    /// Print the exact sequence and change nothing (no connection is made).
    #[arg(long)]
    dry_run: bool,
    /// Join with `pvecm add --use_ssh` (root's SSH keys set between the nodes) instead of the
    /// API with the first node's root password (PICABOOT_PVE_PASSWORD_FILE or
    /// PICABOOT_PVE_PASSWORD).
    #[arg(long)]
    use_ssh: bool,
    /// ssh destination of a node, NODE=DEST (default: root@ the node's public IPv4 address).
    #[arg(long = "ssh", value_name = "NODE=DEST")]
    ssh: Vec<String>,
    #[command(flatten)]
    profiles: ProfilesArg,
    /// Print the plan (with --dry-run) or the final status as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `cluster`.
pub fn cluster(c: ClusterCmd) -> anyhow::Result<()> {
    match c.what {
        ClusterWhat::Form(f) => form_cluster(f),
    }
}

fn form_cluster(c: FormConfig) -> anyhow::Result<()> {
    let project = project::open(&c.profiles.profiles)?;
    let join = if c.use_ssh {
        JoinVia::Ssh
    } else {
        JoinVia::Api
    };
    let plan = FormPlan::new(&project, &c.cluster, &c.ssh, join)?;
    if c.dry_run {
        return print_plan(&plan, c.json);
    }
    // Ctrl-C and SIGTERM end what the run owns (the ssh of the running step) first.
    crate::cleanup::on_signals();
    let password = match join {
        JoinVia::Api => Some(form::password_from_env()?),
        JoinVia::Ssh => None,
    };
    let conf = plan.rendered_conf(&project)?;
    let quiet = c.json;
    let steps = &plan.steps;
    let status = form::run(
        &plan.cluster,
        &plan.nodes,
        steps,
        &conf,
        password.as_ref(),
        plan.flags,
        &mut |i, s| {
            if !quiet {
                eprintln!("[{i}/{}] {}: {}", steps.len(), s.node, s.why);
            }
        },
    )
    .with_context(|| format!("cluster form {}", plan.cluster))?;
    if c.json {
        outln!("{}", serde_json::to_string_pretty(&status)?)?;
    } else {
        outln!(
            "cluster {}: {} nodes, quorate, flags {} (config_version {})",
            status.name,
            status.nodes,
            status.flags.join(" "),
            status.config_version
        )?;
    }
    Ok(())
}

/// `--dry-run`: the nodes and every step, nothing run.
fn print_plan(plan: &FormPlan, json: bool) -> anyhow::Result<()> {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "cluster": plan.cluster, "nodes": plan.nodes, "steps": plan.steps,
            }))?
        )?;
        return Ok(());
    }
    outln!("cluster form {} (dry run: nothing is run)", plan.cluster)?;
    for n in &plan.nodes {
        outln!("  node {}: ssh {}, link0 {}", n.name, n.ssh, n.link0)?;
    }
    for (i, s) in plan.steps.iter().enumerate() {
        outln!("{:2}. [{}] {}", i + 1, s.node, s.command)?;
        if let Some(input) = s.stdin() {
            outln!("      stdin: {input}")?;
        }
        outln!("      {}", s.why)?;
    }
    Ok(())
}
