//! `picaboot diff` against a live host: Debian's openssh-server (its own sshd, a test host key
//! and client key) in a network namespace on a veth address, in a private mount namespace
//! whose /etc, /root and /usr/local are overlays (this machine's own files underneath stay
//! untouched) holding alice's rendered rootfs. Clean: exit 0. One rendered file edited and
//! one deleted by hand over ssh: exactly those two reported, exit 3.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn diff(cwd: &Path, profiles: &Path, dest: &str, cfg: &Path, json: bool) -> std::process::Output {
    let mut args = vec![
        "diff",
        "alice",
        "--ssh",
        dest,
        "--profiles",
        profiles.to_str().unwrap(),
    ];
    if json {
        args.push("--json");
    }
    Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(&args)
        .current_dir(cwd)
        .env("PICABOOT_SSH_CONFIG", cfg)
        .output()
        .unwrap()
}

#[test]
fn diff_reports_exactly_the_edited_and_the_deleted_file() {
    common::require("sshd", "openssh-server");
    common::require("ssh", "openssh-client");
    common::require("ssh-keygen", "openssh-client");
    common::require("unshare", "util-linux");
    common::require("ip", "iproute2");

    let dir = common::scratch_profiles();
    let profiles = dir.path().join("profiles");
    let (_out_dir, out) = common::render_all(&profiles);
    let rootfs = out.join("alice/rootfs");
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for k in ["host_key", "id_key"] {
        common::run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(k)),
        );
    }
    std::fs::copy(d.join("id_key.pub"), d.join("authorized_keys")).unwrap();

    let ns = common::Netns::new("diff");
    let n = std::process::id() % 250 + 1;
    let (host_if, ns_if) = (format!("pbd{n}h"), format!("pbd{n}n"));
    let (host_ip, ns_ip) = (format!("10.231.{n}.1"), format!("10.231.{n}.2"));
    common::run_ok(common::cmd("ip").args([
        "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
    ]));
    common::run_ok(common::cmd("ip").args(["link", "set", &ns_if, "netns", &ns.0]));
    common::run_ok(common::cmd("ip").args([
        "addr",
        "add",
        &format!("{host_ip}/30"),
        "dev",
        &host_if,
    ]));
    common::run_ok(common::cmd("ip").args(["link", "set", &host_if, "up"]));
    ns.ip(&["addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
    ns.ip(&["link", "set", &ns_if, "up"]);
    struct Link(String);
    impl Drop for Link {
        fn drop(&mut self) {
            let _ = common::cmd("ip").args(["link", "del", &self.0]).status();
        }
    }
    let _link = Link(host_if.clone());

    std::fs::write(
        d.join("sshd_config"),
        format!(
            "ListenAddress {ns_ip}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {d}/sshd.pid\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n",
            d = d.display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("ssh_config"),
        format!(
            "Host *\n  IdentityFile {d}/id_key\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
            d = d.display()
        ),
    )
    .unwrap();
    // The live "host": overlays over /etc, /root and /usr/local in a private mount namespace,
    // the rendered rootfs copied in, then sshd.
    let script = format!(
        "set -e\n\
         for p in /etc /root /usr/local; do\n\
           o={d}/ov$p; mkdir -p $o/upper $o/work\n\
           mount -t overlay overlay -o lowerdir=$p,upperdir=$o/upper,workdir=$o/work $p\n\
         done\n\
         cp -r --preserve=mode {rootfs}/. /\n\
         mkdir -p /run/sshd\n\
         exec /usr/sbin/sshd -D -e -f {d}/sshd_config\n",
        d = d.display(),
        rootfs = rootfs.display()
    );
    let hosts_before = std::fs::read("/etc/hosts").unwrap();
    let child = ns
        .exec()
        .args([
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
        .spawn()
        .unwrap();
    let _sshd = Sshd(child);
    let start = Instant::now();
    while std::net::TcpStream::connect((ns_ip.as_str(), 22)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "sshd did not start: {}",
            std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dest = format!("root@{ns_ip}");
    let cfg = d.join("ssh_config");

    let o = diff(dir.path(), &profiles, &dest, &cfg, false);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let manifest: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("alice/manifest.json")).unwrap())
            .unwrap();
    let n_rootfs = manifest
        .iter()
        .filter(|e| e["path"].as_str().unwrap().starts_with("rootfs/"))
        .count();
    assert!(
        stdout.contains(&format!("alice: 0 of {n_rootfs} rendered files drifted")),
        "{stdout}"
    );

    // Drift by hand, over ssh, inside the "host".
    common::run_ok(
        Command::new("ssh")
            .arg("-F")
            .arg(&cfg)
            .arg(&dest)
            .arg("echo '# edited by hand' >> /etc/hosts && rm /etc/rc.local"),
    );
    let o = diff(dir.path(), &profiles, &dest, &cfg, false);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("changed: /etc/hosts\n--- rendered/etc/hosts\n+++ root@"),
        "{stdout}"
    );
    assert!(stdout.contains("\n+# edited by hand\n"), "{stdout}");
    assert!(stdout.contains("missing: /etc/rc.local\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("alice: 2 of {n_rootfs} rendered files drifted")),
        "{stdout}"
    );
    let o = diff(dir.path(), &profiles, &dest, &cfg, true);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let drift: Vec<(&str, &str)> = v["report"]["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["path"].as_str().unwrap(), d["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        drift,
        [("/etc/hosts", "content"), ("/etc/rc.local", "missing")]
    );
    assert_eq!(v["report"]["checked"], n_rootfs);

    // This machine's own /etc/hosts was never touched.
    assert_eq!(std::fs::read("/etc/hosts").unwrap(), hosts_before);
}
