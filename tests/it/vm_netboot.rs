//! QEMU tier for `picaboot serve`: QEMU's own iPXE ROM (package ipxe-qemu) boots Alice's
//! netboot artifacts over HTTP from the real `picaboot serve` on the host loopback; the Debian
//! installer then runs from the appended initrd with the embedded preseed and gets past its
//! network stage without asking a single question, and serve's log shows every file sent whole.
//! (The PXE/TFTP path and the direct kernel boot are in tests/it/netboot_qemu.rs.)

use crate::common;
use crate::common::installer;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{cmd, require};

/// What the installer shows once it is past the language and network questions.
const PAST_NETWORK: &[&str] = &[
    "Network autoconfiguration has succeeded",
    "Checking the Debian archive mirror",
];

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn netboot(out: &Path, profiles: &Path) -> PathBuf {
    let o = common::picaboot(
        profiles.parent().unwrap(),
        &[
            "netboot",
            "alice",
            "--profiles",
            profiles.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--frontend",
            "text",
            "--mirror",
            "apt",
        ],
    );
    assert!(
        o.status.success(),
        "netboot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.join("alice/netboot")
}

/// Boots QEMU with the install NIC's MAC on user networking (`netdev` options given) and
/// waits until the installer is past the network questions; returns the screen text.
fn boot_until_installer_is_past_network(netdev: &str, mac: &str, console: &Path) -> (String, f64) {
    let start = Instant::now();
    let mut qemu = Killed(
        cmd("qemu-system-x86_64")
            .args([
                "-accel",
                picaboot::qemu::Accel::Tcg.arg(),
                "-machine",
                "q35",
                "-cpu",
                "max",
                "-smp",
                "2",
                "-m",
                "2048",
            ])
            .args([
                "-nodefaults",
                "-display",
                "none",
                "-no-reboot",
                "-boot",
                "n",
            ])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .args([
                "-netdev",
                netdev,
                "-device",
                &format!("e1000e,netdev=n0,mac={mac}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-x86_64"),
    );
    loop {
        let text = installer::screen_text(&std::fs::read(console).unwrap_or_default());
        if PAST_NETWORK.iter().any(|m| text.contains(m)) {
            return (text, start.elapsed().as_secs_f64());
        }
        if let Ok(Some(status)) = qemu.0.try_wait() {
            panic!("qemu exited ({status}) before the installer got past the network:\n{text}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(420),
            "the installer did not get past the network in 420 s; screen:\n{}",
            &text[text.len().saturating_sub(3000)..]
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn assert_no_question(text: &str) {
    for q in installer::NEVER_SHOWN {
        assert!(
            !text.contains(q),
            "the installer asked `{q}`:\n{}",
            &text[text.len().saturating_sub(3000)..]
        );
    }
    assert!(
        text.contains("Linux version") || text.contains("Network"),
        "installer output seen"
    );
}

fn setup() -> (tempfile::TempDir, PathBuf, String) {
    require("qemu-system-x86_64", "qemu-system-x86");
    assert!(
        Path::new("/usr/lib/ipxe/qemu/efi-e1000e.rom").exists()
            || Path::new("/usr/share/qemu/efi-e1000e.rom").exists(),
        "QEMU's iPXE ROMs are missing: install the Debian package `ipxe-qemu`"
    );
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let project = picaboot::project::open(&profiles).unwrap();
    let mac = project.loaded.profiles.hosts["alice"]
        .nic_with_role(picaboot::profile::NicRole::Install)
        .unwrap()
        .mac
        .clone();
    let out = scratch.path().join("out");
    netboot(&out, &profiles);
    (scratch, out, mac)
}

#[test]
fn ipxe_boots_the_installer_over_http_from_serve_without_questions() {
    let (scratch, out, mac) = setup();
    let mut serve = Killed(
        common::cmd(env!("CARGO_BIN_EXE_picaboot"))
            .args(["serve", out.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(serve.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("serve prints its URL")
        .to_string();
    let port = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let log_lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = log_lines.clone();
    let stderr = serve.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let netdev = format!("user,id=n0,bootfile=http://10.0.2.2:{port}/alice/netboot/boot.ipxe");
    let (text, secs) = boot_until_installer_is_past_network(
        &netdev,
        &mac,
        &scratch.path().join("http-console.log"),
    );
    eprintln!("iPXE over HTTP: installer past the network in {secs:.0} s");
    assert_no_question(&text);
    let log = log_lines.lock().unwrap().join("\n");
    let dir = out.join("alice/netboot");
    for f in ["boot.ipxe", "linux", "initrd.gz"] {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        let line = format!("GET /alice/netboot/{f} 200 {len}");
        assert!(log.contains(&line), "serve log lacks `{line}`:\n{log}");
    }
}
