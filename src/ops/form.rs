//! `picaboot cluster form`: runs the plan of [`crate::cluster::proxmox`] over SSH (the system
//! `ssh`, the admin's own config and agent), one step at a time, stopping at the first step
//! that fails or answers unexpectedly.

use std::path::Path;

use crate::cluster::proxmox::{self, FormNode, Membership, PvecmStatus, Step, StepKind};
use crate::secret::Secret;

/// Environment variable naming a file whose first line is the first node's root password.
pub const ENV_PASSWORD_FILE: &str = "PICABOOT_PVE_PASSWORD_FILE";
/// Environment variable holding the first node's root password.
pub const ENV_PASSWORD: &str = "PICABOOT_PVE_PASSWORD";

/// Why forming the cluster stopped.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// ssh could not run, or the remote command failed.
    #[error("step {step} on {node} ({command}): {reason}")]
    Step {
        /// Step number (1-based).
        step: usize,
        /// Node.
        node: String,
        /// The command.
        command: String,
        /// Why.
        reason: String,
    },
    /// A node is not ready or belongs elsewhere.
    #[error("{node}: {reason}; nothing was changed")]
    Refused {
        /// Node.
        node: String,
        /// Why.
        reason: String,
    },
    /// No password for an API join.
    #[error("the API join needs the first node's root password: set {ENV_PASSWORD_FILE}=FILE or {ENV_PASSWORD} (or pass --use-ssh when root's SSH keys are set between the nodes)")]
    NoPassword,
    /// The password file cannot be read or its first line is empty (`reason` names the file).
    #[error("password file: {reason}")]
    PasswordFile {
        /// File.
        path: String,
        /// Why.
        reason: String,
    },
    /// The edit of corosync.conf cannot be made.
    #[error(transparent)]
    Edit(#[from] proxmox::EditError),
    /// `pvecm status` does not show the formed cluster.
    #[error("the cluster did not come up as expected: {0}")]
    NotFormed(String),
}

/// The first node's root password for an API join: the file named by
/// [`ENV_PASSWORD_FILE`], else [`ENV_PASSWORD`]. Never from the command line.
pub fn password_from_env() -> Result<Secret, FormError> {
    if let Some(path) = std::env::var_os(ENV_PASSWORD_FILE) {
        let path = Path::new(&path);
        let named_by = format!("the password file given by {ENV_PASSWORD_FILE}");
        return crate::secret::first_line_of_named(path, &named_by).map_err(|reason| {
            FormError::PasswordFile {
                path: path.display().to_string(),
                reason,
            }
        });
    }
    match std::env::var(ENV_PASSWORD) {
        Ok(p) if !p.is_empty() => Ok(Secret::new(p)),
        _ => Err(FormError::NoPassword),
    }
}

/// Runs one remote command; its stdout on success.
fn remote(dest: &str, command: &str, stdin: Option<&[u8]>) -> Result<String, String> {
    let input = stdin.map_or(crate::exec::Input::Nothing, crate::exec::Input::Bytes);
    super::remote(dest, command, command, input, super::SSH_DEADLINE)
}

/// Forms the cluster: runs `steps` (from [`proxmox::plan`]) on `nodes`; `rendered` is the
/// rendered corosync.conf; `expect_flags` what `pvecm status` must show at the end.
pub fn run(
    cluster: &str,
    nodes: &[FormNode],
    steps: &[Step],
    rendered: &str,
    password: Option<&Secret>,
    expect_flags: &[&str],
    progress: &mut dyn FnMut(usize, &Step),
) -> Result<PvecmStatus, FormError> {
    let dest = |name: &str| {
        nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.ssh.clone())
            .unwrap_or_default()
    };
    let mut members = Vec::new();
    let mut fingerprint = None;
    let mut status = None;
    let mut current: Option<String> = None;
    for (i, step) in steps.iter().enumerate() {
        let fail = |reason: String| FormError::Step {
            step: i + 1,
            node: step.node.clone(),
            command: step.command.clone(),
            reason,
        };
        let already = members.contains(&step.node);
        if (step.kind == StepKind::Create || step.kind == StepKind::Join) && already {
            continue;
        }
        progress(i + 1, step);
        let d = dest(&step.node);
        match step.kind {
            StepKind::Preflight => {
                let out = remote(&d, &step.command, None).map_err(fail)?;
                match proxmox::membership(&out, cluster, &step.node) {
                    Membership::NotProxmox => {
                        return Err(FormError::Refused {
                            node: step.node.clone(),
                            reason: "Proxmox VE is not installed yet (picaboot-proxmox.service has not finished: journalctl -u picaboot-proxmox)".into(),
                        })
                    }
                    Membership::Other(name) => {
                        return Err(FormError::Refused {
                            node: step.node.clone(),
                            reason: format!("already in cluster `{name}`, not `{cluster}`"),
                        })
                    }
                    Membership::Member => members.push(step.node.clone()),
                    Membership::Alone => {}
                }
            }
            StepKind::Create | StepKind::Qdevice => {
                remote(&d, &step.command, None).map_err(fail)?;
            }
            StepKind::Fingerprint => {
                let out = remote(&d, &step.command, None).map_err(fail)?;
                fingerprint = Some(proxmox::parse_fingerprint(&out).ok_or_else(|| {
                    fail(format!(
                        "not an openssl SHA-256 fingerprint: {}",
                        out.trim()
                    ))
                })?);
            }
            StepKind::Join => {
                let fp = fingerprint
                    .as_deref()
                    .ok_or_else(|| fail("no fingerprint from an earlier step".into()))?;
                let command = step.command.replace("<fingerprint>", fp);
                // An API join reads the password from stdin; an ssh join gets none.
                let stdin = password.map(|pw| format!("{}\n", pw.expose()).into_bytes());
                remote(&d, &command, stdin.as_deref()).map_err(fail)?;
            }
            StepKind::ReadConf => {
                current = Some(remote(&d, &step.command, None).map_err(fail)?);
            }
            StepKind::WriteConf => {
                let current = current
                    .as_deref()
                    .ok_or_else(|| fail("no corosync.conf read by an earlier step".into()))?;
                if proxmox::same_settings(rendered, current) {
                    continue;
                }
                let (text, _version) = proxmox::for_proxmox(rendered, current)?;
                remote(&d, &step.command, Some(text.as_bytes())).map_err(fail)?;
            }
            StepKind::Status => {
                let out = remote(&d, &step.command, None).map_err(fail)?;
                let st = proxmox::parse_pvecm_status(&out)
                    .ok_or_else(|| fail(format!("unreadable pvecm status: {}", out.trim())))?;
                let flags_ok = expect_flags.iter().all(|f| st.flags.iter().any(|g| g == f));
                if st.name != cluster
                    || st.nodes as usize != nodes.len()
                    || !st.quorate
                    || !flags_ok
                {
                    return Err(FormError::NotFormed(format!(
                        "pvecm status shows cluster `{}`, {} nodes, quorate {}, flags {} (expected `{cluster}`, {}, yes, {})",
                        st.name,
                        st.nodes,
                        st.quorate,
                        st.flags.join(" "),
                        nodes.len(),
                        expect_flags.join(" ")
                    )));
                }
                status = Some(st);
            }
        }
    }
    status.ok_or_else(|| FormError::NotFormed("the plan has no status step".into()))
}

impl crate::exit_class::ExitClass for FormError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            FormError::NoPassword | FormError::PasswordFile { .. } => Class::User,
            FormError::NotFormed(_) => Class::Test,
            _ => Class::Env,
        }
    }
}
