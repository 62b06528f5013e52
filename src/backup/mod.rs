//! Backups of a cluster (002 §14): each node's vzdump job writes into a directory storage,
//! and each node pulls the other's dumps over the cluster link with a key that the serving
//! side forces to a read-only rsync of the dump directory ([`Pull`], rendered by
//! [`crate::render`]); [`proxmox`] decides the Proxmox side (storage and vzdump job) over a
//! node's current state; [`plan`] is the sequence `picaboot backup form` runs over ssh.

pub mod plan;
pub mod proxmox;

use std::net::Ipv4Addr;

use crate::profile::{Backup, Cluster, Profiles};

/// Where a node keeps its pull key and the peer's host key (made by `backup form`).
pub const KEY_DIR: &str = "/var/lib/picaboot/save-pull";
/// The pull key (ed25519, made on the node; the private half never leaves it).
pub const KEY: &str = "/var/lib/picaboot/save-pull/id_ed25519";
/// The peer's host key, as `ADDRESS KEYTYPE KEY` (read from the peer by `backup form`).
pub const KNOWN_HOSTS: &str = "/var/lib/picaboot/save-pull/known_hosts";
/// Directory of the extra authorized keys files sshd reads (`%u`: one file per user).
pub const SERVE_DIR: &str = "/etc/ssh/picaboot-save";
/// root's file in [`SERVE_DIR`]: the peer's pull key with its restriction.
pub const SERVE_KEYS: &str = "/etc/ssh/picaboot-save/root";
/// Debian's rrsync (package rsync, since 3.2.4 installed as a program; a python3 script).
pub const RRSYNC: &str = "/usr/bin/rrsync";
/// The rendered pull script.
pub const SCRIPT: &str = "/usr/local/sbin/picaboot-save-pull";
/// The pull service.
pub const SERVICE: &str = "picaboot-save-pull.service";
/// The pull timer.
pub const TIMER: &str = "picaboot-save-pull.timer";
/// The sshd drop-in naming [`SERVE_DIR`].
pub const SSHD_DROPIN: &str = "/etc/ssh/sshd_config.d/picaboot-save.conf";

/// One node's daily pull of its peer's dumps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pull {
    /// The pulling node (host name).
    pub node: String,
    /// Its cluster address (the serving side accepts the key from there only).
    pub node_link: Ipv4Addr,
    /// The node it pulls from.
    pub peer: String,
    /// The peer's cluster address (where rsync connects).
    pub peer_link: Ipv4Addr,
    /// Time of day, `HH:MM`.
    pub at: String,
    /// The directory served, read-only: vzdump's `dump/` in the backup storage.
    pub source: String,
    /// Where the dumps land on the pulling node (beside `dump/`, which vzdump prunes).
    pub dest: String,
    /// Days the pulled dumps are kept on the pulling node.
    pub keep_daily: u32,
}

/// The dump directory vzdump writes in a directory storage at `path` (pve-docs pvesm.adoc:
/// backups go to the storage's `dump/` subdirectory).
pub fn dump_dir(b: &Backup) -> String {
    format!("{}/dump", b.path)
}

/// The pulls of a cluster with backups: one per node, from the other node. Empty without
/// `[backup]` or when a node has no cluster address (both are checked by `check`).
pub fn pulls(profiles: &Profiles, cl: &Cluster) -> Vec<Pull> {
    let Some(b) = &cl.backup else {
        return Vec::new();
    };
    let link = |h: &str| {
        profiles
            .hosts
            .get(h)
            .and_then(|h| h.cluster_link.as_ref())
            .map(|l| l.address.addr())
    };
    let mut out = Vec::new();
    for n in &cl.nodes {
        let Some(peer) = cl.nodes.iter().find(|p| p.host != n.host) else {
            continue;
        };
        let (Some(node_link), Some(peer_link), Some(at)) =
            (link(&n.host), link(&peer.host), b.pull_at.get(&n.host))
        else {
            continue;
        };
        out.push(Pull {
            node: n.host.clone(),
            node_link,
            peer: peer.host.clone(),
            peer_link,
            at: at.clone(),
            source: dump_dir(b),
            dest: format!("{}/peer/{}", b.path, peer.host),
            keep_daily: b.keep_daily,
        });
    }
    out
}

/// The options of the serving side's authorized key line for `pull`: no pty, no forwarding
/// (`restrict`), from the puller's cluster address only, and whatever the client asks, a
/// read-only rsync of the dump directory (rrsync(1)).
pub fn restriction(pull: &Pull) -> String {
    format!(
        "restrict,from=\"{}\",command=\"{RRSYNC} -ro {}\"",
        pull.node_link, pull.source
    )
}

/// Why a public key read from a node is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{line}` {reason}")]
pub struct KeyError {
    /// The line (a public key: nothing secret).
    pub line: String,
    /// Why.
    pub reason: String,
}

impl crate::exit_class::ExitClass for KeyError {
    fn exit_class(&self) -> crate::exit_class::Class {
        crate::exit_class::Class::Env
    }
}

/// The one public key line in `text` (an `id_ed25519.pub` or an ssh host key file).
fn one_key(text: &str) -> Result<&str, KeyError> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let bad = |reason: &str| KeyError {
        line: text.trim().chars().take(120).collect(),
        reason: reason.to_string(),
    };
    match lines.as_slice() {
        [line] => {
            crate::profile::units::check_ssh_key(line).map_err(|r| bad(&r))?;
            Ok(line.trim())
        }
        _ => Err(bad("is not exactly one public key line")),
    }
}

/// The serving side's line for `pull` with the puller's public key (its `.pub` file's text).
pub fn authorized_line(pull: &Pull, pubkey: &str) -> Result<String, KeyError> {
    let key = one_key(pubkey)?;
    // Key type and body only: the comment is the node's, not trusted into an options line.
    let mut words = key.split_whitespace();
    let (kind, body) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    Ok(format!(
        "{} {kind} {body} picaboot-save-pull@{}\n",
        restriction(pull),
        pull.node
    ))
}

/// The puller's known_hosts line for the peer, from the peer's host key file's text.
pub fn known_hosts_line(pull: &Pull, host_key: &str) -> Result<String, KeyError> {
    let key = one_key(host_key)?;
    let mut words = key.split_whitespace();
    let (kind, body) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    Ok(format!("{} {kind} {body}\n", pull.peer_link))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull() -> Pull {
        Pull {
            node: "alice".into(),
            node_link: "192.168.10.1".parse().unwrap(),
            peer: "bob".into(),
            peer_link: "192.168.10.2".parse().unwrap(),
            at: "05:00".into(),
            source: "/SAVE/dump".into(),
            dest: "/SAVE/peer/bob".into(),
            keep_daily: 7,
        }
    }

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPdSwaJc8WKt/1pKIhjDu5ea1zCl0IvhloQ+/BKtkcI3 root@alice\n";

    #[test]
    fn the_line_forces_a_read_only_rsync_from_the_puller_only() {
        let line = authorized_line(&pull(), KEY).unwrap();
        assert!(line.starts_with(
            "restrict,from=\"192.168.10.1\",command=\"/usr/bin/rrsync -ro /SAVE/dump\" ssh-ed25519 AAAA"
        ));
        assert!(line.ends_with(" picaboot-save-pull@alice\n"));
    }

    #[test]
    fn a_key_with_options_or_two_lines_or_a_private_key_is_refused() {
        for bad in [
            "command=\"sh\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPdSwaJc8WKt",
            "",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
        ] {
            assert!(authorized_line(&pull(), bad).is_err(), "{bad}");
        }
        let two = format!("{KEY}{KEY}");
        assert!(authorized_line(&pull(), &two).is_err());
    }

    #[test]
    fn known_hosts_names_the_cluster_address() {
        let l = known_hosts_line(&pull(), KEY).unwrap();
        assert!(l.starts_with("192.168.10.2 ssh-ed25519 AAAA"));
        assert!(!l.contains("root@alice"));
    }
}
