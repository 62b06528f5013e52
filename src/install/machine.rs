//! The VM shaped like the box, as the install proof starts it: its disk images (in /dev/shm
//! when there is room, removed on every exit path by a guard), on SATA ports in an order that
//! differs from the profile's, with the firmware boot order of the real box; and its NICs
//! (the install NIC on QEMU's user network, the others on isolated hubs).

use std::path::{Path, PathBuf};

use super::scenario::InstallError;
use super::shape::VmDisk;
use crate::profile::{DiskRole, Host, NicRole};
use crate::qemu::vm::{Bus, Disk};

/// One disk image file of the VM.
pub struct Image {
    /// The disk it stands for.
    pub disk: VmDisk,
    /// Its file.
    pub path: PathBuf,
}

/// The VM's hardware: disk images, firmware boot order, NIC arguments.
pub struct Machine {
    /// Images in SATA port order.
    pub images: Vec<Image>,
    /// Disk ids the firmware tries, in order (every disk of the installer's arrays).
    pub boot_order: Vec<String>,
    /// QEMU's `-netdev`/`-device` arguments.
    pub nic_args: Vec<String>,
    /// Removes the images unless kept.
    _disks: Option<crate::cleanup::Guard>,
}

/// The directory for the VM's disk images: tmpfs when it has room (fast, sparse), else `work`.
fn disk_dir(work: &Path, host: &str, need: u64) -> PathBuf {
    let shm = Path::new("/dev/shm");
    // Images of a run that was killed (its process is gone) are removed first.
    let prefix = format!("picaboot-install-{host}-");
    if let Ok(rd) = std::fs::read_dir(shm) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name
                .strip_prefix(&prefix)
                .and_then(|p| p.parse::<u32>().ok())
            {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let room = rustix::fs::statvfs(shm)
        .map(|s| s.f_bavail * s.f_frsize)
        .unwrap_or(0);
    if room > need + (2 << 30) {
        shm.join(format!("picaboot-install-{host}-{}", std::process::id()))
    } else {
        work.join("disks")
    }
}

/// Disk ids of the installer's arrays, first seen first: the firmware's boot order.
fn boot_order(host: &Host) -> Vec<String> {
    host.storage
        .arrays
        .iter()
        .filter(|a| a.stage == crate::profile::Stage::Install)
        .flat_map(|a| a.disks.iter().cloned())
        .fold(Vec::new(), |mut v, d| {
            if !v.contains(&d) {
                v.push(d);
            }
            v
        })
}

/// The install NIC on QEMU's user network, every other NIC on a hub with no other port.
fn nic_args(host: &Host) -> Vec<String> {
    let mut args = Vec::new();
    for (i, n) in host.nics.iter().enumerate() {
        if n.role == NicRole::Install {
            args.extend(["-netdev".to_string(), format!("user,id=n{i}")]);
        } else {
            args.extend(["-netdev".to_string(), format!("hubport,id=n{i},hubid={i}")]);
        }
        args.extend([
            "-device".to_string(),
            format!("e1000e,netdev=n{i},mac={}", n.mac),
        ]);
    }
    args
}

impl Machine {
    /// Creates the disk images (HDDs on the lower SATA ports, so that sdX order differs from
    /// the profile's); `keep` leaves them in place at the end.
    pub fn new(
        work: &Path,
        host: &Host,
        vm_disks: &[VmDisk],
        keep: bool,
    ) -> Result<Self, InstallError> {
        let need: u64 = vm_disks.iter().map(|d| d.bytes).sum();
        let ddir = disk_dir(work, &host.name, need);
        std::fs::create_dir_all(&ddir).map_err(|source| InstallError::Io {
            what: "create",
            path: ddir.clone(),
            source,
        })?;
        // Removed on every exit path (an early `?`, a panic, SIGINT/SIGTERM) unless kept.
        let guard = crate::cleanup::Guard::new(crate::cleanup::Action::Dir(ddir.clone()));
        let guard = if keep {
            guard.disarm();
            None
        } else {
            Some(guard)
        };
        let mut ordered = vm_disks.to_vec();
        ordered.sort_by_key(|d| (d.role == DiskRole::Ssd, d.id.clone()));
        let mut images = Vec::new();
        for d in ordered {
            let path = ddir.join(format!("{}.raw", d.id));
            crate::qemu::guest::sparse_disk(&path, d.bytes)
                .map_err(|e| InstallError::Serve(e.to_string()))?;
            images.push(Image { disk: d, path });
        }
        Ok(Machine {
            images,
            boot_order: boot_order(host),
            nic_args: nic_args(host),
            _disks: guard,
        })
    }

    /// The VM's disks, without `leave_out`; `snapshot` keeps the images unchanged.
    pub fn disks(&self, leave_out: Option<&str>, snapshot: bool) -> Vec<Disk> {
        self.images
            .iter()
            .enumerate()
            .filter(|(_, i)| Some(i.disk.id.as_str()) != leave_out)
            .map(|(port, i)| Disk {
                path: i.path.clone(),
                bus: Bus::Sata {
                    port: port as u8,
                    ssd: i.disk.role == DiskRole::Ssd,
                },
                serial: Some(i.disk.serial.clone()),
                read_only: false,
                snapshot,
                model: i.disk.model.clone(),
                bootindex: self
                    .boot_order
                    .iter()
                    .position(|b| b == &i.disk.id)
                    .map(|p| p as u32 + 1),
            })
            .collect()
    }

    /// One line per SATA port, for the log.
    pub fn describe(&self) -> String {
        self.images
            .iter()
            .enumerate()
            .map(|(p, i)| {
                format!(
                    "port {p}: {} ({}, serial {})",
                    i.disk.id,
                    if i.disk.role == DiskRole::Ssd {
                        "SSD"
                    } else {
                        "HDD"
                    },
                    i.disk.serial
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The image of disk `id`.
    pub fn image(&self, id: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.disk.id == id)
    }
}
