//! A QEMU VM (TCG) behind the test AMT (tests/it/common/amt.rs): the AMT's power changes drive it
//! through QMP (`system_reset`, `quit`, a restart with `-boot once=n` for a pending one-time
//! PXE boot). Shared by tests/it/power_vm.rs and tests/it/reinstall_vm.rs; include it with
//! `#[path = "common/amt_vm.rs"] mod amt_vm;` beside `amt_sim` and `installer`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::amt::{AmtSim, Machine};
use crate::common::installer;

/// The boots of a [`Qemu`]: (network boot, console log, SeaBIOS log) per start.
pub type Starts = Arc<Mutex<Vec<(bool, PathBuf, PathBuf)>>>;

/// A QEMU VM the test AMT powers. Each start gets its own serial and SeaBIOS debug logs.
pub struct Qemu {
    dir: PathBuf,
    /// The machine's own arguments: CPUs, memory, disks, NICs.
    args: Vec<String>,
    child: Option<Child>,
    starts: Starts,
}

impl Qemu {
    fn qmp(&self, command: &str) {
        let sock = self.dir.join("qmp.sock");
        let Ok(s) = UnixStream::connect(&sock) else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).ok(); // greeting
        for cmd in ["qmp_capabilities", command] {
            writeln!(w, "{{\"execute\":\"{cmd}\"}}").unwrap();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || !line.contains("\"event\"") {
                    break;
                }
            }
        }
    }

    fn start(&mut self, pxe: bool) {
        let n = self.starts.lock().unwrap().len();
        let console = self.dir.join(format!("console-{n}.log"));
        let bios = self.dir.join(format!("bios-{n}.log"));
        let _ = std::fs::remove_file(self.dir.join("qmp.sock"));
        let child = Command::new("qemu-system-x86_64")
            .args(["-accel", picaboot::qemu::Accel::Tcg.arg(), "-M", "q35"])
            .args(&self.args)
            .args(["-boot", if pxe { "once=n" } else { "order=c" }])
            .arg("-qmp")
            .arg(format!(
                "unix:{},server=on,wait=off",
                self.dir.join("qmp.sock").display()
            ))
            .arg("-chardev")
            .arg(format!("file,id=bios,path={}", bios.display()))
            .args(["-device", "isa-debugcon,iobase=0x402,chardev=bios"])
            .args(["-display", "none", "-serial"])
            .arg(format!("file:{}", console.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join(format!("qemu-{n}.err"))).unwrap())
            .spawn()
            .expect("start qemu-system-x86_64");
        self.child = Some(child);
        self.starts.lock().unwrap().push((pxe, console, bios));
        for _ in 0..50 {
            if self.dir.join("qmp.sock").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.qmp("quit");
            for _ in 0..50 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Machine for Qemu {
    fn power_on(&mut self, pxe: bool) {
        self.start(pxe);
    }
    fn power_off(&mut self) {
        self.stop();
    }
    fn reset(&mut self, pxe: bool) {
        if pxe {
            // `-boot once=n` applies to the first boot of a QEMU process: restart it.
            self.stop();
            self.start(true);
        } else {
            self.qmp("system_reset");
            self.starts
                .lock()
                .unwrap()
                .push((false, PathBuf::new(), PathBuf::new()));
        }
    }
    fn is_on(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Fails the test unless QEMU and the iPXE ROM of the VMs' e1000e NICs are here, naming the
/// Debian packages; puts /usr/sbin and /sbin on PATH.
pub fn require_qemu() {
    crate::common::require("qemu-system-x86_64", "qemu-system-x86");
    let rom = Path::new("/usr/lib/ipxe/qemu/efi-e1000e.rom");
    assert!(
        rom.is_file(),
        "{} is missing: install the Debian package `ipxe-qemu`",
        rom.display()
    );
    crate::common::sbin_path();
}

/// `picaboot reinstall alice --yes` of the profiles in `profiles` for a VM behind the test
/// AMT: serve on 127.0.0.1:`port` (10.0.2.2 in the VM), output in `out`, this machine's
/// mirror whose udeb index is stale (hence the test box's explicit flag), the AMT credentials
/// in the environment.
pub fn reinstall_alice(
    profiles: &Path,
    port: u16,
    out: &Path,
    user: &str,
    password: &str,
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_picaboot"));
    c.args(["reinstall", "alice", "--yes", "--profiles"])
        .arg(profiles)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--advertise", &format!("10.0.2.2:{port}"), "-o"])
        .arg(out)
        .args(["--mirror", "apt", "--allow-unverified-udebs"])
        .env_remove("PICABOOT_AMT_CREDENTIALS")
        .env_remove("PICABOOT_SSH_CONFIG")
        .env("PICABOOT_AMT_USERNAME", user)
        .env("PICABOOT_AMT_PASSWORD", password)
        .stdin(Stdio::null());
    c
}

/// Waits until `check` of the screen text of `path` says `Ok` (panics on `Err` or after
/// `limit`, with the tail of the text).
pub fn wait_for(
    path: &Path,
    what: &str,
    limit: Duration,
    check: impl Fn(&str) -> Option<Result<(), String>>,
) {
    let start = Instant::now();
    loop {
        let text = installer::screen_text(&std::fs::read(path).unwrap_or_default());
        match check(&text) {
            Some(Ok(())) => {
                eprintln!("{what}: after {} s", start.elapsed().as_secs());
                return;
            }
            Some(Err(e)) => panic!("{what}: {e}; tail: {}", tail(&text)),
            None => {}
        }
        if start.elapsed() > limit {
            panic!(
                "{what}: not within {} s; tail: {}",
                limit.as_secs(),
                tail(&text)
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The last 1500 characters of `t`.
pub fn tail(t: &str) -> String {
    let c: Vec<char> = t.chars().collect();
    c[c.len().saturating_sub(1500)..].iter().collect()
}

/// A VM behind the test AMT, stopped however the test ends (its QEMU would otherwise outlive
/// the test).
pub struct AmtBox {
    /// The test AMT.
    pub sim: AmtSim,
    /// The VM's boots.
    pub starts: Starts,
}

impl Drop for AmtBox {
    fn drop(&mut self) {
        self.sim.shutdown();
    }
}

/// A TFTP directory under `dir` whose `chain.ipxe` chains to
/// `http://10.0.2.2:PORT/alice/netboot/boot.ipxe` (give QEMU's user network
/// `tftp=DIR,bootfile=chain.ipxe`).
pub fn chain_to_serve(dir: &Path, port: u16) -> PathBuf {
    let tftp = dir.join("tftp");
    std::fs::create_dir(&tftp).unwrap();
    std::fs::write(
        tftp.join("chain.ipxe"),
        format!("#!ipxe\nchain http://10.0.2.2:{port}/alice/netboot/boot.ipxe\n"),
    )
    .unwrap();
    tftp
}

/// A VM with the machine arguments `args` (disks that hold no system: SeaBIOS boots from
/// them, "Booting from Hard Disk...", and finds nothing), started from its disks, handed to
/// the test AMT. Its files go to `dir/vm/`.
pub fn vm_behind_amt(dir: &Path, args: Vec<String>) -> AmtBox {
    let vm_dir = dir.join("vm");
    std::fs::create_dir_all(&vm_dir).unwrap();
    let starts: Starts = Arc::new(Mutex::new(Vec::new()));
    let mut vm = Qemu {
        dir: vm_dir,
        args,
        child: None,
        starts: starts.clone(),
    };
    vm.start(false);
    let bios0 = starts.lock().unwrap()[0].2.clone();
    wait_for(
        &bios0,
        "first boot from disk",
        Duration::from_secs(120),
        |t| t.contains("Booting from Hard Disk").then_some(Ok(())),
    );
    AmtBox {
        sim: AmtSim::start(Box::new(vm)),
        starts,
    }
}
