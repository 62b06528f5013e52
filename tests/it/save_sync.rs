//! The /SAVE pull, for real: two network namespaces joined by a veth pair holding the nodes'
//! cluster addresses (from the shipped profiles), each node a bubblewrap sandbox with its own
//! /SAVE, /etc/ssh, /root, /usr/local/sbin and /var/lib/picaboot, each running Debian's sshd
//! with its rendered drop-in. `picaboot backup form` runs over ssh against both (the admin's
//! key in root's authorized_keys), with a Proxmox double on the first node: `pvesh`/`pvesm`
//! stand-ins that answer the reads from a state file and record the writes (Proxmox cannot run
//! here; the shapes are those of src/backup/proxmox/tests.rs). It makes alice's key on alice,
//! pins bob's host key and installs the restricted line on bob; a second run changes nothing.
//! Then the rendered service's ExecStart, run on alice, moves bob's dump into /SAVE/peer/bob.
//! The same key must refuse a shell command, a write, a path outside /SAVE/dump, and a
//! connection from another address. The rendered script passes shellcheck and the units
//! `systemd-analyze verify`.

use crate::common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{require, run_ok, Netns};
use picaboot::backup::plan;
use picaboot::backup::proxmox;
use picaboot::backup::{self, Pull};

/// A sandboxed daemon: killing bwrap ends its pid namespace (`--die-with-parent`).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One node: its namespace, its cluster address and its directories (`save` is /SAVE,
/// `state` /var/lib/picaboot, `etc-ssh` /etc/ssh, `root` /root, `sbin` /usr/local/sbin).
struct Node {
    name: &'static str,
    link: Ipv4Addr,
    ns: Netns,
    dir: PathBuf,
}

impl Node {
    fn new(root: &Path, name: &'static str, link: Ipv4Addr) -> Self {
        let dir = root.join(name);
        for d in ["save", "state", "etc-ssh", "root/.ssh", "sbin"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        Node {
            name,
            link,
            ns: Netns::new(&format!("save-{name}")),
            dir,
        }
    }

    /// `sh -c command` in the node's namespace and sandbox.
    fn sandbox(&self, command: &str) -> Command {
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
        c.args(["--dir", "/run/sshd", "--bind", &d("root"), "/root"]);
        c.args([
            "--bind",
            &d("save"),
            "/SAVE",
            "--bind",
            &d("state"),
            "/var/lib/picaboot",
        ]);
        c.args(["--ro-bind", &d("sbin"), "/usr/local/sbin"]);
        c.args(["sh", "-c", command]);
        c
    }

    fn run(&self, command: &str) -> Output {
        picaboot::exec::run_deadline_status(
            command,
            &mut self.sandbox(command),
            None,
            Duration::from_secs(120),
        )
        .unwrap()
    }

    fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

/// The Proxmox double (see the module doc): reads answer the state files, writes replace
/// them and are logged, one line each, in `pve-double/log`.
const PVE_DOUBLE: &str = r#"#!/bin/sh
set -eu
d=/var/lib/picaboot/pve-double
mkdir -p "$d"
[ -f "$d/storage.json" ] || echo '[{"storage":"local","type":"dir","path":"/var/lib/vz","content":"iso,vztmpl,backup"}]' > "$d/storage.json"
[ -f "$d/jobs.json" ] || echo '[]' > "$d/jobs.json"
cmd="$(basename "$0") $*"
case "$cmd" in
"pvesh get /storage --output-format json") cat "$d/storage.json" ;;
"pvesh get /cluster/backup --output-format json") cat "$d/jobs.json" ;;
"pvesm add dir "*)
	echo "$cmd" >> "$d/log"
	printf '[{"storage":"%s","type":"dir","path":"%s","content":"%s","is_mountpoint":"%s"}]\n' "$3" "$5" "$7" "$9" > "$d/storage.json" ;;
"pvesh create /cluster/backup "*)
	echo "$cmd" >> "$d/log"
	shift 2
	json='{"type":"vzdump"'
	while [ $# -ge 2 ]; do json="$json,\"${1#--}\":\"$2\""; shift 2; done
	echo "[$json}]" > "$d/jobs.json" ;;
*) echo "pve double: unknown command: $cmd" >&2; exit 2 ;;
esac
"#;

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

/// The shipped profiles (kept, for `backup form`) rendered; alice's pull of bob.
fn rendered() -> (
    tempfile::TempDir,
    PathBuf,
    PathBuf,
    Pull,
    picaboot::profile::Backup,
) {
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
    let kept = keep.path().join("profiles");
    common::copy_tree(&profiles, &kept);
    // services.toml names picaboot's images, looked up beside the profiles.
    common::copy_tree(&common::root().join("images"), &keep.path().join("images"));
    (keep, out, kept, pull, b)
}

fn veth(a: &Node, b: &Node, prefix: u8) {
    let (ia, ib) = ("pbsave0", "pbsave1");
    run_ok(common::cmd("ip").args([
        "-n", &a.ns.0, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", &b.ns.0,
    ]));
    a.ns.ip(&["addr", "add", &format!("{}/{prefix}", a.link), "dev", ia]);
    b.ns.ip(&["addr", "add", &format!("{}/{prefix}", b.link), "dev", ib]);
    // A second address on alice, not the one the key is accepted from.
    let other = Ipv4Addr::from(u32::from(a.link) + 100);
    a.ns.ip(&["addr", "add", &format!("{other}/{prefix}"), "dev", ia]);
    a.ns.ip(&["link", "set", ia, "up"]);
    b.ns.ip(&["link", "set", ib, "up"]);
}

/// A node's files: /etc/ssh (a host key, its rendered drop-in, an sshd_config as Debian's,
/// which includes sshd_config.d first, listening on the cluster address), the admin's key in
/// root's authorized_keys, the rendered pull script and the Proxmox double.
fn node_files(n: &Node, tree: &Path, admin_pub: &str) {
    let etc = n.dir.join("etc-ssh");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(etc.join("ssh_host_ed25519_key")),
    );
    std::fs::create_dir_all(etc.join("sshd_config.d")).unwrap();
    let rootfs = tree.join(n.name).join("rootfs");
    let dropin = backup::SSHD_DROPIN.trim_start_matches('/');
    std::fs::copy(
        rootfs.join(dropin),
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
            n.link
        ),
    )
    .unwrap();
    std::fs::write(n.dir.join("root/.ssh/authorized_keys"), admin_pub).unwrap();
    run_ok(
        Command::new("chmod")
            .args(["700"])
            .arg(n.dir.join("root/.ssh")),
    );
    let sbin = n.dir.join("sbin");
    let script = backup::SCRIPT.rsplit('/').next().unwrap();
    std::fs::copy(
        rootfs.join(backup::SCRIPT.trim_start_matches('/')),
        sbin.join(script),
    )
    .unwrap();
    for tool in ["pvesh", "pvesm"] {
        std::fs::write(sbin.join(tool), PVE_DOUBLE).unwrap();
        run_ok(Command::new("chmod").args(["755"]).arg(sbin.join(tool)));
    }
}

fn start_sshd(n: &Node) -> Daemon {
    let log = n.dir.join("sshd.log");
    let child = n
        .sandbox("exec /usr/sbin/sshd -D -e")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let d = Daemon(child);
    let start = Instant::now();
    let want = format!("{}:22", n.link);
    let listening = || {
        n.ns.exec()
            .args(["ss", "-Hltn"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&want))
            .unwrap_or(false)
    };
    while !listening() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "sshd did not listen on {want}: {}",
            n.sshd_log()
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

/// `picaboot backup form picasoft` from alice's namespace, over ssh with the admin's key.
fn backup_form(alice: &Node, bob: &Node, profiles: &Path, ssh_config: &Path) -> Output {
    let mut c = alice.ns.exec();
    c.arg(env!("CARGO_BIN_EXE_picaboot"))
        .args(["backup", "form", "picasoft", "--profiles"])
        .arg(profiles)
        .arg("--ssh")
        .arg(format!("alice=root@{}", alice.link))
        .arg("--ssh")
        .arg(format!("bob=root@{}", bob.link))
        .env("PICABOOT_SSH_CONFIG", ssh_config);
    picaboot::exec::run_deadline_status("backup form", &mut c, None, Duration::from_secs(300))
        .unwrap()
}

/// The admin's key and ssh config (the nodes' host keys are not what is tested here).
fn admin(t: &Path) -> (String, PathBuf) {
    let key = t.join("admin_key");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    let cfg = t.join("ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  \
             UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
            key.display()
        ),
    )
    .unwrap();
    (
        std::fs::read_to_string(key.with_extension("pub")).unwrap(),
        cfg,
    )
}

/// Bob's dumps: a finished one with its log, one being written (.dat), and a file beside
/// dump/ that the key must not reach. Returns the finished dump's name and bytes.
fn bob_dumps(bob: &Node) -> (&'static str, Vec<u8>) {
    let dump_dir = bob.dir.join("save/dump");
    std::fs::create_dir_all(&dump_dir).unwrap();
    let dump = "vzdump-qemu-100-2026_12_04-03_00_02.vma.zst";
    let bytes = dump_bytes(4 << 20);
    std::fs::write(dump_dir.join(dump), &bytes).unwrap();
    let log = "vzdump-qemu-100-2026_12_04-03_00_02.log";
    std::fs::write(dump_dir.join(log), "INFO: Finished\n").unwrap();
    let partial = "vzdump-qemu-101-2026_12_04-03_10_00.vma.dat";
    std::fs::write(dump_dir.join(partial), "partial").unwrap();
    std::fs::write(bob.dir.join("save/outside.txt"), "not served").unwrap();
    (dump, bytes)
}

#[test]
fn backup_form_then_the_rendered_pull_moves_a_dump_and_the_key_refuses_everything_else() {
    tools();
    let (_keep, tree, profiles, pull, b) = rendered();
    lint(&tree);
    let t = tempfile::tempdir().unwrap();
    let alice = Node::new(t.path(), "alice", pull.node_link);
    let bob = Node::new(t.path(), "bob", pull.peer_link);
    veth(&alice, &bob, 24);
    let (admin_pub, ssh_config) = admin(t.path());
    node_files(&alice, &tree, &admin_pub);
    node_files(&bob, &tree, &admin_pub);
    let (dump, bytes) = bob_dumps(&bob);
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
    let _sshd_bob = start_sshd(&bob);
    let _sshd_alice = start_sshd(&alice);
    let logs = || {
        format!(
            "sshd alice: {}\nsshd bob: {}",
            alice.sshd_log(),
            bob.sshd_log()
        )
    };

    // backup form: the Proxmox double on alice gets the storage and the job, once.
    let form = backup_form(&alice, &bob, &profiles, &ssh_config);
    let err = String::from_utf8_lossy(&form.stderr).into_owned();
    assert!(form.status.success(), "backup form: {err}\n{}", logs());
    let pve_log = alice.dir.join("state/pve-double/log");
    let written = std::fs::read_to_string(&pve_log).unwrap();
    assert_eq!(
        written,
        format!(
            "{}\n{}\n",
            proxmox::add_storage(&b),
            proxmox::create_job(&b)
        )
    );
    assert!(
        !bob.dir.join("state/pve-double/log").exists(),
        "Proxmox is written on alice only"
    );
    let key = alice.dir.join("state/save-pull/id_ed25519");
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let served = std::fs::read_to_string(bob.dir.join("etc-ssh/picaboot-save/root")).unwrap();
    assert_eq!(served, backup::authorized_line(&pull, &pubkey).unwrap());
    // A second run finds everything in place: no Proxmox write, the same key.
    let again = backup_form(&alice, &bob, &profiles, &ssh_config);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&pve_log).unwrap(), written);
    assert_eq!(
        std::fs::read_to_string(key.with_extension("pub")).unwrap(),
        pubkey
    );

    // The timer's service, as systemd would start it.
    let exec = exec_start(&tree);
    assert_eq!(exec, backup::SCRIPT);
    let start = Instant::now();
    let out = alice.run(&exec);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pull failed: {err}\n{}", logs());
    eprintln!(
        "save_sync: pulled {} bytes in {:.2}s",
        bytes.len(),
        took.as_secs_f64()
    );
    assert_eq!(std::fs::read(dest.join(dump)).unwrap(), bytes);
    assert!(dest
        .join("vzdump-qemu-100-2026_12_04-03_00_02.log")
        .is_file());
    let partial = dest.join("vzdump-qemu-101-2026_12_04-03_10_00.vma.dat");
    assert!(!partial.exists(), "a dump in progress is skipped");
    assert!(
        !dest.join(old).exists(),
        "a copy past keep-daily is removed"
    );
    assert!(
        dest.join(young).exists(),
        "a copy within keep-daily is kept"
    );

    refusals(&alice, &bob, &pull);
}

/// The same key: no command, no write, nothing outside the dump directory, not from another
/// address.
fn refusals(alice: &Node, bob: &Node, pull: &Pull) {
    let ssh = format!("ssh {}", plan::ssh_options());
    let peer = pull.peer_link;
    let id = alice.run(&format!("{ssh} root@{peer} id"));
    let said = String::from_utf8_lossy(&id.stdout);
    assert!(
        !id.status.success() && !said.contains("uid="),
        "`id` ran: {said}"
    );

    let write = alice.run(&format!(
        "rsync -e '{ssh}' /etc/hostname root@{peer}:./written"
    ));
    assert!(!write.status.success(), "a write was accepted");
    assert!(!bob.dir.join("save/dump/written").exists());

    let escape = alice.run(&format!(
        "mkdir -p /tmp/x && rsync -e '{ssh}' root@{peer}:../outside.txt /tmp/x/ ; ls /tmp/x"
    ));
    assert!(
        !String::from_utf8_lossy(&escape.stdout).contains("outside.txt"),
        "a file outside the dump directory was served"
    );

    let other = Ipv4Addr::from(u32::from(pull.node_link) + 100);
    let from = alice.run(&format!(
        "rsync --list-only -e '{ssh} -b {other}' root@{peer}:./"
    ));
    assert!(!from.status.success(), "the key was accepted from {other}");
    // Each refusal is rrsync's or sshd's own, not a failed connection.
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err(&id).contains("rrsync error"), "{}", err(&id));
    assert!(err(&write).contains("read-only"), "{}", err(&write));
    assert!(err(&escape).contains("rrsync error"), "{}", err(&escape));
    let log = bob.sshd_log();
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
        proxmox::READ_STORAGE.to_string(),
        proxmox::READ_JOBS.to_string(),
        "ssh-keygen -q -t ed25519".to_string(),
        backup::SERVE_KEYS.to_string(),
    ] {
        assert!(text.contains(&want), "{want} not in {text}");
    }
    let why = v["steps"][2]["why"].as_str().unwrap();
    assert!(why.contains(&proxmox::add_storage(&b)), "{why}");
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
