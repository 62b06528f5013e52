//! The decisions over recorded node states. The states are written from Proxmox's own
//! documentation, since Proxmox cannot run here: the default storage.cfg of pve-docs
//! pvesm.adoc ("Default storage configuration": `local` dir /var/lib/vz with
//! `iso,vztmpl,backup`, `local-lvm` lvmthin), read back through `pvesh get /storage` as
//! pve-storage's PVE/API2/Storage/Config.pm lists it (one object per storage, `storage` and
//! `type` added, `content` a comma list); and a jobs.cfg `vzdump:` section as the GUI writes
//! it (pve-docs vzdump.adoc "Backup Jobs"; id `backup-…`, `prune-backups` read back as an
//! object by PVE::Jobs::VZDump's decode_value) or as `pvesh create` writes it with the
//! property string.

use super::*;

fn backup() -> Backup {
    Backup {
        storage: "save".into(),
        path: "/SAVE".into(),
        schedule: "03:00".into(),
        keep_daily: 7,
        mode: "snapshot".into(),
        pull_at: Default::default(),
    }
}

/// A fresh node: pvesm.adoc's default storage.cfg.
const FRESH_STORAGE: &str = r#"[
 {"storage":"local","type":"dir","path":"/var/lib/vz","content":"iso,vztmpl,backup","digest":"5f2a"},
 {"storage":"local-lvm","type":"lvmthin","thinpool":"data","vgname":"pve","content":"rootdir,images","digest":"5f2a"}
]"#;

/// After `pvesm add dir save --path /SAVE --content backup --is_mountpoint yes`.
const SAVE_STORAGE: &str = r#"[
 {"storage":"local","type":"dir","path":"/var/lib/vz","content":"iso,vztmpl,backup","digest":"9c1e"},
 {"storage":"save","type":"dir","path":"/SAVE","content":"backup","is_mountpoint":"yes","digest":"9c1e"}
]"#;

/// `save` made by hand on the wrong directory, without is_mountpoint, holding ISO images too.
const OTHER_SAVE_STORAGE: &str = r#"[
 {"storage":"save","type":"dir","path":"/backup","content":"iso,backup","digest":"77aa"}
]"#;

/// The job the GUI makes (its own id), as the wiki says: every VM, 03:00, 7 daily, snapshot.
const GUI_JOB: &str = r#"[
 {"id":"backup-0a1b2c3d-4e5f","type":"vzdump","schedule":"03:00","all":1,"enabled":1,
  "mode":"snapshot","storage":"save","notes-template":"{{guestname}}",
  "prune-backups":{"keep-daily":"7"},"next-run":1764900000}
]"#;

/// picaboot's own job, prune-backups read back as the property string.
const OWN_JOB: &str = r#"[
 {"id":"picaboot-save","type":"vzdump","schedule":"03:00","all":"1","enabled":"1",
  "mode":"snapshot","storage":"save","prune-backups":"keep-daily=7"}
]"#;

/// A job on the storage at 02:00 keeping 3, for two VMs.
const OTHER_JOB: &str = r#"[
 {"id":"backup-99","type":"vzdump","schedule":"02:00","vmid":"100,101","enabled":1,
  "mode":"snapshot","storage":"save","prune-backups":{"keep-daily":"3"}}
]"#;

#[test]
fn absent_storage_and_job_are_created() {
    assert_eq!(
        storage_actions(&backup(), FRESH_STORAGE, false).unwrap(),
        vec!["pvesm add dir save --path /SAVE --content backup --is_mountpoint yes"]
    );
    assert_eq!(
        job_actions(&backup(), "[]", false).unwrap(),
        vec![
            "pvesh create /cluster/backup --id picaboot-save --schedule 03:00 --storage save \
             --mode snapshot --all 1 --enabled 1 --prune-backups keep-daily=7"
        ]
    );
}

#[test]
fn matching_storage_and_jobs_are_left_alone() {
    assert!(storage_actions(&backup(), SAVE_STORAGE, false)
        .unwrap()
        .is_empty());
    assert!(job_actions(&backup(), GUI_JOB, false).unwrap().is_empty());
    assert!(job_actions(&backup(), OWN_JOB, false).unwrap().is_empty());
    // --replace replaces nothing that matches.
    assert!(job_actions(&backup(), OWN_JOB, true).unwrap().is_empty());
}

#[test]
fn differing_storage_is_named_and_refused_unless_replace() {
    let err = storage_actions(&backup(), OTHER_SAVE_STORAGE, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "storage `save` differs: path /backup (wanted /SAVE), content backup,iso (wanted \
         backup), is_mountpoint unset (wanted yes); rerun with --replace to replace it"
    );
    assert_eq!(
        storage_actions(&backup(), OTHER_SAVE_STORAGE, true).unwrap(),
        vec![
            "pvesm remove save".to_string(),
            "pvesm add dir save --path /SAVE --content backup --is_mountpoint yes".to_string()
        ]
    );
}

#[test]
fn differing_job_is_named_and_refused_unless_replace() {
    let err = job_actions(&backup(), OTHER_JOB, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "backup job `backup-99` differs: schedule 02:00 (wanted 03:00), all unset (wanted 1), \
         vmid 100,101 (wanted every VM), prune-backups keep-daily=3 (wanted keep-daily=7); \
         rerun with --replace to replace it"
    );
    let cmds = job_actions(&backup(), OTHER_JOB, true).unwrap();
    assert_eq!(cmds[0], "pvesh delete /cluster/backup/backup-99");
    assert!(cmds[1].starts_with("pvesh create /cluster/backup --id picaboot-save "));
}

#[test]
fn a_reply_that_is_not_a_list_is_refused() {
    assert!(matches!(
        storage_actions(&backup(), "Permission check failed", false),
        Err(StateError::Unreadable { .. })
    ));
    assert!(matches!(
        job_actions(&backup(), "{}", false),
        Err(StateError::Unreadable { .. })
    ));
}
