//! QEMU proofs (TCG): the installer kernel boots with the built initrd (text frontend, serial
//! console, the install NIC's MAC) and gets through hardware detection and DHCP to the
//! mirror step without asking any language, keyboard or network question — i.e. the
//! appended preseed was loaded and the supplement's modules work. Once with `-kernel`/
//! `-initrd` directly, once through PXE: QEMU's iPXE ROM (ipxe-qemu) takes DHCP and TFTP from
//! QEMU user networking, chains the generated `boot.ipxe` over HTTP from a server on the
//! host's loopback, and loads `linux` and `initrd.gz` from there. About 2 minutes each; the
//! two never run at the same time.

use crate::common;
use crate::common::installer;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Screens that prove the installer is past the questions a preseed must answer: it accepted
/// the preseeded mirror and went on to load its components from it ("Download installer
/// components" is also the title of the error this machine's stale udeb index then causes:
/// past the mirror question all the same; `picaboot test install` gets past that step).
const REACHED: &[&str] = &[
    "Loading additional components",
    "Retrieving ",
    "Download installer components",
];
const LIMIT: Duration = Duration::from_secs(300);

pub(crate) static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
        let text = installer::screen_text(&std::fs::read(log).unwrap_or_default());
        if let Some(q) = installer::NEVER_SHOWN.iter().find(|q| text.contains(*q)) {
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
        let t = installer::screen_text(&std::fs::read(log).unwrap_or_default());
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
    let (target, mac, args) = installer::alice_netboot(out.path());
    let extra: Vec<String> = vec![
        "-kernel".into(),
        target.join("linux").display().to_string(),
        "-initrd".into(),
        target.join("initrd.gz").display().to_string(),
        "-append".into(),
        picaboot::qemu::vm::with_emulator_params(&args),
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
    let (_target, mac, _) = installer::alice_netboot(out.path());
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
