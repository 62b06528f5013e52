//! Operating the real boxes: where their AMT is and how to reach it ([`amt_target`]), the
//! drift check of a live host against its rendered files ([`diff`]), and the reinstall
//! orchestration's decisions ([`reinstall`]).

pub mod backup_form;
pub mod diff;
pub mod form;
pub mod form_plan;
pub mod post_install;
pub mod reinstall;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::amt::Target;
use crate::profile::Profiles;

/// Environment variable naming an ssh config file used for every ssh picaboot runs (`ssh -F`);
/// without it the user's own ssh config applies.
pub const ENV_SSH_CONFIG: &str = "PICABOOT_SSH_CONFIG";

/// Errors of the operations.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The host profile has no `[vpro] address`.
    #[error("host `{0}` has no [vpro] address in its profile")]
    NoVpro(String),
    /// No such host.
    #[error("no host profile `{name}`; known: {known}")]
    UnknownHost {
        /// Asked name.
        name: String,
        /// Known names.
        known: String,
    },
    /// ssh could not run or the session failed.
    #[error("ssh {dest}: {reason}")]
    Ssh {
        /// Destination.
        dest: String,
        /// Why.
        reason: String,
    },
    /// A remote command over ssh (or ssh itself) did not end by its deadline: ssh and every
    /// process it started were killed.
    #[error("ssh {dest}: {reason}")]
    Hung {
        /// Destination.
        dest: String,
        /// What hung, the deadline, the tail of ssh's stderr.
        reason: String,
    },
    /// The remote answered something this side does not understand.
    #[error("the drift probe on {dest} answered unexpectedly: {reason}")]
    Protocol {
        /// Destination.
        dest: String,
        /// What.
        reason: String,
    },
    /// A rendered path cannot be probed safely.
    #[error("rendered path `{0}` cannot be quoted for the remote shell")]
    BadPath(String),
}

/// The ssh config file from [`ENV_SSH_CONFIG`], if set.
pub fn ssh_config() -> Option<PathBuf> {
    std::env::var_os(ENV_SSH_CONFIG).map(PathBuf::from)
}

/// ssh options that end a session whose peer went silent (45 s without an answer to a
/// keepalive) rather than waiting on a dead TCP connection forever.
pub const SSH_ALIVE: [&str; 4] = [
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=3",
];

/// ssh's own bound on connecting and on the server's first words (the banner and key
/// exchange): a server that accepts and never speaks ends ssh here, well before
/// [`SSH_DEADLINE`].
pub const SSH_CONNECT: [&str; 2] = ["-o", "ConnectTimeout=30"];

/// The wall-clock deadline of one remote command over ssh (a probe, a check, a `pvecm`
/// step): it is run with [`crate::exec::run_deadline`], which kills ssh and everything it
/// started when the deadline passes.
pub const SSH_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// Runs `command` on `dest` over ssh with `input` on its stdin, within `deadline` (ssh and
/// everything it started are killed past it): its stdout, or why it failed (the last lines of
/// its stderr and its status). `shown` names the command in logs and errors, so that a
/// command holding a secret (a join token) is never printed.
pub fn remote(
    dest: &str,
    command: &str,
    shown: &str,
    input: crate::exec::Input<'_>,
    deadline: Duration,
) -> Result<String, String> {
    remote_via(
        ssh_config().as_deref(),
        dest,
        command,
        shown,
        input,
        deadline,
    )
}

/// [`remote`] with the ssh config file given (`None`: the admin's own), not read from
/// [`ENV_SSH_CONFIG`]: a test reaching its guests through forwarded ports uses its own.
pub fn remote_via(
    config: Option<&Path>,
    dest: &str,
    command: &str,
    shown: &str,
    input: crate::exec::Input<'_>,
    deadline: Duration,
) -> Result<String, String> {
    let out = crate::exec::run_deadline_input(
        &format!("`{shown}` on {dest}"),
        ssh_command_via(config, dest).arg(command),
        input,
        deadline,
    )
    .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    // Some programs say why on stdout (the gluster CLI): that tail when stderr is empty.
    let err = String::from_utf8_lossy(&out.stderr);
    let said = if err.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout)
    } else {
        err
    };
    let tail: Vec<&str> = said.lines().rev().take(5).collect();
    Err(format!(
        "{} ({})",
        tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
        out.status
    ))
}

/// `ssh [-F CONFIG] -o BatchMode=yes -o ServerAlive… -- DEST` (add the remote command).
pub fn ssh_command(dest: &str) -> Command {
    ssh_command_via(ssh_config().as_deref(), dest)
}

/// [`ssh_command`] with the config file given (`None`: ssh's default).
pub fn ssh_command_via(config: Option<&Path>, dest: &str) -> Command {
    let mut c = Command::new("ssh");
    if let Some(cfg) = config {
        c.arg("-F").arg(cfg);
    }
    c.args(["-o", "BatchMode=yes"])
        .args(SSH_CONNECT)
        .args(SSH_ALIVE);
    c.args(["--", dest]);
    c
}

/// Where `host`'s AMT is: its profile's `[vpro]`, the site's jump host, [`ENV_SSH_CONFIG`].
pub fn amt_target(profiles: &Profiles, host: &str, timeout: Duration) -> Result<Target, OpsError> {
    let h = profiles
        .hosts
        .get(host)
        .ok_or_else(|| OpsError::UnknownHost {
            name: host.to_string(),
            known: profiles.host_names(),
        })?;
    let address = h
        .vpro_address
        .ok_or_else(|| OpsError::NoVpro(host.to_string()))?;
    Ok(Target {
        address: address.to_string(),
        port: h.vpro_port,
        tls_sha256: h.vpro_tls_sha256,
        jump: profiles.vpro_jump_host.clone(),
        ssh_config: ssh_config(),
        timeout,
    })
}

impl OpsError {
    /// Whether a remote command overran its deadline and was killed.
    pub fn hung(&self) -> bool {
        matches!(self, OpsError::Hung { .. })
    }
}

impl crate::exit_class::ExitClass for OpsError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            OpsError::NoVpro(_) | OpsError::UnknownHost { .. } => Class::User,
            _ => Class::Env,
        }
    }
}
