//! A VM described as data ([`VmSpec`]), started with the one exec wrapper, followed through its
//! serial console log, and killed on drop so that no QEMU outlives its caller.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Accel;
use crate::exec::{self, ExecError};

/// How a disk is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// virtio-blk (`/dev/vdX` in the guest).
    Virtio,
    /// SATA on q35's AHCI controller, port N (`/dev/sdX`); `ssd` marks it non-rotational.
    Sata {
        /// AHCI port.
        port: u8,
        /// Report rotation rate 1 (SSD).
        ssd: bool,
    },
}

/// One disk image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Image file: raw, or qcow2 when its name ends in `.qcow2` (an overlay over a raw image).
    pub path: PathBuf,
    /// Attachment.
    pub bus: Bus,
    /// Serial number the guest sees (`/dev/disk/by-id/...`).
    pub serial: Option<String>,
    /// Read-only.
    pub read_only: bool,
    /// Writes go to a throw-away overlay (the image stays untouched).
    pub snapshot: bool,
    /// Model string the guest sees (SATA only; QEMU's default otherwise).
    pub model: Option<String>,
    /// Firmware boot order position (SeaBIOS boots only the disks that have one, in order).
    pub bootindex: Option<u32>,
}

/// Kernel parameters added to a direct-booted guest under TCG.
///
/// `norandmaps` turns off address-space randomisation in the guest. TCG caches translated code
/// by virtual address, so with ASLR every `exec` of a dynamically linked program maps ld.so and
/// libc somewhere new and has their code translated again. Measured here (QEMU 7.2, one TCG
/// thread, the Debian 13 installer's kernel and busybox, `benches/tcg-exec.sh`): 300 execs of
/// `/bin/true` 14.0 s with ASLR, 3.6 s without; 300 forks 1.8 s vs 1.1 s. The installer and
/// its chroot are shell scripts, debconf and dpkg: mostly exec.
pub const TCG_GUEST_PARAMS: &[&str] = &["norandmaps"];

/// `append` with [`TCG_GUEST_PARAMS`] added where they stay in the booted kernel only: before
/// a final `---` (the Debian installer copies what follows `---` to the installed system's
/// boot loader), else at the end.
pub fn with_emulator_params(append: &str) -> String {
    crate::netboot::boot::before_separator(append, TCG_GUEST_PARAMS)
}

/// QEMU's `-drive` and `-device` arguments for `disks` (SATA on q35's AHCI, or virtio), with
/// their serials, models, SSD flag and boot indexes.
pub fn disk_args(disks: &[Disk]) -> Vec<String> {
    let mut args = Vec::new();
    for (i, d) in disks.iter().enumerate() {
        let format = match d.path.extension() {
            Some(e) if e == "qcow2" => "qcow2",
            _ => "raw",
        };
        let mut drive = format!(
            "file={},format={format},if=none,id=d{i},cache=unsafe",
            d.path.display()
        );
        if d.read_only {
            drive.push_str(",readonly=on");
        }
        if d.snapshot {
            drive.push_str(",snapshot=on");
        }
        let serial = d
            .serial
            .as_ref()
            .map(|s| format!(",serial={s}"))
            .unwrap_or_default();
        let boot = d
            .bootindex
            .map(|b| format!(",bootindex={b}"))
            .unwrap_or_default();
        let device = match d.bus {
            Bus::Virtio => format!("virtio-blk-pci,drive=d{i}{serial}{boot}"),
            Bus::Sata { port, ssd } => format!(
                "ide-hd,drive=d{i},bus=ide.{port}{serial}{}{}{boot}",
                if ssd { ",rotation_rate=1" } else { "" },
                d.model
                    .as_ref()
                    .map(|m| format!(",model={}", m.replace(',', ",,")))
                    .unwrap_or_default()
            ),
        };
        args.extend(["-drive".to_string(), drive, "-device".to_string(), device]);
    }
    args
}

/// A VM to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// Name for messages.
    pub name: String,
    /// Accelerator.
    pub accel: Accel,
    /// vCPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Kernel image for a direct boot; `None` boots from the disks through the firmware.
    pub kernel: Option<PathBuf>,
    /// Initrd.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub append: String,
    /// Disks in order.
    pub disks: Vec<Disk>,
    /// Console log file (first serial port).
    pub console: PathBuf,
    /// Let the guest reboot (QEMU restarts it) instead of ending QEMU (`-no-reboot`).
    pub reboot: bool,
    /// More QEMU arguments (NICs, a second serial port, fw_cfg entries).
    pub extra_args: Vec<String>,
}

impl VmSpec {
    /// The QEMU command for this spec.
    pub fn command(&self) -> Command {
        let mut c = Command::new("qemu-system-x86_64");
        c.args(["-accel", self.accel.arg(), "-machine", "q35"]);
        c.args([
            "-cpu",
            if self.accel == Accel::Kvm {
                "host"
            } else {
                "max"
            },
        ]);
        c.args([
            "-smp",
            &self.cpus.to_string(),
            "-m",
            &self.memory_mib.to_string(),
        ]);
        c.args(["-nodefaults", "-display", "none"]);
        if !self.reboot {
            c.arg("-no-reboot");
        }
        if let Some(k) = &self.kernel {
            c.arg("-kernel").arg(k);
            if let Some(i) = &self.initrd {
                c.arg("-initrd").arg(i);
            }
            let append = if self.accel == Accel::Tcg {
                with_emulator_params(&self.append)
            } else {
                self.append.clone()
            };
            c.args(["-append", &append]);
        }
        c.arg("-serial")
            .arg(format!("file:{}", self.console.display()));
        c.args(disk_args(&self.disks));
        c.args(&self.extra_args);
        c
    }

    /// Starts the VM.
    pub fn start(&self) -> Result<Vm, ExecError> {
        let stderr = self.console.with_extension("qemu-stderr.log");
        let err_file = std::fs::File::create(&stderr).map_err(|source| ExecError::Spawn {
            task: format!("start VM {}", self.name),
            program: "qemu-system-x86_64".into(),
            source,
        })?;
        // setpriv (util-linux) sets the parent-death signal and execs QEMU: when picaboot dies
        // (a signal, kill -9, a panicking test), the kernel kills the VM too.
        let qemu = self.command();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--"])
            .arg(qemu.get_program())
            .args(qemu.get_args());
        cmd.stdout(Stdio::null()).stderr(err_file);
        let child = exec::spawn(&format!("start VM {}", self.name), &mut cmd)?;
        Ok(Vm {
            name: self.name.clone(),
            child: Some(child),
            console: self.console.clone(),
            stderr,
            started: Instant::now(),
        })
    }
}

/// A running VM; killed on drop.
#[derive(Debug)]
pub struct Vm {
    name: String,
    child: Option<Child>,
    console: PathBuf,
    stderr: PathBuf,
    started: Instant,
}

/// How waiting for a VM ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The marker appeared on the console.
    Marker,
    /// QEMU exited (the guest powered off) without the marker.
    Exited(String),
    /// Time ran out; the VM was killed.
    TimedOut,
}

/// Why a guest did not reach its marker, for a report: how QEMU ended and the console's last
/// lines (kernel panics and OOM kills show there); `None` when the marker was seen.
pub fn explain_end(outcome: &Outcome, limit: Duration, console: &str) -> Option<String> {
    let how = match outcome {
        Outcome::Marker => return None,
        Outcome::Exited(status) => format!("QEMU exited ({status})"),
        Outcome::TimedOut => format!("no end after {} s, VM killed", limit.as_secs()),
    };
    let lines: Vec<&str> = console.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(12)..].join(" | ");
    // A kernel oops names its cause in its first lines, well before the tail.
    let oops = lines
        .iter()
        .position(|l| l.contains("BUG:") || l.contains("Oops:") || l.contains("general protection"))
        .map(|i| {
            format!(
                "; kernel oops: {}",
                lines[i..(i + 8).min(lines.len())].join(" | ")
            )
        })
        .unwrap_or_default();
    Some(format!("{how}{oops}; console ends: {tail}"))
}

impl Vm {
    /// The console log so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).into_owned()
    }

    /// Console log path.
    pub fn console_path(&self) -> &Path {
        &self.console
    }

    /// Seconds since start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until `marker` shows on the console, QEMU exits, or `limit` passes (then kills).
    /// `progress` is called with every new console line.
    pub fn wait_for(
        &mut self,
        marker: &str,
        limit: Duration,
        mut progress: impl FnMut(&str),
    ) -> Outcome {
        // Raw bytes, whole lines only: a line (and so a character) split across two reads is
        // handed out once, complete, on the read that ends it.
        let mut consumed = 0;
        loop {
            let raw = std::fs::read(&self.console).unwrap_or_default();
            for line in take_lines(&raw, &mut consumed) {
                progress(&line);
            }
            if contains_bytes(&raw, marker.as_bytes()) {
                return Outcome::Marker;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = self.console();
                    if text.contains(marker) {
                        return Outcome::Marker;
                    }
                    let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                    return Outcome::Exited(format!("{status}; {}", err.trim()));
                }
            }
            if self.started.elapsed() > limit {
                self.kill();
                return Outcome::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `Some(status)` once QEMU has exited (without waiting), `None` while it runs.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        self.child = None;
        Some(format!("{status}; {}", err.trim()))
    }

    /// Waits for QEMU to exit by itself (the guest powered off), up to `limit`, then kills it.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.kill();
        false
    }

    /// Kills QEMU now.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            log::info!("stopping VM {}", self.name);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The complete lines of `raw` after byte `consumed` (each decoded as a whole, lossily, its
/// `\r` and `\n` dropped); `consumed` moves past the last newline. A line still being written,
/// and so any UTF-8 sequence cut by the read, stays for the next call: a newline byte never
/// occurs inside a multibyte UTF-8 sequence, so a line boundary never splits a character.
pub fn take_lines(raw: &[u8], consumed: &mut usize) -> Vec<String> {
    let start = (*consumed).min(raw.len());
    let new = &raw[start..];
    let Some(last_nl) = new.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    *consumed = start + last_nl + 1;
    new[..last_nl]
        .split(|&b| b == b'\n')
        .map(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            String::from_utf8_lossy(l).into_owned()
        })
        .collect()
}

/// Whether `needle` occurs in `hay` (bytes; an empty needle always does).
fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_qcow2_overlay_is_opened_as_qcow2_and_anything_else_as_raw() {
        let disk = |path: &str| Disk {
            path: path.into(),
            bus: Bus::Virtio,
            serial: None,
            read_only: false,
            snapshot: false,
            model: None,
            bootindex: None,
        };
        let args = disk_args(&[disk("/t/system.qcow2"), disk("/t/data.raw"), disk("/t/x")]);
        assert!(
            args[1].starts_with("file=/t/system.qcow2,format=qcow2,"),
            "{args:?}"
        );
        assert!(
            args[5].starts_with("file=/t/data.raw,format=raw,"),
            "{args:?}"
        );
        assert!(args[9].starts_with("file=/t/x,format=raw,"), "{args:?}");
    }

    #[test]
    fn emulator_params_stay_before_the_installer_separator() {
        assert_eq!(
            with_emulator_params("auto=true console=ttyS0 ---"),
            "auto=true console=ttyS0 norandmaps ---"
        );
        assert_eq!(
            with_emulator_params("auto=true --- quiet"),
            "auto=true norandmaps --- quiet"
        );
        assert_eq!(
            with_emulator_params("console=ttyS0"),
            "console=ttyS0 norandmaps"
        );
        assert_eq!(
            with_emulator_params("norandmaps console=ttyS0"),
            "norandmaps console=ttyS0"
        );
    }

    #[test]
    fn console_lines_never_split_a_character() {
        // "é" is C3 A9, "→" E2 86 92: the reads end inside each of them.
        let full = "boot é\r\nstep → 2\ndone\n".as_bytes();
        let mut consumed = 0;
        let mut lines = Vec::new();
        for cut in [6, 7, 14, 15, full.len()] {
            lines.extend(super::take_lines(&full[..cut], &mut consumed));
        }
        assert_eq!(lines, ["boot é", "step → 2", "done"]);
        assert_eq!(consumed, full.len());
        // The old way sliced the next read at the length of a lossy decode of this one: for
        // a read cut inside "é" that length (U+FFFD is 3 bytes) points inside "→", a panic.
        let text = "aé→\n";
        let lossy = String::from_utf8_lossy(&text.as_bytes()[..2]).len();
        assert!(!text.is_char_boundary(lossy));
        let mut consumed = 0;
        assert!(super::take_lines(&text.as_bytes()[..2], &mut consumed).is_empty());
        assert_eq!(super::take_lines(text.as_bytes(), &mut consumed), ["aé→"]);
        assert!(super::contains_bytes(full, "→ 2".as_bytes()));
        assert!(!super::contains_bytes(full, b"nope"));
    }
}
