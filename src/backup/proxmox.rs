//! The Proxmox side of the backups, decided over a node's current state: the `dir` storage of
//! the backup directory and the cluster's vzdump job. Both live in pmxcfs (/etc/pve), so they
//! are read and written once, on one node. What matches is left alone; what differs is named
//! and refused unless `--replace`; what is absent is created.
//!
//! Commands and fields follow Proxmox's documentation and API schema: `pvesm add dir ID
//! --path --content backup --is_mountpoint yes` (pve-docs pvesm.adoc and pve-storage-dir.adoc:
//! `is_mountpoint` keeps the storage offline while the path is not mounted; `content backup`
//! puts vzdump files in `PATH/dump`), `pvesh get /storage` (pve-storage
//! PVE/API2/Storage/Config.pm: `storage`, `type`, `path`, `content` as a comma list,
//! `is_mountpoint`), and `/cluster/backup` (pve-manager PVE/API2/Backup.pm, jobs.cfg since
//! PVE 7.1: `id`, `schedule` (a calendar event such as `03:00`), `storage`, `mode`, `all`,
//! `enabled`, `prune-backups` (a property string `keep-daily=7`; read back as a string or an
//! object)).

use serde_json::Value;

use crate::profile::Backup;

/// The id of the vzdump job picaboot creates.
pub const JOB_ID: &str = "picaboot-save";

/// Reads the storage configuration (every storage, as JSON).
pub const READ_STORAGE: &str = "pvesh get /storage --output-format json";
/// Reads the cluster's backup jobs (as JSON).
pub const READ_JOBS: &str = "pvesh get /cluster/backup --output-format json";

/// `pvesm add dir` for the backup directory.
pub fn add_storage(b: &Backup) -> String {
    format!(
        "pvesm add dir {} --path {} --content backup --is_mountpoint yes",
        b.storage, b.path
    )
}

/// `pvesh create /cluster/backup` for every VM, at the schedule, into the storage.
pub fn create_job(b: &Backup) -> String {
    format!(
        "pvesh create /cluster/backup --id {JOB_ID} --schedule {} --storage {} --mode {} \
         --all 1 --enabled 1 --prune-backups keep-daily={}",
        b.schedule, b.storage, b.mode, b.keep_daily
    )
}

/// Why the state cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The reply is not the JSON list the API returns.
    #[error("`{command}` did not answer a JSON list: {reason}")]
    Unreadable {
        /// The command.
        command: &'static str,
        /// Why.
        reason: String,
    },
    /// Something exists and differs; `--replace` would replace it.
    #[error("{what} differs: {differences}; rerun with --replace to replace it")]
    Differs {
        /// The storage or job.
        what: String,
        /// `field VALUE (wanted VALUE)`, comma-separated.
        differences: String,
    },
}

impl crate::exit_class::ExitClass for StateError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            StateError::Unreadable { .. } => Class::Env,
            StateError::Differs { .. } => Class::User,
        }
    }
}

fn list(command: &'static str, json: &str) -> Result<Vec<Value>, StateError> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err(StateError::Unreadable {
            command,
            reason: "not a list".into(),
        }),
        Err(e) => Err(StateError::Unreadable {
            command,
            reason: e.to_string(),
        }),
    }
}

/// A field as text: strings as they are, numbers and booleans printed (`1`, `true`).
fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn truthy(v: &Value, key: &str) -> bool {
    matches!(text(v, key).as_deref(), Some("1" | "true" | "yes"))
}

/// Records `field` when its value is not `want`.
fn compare(diffs: &mut Vec<String>, field: &str, have: Option<String>, want: &str) {
    if have.as_deref() != Some(want) {
        let have = have.unwrap_or_else(|| "unset".into());
        diffs.push(format!("{field} {have} (wanted {want})"));
    }
}

/// The commands that bring the storage to `b`, given `pvesh get /storage` output.
pub fn storage_actions(b: &Backup, json: &str, replace: bool) -> Result<Vec<String>, StateError> {
    let items = list(READ_STORAGE, json)?;
    let Some(s) = items
        .iter()
        .find(|s| text(s, "storage").as_deref() == Some(&b.storage))
    else {
        return Ok(vec![add_storage(b)]);
    };
    let mut diffs = Vec::new();
    compare(&mut diffs, "type", text(s, "type"), "dir");
    compare(&mut diffs, "path", text(s, "path"), &b.path);
    let mut content: Vec<String> = text(s, "content")
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    content.sort();
    compare(&mut diffs, "content", Some(content.join(",")), "backup");
    // `yes`, or the path itself, both mean "a mount point".
    let mp = text(s, "is_mountpoint");
    if !(truthy(s, "is_mountpoint") || mp.as_deref() == Some(&b.path)) {
        compare(&mut diffs, "is_mountpoint", mp, "yes");
    }
    if truthy(s, "disable") {
        diffs.push("disable 1 (wanted enabled)".into());
    }
    decide(
        format!("storage `{}`", b.storage),
        diffs,
        replace,
        vec![format!("pvesm remove {}", b.storage), add_storage(b)],
    )
}

fn decide(
    what: String,
    diffs: Vec<String>,
    replace: bool,
    replacement: Vec<String>,
) -> Result<Vec<String>, StateError> {
    match (diffs.is_empty(), replace) {
        (true, _) => Ok(Vec::new()),
        (false, true) => Ok(replacement),
        (false, false) => Err(StateError::Differs {
            what,
            differences: diffs.join(", "),
        }),
    }
}

/// `prune-backups` as `key=value,…` sorted, from a property string or an object.
fn prune(job: &Value) -> Option<String> {
    let mut parts: Vec<String> = match job.get("prune-backups")? {
        Value::String(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect(),
        _ => return None,
    };
    parts.retain(|p| !p.is_empty());
    parts.sort();
    Some(parts.join(","))
}

/// The commands that bring the vzdump job to `b`, given `pvesh get /cluster/backup` output:
/// picaboot's job by its id, else a job already writing into the storage.
pub fn job_actions(b: &Backup, json: &str, replace: bool) -> Result<Vec<String>, StateError> {
    let items = list(READ_JOBS, json)?;
    let job = items
        .iter()
        .find(|j| text(j, "id").as_deref() == Some(JOB_ID))
        .or_else(|| {
            items
                .iter()
                .find(|j| text(j, "storage").as_deref() == Some(&b.storage))
        });
    let Some(j) = job else {
        return Ok(vec![create_job(b)]);
    };
    let id = text(j, "id").unwrap_or_default();
    let mut diffs = Vec::new();
    compare(&mut diffs, "schedule", text(j, "schedule"), &b.schedule);
    compare(&mut diffs, "storage", text(j, "storage"), &b.storage);
    compare(&mut diffs, "mode", text(j, "mode"), &b.mode);
    if !truthy(j, "all") {
        compare(&mut diffs, "all", text(j, "all"), "1");
    }
    if let Some(vmid) = text(j, "vmid") {
        diffs.push(format!("vmid {vmid} (wanted every VM)"));
    }
    // `enabled` defaults to 1 when absent.
    if text(j, "enabled").is_some() && !truthy(j, "enabled") {
        diffs.push("enabled 0 (wanted 1)".into());
    }
    compare(
        &mut diffs,
        "prune-backups",
        prune(j),
        &format!("keep-daily={}", b.keep_daily),
    );
    decide(
        format!("backup job `{id}`"),
        diffs,
        replace,
        vec![format!("pvesh delete /cluster/backup/{id}"), create_job(b)],
    )
}

#[cfg(test)]
mod tests;
