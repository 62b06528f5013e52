//! Which accelerator QEMU can use here: KVM when a guest really runs under it, TCG otherwise.
//!
//! `/dev/kvm` existing is not enough: on some hosts (nested, paravirtual KVM modules) every
//! guest dies with "KVM internal error" right after the BIOS. The probe boots the guest's own
//! kernel for a few seconds under KVM and looks at what happened.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A QEMU accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// Software emulation, single-threaded TCG: every vCPU on one host thread. Measured here
    /// with multi-threaded TCG (QEMU 7.2): a 2-vCPU Debian 6.12 guest died in about one boot
    /// of five with `Oops: int3` where the kernel had just patched its own code
    /// (`exit_task_stack_account`, while podman started a container); cross-modifying code
    /// races between vCPU threads. One thread has no such race, and leaves the host's other
    /// core to whatever runs beside the VM.
    Tcg,
}

impl Accel {
    /// The `-accel` argument.
    pub fn arg(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg,thread=single",
        }
    }

    /// Picks the accelerator: `PICABOOT_ACCEL=kvm|tcg` if set, else a probe with `kernel`.
    pub fn detect(kernel: &Path) -> (Accel, String) {
        match std::env::var("PICABOOT_ACCEL").as_deref() {
            Ok("kvm") => return (Accel::Kvm, "KVM (PICABOOT_ACCEL)".into()),
            Ok("tcg") => return (Accel::Tcg, "TCG (PICABOOT_ACCEL)".into()),
            _ => {}
        }
        if !Path::new("/dev/kvm").exists() {
            return (Accel::Tcg, "TCG: no /dev/kvm".into());
        }
        match probe_kvm(kernel) {
            Ok(()) => (Accel::Kvm, "KVM: a probe guest booted".into()),
            Err(why) => (Accel::Tcg, format!("TCG: {why}")),
        }
    }
}

/// Boots `kernel` under KVM for up to 6 seconds; Ok when it printed its banner and QEMU did
/// not die.
fn probe_kvm(kernel: &Path) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let log = dir.path().join("probe.log");
    // Under setpriv's parent-death signal, as every VM (qemu::vm): a picaboot stopped during
    // the probe (Ctrl-C in the first seconds of `test install`) takes the probe guest with it.
    let mut child = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--", "qemu-system-x86_64"])
        .args([
            "-accel",
            "kvm",
            "-machine",
            "q35",
            "-cpu",
            "host",
            "-m",
            "256",
            "-nodefaults",
        ])
        .args(["-display", "none", "-no-reboot", "-kernel"])
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1 earlyprintk=ttyS0"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start setpriv + qemu-system-x86_64: {e}"))?;
    let start = Instant::now();
    loop {
        let banner = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Linux version");
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            let first = err
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string();
            return Err(format!("KVM guest died ({status}): {first}"));
        }
        if banner && start.elapsed() > Duration::from_secs(2) {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(6) {
            let _ = child.kill();
            let _ = child.wait();
            return if banner {
                Ok(())
            } else {
                Err("KVM guest printed nothing in 6 s".into())
            };
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
