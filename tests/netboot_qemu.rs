//! QEMU proofs (TCG): the installer kernel boots with the built initrd (text frontend, serial
//! console, the install NIC's MAC) and gets through hardware detection and DHCP to the
//! mirror step without asking any language, keyboard or network question — i.e. the
//! appended preseed was loaded and the supplement's modules work. Once with `-kernel`/
//! `-initrd` directly, once through PXE: QEMU's iPXE ROM (ipxe-qemu) takes DHCP and TFTP from
//! QEMU user networking, chains the generated `boot.ipxe` over HTTP from a server on the
//! host's loopback, and loads `linux` and `initrd.gz` from there. About 2 minutes each; the
//! two never run at the same time.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use picaboot::debian::{Client, ClientOptions, DEFAULT_KEYRING};
use picaboot::netboot::{self, NetbootOptions};
use picaboot::output;
use picaboot::profile::Frontend;
use picaboot::render::{render_hosts, RenderOptions};

/// Screens that prove the installer is past the questions a preseed must answer: it accepted
/// the preseeded mirror and went on to load its components from it ("Download installer
/// components" is also the title of the error this machine's stale udeb index then causes:
/// past the mirror question all the same; `picaboot test install` gets past that step).
const REACHED: &[&str] = &[
    "Loading additional components",
    "Retrieving ",
    "Download installer components",
];
/// Questions that must never show ("Choose a mirror" is a question the preseed answers: the
/// mirror screen showing means the preseed's mirror was refused).
const ASKED: &[&str] = &[
    "Select a language",
    "Select your location",
    "Configure the keyboard",
    "Configure the network",
    "Choose a mirror of the Debian archive",
    "Kernel panic",
];
const LIMIT: Duration = Duration::from_secs(300);

fn strip_ansi(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                Some('(') | Some(')') => {
                    chars.next();
                    chars.next();
                }
                _ => {}
            }
            out.push(' ');
        } else if c != '\x0e' && c != '\x0f' {
            out.push(c);
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Builds alice's text-frontend netboot tree under `out`; returns the netboot directory,
/// the install MAC and the kernel arguments.
fn build(out: &Path) -> (std::path::PathBuf, String, String) {
    common::sbin_path();
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    // The installer must reach a mirror from the VM: this machine's (the profile's public
    // mirror may be out of reach here).
    let project = picaboot::project::open_with(
        &profiles,
        &picaboot::project::Overrides {
            mirror: Some(common::mirror()),
            ..Default::default()
        },
    )
    .unwrap();
    let host = &project.loaded.profiles.hosts["alice"];
    let tree = render_hosts(&project, &["alice".to_string()], RenderOptions::default())
        .unwrap()
        .trees
        .remove("alice")
        .unwrap();
    let client = Client::new(ClientOptions {
        mirror: common::mirror(),
        keyring: DEFAULT_KEYRING.into(),
        insecure: false,
        cache_dir: common::shared_cache(),
    });
    let target = netboot::target_dir(out, "alice");
    let (staged, _) = netboot::stage(
        &client,
        host,
        &tree,
        &target,
        &NetbootOptions {
            frontend: Some(Frontend::Text),
            supplement: true,
            base_url: "http://10.0.2.2:8080".into(),
            keyring_append: None,
        },
    )
    .unwrap();
    output::publish(vec![staged]).unwrap();
    let mac = netboot::install_mac(host).unwrap().to_string();
    let args = netboot::boot::kernel_args(host, Frontend::Text, &mac);
    (target, mac, args)
}

/// Starts QEMU with `extra` arguments and the serial console in `log`, waits for a marker,
/// kills QEMU, and panics with the console's tail unless a REACHED marker came first.
fn run_until_marker(extra: &[String], log: &Path) {
    common::require("qemu-system-x86_64", "qemu-system-x86");
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            picaboot::qemu::Accel::Tcg.arg(),
            "-smp",
            "2",
            "-m",
            "2048",
            "-M",
            "q35",
        ])
        .args(extra)
        .args(["-display", "none", "-no-reboot", "-serial"])
        .arg(format!("file:{}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-x86_64");
    let start = Instant::now();
    let verdict = loop {
        std::thread::sleep(Duration::from_secs(2));
        let text = strip_ansi(&std::fs::read(log).unwrap_or_default());
        if let Some(q) = ASKED.iter().find(|q| text.contains(*q)) {
            break Err(format!("the installer showed `{q}`"));
        }
        if let Some(r) = REACHED.iter().find(|r| text.contains(*r)) {
            break Ok(format!(
                "reached `{r}` after {} s",
                start.elapsed().as_secs()
            ));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            break Err(format!("qemu exited ({status}): {err}"));
        }
        if start.elapsed() > LIMIT {
            break Err(format!("no marker within {} s", LIMIT.as_secs()));
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let tail: String = {
        let t = strip_ansi(&std::fs::read(log).unwrap_or_default());
        t.chars()
            .rev()
            .take(1500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    };
    match verdict {
        Ok(msg) => eprintln!("installer: {msg}"),
        Err(msg) => panic!("{msg}; serial console tail:\n{tail}"),
    }
}

#[test]
fn installer_boots_to_the_mirror_step_unasked() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let (target, mac, args) = build(out.path());
    let extra: Vec<String> = vec![
        "-kernel".into(),
        target.join("linux").display().to_string(),
        "-initrd".into(),
        target.join("initrd.gz").display().to_string(),
        "-append".into(),
        args,
        "-netdev".into(),
        "user,id=n0".into(),
        "-device".into(),
        format!("e1000e,netdev=n0,mac={mac}"),
    ];
    run_until_marker(&extra, &out.path().join("console.log"));
}

#[test]
fn pxe_ipxe_chains_boot_ipxe_over_http() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rom = Path::new("/usr/lib/ipxe/qemu/efi-e1000e.rom");
    assert!(
        rom.is_file(),
        "{} is missing: install the Debian package `ipxe-qemu`",
        rom.display()
    );
    let out = tempfile::tempdir().unwrap();
    let (_target, mac, _) = build(out.path());
    // The output tree over HTTP on the host's loopback (10.0.2.2 from the guest).
    let url = common::serve_dir(out.path());
    let port = url.rsplit(':').next().unwrap();
    let tftp = out.path().join("tftp");
    std::fs::create_dir(&tftp).unwrap();
    std::fs::write(
        tftp.join("chain.ipxe"),
        format!("#!ipxe\nchain http://10.0.2.2:{port}/alice/netboot/boot.ipxe\n"),
    )
    .unwrap();
    let extra: Vec<String> = vec![
        "-netdev".into(),
        format!("user,id=n0,tftp={},bootfile=chain.ipxe", tftp.display()),
        "-device".into(),
        format!("e1000e,netdev=n0,mac={mac}"),
        "-boot".into(),
        "n".into(),
    ];
    run_until_marker(&extra, &out.path().join("console.log"));
}
