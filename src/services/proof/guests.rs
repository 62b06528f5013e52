//! The services VMs of `picaboot test services` as QEMU guests (TCG, one vCPU each), booted
//! from the images `picaboot test vm` proves, each from its own copy-on-write overlay.
//!
//! Their public NICs share one Ethernet link, a QEMU socket netdev (the first guest listens on
//! a loopback port, the others connect): the VMs reach each other over their public addresses
//! only, as pica01 on alice and pica02 on bob do. Each private NIC is its own QEMU user network
//! shaped like its node's NAT bridge (`restrict=on`): it carries ssh and the published port
//! from 127.0.0.1 to the guest, and forwards the registry's address to the test registry.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ProofError;
use crate::exec::Input;
use crate::qemu::vm::{Bus, Disk, Outcome, Vm, VmSpec};
use crate::qemu::{Accel, CheckResult, Report};
use crate::vm::image::BuiltImage;
use crate::vm::system::VmSystem;

/// What the overlay adds to the image (Docker's images and containers live on the root).
const SYSTEM_DISK_GROWTH: u64 = 6 << 30;
/// Each guest's blank data disk (the brick's volume group).
const DATA_DISK_BYTES: u64 = 3 << 30;
/// Memory of each guest (measured: a guest with glusterd and dockerd grows to about 1.9 GB
/// of QEMU RSS).
pub const MEMORY_MIB: u32 = 2048;

/// Where the registry answers inside the guests (its QEMU forward on the private network).
pub const REGISTRY_GUEST_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 42, 2);

/// One guest to start.
pub struct GuestPlan<'a> {
    /// Its system (with the test key among root's keys).
    pub system: &'a VmSystem,
    /// Its image.
    pub image: &'a BuiltImage,
    /// Its public address (the swarm's and GlusterFS's).
    pub address: Ipv4Addr,
}

/// A running guest.
pub struct Guest {
    /// VM name.
    pub name: String,
    /// Public address.
    pub address: Ipv4Addr,
    /// Private address (where ssh and the published port are forwarded to).
    pub private: Ipv4Addr,
    /// The public NIC's MAC.
    pub public_mac: String,
    /// 127.0.0.1 port forwarded to its ssh.
    pub ssh_port: u16,
    /// 127.0.0.1 port forwarded to `web_target` on its private address.
    pub web_port: u16,
    /// Console log.
    pub console: PathBuf,
    /// Seconds from QEMU's start to the self-test's end.
    pub boot_seconds: f64,
    vm: Option<Vm>,
}

/// The guests, their ssh config (each public address reached through its forwarded port with
/// the test key) and their link.
pub struct Guests {
    /// The guests, first the first manager.
    pub list: Vec<Guest>,
    /// ssh config file naming each guest by its public address.
    pub ssh_config: PathBuf,
}

/// A TCP port free on 127.0.0.1 now.
fn free_port(work: &Path) -> Result<u16, ProofError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(ProofError::io("find a free port for", work))?;
    Ok(l.local_addr()
        .map_err(ProofError::io("find a free port for", work))?
        .port())
}

/// The public and private NICs of `system`: the one holding `address`, and the other one
/// with an IPv4 address.
fn nics(
    system: &VmSystem,
    address: Ipv4Addr,
) -> Result<(&crate::vm::system::Nic, &crate::vm::system::Nic), ProofError> {
    let v4 = |n: &crate::vm::system::Nic| {
        n.ipv4
            .as_ref()
            .and_then(|a| a.cidr.split('/').next()?.parse::<Ipv4Addr>().ok())
    };
    let public = system.nics.iter().find(|n| v4(n) == Some(address));
    let private = system
        .nics
        .iter()
        .find(|n| v4(n).is_some() && v4(n) != Some(address));
    match (public, private) {
        (Some(p), Some(q)) => Ok((p, q)),
        _ => Err(ProofError::Shape(format!(
            "{}: the proof needs a NIC with {address} and a private NIC with an IPv4 address",
            system.hostname
        ))),
    }
}

/// Starts every guest (the first listens on the link, the others connect) and waits for each
/// self-test; `registry_port`: the host's test registry, forwarded to
/// [`REGISTRY_GUEST_ADDRESS`]:5000 in every guest.
pub fn start(
    plans: &[GuestPlan<'_>],
    key: &Path,
    work: &Path,
    out: &Path,
    registry_port: u16,
    web_target: u16,
    boot_limit: Duration,
) -> Result<(Guests, Vec<CheckResult>), ProofError> {
    let link = free_port(work)?;
    let mut list = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let name = p.system.hostname.clone();
        let (public, private) = nics(p.system, p.address)?;
        let priv_cidr = &private.ipv4.as_ref().expect("found by its IPv4").cidr;
        let (priv_addr, net, host) = crate::vm::proof::slirp_net(priv_cidr, None);
        let (ssh_port, web_port) = (free_port(work)?, free_port(work)?);
        let netdev = if i == 0 { "listen" } else { "connect" };
        let extra = vec![
            "-netdev".to_string(),
            format!("socket,id=pub,{netdev}=127.0.0.1:{link}"),
            "-device".to_string(),
            format!("virtio-net-pci,netdev=pub,mac={}", public.mac),
            "-netdev".to_string(),
            format!(
                "user,id=priv,restrict=on,net={net},host={host},\
                 hostfwd=tcp:127.0.0.1:{ssh_port}-{priv_addr}:22,\
                 hostfwd=tcp:127.0.0.1:{web_port}-{priv_addr}:{web_target},\
                 guestfwd=tcp:{REGISTRY_GUEST_ADDRESS}:5000-cmd:socat - TCP:127.0.0.1:{registry_port}"
            ),
            "-device".to_string(),
            format!("virtio-net-pci,netdev=priv,mac={}", private.mac),
        ];
        let dir = out.join(&name);
        std::fs::create_dir_all(&dir).map_err(ProofError::io("create", &dir))?;
        let overlay = work.join(format!("{name}-system.qcow2"));
        crate::vm::proof::grown_overlay(&p.image.disk, &overlay, SYSTEM_DISK_GROWTH)?;
        let data = work.join(format!("{name}-data.raw"));
        crate::qemu::guest::sparse_disk(&data, DATA_DISK_BYTES)
            .map_err(|e| ProofError::io("create", &data)(std::io::Error::other(e.to_string())))?;
        let disk = |path: &Path, bootindex, serial: &str| Disk {
            path: path.to_path_buf(),
            bus: Bus::Virtio,
            serial: Some(serial.into()),
            read_only: false,
            snapshot: false,
            model: None,
            bootindex,
        };
        let spec = VmSpec {
            name: name.clone(),
            accel: Accel::detect(&p.image.kernel).0,
            cpus: 1,
            memory_mib: MEMORY_MIB,
            kernel: None,
            initrd: None,
            append: String::new(),
            disks: vec![disk(&overlay, Some(1), "system"), disk(&data, None, "data")],
            console: dir.join("console.log"),
            reboot: true,
            extra_args: extra,
        };
        log::info!(
            "starting {name} ({}, ssh on 127.0.0.1:{ssh_port})",
            p.address
        );
        let vm = spec.start()?;
        list.push(Guest {
            name,
            address: p.address,
            private: priv_addr.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
            public_mac: public.mac.clone(),
            ssh_port,
            web_port,
            console: spec.console.clone(),
            boot_seconds: 0.0,
            vm: Some(vm),
        });
        // The listening end first.
        std::thread::sleep(Duration::from_millis(500));
    }
    let ssh_config = work.join("ssh_config");
    write_ssh_config(&list, key, &ssh_config)?;
    let mut guests = Guests { list, ssh_config };
    let checks = guests.wait_booted(boot_limit);
    Ok((guests, checks))
}

/// Each guest's `Host ADDRESS` block: its forwarded port, root, the test key only, no host key
/// memory (every run's guests have new host keys), and one connection per guest shared by
/// every command (a key exchange costs seconds of a TCG guest's CPU; the master ends 30 s
/// after the last command).
fn write_ssh_config(list: &[Guest], key: &Path, path: &Path) -> Result<(), ProofError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut text = String::new();
    for g in list {
        text.push_str(&format!(
            "Host {}\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  \
             IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             LogLevel ERROR\n  ControlMaster auto\n  ControlPath {}/ssh-%C\n  ControlPersist 30\n",
            g.address,
            g.ssh_port,
            key.display(),
            dir.display()
        ));
    }
    std::fs::write(path, text).map_err(ProofError::io("write", path))
}

impl Guests {
    /// Waits for every self-test (`PICABOOT-DONE`), one check per guest.
    fn wait_booted(&mut self, limit: Duration) -> Vec<CheckResult> {
        let mut out = Vec::new();
        for g in &mut self.list {
            let Some(vm) = g.vm.as_mut() else { continue };
            let outcome = vm.wait_for("PICABOOT-DONE", limit, |_| ());
            g.boot_seconds = vm.elapsed().as_secs_f64();
            let text = vm.console();
            let report = Report::parse(&text);
            let failed: Vec<String> = report
                .failures()
                .iter()
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            let passed = outcome == Outcome::Marker && failed.is_empty();
            let detail = match crate::qemu::vm::explain_end(&outcome, limit, &text) {
                Some(end) => end,
                None if failed.is_empty() => format!(
                    "booted in {:.0} s; its self-test: {} checks passed",
                    g.boot_seconds,
                    report.checks.len()
                ),
                None => format!("its self-test failed: {}", failed.join("; ")),
            };
            out.push(CheckResult {
                name: format!("{}-system", g.name),
                passed,
                detail,
            });
        }
        out
    }

    /// Guest `i` by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|g| g.name == name)
    }

    /// Runs `command` as root on guest `i` (through its forwarded ssh port), `input` on its
    /// stdin, within `deadline`: its stdout, or why not.
    pub fn sh_in(
        &self,
        i: usize,
        command: &str,
        input: Input<'_>,
        deadline: Duration,
    ) -> Result<String, String> {
        let dest = format!("root@{}", self.list[i].address);
        crate::ops::remote_via(
            Some(&self.ssh_config),
            &dest,
            command,
            command,
            input,
            deadline,
        )
    }

    /// [`Guests::sh_in`] with nothing on stdin and a two-minute deadline.
    pub fn sh(&self, i: usize, command: &str) -> Result<String, String> {
        self.sh_in(i, command, Input::Nothing, Duration::from_secs(120))
    }

    /// Polls `command` on guest `i` every 2 s until it succeeds or `limit` passes: its last
    /// stdout (or error) and whether it succeeded.
    pub fn until(&self, i: usize, command: &str, limit: Duration) -> (bool, String) {
        let start = Instant::now();
        loop {
            match self.sh(i, command) {
                Ok(out) => return (true, out),
                Err(e) if start.elapsed() >= limit => return (false, e),
                Err(_) => std::thread::sleep(Duration::from_secs(2)),
            }
        }
    }

    /// Ends the shared ssh connection to guest `i` (before its reboot: the next command
    /// connects anew instead of writing into a dead one).
    pub fn disconnect(&self, i: usize) {
        let dest = format!("root@{}", self.list[i].address);
        let _ = crate::exec::run_deadline(
            "end the shared ssh connection",
            std::process::Command::new("ssh")
                .arg("-F")
                .arg(&self.ssh_config)
                .args(["-O", "exit", &dest]),
            None,
            Duration::from_secs(10),
        );
    }

    /// Kills guest `i`'s QEMU (its power cut).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut vm) = self.list[i].vm.take() {
            vm.kill();
        }
        self.disconnect(i);
    }

    /// Whether guest `i`'s QEMU still runs.
    pub fn running(&mut self, i: usize) -> bool {
        match self.list[i].vm.as_mut() {
            Some(vm) => vm.exited().is_none(),
            None => false,
        }
    }
}
