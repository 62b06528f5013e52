//! What `picaboot backup form` does, as data ([`plan`]) and as a run over any [`Remote`]
//! ([`run`]): the backup directory is mounted on every node; the storage and the vzdump job
//! are read on the first node and brought to the profile (see [`super::proxmox`]); then for
//! each pull, the puller's key is made on the puller if it has none (the private half never
//! leaves it), the peer's host key is pinned in the puller's known_hosts, the puller's public
//! key is installed on the peer behind its restriction, and a listing over that key proves it.

use super::proxmox::{self, StateError};
use super::{authorized_line, known_hosts_line, KeyError, Pull};
use super::{KEY, KEY_DIR, KNOWN_HOSTS, SERVE_DIR, SERVE_KEYS};
use crate::profile::Backup;

/// What a step does with its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Fails unless the backup directory is a mount point.
    Mounted,
    /// Reads the storage list; the storage commands follow from it.
    ReadStorage,
    /// Reads the backup jobs; the job commands follow from them.
    ReadJobs,
    /// Makes the pull key if absent, prints its public half.
    PullKey,
    /// Prints the peer's ed25519 host key.
    HostKey,
    /// Writes the puller's known_hosts (stdin).
    WriteKnownHosts,
    /// Writes the peer's restricted key line (stdin).
    WriteServeKey,
    /// Lists the peer's dumps over the pull key.
    Verify,
}

/// One remote command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Node it runs on.
    pub node: String,
    /// What it is.
    pub kind: StepKind,
    /// The command (a remote shell line).
    pub command: String,
    /// Why, for the dry run.
    pub why: String,
    /// Index of the pull it belongs to.
    pub pull: Option<usize>,
}

/// The ssh options of a pull (the rendered script uses the same).
pub fn ssh_options() -> String {
    format!(
        "-i {KEY} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
         -o UserKnownHostsFile={KNOWN_HOSTS} -o ConnectTimeout=30"
    )
}

fn step(node: &str, kind: StepKind, command: String, why: &str, pull: Option<usize>) -> Step {
    Step {
        node: node.to_string(),
        kind,
        command,
        why: why.to_string(),
        pull,
    }
}

/// The steps for `backup` with `pulls`; `first` is the node that reads and writes /etc/pve.
pub fn plan(b: &Backup, nodes: &[String], first: &str, pulls: &[Pull]) -> Vec<Step> {
    use StepKind::*;
    let mut steps: Vec<Step> = nodes
        .iter()
        .map(|n| {
            step(
                n,
                Mounted,
                format!("mountpoint -q {}", b.path),
                "the storage is added with is_mountpoint yes: the backup volume must be mounted",
                None,
            )
        })
        .collect();
    let policy = "matching -> left alone; differing -> refused unless --replace";
    let why = format!(
        "storage `{}`: absent -> `{}`; {policy}",
        b.storage,
        proxmox::add_storage(b)
    );
    steps.push(step(
        first,
        ReadStorage,
        proxmox::READ_STORAGE.into(),
        &why,
        None,
    ));
    let why = format!(
        "vzdump job: absent -> `{}`; {policy}",
        proxmox::create_job(b)
    );
    steps.push(step(first, ReadJobs, proxmox::READ_JOBS.into(), &why, None));
    for (i, p) in pulls.iter().enumerate() {
        steps.extend(pull_steps(i, p));
    }
    steps
}

/// The key steps of one pull (see the module doc).
fn pull_steps(i: usize, p: &Pull) -> Vec<Step> {
    use StepKind::*;
    let mut steps = Vec::new();
    let keygen = format!(
        "install -d -m 700 {KEY_DIR} && {{ test -f {KEY} || ssh-keygen -q -t ed25519 -N '' \
             -C picaboot-save-pull@{} -f {KEY}; }} && cat {KEY}.pub",
        p.node
    );
    steps.push(step(
        &p.node,
        PullKey,
        keygen,
        "the pull key: made here if absent; its public half is read",
        Some(i),
    ));
    steps.push(step(
        &p.peer,
        HostKey,
        "cat /etc/ssh/ssh_host_ed25519_key.pub".into(),
        "the peer's host key, pinned in the puller's known_hosts",
        Some(i),
    ));
    let known = format!(
        "install -d -m 700 {KEY_DIR} && cat > {KNOWN_HOSTS}.new && \
             mv {KNOWN_HOSTS}.new {KNOWN_HOSTS}"
    );
    steps.push(step(
        &p.node,
        WriteKnownHosts,
        known,
        "stdin: `PEER-LINK-ADDRESS ssh-ed25519 KEY`",
        Some(i),
    ));
    // The served directory exists before vzdump's first run (rrsync refuses a missing one).
    let serve = format!(
        "mkdir -p {} && install -d -m 755 {SERVE_DIR} && \
         (umask 077 && cat > {SERVE_KEYS}.new) && mv {SERVE_KEYS}.new {SERVE_KEYS}",
        p.source
    );
    let why = format!(
        "the served directory made if absent; stdin: `{} ssh-ed25519 KEY picaboot-save-pull@{}`",
        super::restriction(p),
        p.node
    );
    steps.push(step(&p.peer, WriteServeKey, serve, &why, Some(i)));
    steps.push(step(
        &p.node,
        Verify,
        format!(
            "rsync --list-only -e 'ssh {}' root@{}:./ >/dev/null",
            ssh_options(),
            p.peer_link
        ),
        "the pull key lists the peer's dumps",
        Some(i),
    ));
    steps
}

/// Runs a command on a node: its stdout, or why it failed.
pub trait Remote {
    /// Runs `command` on `node` with `stdin`.
    fn run(&mut self, node: &str, command: &str, stdin: Option<&[u8]>) -> Result<String, String>;
}

/// Why `backup form` stopped.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// A command failed.
    #[error("step {step} on {node} (`{command}`): {reason}")]
    Step {
        /// 1-based step.
        step: usize,
        /// Node.
        node: String,
        /// Command.
        command: String,
        /// Why.
        reason: String,
    },
    /// The Proxmox state is unreadable or differs.
    #[error("step {step} on {node}: {source}")]
    State {
        /// 1-based step.
        step: usize,
        /// Node.
        node: String,
        /// Why.
        #[source]
        source: StateError,
    },
    /// A key read from a node is not one public key.
    #[error("step {step} on {node}: {source}")]
    Key {
        /// 1-based step.
        step: usize,
        /// Node.
        node: String,
        /// Why.
        #[source]
        source: KeyError,
    },
}

impl crate::exit_class::ExitClass for FormError {
    fn exit_class(&self) -> crate::exit_class::Class {
        match self {
            FormError::State { source, .. } => source.exit_class(),
            _ => crate::exit_class::Class::Env,
        }
    }
}

/// Per pull, what earlier steps read (empty until read: an empty key is refused).
#[derive(Default, Clone)]
struct Keys {
    pull_key: String,
    host_key: String,
}

/// Runs `steps`; `progress` sees each command run (the Proxmox ones included). Returns every
/// command run, in order.
pub fn run(
    b: &Backup,
    pulls: &[Pull],
    steps: &[Step],
    replace: bool,
    remote: &mut dyn Remote,
    progress: &mut dyn FnMut(&str, &str),
) -> Result<Vec<(String, String)>, FormError> {
    let mut keys = vec![Keys::default(); pulls.len()];
    let mut ran = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let n = i + 1;
        let mut exec = |cmd: &str, stdin: Option<&[u8]>| {
            progress(&s.node, cmd);
            ran.push((s.node.clone(), cmd.to_string()));
            remote
                .run(&s.node, cmd, stdin)
                .map_err(|reason| FormError::Step {
                    step: n,
                    node: s.node.clone(),
                    command: cmd.to_string(),
                    reason,
                })
        };
        let state = |source| FormError::State {
            step: n,
            node: s.node.clone(),
            source,
        };
        let key = |source| FormError::Key {
            step: n,
            node: s.node.clone(),
            source,
        };
        let pull = s.pull.map(|p| (p, &pulls[p]));
        match (s.kind, pull) {
            (StepKind::ReadStorage | StepKind::ReadJobs, _) => {
                let out = exec(&s.command, None)?;
                let actions = if s.kind == StepKind::ReadStorage {
                    proxmox::storage_actions(b, &out, replace)
                } else {
                    proxmox::job_actions(b, &out, replace)
                }
                .map_err(state)?;
                for a in actions {
                    exec(&a, None)?;
                }
            }
            (StepKind::PullKey, Some((i, _))) => keys[i].pull_key = exec(&s.command, None)?,
            (StepKind::HostKey, Some((i, _))) => keys[i].host_key = exec(&s.command, None)?,
            (StepKind::WriteKnownHosts, Some((i, p))) => {
                let line = known_hosts_line(p, &keys[i].host_key).map_err(key)?;
                exec(&s.command, Some(line.as_bytes()))?;
            }
            (StepKind::WriteServeKey, Some((i, p))) => {
                let line = authorized_line(p, &keys[i].pull_key).map_err(key)?;
                exec(&s.command, Some(line.as_bytes()))?;
            }
            _ => {
                exec(&s.command, None)?;
            }
        }
    }
    Ok(ran)
}

#[cfg(test)]
mod tests;
