//! VM proof of `power --pxe-once`: a QEMU VM (TCG) that booted from its disk is fronted by the
//! test AMT (tests/it/common/amt.rs) behind Apache mod_auth_digest; the test AMT drives it
//! through QMP (`system_reset`, `quit`, a restart with `-boot once=n` for a pending one-time
//! PXE boot). `picaboot power alice --pxe-once reset` must bring it up in the installer over
//! iPXE from `picaboot serve`, past the network step without a question. After the host
//! reported `done` to serve, a second `--pxe-once reset` boots it from disk (serve's boot.ipxe
//! now says so), and so does a plain `reset` (the PXE boot was for one boot only).
//! A few minutes under TCG. A second, short VM (about 10 s) proves that a `--pxe-once reset`
//! AMT refuses leaves no override: a plain `reset` after it boots a disk that prints a marker.

use crate::common;
use crate::common::amt as amt_sim;
use crate::common::amt_vm;
use crate::common::installer;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amt_sim::{picaboot_amt, point_alice_at, Apache};
use amt_vm::{chain_to_serve, vm_behind_amt, wait_for, AmtBox};

/// Past the network step (as tests/it/vm_netboot.rs judges it): DHCP done, the preseeded mirror
/// being checked.
const REACHED: &[&str] = &[
    "Network autoconfiguration has succeeded",
    "Checking the Debian archive mirror",
];
const USER: &str = "admin";
const PASSWORD: &str = "vm-test-amt-password-41";

struct Serve(Child);
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// power_vm's machine: a blank 64 MiB IDE disk and the install NIC, whose network boot chains
/// to serve on `port`.
fn blank_box(dir: &Path, mac: &str, port: u16) -> AmtBox {
    let tftp = chain_to_serve(dir, port);
    let disk = dir.join("disk.raw");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    vm_behind_amt(
        dir,
        vec![
            "-smp".into(),
            "2".into(),
            "-m".into(),
            "2048".into(),
            "-drive".into(),
            format!(
                "file={},format=raw,if=none,id=d0,cache=unsafe",
                disk.display()
            ),
            "-device".into(),
            "ide-hd,drive=d0,bus=ide.0".into(),
            "-netdev".into(),
            format!("user,id=n0,tftp={},bootfile=chain.ipxe", tftp.display()),
            "-device".into(),
            format!("e1000e,netdev=n0,mac={mac}"),
        ],
    )
}

#[test]
fn power_pxe_once_reset_brings_a_disk_booted_vm_into_the_installer() {
    amt_vm::require_qemu();
    let out = tempfile::tempdir().unwrap();
    let (_, mac, _) = installer::alice_netboot(out.path());

    // `picaboot serve` over the output tree on the host's loopback (10.0.2.2 in the guest).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_picaboot"))
            .args(["serve"])
            .arg(out.path())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(out.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "picaboot serve did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let bx = blank_box(out.path(), &mac, port);
    let (sim, starts) = (bx.sim.clone(), bx.starts.clone());
    let apache = Apache::start(&sim.addr, USER, PASSWORD, false);
    let dir = common::scratch_profiles();
    let profiles = dir.path().join("profiles");
    point_alice_at(&profiles, &apache.http, None, None);
    let p = profiles.to_str().unwrap();

    let o = picaboot_amt(
        dir.path(),
        &["power", "alice", "--pxe-once", "reset", "--profiles", p],
        USER,
        PASSWORD,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (pxe, console, _) = starts.lock().unwrap()[1].clone();
    assert!(
        pxe,
        "the reset after --pxe-once restarted the VM for a network boot"
    );
    wait_for(
        &console,
        "installer over iPXE",
        Duration::from_secs(420),
        |t| {
            if let Some(q) = installer::NEVER_SHOWN.iter().find(|q| t.contains(*q)) {
                return Some(Err(format!("the installer showed `{q}`")));
            }
            REACHED.iter().any(|r| t.contains(r)).then_some(Ok(()))
        },
    );
    // The host reports its install done; a second --pxe-once reset network-boots the VM,
    // but the boot.ipxe serve hands out now boots from the disk.
    reqwest::blocking::get(format!(
        "http://127.0.0.1:{port}/progress/alice?stage=done&status=ok"
    ))
    .and_then(|r| r.error_for_status())
    .unwrap();
    let o = picaboot_amt(
        dir.path(),
        &["power", "alice", "--pxe-once", "reset", "--profiles", p],
        USER,
        PASSWORD,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (pxe, _, bios2) = starts.lock().unwrap()[2].clone();
    assert!(pxe);
    wait_for(
        &bios2,
        "reset after done boots from disk",
        Duration::from_secs(180),
        |t| t.contains("Booting from Hard Disk").then_some(Ok(())),
    );

    // A plain reset: no one-time PXE boot pending, the VM boots from its disk again.
    let o = picaboot_amt(
        dir.path(),
        &["power", "alice", "reset", "--profiles", p],
        USER,
        PASSWORD,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = installer::screen_text(&std::fs::read(&bios2).unwrap())
        .matches("Booting from Hard Disk")
        .count();
    wait_for(
        &bios2,
        "plain reset boots from disk",
        Duration::from_secs(120),
        |t| (t.matches("Booting from Hard Disk").count() > before).then_some(Ok(())),
    );
    assert_eq!(
        sim.power_states(),
        ["PowerState 10", "PowerState 10", "PowerState 10"]
    );
    // Stop the VM, then serve (SIGTERM: it logs each request as it completes and drains open
    // connections): the installer's kernel and initrd came from it.
    sim.shutdown();
    let pid = serve.0.id().to_string();
    common::run_ok(Command::new("kill").args(["-TERM", &pid]));
    let mut serve = serve;
    let start = Instant::now();
    while matches!(serve.0.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let served = std::fs::read_to_string(out.path().join("serve.log")).unwrap_or_default();
    eprintln!("serve log:\n{served}");
    assert_eq!(
        served.matches("GET /alice/netboot/boot.ipxe 200").count(),
        2,
        "the VM fetched boot.ipxe twice (install, then boot from disk):\n{served}"
    );
    for f in ["boot.ipxe 200", "linux 200", "initrd.gz 200"] {
        assert!(
            served.contains(&format!("GET /alice/netboot/{f}")),
            "serve did not log {f}:\n{served}"
        );
    }
}

/// `reinstall` up to the installer's own reports: a VM booted from its disk, behind the test
/// AMT, is reset into a one-time network boot by `picaboot reinstall alice --yes`; the VM's
/// iPXE loads boot.ipxe, the kernel and the initrd from the `serve` that `reinstall` runs, and
/// the installer's syslog (`log_host=` on the boot line `reinstall` wrote) reaches
/// `reinstall`, which names the phase. This machine's udeb index is stale, so `reinstall`
/// runs with the test box's `--allow-unverified-udebs` (the harness suite, said in its
/// output). The test stops `reinstall` at the first phase: the whole install with the
/// post-install check is tests/it/reinstall_vm.rs (`scripts/test-reinstall`, about an hour).
#[test]
fn reinstall_resets_a_vm_into_the_installer_and_follows_its_own_reports() {
    amt_vm::require_qemu();
    let out = tempfile::tempdir().unwrap();
    let dir = common::scratch_profiles();
    let profiles = dir.path().join("profiles");
    let project = picaboot::project::open(&profiles).unwrap();
    let mac = picaboot::netboot::install_mac(&project.loaded.profiles.hosts["alice"])
        .unwrap()
        .to_string();
    let port = common::free_port();
    let bx = blank_box(out.path(), &mac, port);
    let (sim, starts) = (bx.sim.clone(), bx.starts.clone());
    let apache = Apache::start(&sim.addr, USER, PASSWORD, false);
    point_alice_at(&profiles, &apache.http, None, None);

    let nb_out = out.path().join("out");
    let mut child = amt_vm::reinstall_alice(&profiles, port, &nb_out, USER, PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let child = Kill(child);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("reinstall| {line}");
            let _ = tx.send(line);
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let start = Instant::now();
    let mut expect = |want: &str, limit: Duration| {
        while !seen.iter().any(|l| l.contains(want)) {
            let left = limit.saturating_sub(start.elapsed());
            match rx.recv_timeout(left) {
                Ok(l) => seen.push(l),
                Err(_) => panic!(
                    "reinstall did not say `{want}` within {} s:\n{}",
                    limit.as_secs(),
                    seen.join("\n")
                ),
            }
        }
        eprintln!("`{want}` after {} s", start.elapsed().as_secs());
    };
    expect("alice: reinstall confirmed", Duration::from_secs(30));
    expect(
        "TEST BOX: --allow-unverified-udebs",
        Duration::from_secs(30),
    );
    expect("alice: udebs: ", Duration::from_secs(240));
    expect("alice: netboot artifacts in", Duration::from_secs(300));
    expect(
        &format!("installer syslog on udp 127.0.0.1:{port}"),
        Duration::from_secs(310),
    );
    expect(
        "alice: AMT: next boot from the network",
        Duration::from_secs(330),
    );
    for f in ["boot.ipxe", "linux", "initrd.gz"] {
        expect(
            &format!("fetched /alice/netboot/{f} ("),
            Duration::from_secs(600),
        );
    }
    // The first phase the installer's syslog can report once its network is up.
    expect("alice: download-installer ...", Duration::from_secs(900));
    drop(child);
    let syslog = std::fs::read_to_string(nb_out.join("alice/install-syslog.log")).unwrap();
    assert!(
        syslog.contains("Menu item 'download-installer' selected"),
        "{syslog}"
    );
    assert!(
        syslog.contains("udhcpc") || syslog.contains("netcfg"),
        "the network came up in the installer's own words:\n{syslog}"
    );
    let (pxe, _, _) = starts.lock().unwrap()[1].clone();
    assert!(pxe, "reinstall's reset restarted the VM for a network boot");
    assert_eq!(sim.power_states(), ["PowerState 10"]);
}

/// What the boot sector of [`marker_disk`] writes to the first serial port.
const DISK_MARKER: &str = "PICABOOT-TEST-DISK-BOOTED";

/// A 16 MiB raw disk whose MBR boot sector (x86 real mode, written out here byte by byte)
/// writes [`DISK_MARKER`] to COM1 (port 0x3f8) and halts: SeaBIOS loads and runs it only when
/// it boots this disk, so the marker on the VM's serial console says the disk was booted.
fn marker_disk(dir: &Path) -> std::path::PathBuf {
    let msg_at: u16 = 0x7c00 + 23;
    let [lo, hi] = msg_at.to_le_bytes();
    let mut mbr: Vec<u8> = vec![
        0xfa, // cli
        0xfc, // cld
        0x31, 0xc0, // xor ax, ax
        0x8e, 0xd8, // mov ds, ax
        0xbe, lo, hi, // mov si, msg
        0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0xac, // next: lodsb
        0x84, 0xc0, // test al, al
        0x74, 0x03, // jz halt
        0xee, // out dx, al
        0xeb, 0xf8, // jmp next
        0xf4, // halt: hlt
        0xeb, 0xfd, // jmp halt
    ];
    assert_eq!(mbr.len(), 23, "the message must follow the code");
    mbr.extend_from_slice(DISK_MARKER.as_bytes());
    mbr.extend_from_slice(b"\r\n\0");
    mbr.resize(510, 0);
    mbr.extend_from_slice(&[0x55, 0xaa]);
    let disk = dir.join("marker-disk.raw");
    std::fs::write(&disk, &mbr).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    disk
}

/// Issue 22 case 3 in a VM: `reset --pxe-once` whose power change AMT refuses leaves no
/// pending boot override, and a later plain `reset` boots the disk. The VM behind the test
/// AMT boots a disk whose boot sector prints a marker on the serial console; its NIC's
/// network boot would chain to an HTTP recorder on the host. The test AMT refuses the
/// RequestPowerStateChange (ReturnValue 2): picaboot exits 2 and AMT_BootSettingData is
/// zeroed, no boot source forced, no one-time PXE pending. The plain `reset` then restarts the
/// VM in place: the disk's marker is printed again, and nothing asked the recorder.
/// Before (issue 22): the one-time PXE boot stayed pending and the plain reset network-booted.
#[test]
fn a_failed_pxe_once_reset_leaves_no_override_and_a_plain_reset_boots_the_disk() {
    amt_vm::require_qemu();
    let out = tempfile::tempdir().unwrap();
    // What a network boot would fetch: chain.ipxe over QEMU's TFTP, then this recorder.
    let net = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = net.local_addr().unwrap().port();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(0usize));
    let a2 = asked.clone();
    std::thread::spawn(move || {
        for s in net.incoming() {
            drop(s);
            *a2.lock().unwrap() += 1;
        }
    });
    let tftp = chain_to_serve(out.path(), port);
    let disk = marker_disk(out.path());
    let bx = vm_behind_amt(
        out.path(),
        vec![
            "-m".into(),
            "128".into(),
            "-drive".into(),
            format!(
                "file={},format=raw,if=none,id=d0,cache=unsafe",
                disk.display()
            ),
            "-device".into(),
            "ide-hd,drive=d0,bus=ide.0".into(),
            "-netdev".into(),
            format!("user,id=n0,tftp={},bootfile=chain.ipxe", tftp.display()),
            "-device".into(),
            "e1000e,netdev=n0,mac=52:54:00:22:03:01".into(),
        ],
    );
    let (sim, starts) = (bx.sim.clone(), bx.starts.clone());
    let (_, console, bios) = starts.lock().unwrap()[0].clone();
    let markers = || {
        installer::screen_text(&std::fs::read(&console).unwrap_or_default())
            .matches(DISK_MARKER)
            .count()
    };
    wait_for(
        &console,
        "the disk's boot sector on the first boot",
        Duration::from_secs(60),
        |t| t.contains(DISK_MARKER).then_some(Ok(())),
    );
    assert_eq!(markers(), 1);
    let apache = Apache::start(&sim.addr, USER, PASSWORD, false);
    let dir = common::scratch_profiles();
    let profiles = dir.path().join("profiles");
    point_alice_at(&profiles, &apache.http, None, None);
    let p = profiles.to_str().unwrap();

    // AMT refuses the power change of `--pxe-once reset`.
    sim.refuse_next("RequestPowerStateChange", 2);
    let o = picaboot_amt(
        dir.path(),
        &["power", "alice", "--pxe-once", "reset", "--profiles", p],
        USER,
        PASSWORD,
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    eprintln!("failed --pxe-once reset: {err}");
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("RequestPowerStateChange"), "{err}");
    // No override is left: the one-time PXE boot was set for the reset (SetBootConfigRole
    // after a PXE ChangeBootOrder), then cleared when the reset failed.
    let log = sim.log();
    let refused = log
        .iter()
        .position(|l| l == "RequestPowerStateChange CIM_PowerManagementService")
        .expect("the reset reached AMT");
    assert!(
        log[..refused]
            .iter()
            .any(|l| l == "SetBootConfigRole CIM_BootService"),
        "no PXE boot was set before the reset: {log:?}"
    );
    assert!(
        log[refused..]
            .iter()
            .any(|l| l == "ChangeBootOrder CIM_BootConfigSetting"),
        "nothing cleared the boot order after the refused reset: {log:?}"
    );
    assert!(
        !sim.pxe_pending(),
        "a one-time PXE boot is pending: {log:?}"
    );
    assert_eq!(sim.forced_boot_source(), None);
    assert_eq!(sim.options_set(), Vec::<String>::new());
    assert!(sim.power_states().is_empty(), "{:?}", sim.power_states());
    assert_eq!(starts.lock().unwrap().len(), 1, "the VM was restarted");

    // A plain reset boots the disk: its marker again, in the same QEMU process (no restart
    // for a network boot), and no request reached the network boot's HTTP server.
    let bios_boots = || {
        installer::screen_text(&std::fs::read(&bios).unwrap_or_default())
            .matches("Booting from Hard Disk")
            .count()
    };
    let disk_boots = bios_boots();
    let o = picaboot_amt(
        dir.path(),
        &["power", "alice", "reset", "--profiles", p],
        USER,
        PASSWORD,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = starts.lock().unwrap().clone();
    assert_eq!(s.len(), 2, "{s:?}");
    assert!(
        !s[1].0,
        "the plain reset restarted the VM for a network boot: {s:?}"
    );
    wait_for(
        &console,
        "plain reset boots the disk",
        Duration::from_secs(90),
        |t| (t.matches(DISK_MARKER).count() > 1).then_some(Ok(())),
    );
    assert_eq!(markers(), 2);
    assert_eq!(bios_boots(), disk_boots + 1);
    assert_eq!(sim.power_states(), ["PowerState 10"]);
    // Give a network boot, had one started, time to reach the recorder.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(*asked.lock().unwrap(), 0, "the VM booted from the network");
    sim.shutdown();
}
