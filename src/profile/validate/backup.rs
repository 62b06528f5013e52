//! `[backup]` of a cluster profile: the vzdump job (storage id, directory, time, retention,
//! mode) and the time each node pulls the other's dumps; and, across files, that the backup
//! directory is a mount point of every node.

use std::collections::BTreeMap;

use super::Checker;
use crate::profile::model::{Backup, Cluster, Host};
use crate::profile::raw::{RawBackup, RawNode};
use crate::profile::source::{Diagnostics, SourceFile};

/// The longest retention accepted, in days.
pub const MAX_KEEP_DAILY: u32 = 365;

/// vzdump's modes (pve-docs vzdump.adoc, "Backup modes").
const MODES: &[&str] = &["snapshot", "suspend", "stop"];

/// `HH:MM` with 00 <= HH <= 23 and 00 <= MM <= 59, two digits each.
pub fn time_of_day(s: &str) -> Option<(u8, u8)> {
    let (h, m) = s.split_once(':')?;
    let two = |t: &str| {
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u8>().ok())
            .flatten()
    };
    let (h, m) = (two(h)?, two(m)?);
    (h <= 23 && m <= 59).then_some((h, m))
}

/// A Proxmox storage id (pve-common's `pve-storage-id` format:
/// `^[a-z][a-z0-9\-\_\.]*[a-z0-9]$`).
pub fn storage_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(&c))
}

/// An absolute directory path of plain components (no `.`/`..`, no trailing `/`).
fn plain_dir(s: &str) -> bool {
    s.len() > 1
        && s.len() <= 200
        && s.starts_with('/')
        && s[1..].split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

/// Checks `[backup]`; `nodes` are the cluster's members as written, `manager` its manager.
pub(crate) fn verify_backup(
    c: &mut Checker<'_>,
    b: &RawBackup,
    nodes: &[RawNode],
    manager: &str,
) -> Option<Backup> {
    let errors = c.diags.0.len();
    if manager == "standalone" {
        c.err(
            "backup",
            "[backup] is Proxmox's vzdump job and storage: it needs manager = \"proxmox\"",
        );
    }
    if !storage_id(&b.storage) {
        c.err(
            "backup.storage",
            format!(
                "`{}` is not a Proxmox storage id (a lower-case letter, then lower-case letters, \
                 digits and `-_.`, ending with a letter or digit)",
                b.storage
            ),
        );
    }
    if !plain_dir(&b.path) {
        c.err(
            "backup.path",
            format!(
                "`{}` is not an absolute directory path of plain names",
                b.path
            ),
        );
    }
    if time_of_day(&b.schedule).is_none() {
        c.err(
            "backup.schedule",
            format!(
                "`{}` is not a time of day HH:MM (00:00 to 23:59)",
                b.schedule
            ),
        );
    }
    let keep = u32::try_from(b.keep_daily)
        .ok()
        .filter(|k| (1..=MAX_KEEP_DAILY).contains(k));
    if keep.is_none() {
        c.err(
            "backup.keep-daily",
            format!(
                "{} is not a number of days from 1 to {MAX_KEEP_DAILY}",
                b.keep_daily
            ),
        );
    }
    if !MODES.contains(&b.mode.as_str()) {
        c.err(
            "backup.mode",
            format!(
                "`{}` is not a vzdump mode (snapshot, suspend or stop)",
                b.mode
            ),
        );
    }
    verify_pulls(c, b, nodes);
    (c.diags.0.len() == errors).then(|| Backup {
        storage: b.storage.clone(),
        path: b.path.clone(),
        schedule: b.schedule.clone(),
        keep_daily: keep.unwrap_or(1),
        mode: b.mode.clone(),
        pull_at: b.pull_at.clone(),
    })
}

/// `[backup.pull-at]`: two nodes, each pulling the other's dumps at its own time.
fn verify_pulls(c: &mut Checker<'_>, b: &RawBackup, nodes: &[RawNode]) {
    if nodes.len() != 2 {
        c.err(
            "backup.pull-at",
            format!(
                "each node pulls the other's dumps, so exactly two nodes are needed; {} are listed",
                nodes.len()
            ),
        );
    }
    for (host, at) in &b.pull_at {
        let field = format!("backup.pull-at.{host}");
        if !nodes.iter().any(|n| &n.host == host) {
            c.err(field, format!("`{host}` is not a node of this cluster"));
        } else if time_of_day(at).is_none() {
            c.err(
                field,
                format!("`{at}` is not a time of day HH:MM (00:00 to 23:59)"),
            );
        } else if at == &b.schedule {
            c.err(
                field,
                format!("{at} is the vzdump job's own time: pull once the dumps are written"),
            );
        }
    }
    for n in nodes {
        if !b.pull_at.contains_key(&n.host) {
            c.err(
                "backup.pull-at",
                format!(
                    "node `{}` has no pull time (`{} = \"HH:MM\"`)",
                    n.host, n.host
                ),
            );
        }
    }
}

/// The backup directory must be a mount point on every node: the storage is added with
/// `is_mountpoint yes`, so Proxmox keeps it offline, rather than filling the root filesystem,
/// while the volume is not mounted (pve-docs pvesm.adoc, directory backend). A host whose own
/// file has problems is skipped: those come first.
pub(crate) fn verify_backup_mounts(
    hosts: &BTreeMap<String, Host>,
    host_sources: &BTreeMap<String, SourceFile>,
    clusters: &BTreeMap<String, Cluster>,
    cluster_sources: &BTreeMap<String, SourceFile>,
    diags: &mut Diagnostics,
) {
    for (cname, cl) in clusters {
        let Some(b) = &cl.backup else { continue };
        for n in &cl.nodes {
            let Some(h) = hosts.get(&n.host) else {
                continue;
            };
            let file = host_sources.get(&n.host).map(|s| s.path());
            if diags.0.iter().any(|d| Some(d.file.as_path()) == file) {
                continue;
            }
            let st = &h.storage;
            let volumes = st.volumes.iter().filter_map(|v| v.mount.as_deref());
            let arrays = st.arrays.iter().filter_map(|a| match &a.content {
                crate::profile::model::ArrayContent::Filesystem { mount, .. } => {
                    Some(mount.as_str())
                }
                _ => None,
            });
            if !volumes.chain(arrays).any(|m| m == b.path) {
                diags.push(cluster_sources[cname].diag(
                    "backup.path",
                    format!(
                        "`{}` is not a mount point in the storage of `{}` (hosts/{}.toml); the \
                         storage is added with is_mountpoint yes",
                        b.path, n.host, n.host
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{storage_id, time_of_day};

    #[test]
    fn times_of_day() {
        assert_eq!(time_of_day("03:00"), Some((3, 0)));
        assert_eq!(time_of_day("23:59"), Some((23, 59)));
        for bad in [
            "24:00", "3:00", "03:60", "03-00", "0300", "", "+3:00", "03:0",
        ] {
            assert_eq!(time_of_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn storage_ids_follow_pve_storage_id() {
        for good in ["save", "local-lvm", "a1", "backup.2"] {
            assert!(storage_id(good), "{good}");
        }
        for bad in ["Save", "1save", "save-", "s", "sa ve", "sa/ve"] {
            assert!(!storage_id(bad), "{bad}");
        }
    }
}
