//! `services form`'s sequence, apart from any connection: every remote command in order, on
//! which VM, why, and the guard that makes it idempotent (a step whose guard succeeds is
//! already done and skipped). The swarm join token is read by one step and handed to the
//! next without ever being printed: the plan shows `<token from step N>`.
//!
//! Commands follow the upstream documentation: GlusterFS's CLI (`gluster --mode=script`, which
//! skips the confirmation prompts; `replica 3 arbiter 1`), Docker's `swarm init`/`join`/`node
//! promote`/`network create`/`stack deploy`. Neither runs here: the sequence is unit-tested.

use serde::Serialize;

use super::render::{self, DROP_IN, NFT_PATH, STACK, STACK_PATH};
use super::ServicesError;
use crate::profile::services::{Image, Member, Services};

/// One remote command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The VM it runs on (profile name).
    pub vm: String,
    /// The address ssh reaches it at.
    pub address: String,
    /// The command (`sh -c` on the VM).
    pub command: String,
    /// A file given on its standard input (rendered content), if any.
    pub stdin: Option<String>,
    /// When this command succeeds on the VM, the step is already done.
    pub unless: Option<String>,
    /// True when the command's output is a secret kept for a later step, never printed.
    pub secret: bool,
    /// The (1-based) step whose secret output this command needs: it is given on stdin, and
    /// `<token from step N>` in the command stands for it.
    pub token_from: Option<usize>,
    /// Why.
    pub why: String,
}

/// Builds steps in order.
struct Plan<'a> {
    s: &'a Services,
    steps: Vec<Step>,
}

impl Plan<'_> {
    fn push(&mut self, m: &Member, command: String, unless: Option<String>, why: &str) -> usize {
        self.steps.push(Step {
            vm: m.vm.clone(),
            address: m.address.to_string(),
            command,
            stdin: None,
            unless,
            secret: false,
            token_from: None,
            why: why.to_string(),
        });
        self.steps.len()
    }

    /// Installs `content` at `path` (mode 0644) unless it is already there, identical.
    fn install(&mut self, m: &Member, path: &str, content: String, why: &str) {
        self.push(
            m,
            format!("install -D -m 0644 /dev/stdin {path}"),
            Some(format!(
                "echo '{}  {path}' | sha256sum -c --status",
                sha256_hex(&content)
            )),
            why,
        );
        self.steps.last_mut().expect("pushed").stdin = Some(content);
    }
}

/// SHA-256 of `text`, lower-case hex.
fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The placeholder a command shows for step `n`'s secret.
pub fn token_placeholder(n: usize) -> String {
    format!("<token from step {n}>")
}

/// `s` single-quoted for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The whole sequence.
pub fn plan(s: &Services) -> Result<Vec<Step>, ServicesError> {
    let mut p = Plan {
        s,
        steps: Vec::new(),
    };
    for m in &s.swarm.members {
        p.install(
            m,
            NFT_PATH,
            render::nftables(s, m)?,
            "firewall: swarm and gluster ports from the peers only",
        );
        p.push(
            m,
            format!("nft -c -f {NFT_PATH} && nft -f {NFT_PATH} && systemctl enable nftables"),
            None,
            "load the ruleset (checked first) and at every boot",
        );
    }
    gluster(&mut p)?;
    swarm(&mut p);
    let first = &s.swarm.members[0];
    p.install(first, STACK_PATH, render::stack(s)?, "the stack file");
    if s.services
        .iter()
        .any(|x| matches!(x.image, Image::Local(_)))
    {
        let reg = &s.registry.address;
        p.push(
            first,
            format!(
                "grep -qF {} \"$HOME/.docker/config.json\" 2>/dev/null || {{ echo {} >&2; exit 1; }}",
                sh_quote(&format!("\"{reg}\"")),
                sh_quote(&format!(
                    "not logged in to {reg}: run `docker login {reg}` on {} once (the password \
                     is in no profile); --with-registry-auth hands that login to the nodes",
                    first.vm
                ))
            ),
            None,
            "the registry login the deploy hands to the nodes is there",
        );
    }
    bind_sources(&mut p, first);
    secrets(&mut p, first);
    p.push(
        first,
        format!("docker stack deploy --with-registry-auth -c {STACK_PATH} {STACK}"),
        None,
        "deploy (docker converges: an unchanged stack changes nothing)",
    );
    Ok(p.steps)
}

/// The bind mounts' sources, made once on the shared volume (Docker refuses a task whose
/// bind source does not exist: "bind source path does not exist", seen in test services).
fn bind_sources(p: &mut Plan<'_>, first: &Member) {
    let mut dirs: Vec<&str> =
        p.s.services
            .iter()
            .flat_map(|x| &x.mounts)
            .map(|m| m.source.as_str())
            .collect();
    dirs.sort_unstable();
    dirs.dedup();
    if dirs.is_empty() {
        return;
    }
    let quoted: Vec<String> = dirs.iter().map(|d| sh_quote(d)).collect();
    p.push(
        first,
        format!("mkdir -p {}", quoted.join(" ")),
        None,
        "the bind mounts' sources on the volume",
    );
}

/// One precondition per swarm secret the stack reads: it exists on the first manager, or the
/// step fails telling the admin how to create it (the value is in no profile, so picaboot
/// never creates it).
fn secrets(p: &mut Plan<'_>, first: &Member) {
    for name in render::secrets(p.s) {
        let q = sh_quote(&name);
        let hint = sh_quote(&format!(
            "swarm secret `{name}` is missing: create it on {} with `docker secret create {name} -` \
             (the value on standard input, e.g. from a password manager; no profile holds it)",
            first.vm
        ));
        p.push(
            first,
            format!("docker secret inspect {q} >/dev/null 2>&1 || {{ echo {hint} >&2; exit 1; }}"),
            None,
            "the swarm secret the stack reads exists",
        );
    }
}

/// Peers and the volume, then the mounts.
fn gluster(p: &mut Plan<'_>) -> Result<(), ServicesError> {
    let s = p.s;
    let v = &s.volume;
    let members = &s.swarm.members;
    let first = &members[0];
    for m in members {
        // Debian's glusterfs-server leaves glusterd disabled (seen on trixie's 11.1).
        p.push(
            m,
            "systemctl enable --now glusterd".into(),
            Some("systemctl -q is-enabled glusterd && systemctl -q is-active glusterd".into()),
            "glusterd now and at every boot",
        );
    }
    for m in &members[1..] {
        p.push(
            first,
            format!("gluster peer probe {}", m.address),
            Some(format!("gluster pool list | grep -qw {}", m.address)),
            "trust the peer",
        );
    }
    for m in members {
        p.push(
            m,
            format!("mkdir -p {}", v.brick),
            None,
            "the brick directory on the data disk",
        );
    }
    let bricks: Vec<String> = members
        .iter()
        .map(|m| format!("{}:{}", m.address, v.brick))
        .collect();
    let layout = match members.len() {
        1 => String::new(),
        2 => "replica 2 ".to_string(),
        n => format!("replica {n} arbiter 1 "),
    };
    p.push(
        first,
        format!(
            "gluster --mode=script volume create {} {layout}{}",
            v.name,
            bricks.join(" ")
        ),
        Some(format!("gluster volume info {}", v.name)),
        "the replicated volume (script mode: no prompt)",
    );
    let addrs: Vec<String> = members.iter().map(|m| m.address.to_string()).collect();
    p.push(
        first,
        format!(
            "gluster --mode=script volume set {} auth.allow {}",
            v.name,
            addrs.join(",")
        ),
        None,
        "only the peers mount it",
    );
    p.push(
        first,
        format!("gluster --mode=script volume start {}", v.name),
        Some(format!(
            "gluster volume info {} | grep -q '^Status: Started'",
            v.name
        )),
        "start it",
    );
    mount(p)
}

/// Each member's fstab line, the mount now, and Docker's drop-in.
fn mount(p: &mut Plan<'_>) -> Result<(), ServicesError> {
    let s = p.s;
    let v = &s.volume;
    let members = &s.swarm.members;
    for m in members {
        let line = render::fstab(s, m)?;
        let entry = line.lines().last().unwrap_or_default().to_string();
        p.push(
            m,
            format!("printf '%s\\n' {} >> /etc/fstab", sh_quote(&entry)),
            Some(format!("grep -qxF {} /etc/fstab", sh_quote(&entry))),
            "mount at boot after glusterd (no rc.local)",
        );
        p.push(
            m,
            format!(
                "mkdir -p {0} && systemctl daemon-reload && (mountpoint -q {0} || mount {0})",
                v.mount
            ),
            None,
            "mount it now",
        );
        p.install(
            m,
            DROP_IN,
            render::drop_in(s)?,
            "docker waits for the mount",
        );
        p.push(
            m,
            "systemctl daemon-reload".into(),
            None,
            "load the drop-in",
        );
    }
    Ok(())
}

/// Init, join (token read over ssh, never printed), promote, overlay network.
fn swarm(p: &mut Plan<'_>) {
    let s = p.s;
    let first = &s.swarm.members[0];
    let active = "docker info --format '{{.Swarm.LocalNodeState}}' | grep -qx active";
    p.push(
        first,
        format!(
            "docker swarm init --advertise-addr {0} --listen-addr {0}:2377",
            first.address
        ),
        Some(active.into()),
        "the first manager inits the swarm on its public address",
    );
    let token = p.push(
        first,
        "docker swarm join-token -q worker".into(),
        None,
        "the join token (kept, never printed)",
    );
    p.steps[token - 1].secret = true;
    for m in &s.swarm.members[1..] {
        let join = p.push(
            m,
            format!(
                "docker swarm join --advertise-addr {} --token <token from step {token}> {}:2377",
                m.address, first.address
            ),
            Some(active.into()),
            "join over the public addresses",
        );
        p.steps[join - 1].token_from = Some(token);
        if m.manager {
            p.push(
                first,
                format!("docker node promote {}", m.vm),
                None,
                "a manager, as the profile asks",
            );
        }
    }
    p.push(
        first,
        format!(
            "docker network create --driver overlay --opt encrypted --attachable {}",
            s.swarm.network
        ),
        Some(format!("docker network inspect {}", s.swarm.network)),
        "the overlay, encrypted since it crosses public addresses",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::services::shipped;

    fn commands(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| format!("{}: {}", s.vm, s.command))
            .collect()
    }

    #[test]
    fn two_members_make_replica_2_and_one_join_with_a_token_placeholder() {
        let s = shipped();
        let steps = plan(&s).unwrap();
        let c = commands(&steps);
        let create = c.iter().position(|x| x.contains("volume create")).unwrap();
        assert!(c[create].ends_with(
            "gluster-data replica 2 91.224.148.57:/gluster-data/brick 91.224.148.60:/gluster-data/brick"
        ));
        let probe = c.iter().position(|x| x.contains("peer probe")).unwrap();
        assert!(
            probe < create,
            "peers are probed before the volume is created"
        );
        let token = steps.iter().position(|s| s.secret).unwrap();
        assert!(steps[token].command.contains("join-token -q worker"));
        let join = &steps[token + 1];
        assert_eq!(join.vm, "pica02");
        assert!(join
            .command
            .contains(&format!("<token from step {}>", token + 1)));
        // The profile asks for one manager: nobody is promoted.
        assert!(!c.iter().any(|x| x.contains("node promote")));
        assert!(c
            .last()
            .unwrap()
            .contains("docker stack deploy --with-registry-auth"));
    }

    #[test]
    fn a_second_manager_is_promoted_and_a_third_host_makes_an_arbiter() {
        let mut s = shipped();
        s.swarm.members[1].manager = true;
        let c = commands(&plan(&s).unwrap());
        assert!(c.contains(&"pica01: docker node promote pica02".to_string()));
        let mut third = s.swarm.members[1].clone();
        third.vm = "pica03".into();
        third.address = "192.0.2.3".parse().unwrap();
        s.swarm.members.push(third);
        let c = commands(&plan(&s).unwrap());
        assert!(c
            .iter()
            .any(|x| x.contains("volume create gluster-data replica 3 arbiter 1 ")));
        assert!(c
            .iter()
            .any(|x| x.contains("auth.allow 91.224.148.57,91.224.148.60,192.0.2.3")));
    }

    #[test]
    fn the_fstab_line_orders_the_mount_after_glusterd_with_backup_servers() {
        let s = shipped();
        let line = render::fstab(&s, &s.swarm.members[0]).unwrap();
        let entry = line.lines().last().unwrap();
        let f: Vec<&str> = entry.split_whitespace().collect();
        assert_eq!(
            &f[..3],
            ["91.224.148.57:/gluster-data", "/DATA", "glusterfs"]
        );
        let opts: Vec<&str> = f[3].split(',').collect();
        for o in [
            "_netdev",
            "x-systemd.requires=glusterd.service",
            "backup-volfile-servers=91.224.148.60",
        ] {
            assert!(opts.contains(&o), "{o} in {entry}");
        }
        assert!(render::drop_in(&s)
            .unwrap()
            .contains("\nRequiresMountsFor=/DATA\n"));
    }

    #[test]
    fn each_secret_is_checked_once_on_the_first_manager_before_the_deploy() {
        let mut s = shipped();
        let mut extra = s.services[0].clone();
        extra.name = "other".into();
        extra.secrets = vec!["a.b_c".into(), "mysql-root".into()];
        s.services.push(extra);
        let steps = plan(&s).unwrap();
        let deploy = steps
            .iter()
            .position(|x| x.command.contains("stack deploy"))
            .unwrap();
        let checks: Vec<(usize, &Step)> = steps
            .iter()
            .enumerate()
            .filter(|(_, x)| x.command.starts_with("docker secret inspect"))
            .collect();
        let names: Vec<&str> = checks
            .iter()
            .map(|(_, x)| x.command.split('\'').nth(1).unwrap())
            .collect();
        let mut want = render::secrets(&s);
        want.sort();
        want.dedup();
        assert!(
            want.contains(&"a.b_c".to_string()) && want.len() >= 2,
            "{want:?}"
        );
        assert_eq!(names, want, "one check per secret, sorted, each once");
        for (i, x) in checks {
            assert!(i < deploy, "secret checks come before the deploy");
            assert_eq!(x.vm, s.swarm.members[0].vm);
            assert!(x.unless.is_none() && x.stdin.is_none() && !x.secret);
            assert!(x.command.contains("docker secret create"), "{}", x.command);
        }
    }

    #[test]
    fn a_missing_secret_fails_the_step_with_the_create_command() {
        let mut s = shipped();
        s.services.truncate(1);
        s.services[0].secrets = vec!["db-pass".into()];
        let steps = plan(&s).unwrap();
        let step = steps
            .iter()
            .find(|x| x.command.starts_with("docker secret inspect"))
            .unwrap();
        // The command, run by a real shell with a `docker` that finds no secret.
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        std::fs::write(
            &docker,
            "#!/bin/sh\necho \"Error: no such secret: $3\" >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &step.command])
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            err.contains("swarm secret `db-pass` is missing")
                && err.contains("`docker secret create db-pass -`"),
            "{err}"
        );
        assert!(
            !err.contains("no such secret"),
            "docker's own error is replaced: {err}"
        );
    }

    #[test]
    fn every_file_install_is_guarded_by_its_digest() {
        for s in plan(&shipped()).unwrap() {
            if let Some(text) = &s.stdin {
                let u = s.unless.as_ref().unwrap();
                assert!(u.contains(&sha256_hex(text)), "{u}");
            }
        }
    }
}
