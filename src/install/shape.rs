//! The VM shaped like the box: the hardware profile's disks by role, scaled down so that an
//! emulated install stays short, and the fixed-size logical volumes scaled with them so that
//! every `rest` volume keeps a remainder. Serials and models are set so that the installer
//! finds the disks by identity exactly as on the real box.

use crate::profile::{DiskRole, Host, Size};
use crate::project::Overrides;

/// GiB.
pub const GIB: u64 = 1 << 30;
/// MiB.
pub const MIB: u64 = 1 << 20;

/// Sizes of the VM's disks per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Each SSD.
    pub ssd_bytes: u64,
    /// Each HDD.
    pub hdd_bytes: u64,
    /// The root volume never gets less (a Debian base system with its kernel fits).
    pub root_floor: u64,
    /// Any other fixed volume never gets less.
    pub volume_floor: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            ssd_bytes: 6 * GIB,
            hdd_bytes: GIB,
            root_floor: 3 * GIB,
            volume_floor: 256 * MIB,
        }
    }
}

/// One disk of the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDisk {
    /// Profile disk id.
    pub id: String,
    /// Role.
    pub role: DiskRole,
    /// Size in the VM.
    pub bytes: u64,
    /// Serial the VM reports.
    pub serial: String,
    /// Model the VM reports (the profile's match glob made concrete, else QEMU's default).
    pub model: Option<String>,
}

/// Why a host cannot be shaped into a VM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host {host}: {reason}")]
pub struct ShapeError {
    /// Host.
    pub host: String,
    /// Why.
    pub reason: String,
}

/// The VM disks and the profile overrides (disk and volume sizes) for `host`.
pub fn shape(host: &Host, s: &Shape) -> Result<(Vec<VmDisk>, Overrides), ShapeError> {
    let mut disks = Vec::new();
    let mut ov = Overrides::default();
    for d in &host.disks {
        let bytes = match d.role {
            DiskRole::Ssd => s.ssd_bytes,
            DiskRole::Hdd => s.hdd_bytes,
        };
        ov.disk_sizes.push((d.id.clone(), bytes));
        disks.push(VmDisk {
            id: d.id.clone(),
            role: d.role,
            bytes,
            // A serial the way a vendor would print one, unique per host and disk.
            serial: d.serial.clone().unwrap_or_else(|| {
                format!("PB{}{}", host.hostname.to_uppercase(), d.id.to_uppercase())
            }),
            // ATA model strings are at most 40 characters; a glob becomes its literal prefix.
            model: d.model_match.as_ref().map(|m| {
                let lit: String = m.chars().take_while(|c| !"*?[".contains(*c)).collect();
                lit.chars().take(40).collect::<String>().trim().to_string()
            }),
        });
    }
    // Scale each fixed volume by its volume group's disks' factor, with floors.
    for v in &host.storage.volumes {
        let Size::Bytes(bytes) = v.size else { continue };
        let array = host.storage.arrays.iter().find(
            |a| matches!(&a.content, crate::profile::ArrayContent::VolumeGroup(g) if g == &v.group),
        );
        let Some(array) = array else { continue };
        let Some(first) = array.disks.first().and_then(|id| host.disk(id)) else {
            continue;
        };
        let vm = disks
            .iter()
            .find(|d| d.id == first.id)
            .map(|d| d.bytes)
            .unwrap_or(first.size_bytes);
        let scaled = ((bytes as u128 * vm as u128) / first.size_bytes.max(1) as u128) as u64;
        let floor = if v.mount.as_deref() == Some("/") {
            s.root_floor
        } else {
            s.volume_floor
        };
        let size = (scaled.max(floor) / (4 * MIB)) * (4 * MIB);
        ov.volume_sizes
            .push((v.group.clone(), v.name.clone(), size));
    }
    // Every group must keep at least a quarter of its disk for its `rest` volumes.
    for a in &host.storage.arrays {
        let crate::profile::ArrayContent::VolumeGroup(g) = &a.content else {
            continue;
        };
        let Some(vm) = a
            .disks
            .first()
            .and_then(|id| disks.iter().find(|d| &d.id == id))
        else {
            continue;
        };
        let fixed: u64 = ov
            .volume_sizes
            .iter()
            .filter(|(group, ..)| group == g)
            .map(|(.., b)| *b)
            .sum();
        if fixed > vm.bytes / 4 * 3 {
            return Err(ShapeError {
                host: host.name.clone(),
                reason: format!(
                    "the fixed volumes of VG {g} need {} MiB of a {} MiB VM disk: give the VM larger disks",
                    fixed / MIB,
                    vm.bytes / MIB
                ),
            });
        }
    }
    Ok((disks, ov))
}
