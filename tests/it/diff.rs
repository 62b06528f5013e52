//! `picaboot diff` against a live host: Debian's openssh-server (its own sshd, a test host key
//! and client key) in a network namespace on a veth address, in a private mount namespace
//! whose /etc, /root and /usr/local are overlays (this machine's own files underneath stay
//! untouched) holding alice's rendered rootfs. Clean: exit 0. One rendered file edited and
//! one deleted by hand over ssh: exactly those two reported, exit 3.

use crate::common;
use crate::common::amt as amt_sim;

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

/// A live "host": sshd in a network namespace (veth, host side `host_ip`), /etc, /root and
/// /usr/local overlaid with `rootfs` in its private mount namespace.
struct LiveHost {
    dest: String,
    cfg: std::path::PathBuf,
    host_ip: String,
    log: std::path::PathBuf,
    _sshd: Sshd,
    _link: Link,
    _ns: common::Netns,
    _t: tempfile::TempDir,
}

struct Link(String);
impl Drop for Link {
    fn drop(&mut self) {
        let _ = common::cmd("ip").args(["link", "del", &self.0]).status();
    }
}

fn live_host(rootfs: &Path, n: u32) -> LiveHost {
    common::require("sshd", "openssh-server");
    common::require("ssh", "openssh-client");
    common::require("ssh-keygen", "openssh-client");
    common::require("unshare", "util-linux");
    common::require("ip", "iproute2");
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
    let link = Link(host_if.clone());

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
    let sshd = Sshd(child);
    let start = Instant::now();
    while std::net::TcpStream::connect((ns_ip.as_str(), 22)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "sshd did not start: {}",
            std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    LiveHost {
        dest: format!("root@{ns_ip}"),
        cfg: d.join("ssh_config"),
        host_ip,
        log: d.join("sshd.log"),
        _sshd: sshd,
        _link: link,
        _ns: ns,
        _t: t,
    }
}

#[test]
fn diff_reports_exactly_the_edited_and_the_deleted_file() {
    let dir = common::scratch_profiles();
    let profiles = dir.path().join("profiles");
    let (_out_dir, out) = common::render_all(&profiles);
    let hosts_before = std::fs::read("/etc/hosts").unwrap();
    let live = live_host(&out.join("alice/rootfs"), std::process::id() % 120 + 1);
    let (dest, cfg) = (live.dest.clone(), live.cfg.clone());

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
    // A reader that stops at the first line (`diff alice | head -1`) does not hide the
    // drift: picaboot's own exit status is still 3, with nothing on stderr but the error.
    let o = Command::new("bash")
        .arg("-c")
        .arg(r#""$@" | head -1 >/dev/null; echo "status=${PIPESTATUS[0]}""#)
        .arg("bash")
        .arg(env!("CARGO_BIN_EXE_picaboot"))
        .args(["diff", "alice", "--ssh", &dest, "--profiles"])
        .arg(&profiles)
        .current_dir(dir.path())
        .env("PICABOOT_SSH_CONFIG", &cfg)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(stdout.trim(), "status=3", "{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
    let o = diff(dir.path(), &profiles, &dest, &cfg, true);
    assert_eq!(o.status.code(), Some(3));
    // With --json a failed run prints its report, then the error object (exit 3) on its own
    // line: both must be JSON.
    let mut values =
        serde_json::Deserializer::from_slice(&o.stdout).into_iter::<serde_json::Value>();
    let v = values.next().unwrap().unwrap();
    let err = values.next().unwrap().unwrap();
    assert_eq!(err["code"], 3, "{err}");
    assert!(values.next().is_none());
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

/// `power` through the site's jump host: the system ssh runs `ssh -W AMT:PORT JUMP` to the
/// namespace's sshd, which connects to the test AMT behind Apache on the veth's host side.
/// Through a closed port there, the error names AMT as the hop, not the jump host.
#[test]
fn power_through_an_ssh_jump_host() {
    let dir = common::scratch_profiles();
    let profiles = dir.path().join("profiles");
    let (_out_dir, out) = common::render_all(&profiles);
    let live = live_host(&out.join("alice/rootfs"), std::process::id() % 120 + 121);
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sim = amt_sim::AmtSim::start(Box::new(amt_sim::Recorder {
        on: true,
        events: events.clone(),
    }));
    let password = "jump-test-password-5d";
    let apache = amt_sim::Apache::start_on(&live.host_ip, &sim.addr, "admin", password, false);
    amt_sim::point_alice_at(&profiles, &apache.http, None, Some(&live.dest));
    let run = |profiles: &Path| {
        Command::new(env!("CARGO_BIN_EXE_picaboot"))
            .args([
                "power",
                "alice",
                "reset",
                "--profiles",
                profiles.to_str().unwrap(),
            ])
            .env("PICABOOT_SSH_CONFIG", &live.cfg)
            .env("PICABOOT_AMT_PASSWORD", password)
            .output()
            .unwrap()
    };
    let o = run(&profiles);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{err}\n{}\nsshd: {}",
        apache.error_log(),
        std::fs::read_to_string(&live.log).unwrap_or_default()
    );
    assert_eq!(*events.lock().unwrap(), ["reset"]);
    assert!(sim.log().contains(&"PowerState 10".to_string()));

    let closed = std::net::TcpListener::bind((live.host_ip.as_str(), 0)).unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let dir2 = common::scratch_profiles();
    let profiles2 = dir2.path().join("profiles");
    amt_sim::point_alice_at(&profiles2, &closed_addr, None, Some(&live.dest));
    let o = run(&profiles2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "unreachable: AMT {closed_addr} (through jump host {})",
            live.dest
        )),
        "{err}"
    );
}
