//! `picaboot backup form`: the plan of [`crate::backup::plan`] for a cluster of the project,
//! and its run over ssh (the system `ssh`, the admin's config and agent, like `cluster form`).

use std::collections::BTreeMap;

use crate::backup::plan::{self, Remote, Step};
use crate::backup::{self, Pull};
use crate::ops::form_plan::{ssh_overrides, PlanError};
use crate::profile::Backup;
use crate::project::Project;

/// What `backup form` will do for one cluster.
#[derive(Debug, Clone)]
pub struct BackupForm {
    /// Cluster profile name.
    pub cluster: String,
    /// The backup settings.
    pub backup: Backup,
    /// Node name -> ssh destination.
    pub ssh: BTreeMap<String, String>,
    /// The pulls.
    pub pulls: Vec<Pull>,
    /// The steps.
    pub steps: Vec<Step>,
}

/// Why there is no plan.
#[derive(Debug, thiserror::Error)]
pub enum BackupPlanError {
    /// The cluster, a node or an `--ssh` argument is wrong.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The cluster has no `[backup]`.
    #[error("cluster `{0}` has no [backup] in its profile")]
    NoBackup(String),
}

impl crate::exit_class::ExitClass for BackupPlanError {
    fn exit_class(&self) -> crate::exit_class::Class {
        match self {
            BackupPlanError::Plan(p) => p.exit_class(),
            BackupPlanError::NoBackup(_) => crate::exit_class::Class::User,
        }
    }
}

impl BackupForm {
    /// The plan for `cluster`; `ssh` holds `NODE=DEST` overrides (default: root@ the node's
    /// public IPv4 address).
    pub fn new(project: &Project, cluster: &str, ssh: &[String]) -> Result<Self, BackupPlanError> {
        let profiles = &project.loaded.profiles;
        let cl = super::form_plan::cluster_named(profiles, cluster)?;
        let b = cl
            .backup
            .clone()
            .ok_or_else(|| BackupPlanError::NoBackup(cluster.to_string()))?;
        let mut overrides = ssh_overrides(ssh)?;
        let mut dests = BTreeMap::new();
        let mut names = Vec::new();
        for n in &cl.nodes {
            let h = &profiles.hosts[&n.host];
            let dest = overrides
                .remove(&n.host)
                .unwrap_or_else(|| format!("root@{}", h.network.ipv4.addr()));
            dests.insert(n.host.clone(), dest);
            names.push(n.host.clone());
        }
        if let Some(unknown) = overrides.keys().next() {
            return Err(PlanError::SshArg {
                arg: unknown.clone(),
                reason: format!("not a node of `{cluster}`"),
            }
            .into());
        }
        let first = names
            .first()
            .cloned()
            .ok_or_else(|| PlanError::NoNodes(cluster.to_string()))?;
        let pulls = backup::pulls(profiles, cl);
        let steps = plan::plan(&b, &names, &first, &pulls);
        Ok(BackupForm {
            cluster: cluster.to_string(),
            backup: b,
            ssh: dests,
            pulls,
            steps,
        })
    }

    /// Runs the plan over ssh; every command run, in order.
    pub fn run(
        &self,
        replace: bool,
        progress: &mut dyn FnMut(&str, &str),
    ) -> Result<Vec<(String, String)>, plan::FormError> {
        let mut remote = Ssh(&self.ssh);
        plan::run(
            &self.backup,
            &self.pulls,
            &self.steps,
            replace,
            &mut remote,
            progress,
        )
    }
}

/// Runs commands over ssh with the deadline of every remote step.
struct Ssh<'a>(&'a BTreeMap<String, String>);

impl Remote for Ssh<'_> {
    fn run(&mut self, node: &str, command: &str, stdin: Option<&[u8]>) -> Result<String, String> {
        let dest = self.0.get(node).cloned().unwrap_or_default();
        let input = stdin.map_or(crate::exec::Input::Nothing, crate::exec::Input::Bytes);
        super::remote(&dest, command, command, input, super::SSH_DEADLINE)
    }
}
