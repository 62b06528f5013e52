//! `picaboot cluster form NAME [--dry-run]`.

use anyhow::Context;

use super::{ProfilesArg, UsageError};
use crate::cluster::proxmox::{self, FormNode, JoinVia};
use crate::ops::form;
use crate::profile::Quorum;
use crate::project;
use crate::render::{render_hosts, RenderOptions, PROXMOX_COROSYNC};

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
    let profiles = &project.loaded.profiles;
    let cl = profiles.clusters.get(&c.cluster).ok_or_else(|| {
        UsageError(format!(
            "no cluster profile `{}` (clusters/{}.toml); known: {}",
            c.cluster,
            c.cluster,
            profiles
                .clusters
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if cl.manager.proxmox().is_none() {
        return Err(UsageError(format!(
            "cluster `{}` has manager = \"standalone\": the install put its corosync.conf in /etc/corosync; `cluster form` is for manager = \"proxmox\"",
            c.cluster
        ))
        .into());
    }
    let mut overrides = std::collections::BTreeMap::new();
    for o in &c.ssh {
        let (node, dest) = o
            .split_once('=')
            .filter(|(n, d)| !n.is_empty() && !d.is_empty())
            .ok_or_else(|| UsageError(format!("--ssh `{o}`: use NODE=DEST")))?;
        if dest.starts_with('-') || dest.contains(char::is_whitespace) {
            return Err(
                UsageError(format!("--ssh `{o}`: `{dest}` is not an ssh destination")).into(),
            );
        }
        overrides.insert(node.to_string(), dest.to_string());
    }
    let mut nodes = Vec::new();
    for n in &cl.nodes {
        let h = &profiles.hosts[&n.host];
        let link = h
            .cluster_link
            .as_ref()
            .ok_or_else(|| UsageError(format!("host `{}` has no cluster address", n.host)))?;
        nodes.push(FormNode {
            name: h.hostname.clone(),
            ssh: overrides
                .remove(&h.hostname)
                .unwrap_or_else(|| format!("root@{}", h.network.ipv4.addr())),
            link0: link.address.addr().to_string(),
        });
    }
    if let Some(unknown) = overrides.keys().next() {
        return Err(UsageError(format!(
            "--ssh: `{unknown}` is not a node of `{}`",
            c.cluster
        ))
        .into());
    }
    let qnetd = match &cl.quorum {
        Quorum::Qdevice { qnetd } => Some(qnetd.as_str()),
        Quorum::TwoNode => None,
    };
    let flags = proxmox::expected_flags(qnetd.is_some());
    let join = if c.use_ssh {
        JoinVia::Ssh
    } else {
        JoinVia::Api
    };
    let steps = proxmox::plan(&cl.name, &nodes, join, qnetd, flags);

    if c.dry_run {
        if c.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "cluster": cl.name, "nodes": nodes, "steps": steps,
                }))?
            )?;
        } else {
            outln!("cluster form {} (dry run: nothing is run)", cl.name)?;
            for n in &nodes {
                outln!("  node {}: ssh {}, link0 {}", n.name, n.ssh, n.link0)?;
            }
            for (i, s) in steps.iter().enumerate() {
                outln!("{:2}. [{}] {}", i + 1, s.node, s.command)?;
                outln!("      {}", s.why)?;
            }
        }
        return Ok(());
    }

    let password = match join {
        JoinVia::Api => Some(form::password_from_env()?),
        JoinVia::Ssh => None,
    };
    // The corosync.conf the nodes were installed with, as `render` would write it now.
    let first = &cl
        .nodes
        .first()
        .ok_or_else(|| UsageError(format!("cluster `{}` lists no nodes", c.cluster)))?
        .host;
    let rendered = render_hosts(
        &project,
        std::slice::from_ref(first),
        RenderOptions::default(),
    )?;
    let conf = rendered.trees[first]
        .get(&format!("rootfs/{PROXMOX_COROSYNC}"))
        .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
        .context("the render has no corosync.conf for the cluster")?;
    let quiet = c.json;
    let status = form::run(
        &cl.name,
        &nodes,
        &steps,
        &conf,
        password.as_ref(),
        flags,
        &mut |i, s| {
            if !quiet {
                eprintln!("[{i}/{}] {}: {}", steps.len(), s.node, s.why);
            }
        },
    )
    .with_context(|| format!("cluster form {}", cl.name))?;
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
