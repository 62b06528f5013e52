//! corosync 3 judges the rendered corosync.conf: `corosync -t` accepts each node's config in a
//! namespace holding that node's address, then two real daemons in two network namespaces
//! joined by a veth pair (each with private /etc/corosync, /run, /var/lib/corosync and the
//! rendered /etc/hosts) form the two-node cluster, and the survivor stays quorate when the
//! other daemon is killed.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{cmd, require, run_ok, Netns};

/// A command run inside `ns` and a private mount namespace in which `binds` (source, target)
/// are mounted first.
fn sandboxed(ns: &Netns, binds: &[(PathBuf, &str)], command: &str) -> Command {
    let mut script = String::new();
    for (src, dst) in binds {
        script.push_str(&format!("mount --bind '{}' '{dst}' && ", src.display()));
    }
    script.push_str(command);
    let mut c = ns.exec();
    c.args([
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]);
    c
}

/// A corosync daemon killed on drop (SIGKILL: to its peer, a node that died), and the libqb
/// files it kept in /dev/shm (its blackbox, 8 MiB, and its IPC rings) removed after it.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let pid = self.0.id();
        let mine = [format!("qb-{pid}-"), format!("qb-corosync-{pid}-")];
        for e in std::fs::read_dir("/dev/shm")
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if mine.iter().any(|m| name.starts_with(m.as_str())) {
                // Blackbox files, and one directory per IPC connection.
                let _ = std::fs::remove_file(e.path());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Private directories for one node: etc (config + authkey), run, lib, and the hosts file.
fn node_dirs(root: &Path, host_tree: &Path, authkey: &Path) -> Vec<(PathBuf, &'static str)> {
    let etc = root.join("etc-corosync");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(
        host_tree.join("rootfs/etc/picaboot/corosync.conf"),
        etc.join("corosync.conf"),
    )
    .unwrap();
    std::fs::copy(authkey, etc.join("authkey")).unwrap();
    run_ok(cmd("chmod").arg("0400").arg(etc.join("authkey")));
    for d in ["run", "lib"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    vec![
        (etc, "/etc/corosync"),
        (root.join("run"), "/run"),
        (root.join("lib"), "/var/lib/corosync"),
        (host_tree.join("rootfs/etc/hosts"), "/etc/hosts"),
    ]
}

fn quorum_status(ns: &Netns) -> String {
    let out = cmd("ip")
        .args(["netns", "exec", &ns.0, "corosync-quorumtool", "-s"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(ns: &Netns, what: &str, pred: impl Fn(&str) -> bool, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let s = quorum_status(ns);
        if pred(&s) {
            return s;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not reached within {limit:?}; last status:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .map(|v| v.trim_start_matches(':').trim())
        })
        .unwrap_or("")
}

struct Setup {
    _dir: tempfile::TempDir,
    out: PathBuf,
    authkey: PathBuf,
    project: picaboot::project::Project,
    root: PathBuf,
}

fn setup() -> Setup {
    for (p, pkg) in [
        ("corosync", "corosync"),
        ("corosync-quorumtool", "corosync"),
        ("corosync-keygen", "corosync"),
        ("ip", "iproute2"),
    ] {
        require(p, pkg);
    }
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let (dir, out) = common::render_all(&profiles);
    let project = picaboot::project::open(&profiles).unwrap();
    let authkey = dir.path().join("authkey");
    run_ok(cmd("corosync-keygen").arg("-k").arg(&authkey));
    let root = dir.path().to_path_buf();
    std::mem::forget(scratch);
    Setup {
        _dir: dir,
        out,
        authkey,
        project,
        root,
    }
}

fn host_addr(s: &Setup, host: &str) -> (String, String) {
    let l = s.project.loaded.profiles.hosts[host]
        .cluster_link
        .clone()
        .unwrap();
    (l.interface, l.address.to_string())
}

#[test]
fn corosync_validates_each_node_config() {
    let s = setup();
    for host in ["alice", "bob"] {
        let conf =
            std::fs::read_to_string(s.out.join(host).join("rootfs/etc/picaboot/corosync.conf"))
                .unwrap();
        let (ok, text) = judge(&s, host, &format!("t-{host}"), &conf);
        assert!(ok, "{host}: corosync -t rejected the config:\n{text}");
        assert!(!text.contains(" error "), "{host}: {text}");
        // The oracle can fail: the same config with a bad value is refused.
        let (ok, _) = judge(
            &s,
            host,
            &format!("b-{host}"),
            &conf.replace("two_node: 1", "two_node: banana"),
        );
        assert!(!ok, "{host}: corosync -t accepted a broken config");
    }
}

/// `corosync -t` on `conf` as `host`'s config, in a namespace holding its cluster address
/// (`tag` names the namespace and the node's private directories).
fn judge(s: &Setup, host: &str, tag: &str, conf: &str) -> (bool, String) {
    let ns = Netns::new(tag);
    let (ifname, addr) = host_addr(s, host);
    run_ok(cmd("ip").args([
        "-n", &ns.0, "link", "add", &ifname, "type", "veth", "peer", "name", "peer0",
    ]));
    run_ok(cmd("ip").args(["-n", &ns.0, "addr", "add", &addr, "dev", &ifname]));
    run_ok(cmd("ip").args(["-n", &ns.0, "link", "set", &ifname, "up"]));
    run_ok(cmd("ip").args(["-n", &ns.0, "link", "set", "peer0", "up"]));
    let binds = node_dirs(&s.root.join(tag), &s.out.join(host), &s.authkey);
    std::fs::write(binds[0].0.join("corosync.conf"), conf).unwrap();
    let out = sandboxed(&ns, &binds, "corosync -t").output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// /etc/pve/corosync.conf as `pvecm create` and one join leave it (pve-docs pvecm.adoc
/// layout), with this cluster's names and addresses.
fn proxmox_conf(s: &Setup, version: u64) -> String {
    let (_, a) = host_addr(s, "alice");
    let (_, b) = host_addr(s, "bob");
    let ip = |x: &str| x.split('/').next().unwrap().to_string();
    format!(
        "logging {{\n  debug: off\n  to_syslog: yes\n}}\n\nnodelist {{\n  node {{\n    name: alice\n    nodeid: 1\n    quorum_votes: 1\n    ring0_addr: {}\n  }}\n  node {{\n    name: bob\n    nodeid: 2\n    quorum_votes: 1\n    ring0_addr: {}\n  }}\n}}\n\nquorum {{\n  provider: corosync_votequorum\n}}\n\ntotem {{\n  cluster_name: picasoft\n  config_version: {version}\n  interface {{\n    linknumber: 0\n  }}\n  ip_version: ipv4-6\n  link_mode: passive\n  secauth: on\n  version: 2\n}}\n",
        ip(&a),
        ip(&b)
    )
}

#[test]
fn the_edit_cluster_form_makes_in_etc_pve_and_a_qdevice_quorum_pass_corosync_t() {
    let s = setup();
    let rendered =
        std::fs::read_to_string(s.out.join("alice/rootfs/etc/picaboot/corosync.conf")).unwrap();
    // Proxmox's own file passes, so the oracle sees the same layout pmxcfs writes.
    let (ok, text) = judge(&s, "alice", "j-pve", &proxmox_conf(&s, 7));
    assert!(ok, "Proxmox's layout refused:\n{text}");
    // What `cluster form` writes over it: the rendered settings, config_version above 7.
    let (edited, version) =
        picaboot::cluster::proxmox::for_proxmox(&rendered, &proxmox_conf(&s, 7)).unwrap();
    assert_eq!(version, 8);
    let (ok, text) = judge(&s, "alice", "j-edit", &edited);
    assert!(ok, "the edited corosync.conf is refused:\n{text}");
    assert!(edited.contains("two_node: 1") && edited.contains("config_version: 8"));
    // quorum = "qdevice": rendered from a profile copy, judged by corosync too.
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    common::edit(
        &profiles.join("clusters/picasoft.toml"),
        "quorum = \"two-node\"",
        "quorum = \"qdevice\"\nqnetd = \"192.0.2.9\"",
    );
    let (_d, out) = common::render_all(&profiles);
    let qdevice =
        std::fs::read_to_string(out.join("alice/rootfs/etc/picaboot/corosync.conf")).unwrap();
    assert!(qdevice.contains("host: 192.0.2.9") && !qdevice.contains("two_node"));
    let (ok, text) = judge(&s, "alice", "j-qdev", &qdevice);
    assert!(ok, "the qdevice corosync.conf is refused:\n{text}");
    let (ok, _) = judge(
        &s,
        "alice",
        "j-qbad",
        &qdevice.replace("votes: 1\n    net", "votes: banana\n    net"),
    );
    assert!(
        !ok,
        "corosync -t accepted a qdevice vote count that is not a number"
    );
}

#[test]
fn two_daemons_form_a_quorate_two_node_cluster_and_the_survivor_stays_quorate() {
    let s = setup();
    let a = Netns::new("alice");
    let b = Netns::new("bob");
    let (if_a, addr_a) = host_addr(&s, "alice");
    let (if_b, addr_b) = host_addr(&s, "bob");
    // One cable between the two nodes' cluster interfaces.
    run_ok(cmd("ip").args([
        "-n", &a.0, "link", "add", &if_a, "type", "veth", "peer", "name", "tmp-b", "netns", &b.0,
    ]));
    run_ok(cmd("ip").args(["-n", &b.0, "link", "set", "tmp-b", "name", &if_b]));
    for (ns, ifname, addr) in [(&a, &if_a, &addr_a), (&b, &if_b, &addr_b)] {
        run_ok(cmd("ip").args(["-n", &ns.0, "addr", "add", addr, "dev", ifname]));
        run_ok(cmd("ip").args(["-n", &ns.0, "link", "set", ifname, "up"]));
    }
    let start = |ns: &Netns, host: &str| -> Daemon {
        let binds = node_dirs(&s.root.join(host), &s.out.join(host), &s.authkey);
        let log = std::fs::File::create(s.root.join(format!("{host}.log"))).unwrap();
        let child = sandboxed(ns, &binds, "exec corosync -f")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon(child)
    };
    let _da = start(&a, "alice");
    let db = start(&b, "bob");

    let both = |st: &str| field(st, "Nodes") == "2" && field(st, "Quorate") == "Yes";
    for ns in [&a, &b] {
        let st = wait_for(ns, "two-node quorum", both, Duration::from_secs(30));
        assert_eq!(field(&st, "Flags"), "2Node Quorate WaitForAll", "{st}");
        assert_eq!(field(&st, "Expected votes"), "2", "{st}");
    }

    drop(db); // kill bob's daemon
    let st = wait_for(
        &a,
        "survivor alone",
        |st| field(st, "Nodes") == "1",
        Duration::from_secs(30),
    );
    assert_eq!(
        field(&st, "Quorate"),
        "Yes",
        "alice stays quorate alone:\n{st}"
    );
    assert!(field(&st, "Flags").contains("2Node"), "{st}");
}
