//! `picaboot test vm NAME`: the VM's system built (or reused), booted from its disk by SeaBIOS
//! in QEMU (from a qcow2 overlay 1 GiB larger than the image, which the guest grows its root
//! to; the cached image is only read) with two virtio NICs shaped like vmbr0 and vmbr1 and its two disks, its self-test
//! read from the serial console, and ssh asked from outside with the declared key (and refused
//! with another). QEMU's user networking stands in for the bridges: each NIC's network is the
//! address's own (`91.224.148.0/24`, host `.0`: the ISP's on-link gateway; `10.0.42.0/24`,
//! host `.1`: the node's NAT bridge), `restrict=on`, and the guest asks it for nothing (its
//! DHCP server is never used: the self-test checks there is no lease and no dynamic address).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::image::{self, BuiltImage};
use super::system::VmSystem;
use super::VmError;
use crate::exec;
use crate::qemu::vm::{explain_end, Bus, Disk, Outcome, VmSpec};
use crate::qemu::{Accel, CheckResult, Report};

/// Size of the blank data disk (sparse).
const DATA_DISK_BYTES: u64 = 2 << 30;

/// How much larger than the image the booted system disk is (as after Proxmox's
/// `qm disk resize`): the guest must grow its root to it (the self-test's `root-grown`).
const SYSTEM_DISK_GROWTH: u64 = 1 << 30;

/// What a proof run needs.
#[derive(Debug, Clone)]
pub struct ProofOptions {
    /// Mirror the base is debootstrapped from.
    pub build_mirror: String,
    /// Cache directory.
    pub cache: PathBuf,
    /// Output directory (console log, report.xml).
    pub out: PathBuf,
    /// VM memory in MiB.
    pub memory_mib: u32,
    /// Give up on the boot (to `PICABOOT-DONE`) after this long.
    pub boot_timeout: Duration,
    /// Attach the blank data disk (false: the self-test must say the data disk is missing,
    /// a proof that its checks can fail).
    pub data_disk: bool,
}

/// What a proof run found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProofOutcome {
    /// The image built or reused.
    pub image: BuiltImage,
    /// Accelerator and why.
    pub accel: String,
    /// Seconds from QEMU's start to the self-test's end.
    pub boot_seconds: f64,
    /// Every check: the guest's, then ssh's from outside.
    pub checks: Vec<CheckResult>,
    /// The guest's final line, if seen.
    pub done_rc: Option<i32>,
    /// How the guest ended if it did not finish.
    pub guest_end: Option<String>,
}

impl ProofOutcome {
    /// The report of every check (a guest that never finished fails).
    pub fn report(&self) -> Report {
        Report {
            checks: self.checks.clone(),
            done_rc: self.done_rc,
            guest_end: self.guest_end.clone(),
        }
    }
}

/// A throwaway key pair for the proof, made once under the cache (so that a second run with
/// nothing changed builds nothing): `(private key path, public key line)`.
pub fn test_key(cache: &Path, name: &str) -> Result<(PathBuf, String), VmError> {
    let dir = cache.join("vm-systems").join("test-keys");
    std::fs::create_dir_all(&dir).map_err(VmError::io("create", &dir))?;
    let key = dir.join(format!("{name}_ed25519"));
    if !key.exists() {
        exec::run_deadline(
            "make a test ssh key",
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C"])
                .arg(format!("picaboot-test-{name}"))
                .arg("-f")
                .arg(&key),
            None,
            Duration::from_secs(30),
        )?;
    }
    let pubkey = key.with_extension("pub");
    let line = std::fs::read_to_string(&pubkey).map_err(VmError::io("read", &pubkey))?;
    Ok((key, line.trim().to_string()))
}

/// Builds `system`'s image and proves it in QEMU.
pub fn run(system: &VmSystem, key: &Path, opts: &ProofOptions) -> Result<ProofOutcome, VmError> {
    let img = image::build(system, &opts.build_mirror, &opts.cache)?;
    log::info!(
        "image {} ({}) in {:.1} s",
        img.disk.display(),
        if img.cached {
            "reused from the cache"
        } else {
            "built"
        },
        img.seconds
    );
    std::fs::create_dir_all(&opts.out).map_err(VmError::io("create", &opts.out))?;
    let work =
        tempfile::tempdir().map_err(VmError::io("create a temporary directory", &opts.out))?;
    let data = work.path().join("data.raw");
    crate::qemu::guest::sparse_disk(&data, DATA_DISK_BYTES).map_err(|e| VmError::Io {
        what: "create",
        path: data.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let system_disk = grown_overlay(
        &img.disk,
        &work.path().join("system.qcow2"),
        SYSTEM_DISK_GROWTH,
    )?;
    let (accel, why) = Accel::detect(&img.kernel);
    let port = free_port().map_err(VmError::io("find a free port on", Path::new("127.0.0.1")))?;
    let spec = spec(system, &system_disk, &data, port, accel, opts);
    let console = spec.console.clone();
    let mut vm = spec.start()?;
    let limit = opts.boot_timeout;
    let outcome = vm.wait_for("PICABOOT-DONE", limit, |l| log::debug!("console: {l}"));
    let boot_seconds = vm.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&std::fs::read(&console).unwrap_or_default()).into_owned();
    let mut report = Report::parse(&text);
    report.guest_end = explain_end(&outcome, limit, &text);
    if outcome == Outcome::Marker {
        report
            .checks
            .extend(ssh_checks(system, key, port, &opts.cache));
    }
    vm.kill();
    Ok(ProofOutcome {
        image: img,
        accel: why,
        boot_seconds,
        checks: report.checks,
        done_rc: report.done_rc,
        guest_end: report.guest_end,
    })
}

/// `overlay`: a qcow2 over the raw `image` (opened read-only: the cached image stays as it
/// is), `growth` bytes larger than it.
pub fn grown_overlay(image: &Path, overlay: &Path, growth: u64) -> Result<PathBuf, VmError> {
    let image = std::fs::canonicalize(image).map_err(VmError::io("find", image))?;
    let size = std::fs::metadata(&image)
        .map_err(VmError::io("read the size of", &image))?
        .len();
    exec::run_deadline(
        "make the system disk's overlay",
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&image)
            .arg(overlay)
            .arg((size + growth).to_string()),
        None,
        Duration::from_secs(60),
    )?;
    Ok(overlay.to_path_buf())
}

/// The QEMU spec: system disk (the overlay) first in boot order, blank data disk, NICs.
fn spec(
    system: &VmSystem,
    system_disk: &Path,
    data: &Path,
    port: u16,
    accel: Accel,
    opts: &ProofOptions,
) -> VmSpec {
    let disk = |path: &Path, snapshot, bootindex, serial: &str| Disk {
        path: path.to_path_buf(),
        bus: Bus::Virtio,
        serial: Some(serial.into()),
        read_only: false,
        snapshot,
        model: None,
        bootindex,
    };
    VmSpec {
        name: system.hostname.clone(),
        accel,
        cpus: 1,
        memory_mib: opts.memory_mib,
        kernel: None,
        initrd: None,
        append: String::new(),
        disks: if opts.data_disk {
            vec![
                disk(system_disk, false, Some(1), "system"),
                disk(data, false, None, "data"),
            ]
        } else {
            vec![disk(system_disk, false, Some(1), "system")]
        },
        console: opts.out.join("console.log"),
        reboot: false,
        extra_args: nic_args(system, port),
    }
}

/// One user-mode network per NIC, shaped after its address: the IPv4 gateway (or the
/// network's first address) is QEMU's side; the first NIC forwards `127.0.0.1:port` to the
/// guest's sshd on its first address.
pub fn nic_args(system: &VmSystem, port: u16) -> Vec<String> {
    let mut args = Vec::new();
    for (i, n) in system.nics.iter().enumerate() {
        let mut netdev = format!("user,id=n{i},restrict=on");
        if let Some(v4) = &n.ipv4 {
            let (addr, net, host) = slirp_net(&v4.cidr, v4.gateway);
            netdev.push_str(&format!(",net={net},host={host}"));
            if i == 0 {
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-{addr}:22"));
            }
        }
        args.extend([
            "-netdev".to_string(),
            netdev,
            "-device".to_string(),
            format!("virtio-net-pci,netdev=n{i},mac={}", n.mac),
        ]);
    }
    args
}

/// `(address, network/24-or-wider, QEMU's host address)` for a NIC's IPv4 `cidr`: a /32 (or
/// any prefix longer than 24) is put in its /24, where an on-link gateway lives.
pub fn slirp_net(cidr: &str, gateway: Option<std::net::Ipv4Addr>) -> (String, String, String) {
    let (a, p) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let addr: std::net::Ipv4Addr = a.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    let prefix = p.parse::<u32>().unwrap_or(32).min(24);
    let mask = u32::MAX << (32 - prefix);
    let net = std::net::Ipv4Addr::from(u32::from(addr) & mask);
    let host = gateway.unwrap_or(std::net::Ipv4Addr::from(u32::from(net) + 1));
    (a.to_string(), format!("{net}/{prefix}"), host.to_string())
}

/// A TCP port free on 127.0.0.1 now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// ssh from outside: the declared key logs in as root and runs `hostname`; another key is
/// refused.
fn ssh_checks(system: &VmSystem, key: &Path, port: u16, cache: &Path) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = String::new();
    let mut ok = false;
    while Instant::now() < deadline {
        match ssh(key, port, "hostname") {
            Ok(s) if s.trim() == system.hostname => {
                ok = true;
                last = format!("root@{}: hostname says {}", system.hostname, s.trim());
                break;
            }
            Ok(s) => last = format!("hostname says '{}'", s.trim()),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    out.push(CheckResult {
        name: "ssh-declared-key".into(),
        passed: ok,
        detail: last,
    });
    let other = test_key(cache, "undeclared").map(|(k, _)| k);
    let (passed, detail) = match other.map(|k| ssh(&k, port, "true")) {
        Ok(Err(e)) if e.to_string().contains("Permission denied") => {
            (true, "an undeclared key is refused".to_string())
        }
        Ok(Err(e)) => (false, format!("not refused as expected: {e}")),
        Ok(Ok(_)) => (false, "an undeclared key logged in".to_string()),
        Err(e) => (false, e.to_string()),
    };
    out.push(CheckResult {
        name: "ssh-other-key-refused".into(),
        passed,
        detail,
    });
    out
}

/// Runs `command` as root over ssh on 127.0.0.1:`port` with `key` only.
fn ssh(key: &Path, port: u16, command: &str) -> Result<String, VmError> {
    let out = exec::run_deadline(
        "ssh into the test VM",
        Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", "-p"])
            .arg(port.to_string())
            .arg("-i")
            .arg(key)
            .arg("root@127.0.0.1")
            .arg(command),
        None,
        Duration::from_secs(60),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn slirp_networks_put_the_onlink_gateway_on_qemus_side() {
        let g = "91.224.148.0".parse().ok();
        assert_eq!(
            super::slirp_net("91.224.148.57/32", g),
            (
                "91.224.148.57".into(),
                "91.224.148.0/24".into(),
                "91.224.148.0".into()
            )
        );
        assert_eq!(
            super::slirp_net("10.0.42.3/24", None),
            (
                "10.0.42.3".into(),
                "10.0.42.0/24".into(),
                "10.0.42.1".into()
            )
        );
    }
}
