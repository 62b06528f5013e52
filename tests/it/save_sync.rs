//! The /SAVE pull, for real: two network namespaces joined by a veth pair holding the nodes'
//! cluster addresses (from the shipped profiles), each node a bubblewrap sandbox with its own
//! /SAVE, /etc/ssh, /var/lib/picaboot and root's home. Bob runs Debian's sshd with the rendered
//! drop-in; `backup form`'s own steps (Proxmox's excepted: Proxmox is not here) make alice's
//! key on alice, pin bob's host key and install the restricted line on bob; then the rendered
//! service's ExecStart, run on alice, moves bob's dump into /SAVE/peer/bob. The same key must
//! refuse a shell command, a write, a path outside /SAVE/dump, and a connection from another
//! address. The rendered script passes shellcheck and the units `systemd-analyze verify`.

use crate::common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{require, run_ok, Netns};
use picaboot::backup::plan::{self, Remote, StepKind};
use picaboot::backup::{self, Pull};

/// A sandboxed daemon: killing bwrap ends its pid namespace (`--die-with-parent`).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One node: its namespace and its directories (`save` is /SAVE, `state` is
/// /var/lib/picaboot, `etc-ssh` is /etc/ssh).
struct Node {
    ns: Netns,
    dir: PathBuf,
}

impl Node {
    fn new(tag: &str, root: &Path, name: &str) -> Self {
        let dir = root.join(name);
        for d in ["save", "state", "etc-ssh"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        Node {
            ns: Netns::new(tag),
            dir,
        }
    }

    /// `sh -c command` in the node's namespace and sandbox; `script` is the rendered pull
    /// script, put at its installed path.
    fn sandbox(&self, script: &Path, command: &str) -> Command {
        let d = |s: &str| self.dir.join(s).display().to_string();
        let mut c = self.ns.exec();
        c.args([
            "bwrap",
            "--die-with-parent",
            "--unshare-pid",
            "--cap-add",
            "ALL",
        ]);
        c.args(["--ro-bind", "/usr", "/usr"]);
        for l in ["bin", "sbin", "lib", "lib64"] {
            c.args(["--symlink", &format!("usr/{l}"), &format!("/{l}")]);
        }
        c.args([
            "--ro-bind",
            "/etc",
            "/etc",
            "--bind",
            &d("etc-ssh"),
            "/etc/ssh",
        ]);
        c.args([
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run",
        ]);
        c.args(["--dir", "/run/sshd", "--tmpfs", "/root"]);
        c.args([
            "--bind",
            &d("save"),
            "/SAVE",
            "--bind",
            &d("state"),
            "/var/lib/picaboot",
        ]);
        c.args(["--tmpfs", "/usr/local/sbin", "--ro-bind"])
            .arg(script)
            .arg(backup::SCRIPT);
        c.args(["sh", "-c", command]);
        c
    }
}

/// Runs `backup form`'s steps in the sandboxes.
struct Sandboxes<'a> {
    alice: &'a Node,
    bob: &'a Node,
    script: &'a Path,
}

impl Remote for Sandboxes<'_> {
    fn run(&mut self, node: &str, command: &str, stdin: Option<&[u8]>) -> Result<String, String> {
        let n = if node == "alice" {
            self.alice
        } else {
            self.bob
        };
        let out = picaboot::exec::run_deadline_status(
            command,
            &mut n.sandbox(self.script, command),
            stdin,
            Duration::from_secs(60),
        )
        .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

fn in_sandbox(n: &Node, script: &Path, command: &str) -> Output {
    picaboot::exec::run_deadline_status(
        command,
        &mut n.sandbox(script, command),
        None,
        Duration::from_secs(120),
    )
    .unwrap()
}

/// Deterministic bytes standing in for a dump (xorshift).
fn dump_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn set_age(path: &Path, days: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .unwrap();
}

fn tools() {
    require("sshd", "openssh-server");
    require("ssh", "openssh-client");
    require("ssh-keygen", "openssh-client");
    require("rsync", "rsync");
    require(backup::RRSYNC, "rsync");
    require("python3", "python3");
    require("bwrap", "bubblewrap");
    require("ip", "iproute2");
    require("ss", "iproute2");
    require("shellcheck", "shellcheck");
    require("systemd-analyze", "systemd");
}

/// The shipped profiles, rendered; alice's pull of bob.
fn rendered() -> (tempfile::TempDir, PathBuf, Pull, picaboot::profile::Backup) {
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let project = picaboot::project::open(&profiles).unwrap();
    let cl = &project.loaded.profiles.clusters["picasoft"];
    let pull = backup::pulls(&project.loaded.profiles, cl)
        .into_iter()
        .find(|p| p.node == "alice")
        .expect("alice pulls bob");
    let b = cl.backup.clone().unwrap();
    let (keep, out) = common::render_all(&profiles);
    drop(scratch);
    (keep, out, pull, b)
}

fn veth(a: &Node, b: &Node, pull: &Pull, prefix: u8) {
    let (ia, ib) = ("pbsave0", "pbsave1");
    run_ok(common::cmd("ip").args([
        "-n", &a.ns.0, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", &b.ns.0,
    ]));
    a.ns.ip(&[
        "addr",
        "add",
        &format!("{}/{prefix}", pull.node_link),
        "dev",
        ia,
    ]);
    b.ns.ip(&[
        "addr",
        "add",
        &format!("{}/{prefix}", pull.peer_link),
        "dev",
        ib,
    ]);
    // A second address on alice, not the one the key is accepted from.
    let other = Ipv4Addr::from(u32::from(pull.node_link) + 100);
    a.ns.ip(&["addr", "add", &format!("{other}/{prefix}"), "dev", ia]);
    a.ns.ip(&["link", "set", ia, "up"]);
    b.ns.ip(&["link", "set", ib, "up"]);
}

/// Bob's /etc/ssh: a host key, the rendered drop-in, and an sshd_config as Debian's (which
/// includes sshd_config.d first), listening on bob's cluster address.
fn bob_etc_ssh(bob: &Node, tree: &Path, pull: &Pull) {
    let etc = bob.dir.join("etc-ssh");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(etc.join("ssh_host_ed25519_key")),
    );
    std::fs::create_dir_all(etc.join("sshd_config.d")).unwrap();
    let dropin = backup::SSHD_DROPIN.trim_start_matches('/');
    std::fs::copy(
        tree.join("bob/rootfs").join(dropin),
        etc.join("sshd_config.d/picaboot-save.conf"),
    )
    .unwrap();
    std::fs::write(
        etc.join("sshd_config"),
        format!(
            "Include /etc/ssh/sshd_config.d/*.conf\nListenAddress {}\n\
             HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PidFile /run/sshd.pid\nLogLevel VERBOSE\n",
            pull.peer_link
        ),
    )
    .unwrap();
}

fn start_sshd(bob: &Node, script: &Path, pull: &Pull) -> Daemon {
    let log = bob.dir.join("sshd.log");
    let child = bob
        .sandbox(script, "exec /usr/sbin/sshd -D -e")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let d = Daemon(child);
    let start = Instant::now();
    let want = format!("{}:22", pull.peer_link);
    while !bob
        .ns
        .exec()
        .args(["ss", "-Hltn"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&want))
        .unwrap_or(false)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "sshd did not listen on {want}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    d
}

/// The rendered script passes shellcheck; the rendered service and timer pass
/// `systemd-analyze verify` with the script at its installed path (a tmpfs over
/// /usr/local/sbin in a private mount namespace).
fn lint(tree: &Path) {
    let rootfs = tree.join("alice/rootfs");
    let script = rootfs.join(backup::SCRIPT.trim_start_matches('/'));
    run_ok(Command::new("shellcheck").arg(&script));
    let unit = |u: &str| {
        rootfs
            .join("etc/systemd/system")
            .join(u)
            .display()
            .to_string()
    };
    let verify = format!(
        "mount -t tmpfs tmpfs /usr/local/sbin && cp '{}' {} && systemd-analyze verify '{}' '{}'",
        script.display(),
        backup::SCRIPT,
        unit(backup::SERVICE),
        unit(backup::TIMER)
    );
    let out = common::run_output(common::cmd("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &verify,
    ]));
    assert!(
        out.stderr.is_empty(),
        "systemd-analyze: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ExecStart=` of the rendered pull service.
fn exec_start(tree: &Path) -> String {
    let unit = std::fs::read_to_string(
        tree.join("alice/rootfs/etc/systemd/system")
            .join(backup::SERVICE),
    )
    .unwrap();
    unit.lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .to_string()
}

#[test]
fn the_rendered_pull_moves_a_dump_and_its_key_refuses_everything_else() {
    tools();
    let (_keep, tree, pull, b) = rendered();
    lint(&tree);
    let t = tempfile::tempdir().unwrap();
    let alice = Node::new("save-a", t.path(), "alice");
    let bob = Node::new("save-b", t.path(), "bob");
    veth(&alice, &bob, &pull, 24);
    bob_etc_ssh(&bob, &tree, &pull);
    let script = tree
        .join("alice/rootfs")
        .join(backup::SCRIPT.trim_start_matches('/'));

    // Bob's dumps: a finished one with its log, one being written (.dat), and a file beside
    // dump/ that the key must not reach.
    let dump_dir = bob.dir.join("save/dump");
    std::fs::create_dir_all(&dump_dir).unwrap();
    let dump = "vzdump-qemu-100-2026_12_04-03_00_02.vma.zst";
    let bytes = dump_bytes(4 << 20);
    std::fs::write(dump_dir.join(dump), &bytes).unwrap();
    std::fs::write(
        dump_dir.join("vzdump-qemu-100-2026_12_04-03_00_02.log"),
        "INFO: Finished\n",
    )
    .unwrap();
    std::fs::write(
        dump_dir.join("vzdump-qemu-101-2026_12_04-03_10_00.vma.dat"),
        "partial",
    )
    .unwrap();
    std::fs::write(bob.dir.join("save/outside.txt"), "not served").unwrap();
    // Alice's earlier copies: one past the retention, one within it.
    let dest = alice
        .dir
        .join("save")
        .join(pull.dest.trim_start_matches("/SAVE/"));
    std::fs::create_dir_all(&dest).unwrap();
    let (old, young) = (
        "vzdump-qemu-100-2026_11_20-03_00_02.vma.zst",
        "vzdump-qemu-100-2026_12_01-03_00_02.vma.zst",
    );
    for (f, age) in [(old, b.keep_daily as u64 + 3), (young, 3)] {
        std::fs::write(dest.join(f), "earlier").unwrap();
        set_age(&dest.join(f), age);
    }

    let _sshd = start_sshd(&bob, &script, &pull);
    let sshd_log = || std::fs::read_to_string(bob.dir.join("sshd.log")).unwrap_or_default();

    // backup form's steps, Proxmox's excepted.
    let steps: Vec<_> = plan::plan(
        &b,
        &["alice".into(), "bob".into()],
        "alice",
        std::slice::from_ref(&pull),
    )
    .into_iter()
    .filter(|s| !matches!(s.kind, StepKind::ReadStorage | StepKind::ReadJobs))
    .collect();
    let mut remote = Sandboxes {
        alice: &alice,
        bob: &bob,
        script: &script,
    };
    plan::run(
        &b,
        std::slice::from_ref(&pull),
        &steps,
        false,
        &mut remote,
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("{e}\nsshd: {}", sshd_log()));
    let key = alice.dir.join("state/save-pull/id_ed25519");
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let served = std::fs::read_to_string(bob.dir.join("etc-ssh/picaboot-save/root")).unwrap();
    assert_eq!(served, backup::authorized_line(&pull, &pubkey).unwrap());
    assert!(served.starts_with(&backup::restriction(&pull)));

    // The timer's service, as systemd would start it.
    let exec = exec_start(&tree);
    assert_eq!(exec, backup::SCRIPT);
    let start = Instant::now();
    let out = in_sandbox(&alice, &script, &exec);
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "pull failed: {}\nsshd: {}",
        String::from_utf8_lossy(&out.stderr),
        sshd_log()
    );
    eprintln!(
        "save_sync: pulled {} bytes in {:.2}s",
        bytes.len(),
        took.as_secs_f64()
    );
    assert_eq!(std::fs::read(dest.join(dump)).unwrap(), bytes);
    assert!(dest
        .join("vzdump-qemu-100-2026_12_04-03_00_02.log")
        .is_file());
    assert!(
        !dest
            .join("vzdump-qemu-101-2026_12_04-03_10_00.vma.dat")
            .exists(),
        "a dump in progress is skipped"
    );
    assert!(
        !dest.join(old).exists(),
        "a copy past keep-daily is removed"
    );
    assert!(
        dest.join(young).exists(),
        "a copy within keep-daily is kept"
    );

    refusals(&alice, &bob, &script, &pull);
}

/// The same key: no command, no write, nothing outside the dump directory, not from another
/// address.
fn refusals(alice: &Node, bob: &Node, script: &Path, pull: &Pull) {
    let ssh = format!("ssh {}", plan::ssh_options());
    let peer = pull.peer_link;
    let id = in_sandbox(alice, script, &format!("{ssh} root@{peer} id"));
    let said = String::from_utf8_lossy(&id.stdout);
    assert!(
        !id.status.success() && !said.contains("uid="),
        "`id` ran: {said}"
    );

    let write = in_sandbox(
        alice,
        script,
        &format!("rsync -e '{ssh}' /etc/hostname root@{peer}:./written"),
    );
    assert!(!write.status.success(), "a write was accepted");
    assert!(!bob.dir.join("save/dump/written").exists());

    let escape = in_sandbox(
        alice,
        script,
        &format!(
            "mkdir -p /tmp/x && rsync -e '{ssh}' root@{peer}:../outside.txt /tmp/x/ ; ls /tmp/x"
        ),
    );
    assert!(
        !String::from_utf8_lossy(&escape.stdout).contains("outside.txt"),
        "a file outside the dump directory was served"
    );

    let other = Ipv4Addr::from(u32::from(pull.node_link) + 100);
    let from = in_sandbox(
        alice,
        script,
        &format!("rsync --list-only -e '{ssh} -b {other}' root@{peer}:./"),
    );
    assert!(!from.status.success(), "the key was accepted from {other}");
    // Each refusal is rrsync's or sshd's own, not a failed connection.
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err(&id).contains("rrsync error"), "{}", err(&id));
    assert!(err(&write).contains("read-only"), "{}", err(&write));
    assert!(err(&escape).contains("rrsync error"), "{}", err(&escape));
    let log = std::fs::read_to_string(bob.dir.join("sshd.log")).unwrap_or_default();
    assert!(log.contains("not from a permitted host"), "{log}");
}

#[test]
fn backup_form_dry_run_prints_the_proxmox_and_key_steps_and_connects_nowhere() {
    let scratch = common::scratch_profiles();
    let project = picaboot::project::open(&scratch.path().join("profiles")).unwrap();
    let b = project.loaded.profiles.clusters["picasoft"]
        .backup
        .clone()
        .unwrap();
    let o = common::picaboot(
        scratch.path(),
        &["backup", "form", "picasoft", "--dry-run", "--json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = v["steps"].to_string();
    for want in [
        picaboot::backup::proxmox::READ_STORAGE.to_string(),
        picaboot::backup::proxmox::READ_JOBS.to_string(),
        "ssh-keygen -q -t ed25519".to_string(),
        backup::SERVE_KEYS.to_string(),
    ] {
        assert!(text.contains(&want), "{want} not in {text}");
    }
    let why = v["steps"][2]["why"].as_str().unwrap();
    assert!(
        why.contains(&picaboot::backup::proxmox::add_storage(&b)),
        "{why}"
    );
    assert_eq!(v["pulls"].as_array().unwrap().len(), 2);

    // A cluster without [backup] is refused, exit 1.
    let cluster = scratch.path().join("profiles/clusters/picasoft.toml");
    let text = std::fs::read_to_string(&cluster).unwrap();
    let (head, _) = text.split_once("[backup]").unwrap();
    std::fs::write(&cluster, head).unwrap();
    let o = common::picaboot(scratch.path(), &["backup", "form", "picasoft", "--dry-run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cluster `picasoft` has no [backup]"));
}
