//! Forming a Proxmox-managed cluster the way Proxmox documents it (pve-docs `pvecm.adoc`):
//! `pvecm create` on the first node with its cluster address as link0, the other nodes join
//! through the API (`pvesh create /cluster/config/join`) or over SSH (`pvecm add --use_ssh`),
//! then the rendered quorum settings go in as `/etc/pve/corosync.conf.new` with
//! `config_version` raised above the one Proxmox has, moved into place, and `pvecm status` is
//! read back. This module is the pure part: the plan, and the parsers of what the nodes answer.

use std::collections::BTreeMap;

use serde::Serialize;

/// How a joining node authenticates to the first node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JoinVia {
    /// `pvesh create /cluster/config/join` with the first node's root password (read by the
    /// remote shell from its stdin, never on a command line here) and certificate fingerprint.
    Api,
    /// `pvecm add FIRST --use_ssh`: root's SSH keys between the nodes are already set.
    Ssh,
}

/// One node of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormNode {
    /// Host (and Proxmox node) name.
    pub name: String,
    /// ssh destination of the admin's session.
    pub ssh: String,
    /// Address on the cluster link (link0).
    pub link0: String,
}

/// What a step does (the executor acts on its output by kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Is the node a Proxmox node, and in which cluster?
    Preflight,
    /// `pvecm create`.
    Create,
    /// The first node's API certificate fingerprint.
    Fingerprint,
    /// A node joins.
    Join,
    /// `pvecm qdevice setup`.
    Qdevice,
    /// Proxmox's corosync.conf is read (its config_version, and whether the rendered settings
    /// are already in).
    ReadConf,
    /// The rendered corosync.conf goes into /etc/pve (skipped when already in).
    WriteConf,
    /// `pvecm status`, judged.
    Status,
}

/// One step: what runs where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What it does.
    pub kind: StepKind,
    /// Node it runs on.
    pub node: String,
    /// The remote shell command (placeholders in `<…>` are filled by earlier steps).
    pub command: String,
    /// What it is for.
    pub why: String,
}

impl Step {
    /// What the step's command reads on its stdin, when it reads anything.
    pub fn stdin(&self) -> Option<String> {
        match self.kind {
            StepKind::WriteConf => Some(format!(
                "{RENDERED} with config_version <Proxmox's + 1>, unless Proxmox's already holds the same settings"
            )),
            StepKind::Join if !self.command.contains("--use_ssh") => {
                Some("the first node's root password (on ssh's stdin, never in the ssh command)".into())
            }
            _ => None,
        }
    }
}

/// The command that writes corosync.conf into /etc/pve (pmxcfs propagates it).
pub const WRITE_CONF: &str =
    "cat > /etc/pve/corosync.conf.new && mv /etc/pve/corosync.conf.new /etc/pve/corosync.conf";

/// The command that reads Proxmox's corosync.conf.
pub const READ_CONF: &str = "cat /etc/pve/corosync.conf";

/// The preflight command: `PVE` and the node's /etc/pve/corosync.conf (if any), or `NOT-PVE`.
pub const PREFLIGHT: &str = "if test -e /etc/pve/local/pve-ssl.pem; then echo PVE; cat /etc/pve/corosync.conf 2>/dev/null || true; else echo NOT-PVE; fi";

/// Where the rendered corosync.conf is on every Proxmox node (written by the install).
pub const RENDERED: &str = "/etc/picaboot/corosync.conf";

/// The exact sequence `cluster form` runs for a cluster.
pub fn plan(
    cluster: &str,
    nodes: &[FormNode],
    join: JoinVia,
    qnetd: Option<&str>,
    expect_flags: &[&str],
) -> Vec<Step> {
    let mut steps = Vec::new();
    let Some((first, others)) = nodes.split_first() else {
        return steps;
    };
    for n in nodes {
        steps.push(Step {
            node: n.name.clone(),
            kind: StepKind::Preflight,
            command: PREFLIGHT.into(),
            why: format!(
                "preflight: {} runs Proxmox VE and is in no cluster (or already in `{cluster}`, then nothing is changed)",
                n.name
            ),
        });
    }
    steps.push(Step {
        kind: StepKind::Create,
        node: first.name.clone(),
        command: format!("pvecm create {cluster} --link0 {}", first.link0),
        why: format!(
            "create cluster `{cluster}` on {} with link0 on its cluster address",
            first.name
        ),
    });
    steps.push(Step {
        kind: StepKind::Fingerprint,
        node: first.name.clone(),
        command: "openssl x509 -noout -fingerprint -sha256 -in /etc/pve/local/pve-ssl.pem".into(),
        why: format!(
            "{}'s API certificate fingerprint, pinned by the joins",
            first.name
        ),
    });
    for n in others {
        let command = match join {
            JoinVia::Api => format!(
                "IFS= read -r password && pvesh create /cluster/config/join --hostname {} \
                 --fingerprint <fingerprint> --link0 {} --password \"$password\"",
                first.link0, n.link0
            ),
            JoinVia::Ssh => format!("pvecm add {} --use_ssh --link0 {}", first.link0, n.link0),
        };
        steps.push(Step {
            kind: StepKind::Join,
            node: n.name.clone(),
            command,
            why: match join {
                JoinVia::Api => format!(
                    "{} joins through {}'s API (root password from PICABOOT_PVE_PASSWORD_FILE or PICABOOT_PVE_PASSWORD, sent on ssh's stdin)",
                    n.name, first.name
                ),
                JoinVia::Ssh => format!("{} joins over root's SSH keys", n.name),
            },
        });
    }
    if let Some(q) = qnetd {
        steps.push(Step {
            kind: StepKind::Qdevice,
            node: first.name.clone(),
            command: format!("pvecm qdevice setup {q}"),
            why: format!("the corosync-qnetd host {q} casts the third vote (its certificates are made by Proxmox)"),
        });
    }
    steps.push(Step {
        kind: StepKind::ReadConf,
        node: first.name.clone(),
        command: READ_CONF.into(),
        why: "Proxmox's corosync.conf: its config_version, and whether the rendered settings are in already".into(),
    });
    steps.push(Step {
        kind: StepKind::WriteConf,
        node: first.name.clone(),
        command: WRITE_CONF.into(),
        why: "the rendered settings (quorum included) replace Proxmox's, config_version raised above Proxmox's, never lowered".into(),
    });
    steps.push(Step {
        kind: StepKind::Status,
        node: first.name.clone(),
        command: "pvecm status".into(),
        why: format!(
            "read back: Nodes {}, Quorate Yes, Flags {}",
            nodes.len(),
            expect_flags.join(" ")
        ),
    });
    steps
}

/// What a preflight read of `/etc/pve/corosync.conf` says about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Not a Proxmox node (no `/etc/pve/local/pve-ssl.pem`).
    NotProxmox,
    /// In no cluster.
    Alone,
    /// In this cluster already, as a listed node.
    Member,
    /// In another cluster (its name).
    Other(String),
}

/// Judges the output of [`PREFLIGHT`] on one node.
pub fn membership(preflight: &str, cluster: &str, node: &str) -> Membership {
    let Some(conf) = preflight
        .strip_prefix("PVE\n")
        .or((preflight.trim() == "PVE").then_some(""))
    else {
        return Membership::NotProxmox;
    };
    if conf.trim().is_empty() {
        return Membership::Alone;
    }
    let values = conf_values(conf);
    let name = values
        .get("cluster_name")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    if name == cluster
        && values
            .get("name")
            .is_some_and(|ns| ns.iter().any(|n| n == node))
    {
        Membership::Member
    } else {
        Membership::Other(name)
    }
}

/// Every `key: value` of a corosync.conf, by key, in order (sections are not kept).
fn conf_values(conf: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in conf.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some((k, v)) = line.split_once(':') {
            out.entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    out
}

/// Why a corosync.conf edit cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    /// The file has no `config_version`.
    #[error("{0} has no config_version line")]
    NoVersion(&'static str),
    /// `config_version` is not a number.
    #[error("{what} has config_version `{value}`, not a number")]
    BadVersion {
        /// Which file.
        what: &'static str,
        /// The value.
        value: String,
    },
}

/// `config_version` of a corosync.conf.
pub fn config_version(conf: &str, what: &'static str) -> Result<u64, EditError> {
    let v = conf_values(conf)
        .remove("config_version")
        .and_then(|v| v.into_iter().next())
        .ok_or(EditError::NoVersion(what))?;
    v.parse().map_err(|_| EditError::BadVersion {
        what,
        value: v.clone(),
    })
}

/// The rendered corosync.conf with `config_version` above the one Proxmox has now (and never
/// below the rendered one): the text to write as `/etc/pve/corosync.conf.new`, and its version.
pub fn for_proxmox(rendered: &str, current: &str) -> Result<(String, u64), EditError> {
    let ours = config_version(rendered, "the rendered corosync.conf")?;
    let theirs = config_version(current, "/etc/pve/corosync.conf")?;
    let version = ours.max(theirs + 1);
    let text: String = rendered
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("config_version:") {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}config_version: {version}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    Ok((text, version))
}

/// True when `current` holds the rendered settings already (every line but `config_version`).
pub fn same_settings(rendered: &str, current: &str) -> bool {
    let settings = |t: &str| -> Vec<String> {
        t.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("config_version:"))
            .map(str::to_string)
            .collect()
    };
    settings(rendered) == settings(current)
}

/// The parts of `pvecm status` that `cluster form` checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PvecmStatus {
    /// `Name:` of Cluster information.
    pub name: String,
    /// `Config Version:`.
    pub config_version: u64,
    /// `Nodes:`.
    pub nodes: u32,
    /// `Quorate: Yes`.
    pub quorate: bool,
    /// `Flags:` of Votequorum information.
    pub flags: Vec<String>,
}

/// Parses `pvecm status`; None when a field it needs is missing.
pub fn parse_pvecm_status(out: &str) -> Option<PvecmStatus> {
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for line in out.lines() {
        if let Some((k, v)) = line.split_once(':') {
            fields.entry(k.trim()).or_insert(v.trim());
        }
    }
    Some(PvecmStatus {
        name: fields.get("Name")?.to_string(),
        config_version: fields.get("Config Version")?.parse().ok()?,
        nodes: fields.get("Nodes")?.parse().ok()?,
        quorate: *fields.get("Quorate")? == "Yes",
        flags: fields
            .get("Flags")?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    })
}

/// The flags `pvecm status` shows once the cluster is formed with this quorum choice.
pub fn expected_flags(qdevice: bool) -> &'static [&'static str] {
    if qdevice {
        &["Quorate", "Qdevice"]
    } else {
        &["2Node", "Quorate", "WaitForAll"]
    }
}

/// Parses `openssl x509 -noout -fingerprint -sha256` (`sha256 Fingerprint=AB:CD:…`).
pub fn parse_fingerprint(out: &str) -> Option<String> {
    let (_, fp) = out.trim().split_once("Fingerprint=")?;
    let ok = fp.len() == 95
        && fp
            .split(':')
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| fp.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pvecm status` of a formed two-node cluster in the layout pve-docs' pvecm.adoc shows (its
    /// example has three nodes). The Flags line is corosync-quorumtool's, which pvecm prints:
    /// tests/it/oracle_corosync.rs sees two real corosync daemons print `2Node Quorate WaitForAll`.
    const STATUS_TWO_NODE: &str = "Cluster information
-------------------
Name:             picasoft
Config Version:   4
Transport:        knet
Secure auth:      on

Quorum information
------------------
Date:             Tue Sep 14 11:06:47 2021
Quorum provider:  corosync_votequorum
Nodes:            2
Node ID:          0x00000001
Ring ID:          1.1a8
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   2
Highest expected: 2
Total votes:      2
Quorum:           1
Flags:            2Node Quorate WaitForAll

Membership information
----------------------
    Nodeid      Votes Name
0x00000001          1 10.0.0.1 (local)
0x00000002          1 10.0.0.2
";

    /// /etc/pve/corosync.conf as `pvecm create` + one `pvecm add` leave it (pvecm.adoc layout).
    const PVE_CONF: &str = "logging {
  debug: off
  to_syslog: yes
}

nodelist {
  node {
    name: alice
    nodeid: 1
    quorum_votes: 1
    ring0_addr: 10.0.0.1
  }
  node {
    name: bob
    nodeid: 2
    quorum_votes: 1
    ring0_addr: 10.0.0.2
  }
}

quorum {
  provider: corosync_votequorum
}

totem {
  cluster_name: picasoft
  config_version: 2
  interface {
    linknumber: 0
  }
  ip_version: ipv4-6
  link_mode: passive
  secauth: on
  version: 2
}
";

    fn nodes() -> Vec<FormNode> {
        vec![
            FormNode {
                name: "alice".into(),
                ssh: "root@192.0.2.1".into(),
                link0: "10.0.0.1".into(),
            },
            FormNode {
                name: "bob".into(),
                ssh: "root@192.0.2.2".into(),
                link0: "10.0.0.2".into(),
            },
        ]
    }

    #[test]
    fn the_sequence_creates_on_the_first_node_and_joins_the_second_with_its_fingerprint() {
        let steps = plan(
            "picasoft",
            &nodes(),
            JoinVia::Api,
            None,
            expected_flags(false),
        );
        let cmds: Vec<(&str, &str)> = steps
            .iter()
            .map(|s| (s.node.as_str(), s.command.as_str()))
            .collect();
        assert_eq!(cmds[2], ("alice", "pvecm create picasoft --link0 10.0.0.1"));
        assert!(cmds[3].1.starts_with("openssl x509"));
        assert_eq!(cmds[4].0, "bob");
        assert!(cmds[4].1.contains(
            "pvesh create /cluster/config/join --hostname 10.0.0.1 --fingerprint <fingerprint> --link0 10.0.0.2"
        ));
        assert!(
            !cmds[4].1.contains("PICABOOT_PVE_PASSWORD"),
            "the password is read remotely"
        );
        assert_eq!(cmds.last().unwrap(), &("alice", "pvecm status"));
        let ssh = plan(
            "picasoft",
            &nodes(),
            JoinVia::Ssh,
            Some("192.0.2.9"),
            expected_flags(true),
        );
        assert!(ssh
            .iter()
            .any(|s| s.command == "pvecm add 10.0.0.1 --use_ssh --link0 10.0.0.2"));
        assert!(ssh
            .iter()
            .any(|s| s.command == "pvecm qdevice setup 192.0.2.9"));
    }

    #[test]
    fn pvecm_status_is_read_and_judged() {
        let st = parse_pvecm_status(STATUS_TWO_NODE).unwrap();
        assert_eq!(st.name, "picasoft");
        assert_eq!((st.nodes, st.quorate, st.config_version), (2, true, 4));
        assert_eq!(st.flags, expected_flags(false));
        // Without a cluster, pvecm prints an error and no fields.
        assert_eq!(
            parse_pvecm_status(
                "Error: Corosync config '/etc/pve/corosync.conf' does not exist - is this node part of a cluster?\n"
            ),
            None
        );
    }

    #[test]
    fn membership_refuses_another_cluster_and_recognises_this_one() {
        assert_eq!(
            membership("NOT-PVE\n", "picasoft", "alice"),
            Membership::NotProxmox
        );
        assert_eq!(membership("PVE\n", "picasoft", "alice"), Membership::Alone);
        let member = format!("PVE\n{PVE_CONF}");
        assert_eq!(membership(&member, "picasoft", "bob"), Membership::Member);
        let other = member.replace("cluster_name: picasoft", "cluster_name: lab");
        assert_eq!(
            membership(&other, "picasoft", "alice"),
            Membership::Other("lab".into())
        );
    }

    #[test]
    fn the_version_rises_above_proxmox_and_is_never_lowered() {
        let rendered = "totem {\n  config_version: 1\n}\n";
        let (text, v) = for_proxmox(rendered, PVE_CONF).unwrap();
        assert_eq!(v, 3);
        assert_eq!(text, "totem {\n  config_version: 3\n}\n");
        let high = PVE_CONF.replace("config_version: 2", "config_version: 57");
        assert_eq!(for_proxmox(rendered, &high).unwrap().1, 58);
        let ours_higher = "totem {\n  config_version: 90\n}\n";
        assert_eq!(for_proxmox(ours_higher, PVE_CONF).unwrap().1, 90);
        let (written, _) = for_proxmox(rendered, PVE_CONF).unwrap();
        assert!(same_settings(rendered, &written));
        assert!(!same_settings(rendered, PVE_CONF));
        assert_eq!(
            for_proxmox(rendered, "totem {\n}\n"),
            Err(EditError::NoVersion("/etc/pve/corosync.conf"))
        );
    }

    #[test]
    fn fingerprints_are_read_from_openssl() {
        let fp = "AB:".repeat(31) + "CD";
        assert_eq!(
            parse_fingerprint(&format!("sha256 Fingerprint={fp}\n")),
            Some(fp.clone())
        );
        assert_eq!(
            parse_fingerprint(&format!("SHA256 Fingerprint={}\n", fp.to_lowercase())),
            Some(fp)
        );
        assert_eq!(parse_fingerprint("unable to load certificate"), None);
    }
}
