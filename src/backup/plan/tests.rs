//! `backup form` over a double of two nodes: each answers the reads from a recorded state
//! (the states of `super::super::proxmox::tests`, from Proxmox's documentation) and records
//! every command and stdin.

use super::*;

const ALICE_PUB: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlicePullKeyAlicePullKeyAlicePullKey0 picaboot-save-pull@alice\n";
const BOB_PUB: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBobPullKeyBobPullKeyBobPullKeyBobPu0 picaboot-save-pull@bob\n";
const ALICE_HOST: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAliceHostKeyAliceHostKeyAliceHostKe0 root@alice\n";
const BOB_HOST: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBobHostKeyBobHostKeyBobHostKeyBobHo0 root@bob\n";

struct Double {
    storage: &'static str,
    jobs: &'static str,
    log: Vec<(String, String, Option<String>)>,
}

impl Remote for Double {
    fn run(&mut self, node: &str, command: &str, stdin: Option<&[u8]>) -> Result<String, String> {
        let stdin = stdin.map(|s| String::from_utf8_lossy(s).into_owned());
        self.log.push((node.into(), command.into(), stdin));
        let alice = node == "alice";
        Ok(match command {
            c if c == proxmox::READ_STORAGE => self.storage.into(),
            c if c == proxmox::READ_JOBS => self.jobs.into(),
            c if c.ends_with(".pub") && c.starts_with("install") => {
                if alice { ALICE_PUB } else { BOB_PUB }.into()
            }
            c if c.starts_with("cat /etc/ssh/ssh_host") => {
                if alice { ALICE_HOST } else { BOB_HOST }.into()
            }
            _ => String::new(),
        })
    }
}

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

fn pulls() -> Vec<Pull> {
    let p = |node: &str, nl: &str, peer: &str, pl: &str, at: &str| Pull {
        node: node.into(),
        node_link: nl.parse().unwrap(),
        peer: peer.into(),
        peer_link: pl.parse().unwrap(),
        at: at.into(),
        source: "/SAVE/dump".into(),
        dest: format!("/SAVE/peer/{peer}"),
        keep_daily: 7,
    };
    vec![
        p("alice", "192.168.10.1", "bob", "192.168.10.2", "05:00"),
        p("bob", "192.168.10.2", "alice", "192.168.10.1", "06:00"),
    ]
}

fn form(
    storage: &'static str,
    jobs: &'static str,
    replace: bool,
) -> (Result<Vec<(String, String)>, FormError>, Double) {
    let nodes = vec!["alice".to_string(), "bob".to_string()];
    let steps = plan(&backup(), &nodes, "alice", &pulls());
    let mut d = Double {
        storage,
        jobs,
        log: Vec::new(),
    };
    let r = run(&backup(), &pulls(), &steps, replace, &mut d, &mut |_, _| {});
    (r, d)
}

const FRESH: &str =
    r#"[{"storage":"local","type":"dir","path":"/var/lib/vz","content":"iso,vztmpl,backup"}]"#;
const SAVE: &str =
    r#"[{"storage":"save","type":"dir","path":"/SAVE","content":"backup","is_mountpoint":"yes"}]"#;
const JOB: &str = r#"[{"id":"backup-0a1b","type":"vzdump","schedule":"03:00","all":1,"enabled":1,"mode":"snapshot","storage":"save","prune-backups":{"keep-daily":"7"}}]"#;
const OTHER_JOB: &str = r#"[{"id":"backup-0a1b","schedule":"03:00","all":1,"mode":"stop","storage":"save","prune-backups":"keep-daily=7"}]"#;

fn pve_writes(d: &Double) -> Vec<String> {
    d.log
        .iter()
        .filter(|(_, c, _)| {
            c.starts_with("pvesm ")
                || c.starts_with("pvesh create")
                || c.starts_with("pvesh delete")
        })
        .map(|(_, c, _)| c.clone())
        .collect()
}

#[test]
fn absent_state_creates_storage_and_job_then_crosses_the_keys() {
    let (r, d) = form(FRESH, "[]", false);
    r.unwrap();
    assert_eq!(
        pve_writes(&d),
        vec![
            proxmox::add_storage(&backup()),
            proxmox::create_job(&backup())
        ]
    );
    // Bob serves alice's key, restricted; alice pins bob's host key at bob's link address.
    let serve_bob = d
        .log
        .iter()
        .find(|(n, c, _)| n == "bob" && c.contains(SERVE_KEYS))
        .and_then(|(_, _, s)| s.clone())
        .unwrap();
    assert_eq!(
        serve_bob,
        "restrict,from=\"192.168.10.1\",command=\"/usr/bin/rrsync -ro /SAVE/dump\" ssh-ed25519 \
         AAAAC3NzaC1lZDI1NTE5AAAAIAlicePullKeyAlicePullKeyAlicePullKey0 picaboot-save-pull@alice\n"
    );
    let known_alice = d
        .log
        .iter()
        .find(|(n, c, _)| n == "alice" && c.contains("known_hosts.new"))
        .and_then(|(_, _, s)| s.clone())
        .unwrap();
    assert!(known_alice.starts_with("192.168.10.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBobHost"));
    // Every pvesh/pvesm command ran on the first node only.
    assert!(d
        .log
        .iter()
        .filter(|(_, c, _)| c.starts_with("pves"))
        .all(|(n, _, _)| n == "alice"));
}

#[test]
fn matching_state_writes_nothing_to_proxmox() {
    let (r, d) = form(SAVE, JOB, false);
    r.unwrap();
    assert!(pve_writes(&d).is_empty());
}

#[test]
fn differing_job_stops_before_any_key_is_made() {
    let (r, d) = form(SAVE, OTHER_JOB, false);
    let e = r.unwrap_err();
    assert_eq!(
        e.to_string(),
        "step 4 on alice: backup job `backup-0a1b` differs: mode stop (wanted snapshot); rerun \
         with --replace to replace it"
    );
    assert!(!d.log.iter().any(|(_, c, _)| c.contains("ssh-keygen")));
    let (r, d) = form(SAVE, OTHER_JOB, true);
    r.unwrap();
    assert_eq!(
        pve_writes(&d),
        vec![
            "pvesh delete /cluster/backup/backup-0a1b".to_string(),
            proxmox::create_job(&backup())
        ]
    );
}
