//! What `cluster form` will do, decided from the profiles before any connection: the
//! cluster's nodes with their ssh destinations and link addresses, the steps of
//! [`crate::cluster::proxmox::plan`], the flags `pvecm status` must show, and the
//! corosync.conf the nodes were installed with.

use std::collections::BTreeMap;

use crate::cluster::proxmox::{self, FormNode, JoinVia, Step};
use crate::profile::Quorum;
use crate::project::Project;
use crate::render::{render_hosts, RenderOptions, PROXMOX_COROSYNC};

/// Why the plan cannot be made (the profiles or the arguments).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No such cluster profile.
    #[error("no cluster profile `{name}` (clusters/{name}.toml); known: {known}")]
    UnknownCluster {
        /// Name asked for.
        name: String,
        /// Names known.
        known: String,
    },
    /// A standalone cluster is not formed by Proxmox.
    #[error("cluster `{0}` has manager = \"standalone\": the install put its corosync.conf in /etc/corosync; `cluster form` is for manager = \"proxmox\"")]
    Standalone(String),
    /// A `--ssh NODE=DEST` that is not one.
    #[error("--ssh `{arg}`: {reason}")]
    SshArg {
        /// The argument.
        arg: String,
        /// Why.
        reason: String,
    },
    /// A node host without a cluster address.
    #[error("host `{0}` has no cluster address")]
    NoLink(String),
    /// The cluster lists no node.
    #[error("cluster `{0}` lists no nodes")]
    NoNodes(String),
    /// The render failed.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// The render has no corosync.conf for the cluster (a template bug).
    #[error("the render of {0} has no corosync.conf for the cluster")]
    NoConf(String),
}

impl crate::exit_class::ExitClass for PlanError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            PlanError::Render(e) => e.exit_class(),
            PlanError::NoConf(_) => Class::Bug,
            _ => Class::User,
        }
    }
}

/// The cluster profile named `name`, or the error naming the known ones.
pub(crate) fn cluster_named<'a>(
    profiles: &'a crate::profile::Profiles,
    name: &str,
) -> Result<&'a crate::profile::Cluster, PlanError> {
    profiles
        .clusters
        .get(name)
        .ok_or_else(|| PlanError::UnknownCluster {
            name: name.to_string(),
            known: profiles.cluster_names(),
        })
}

/// The plan of `cluster form`.
#[derive(Debug, Clone)]
pub struct FormPlan {
    /// Cluster name.
    pub cluster: String,
    /// Nodes, in the profile's order.
    pub nodes: Vec<FormNode>,
    /// Steps.
    pub steps: Vec<Step>,
    /// What `pvecm status` must show at the end.
    pub flags: &'static [&'static str],
    /// How the other nodes join.
    pub join: JoinVia,
}

/// `NODE=DEST` arguments as a map, each destination one ssh word.
pub(crate) fn ssh_overrides(args: &[String]) -> Result<BTreeMap<String, String>, PlanError> {
    let mut map = BTreeMap::new();
    for arg in args {
        let bad = |reason: &str| PlanError::SshArg {
            arg: arg.clone(),
            reason: reason.to_string(),
        };
        let (node, dest) = arg
            .split_once('=')
            .filter(|(n, d)| !n.is_empty() && !d.is_empty())
            .ok_or_else(|| bad("use NODE=DEST"))?;
        if dest.starts_with('-') || dest.contains(char::is_whitespace) {
            return Err(bad(&format!("`{dest}` is not an ssh destination")));
        }
        map.insert(node.to_string(), dest.to_string());
    }
    Ok(map)
}

impl FormPlan {
    /// The plan for `cluster` of the project; `ssh` holds `NODE=DEST` overrides.
    pub fn new(
        project: &Project,
        cluster: &str,
        ssh: &[String],
        join: JoinVia,
    ) -> Result<Self, PlanError> {
        let profiles = &project.loaded.profiles;
        let cl = cluster_named(profiles, cluster)?;
        if cl.manager.proxmox().is_none() {
            return Err(PlanError::Standalone(cluster.to_string()));
        }
        let mut overrides = ssh_overrides(ssh)?;
        let mut nodes = Vec::new();
        for n in &cl.nodes {
            let h = &profiles.hosts[&n.host];
            let link = h
                .cluster_link
                .as_ref()
                .ok_or_else(|| PlanError::NoLink(n.host.clone()))?;
            nodes.push(FormNode {
                name: h.hostname.clone(),
                ssh: overrides
                    .remove(&h.hostname)
                    .unwrap_or_else(|| format!("root@{}", h.network.ipv4.addr())),
                link0: link.address.addr().to_string(),
            });
        }
        if let Some(unknown) = overrides.keys().next() {
            return Err(PlanError::SshArg {
                arg: unknown.clone(),
                reason: format!("not a node of `{cluster}`"),
            });
        }
        let qnetd = match &cl.quorum {
            Quorum::Qdevice { qnetd } => Some(qnetd.as_str()),
            Quorum::TwoNode => None,
        };
        let flags = proxmox::expected_flags(qnetd.is_some());
        let steps = proxmox::plan(&cl.name, &nodes, join, qnetd, flags);
        Ok(FormPlan {
            cluster: cl.name.clone(),
            nodes,
            steps,
            flags,
            join,
        })
    }

    /// The corosync.conf the nodes were installed with, as `render` would write it now.
    pub fn rendered_conf(&self, project: &Project) -> Result<String, PlanError> {
        let cl = &project.loaded.profiles.clusters[&self.cluster];
        let first = &cl
            .nodes
            .first()
            .ok_or_else(|| PlanError::NoNodes(self.cluster.clone()))?
            .host;
        let rendered = render_hosts(
            project,
            std::slice::from_ref(first),
            RenderOptions::default(),
        )?;
        rendered.trees[first]
            .get(&format!("rootfs/{PROXMOX_COROSYNC}"))
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .ok_or_else(|| PlanError::NoConf(first.clone()))
    }
}
