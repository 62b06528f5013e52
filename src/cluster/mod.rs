//! corosync model: the nodelist, two-node quorum, and the `config_version` policy.
//!
//! corosync wants `config_version` raised on every change, on every node (the wiki's pitfall 1).
//! picaboot keeps the last version and the hash of the content it was rendered for in
//! `clusters/NAME.lock.toml`; rendering compares the new content's hash with it and raises the
//! version exactly when the content changed. Both nodes render the same corosync.conf from the
//! same record, so they always agree, and no clock is involved.

pub mod proxmox;

use std::net::Ipv4Addr;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::profile::{Cluster, ClusterLock, Profiles, Quorum};

/// One node as corosync.conf lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorosyncNode {
    /// Node name (host name).
    pub name: String,
    /// Node id.
    pub nodeid: u32,
    /// Quorum votes.
    pub votes: u32,
    /// Address on link 0.
    pub ring0_addr: Ipv4Addr,
}

/// The data of a corosync.conf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Corosync {
    /// cluster_name.
    pub cluster_name: String,
    /// config_version.
    pub config_version: u64,
    /// transport.
    pub transport: String,
    /// Crypto (knet: crypto_cipher/crypto_hash; udpu: secauth).
    pub crypto: bool,
    /// two_node quorum.
    pub two_node: bool,
    /// The corosync-qnetd host of a qdevice quorum.
    pub qnetd: Option<String>,
    /// Nodes by id.
    pub nodes: Vec<CorosyncNode>,
}

/// Builds the corosync data of a cluster with `config_version` 0 (see [`resolve_version`]).
/// Members without a cluster address are left out (profile validation rejects them).
pub fn corosync(profiles: &Profiles, cluster: &Cluster) -> Corosync {
    let nodes = cluster
        .nodes
        .iter()
        .filter_map(|n| {
            let h = profiles.hosts.get(&n.host)?;
            Some(CorosyncNode {
                name: h.hostname.clone(),
                nodeid: n.nodeid,
                votes: n.votes,
                ring0_addr: h.cluster_link.as_ref()?.address.addr(),
            })
        })
        .collect();
    Corosync {
        cluster_name: cluster.name.clone(),
        config_version: 0,
        transport: cluster.transport.clone(),
        crypto: cluster.crypto,
        two_node: cluster.quorum == Quorum::TwoNode,
        qnetd: match &cluster.quorum {
            Quorum::Qdevice { qnetd } => Some(qnetd.clone()),
            Quorum::TwoNode => None,
        },
        nodes,
    }
}

/// The outcome of comparing rendered content with the recorded lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionDecision {
    /// The version to render.
    pub version: u64,
    /// The lock to write, when it changes.
    pub new_lock: Option<ClusterLock>,
}

/// sha256 of corosync.conf rendered with `config_version` 0.
pub fn content_hash(rendered_with_zero: &str) -> String {
    hex::encode(Sha256::digest(rendered_with_zero.as_bytes()))
}

/// Picks the version: the recorded one when the content is unchanged, one more otherwise.
pub fn resolve_version(lock: Option<&ClusterLock>, hash: &str) -> VersionDecision {
    match lock {
        Some(l) if l.content_sha256 == hash => VersionDecision {
            version: l.config_version,
            new_lock: None,
        },
        other => {
            let version = other.map_or(1, |l| l.config_version + 1);
            VersionDecision {
                version,
                new_lock: Some(ClusterLock {
                    config_version: version,
                    content_sha256: hash.to_string(),
                }),
            }
        }
    }
}

/// The text of a lock file.
pub fn lock_text(cluster: &str, lock: &ClusterLock) -> String {
    format!(
        "# corosync config_version record for cluster `{cluster}`, kept by picaboot.\n\
         # picaboot raises config-version when the rendered corosync.conf changes; commit this\n\
         # file with the profiles so that every admin renders the same version.\n\
         config-version = {}\ncontent-sha256 = \"{}\"\n",
        lock.config_version, lock.content_sha256
    )
}

/// Writes a lock file atomically (temporary file + rename).
pub fn write_lock(path: &Path, cluster: &str, lock: &ClusterLock) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // The rewritten file keeps the mode of the one it replaces (0644 for a new one), not the
    // temporary file's 0600 (which would lock other users of the profiles out of `check`).
    let mode = match std::fs::metadata(path) {
        Ok(m) => std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0o644,
        Err(e) => return Err(e),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, lock_text(cluster, lock).as_bytes())?;
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rises_only_on_change() {
        let first = resolve_version(None, "aaa");
        assert_eq!(first.version, 1);
        let lock = first.new_lock.unwrap();
        let same = resolve_version(Some(&lock), "aaa");
        assert_eq!((same.version, same.new_lock), (1, None));
        let changed = resolve_version(Some(&lock), "bbb");
        assert_eq!(changed.version, 2);
        assert_eq!(changed.new_lock.unwrap().config_version, 2);
    }

    #[test]
    fn a_rewritten_lock_keeps_its_mode_and_a_new_one_is_0644() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let lock = resolve_version(None, "aaa").new_lock.unwrap();
        let new = dir.path().join("new.lock");
        write_lock(&new, "c", &lock).unwrap();
        assert_eq!(mode(&new), 0o644);
        for m in [0o644, 0o640, 0o664] {
            std::fs::set_permissions(&new, std::fs::Permissions::from_mode(m)).unwrap();
            let raised = resolve_version(Some(&lock), "bbb").new_lock.unwrap();
            write_lock(&new, "c", &raised).unwrap();
            assert_eq!(mode(&new), m, "mode {m:o} kept across a rewrite");
        }
    }
}
