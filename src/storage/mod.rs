//! Storage plan: a host's declared layout turned into partitions per disk, md arrays and LVM
//! volumes with concrete sizes, checked against the disks' capacity.
//!
//! The same plan feeds the partman recipe of the preseed, the first-boot script that builds
//! the arrays the installer does not (md2 on the HDDs), `mdadm.conf`, and the checks the QEMU
//! harness runs on the installed disks.

pub mod partman;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::profile::{ArrayContent, Host, Size, Stage};

/// 1 MiB: partition alignment and the size of the bios_grub partition.
pub const MIB: u64 = 1 << 20;
/// Bytes GPT reserves at the end of a disk (backup header and entries), rounded up to a MiB.
const GPT_TAIL: u64 = MIB;
/// The md 1.2 superblock and data offset that mdadm reserves on large members.
const MD_OVERHEAD_MAX: u64 = 128 * MIB;
/// LVM metadata area at the start of a physical volume.
const LVM_OVERHEAD: u64 = 4 * MIB;

/// A problem with the plan, naming the profile field it comes from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PlanError {
    /// Dotted field path in the host profile.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// What a partition is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PartitionKind {
    /// 1 MiB BIOS boot partition, where GRUB's core image lives on GPT disks.
    BiosGrub,
    /// A member of an md array.
    Raid {
        /// The array's name (`md0`).
        array: String,
    },
}

/// One partition with its place on the disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Partition number (1-based).
    pub number: u32,
    /// First byte.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// True when the size was `rest` (the installer may round it).
    pub rest: bool,
    /// Purpose.
    #[serde(flatten)]
    pub kind: PartitionKind,
}

/// The partitions of one disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskPlan {
    /// Disk id.
    pub id: String,
    /// Device path.
    pub device: String,
    /// Capacity.
    pub size_bytes: u64,
    /// Gets a boot loader.
    pub boot: bool,
    /// Created by the installer (true) or the first-boot script.
    pub at_install: bool,
    /// Partitions in order.
    pub partitions: Vec<Partition>,
}

/// One md array with its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArrayPlan {
    /// Name (`md2`).
    pub name: String,
    /// `/dev/md2`.
    pub device: String,
    /// RAID level.
    pub level: u32,
    /// Members as `(disk id, device, partition number)`.
    pub members: Vec<Member>,
    /// Usable size after the md superblock.
    pub size: u64,
    /// Created by the installer or at first boot.
    pub stage: Stage,
    /// What sits on it.
    pub content: ArrayContent,
    /// Array UUID in mdadm's notation; fixed for first-boot arrays, unknown (None) for arrays
    /// the installer creates.
    pub uuid: Option<String>,
    /// The md name (`HOST:N`).
    pub md_name: String,
}

/// A member partition of an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Disk id.
    pub disk: String,
    /// Disk device.
    pub device: String,
    /// Partition number.
    pub partition: u32,
    /// Partition device (`/dev/sdc1`, `/dev/nvme0n1p1`).
    pub partition_device: String,
}

/// One logical volume with a concrete size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumePlan {
    /// Volume group.
    pub group: String,
    /// Name.
    pub name: String,
    /// Planned size in bytes (for `rest`, what remains in the group).
    pub size: u64,
    /// Size was `rest`.
    pub rest: bool,
    /// Filesystem.
    pub filesystem: String,
    /// Mount point.
    pub mount: Option<String>,
    /// Created by the installer or at first boot.
    pub stage: Stage,
}

/// The whole plan of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Disks that carry partitions, in hardware order.
    pub disks: Vec<DiskPlan>,
    /// Arrays by name order.
    pub arrays: Vec<ArrayPlan>,
    /// Volumes in declaration order.
    pub volumes: Vec<VolumePlan>,
}

impl Plan {
    /// The arrays created at a stage.
    pub fn arrays_at(&self, stage: Stage) -> impl Iterator<Item = &ArrayPlan> {
        self.arrays.iter().filter(move |a| a.stage == stage)
    }

    /// The volumes created at a stage.
    pub fn volumes_at(&self, stage: Stage) -> impl Iterator<Item = &VolumePlan> {
        self.volumes.iter().filter(move |v| v.stage == stage)
    }
}

/// The device of partition `n` of `disk` (`/dev/sda1`, `/dev/nvme0n1p1`).
pub fn partition_device(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{n}")
    } else {
        format!("{disk}{n}")
    }
}

/// A deterministic md array UUID for `host:array`, in mdadm's `xxxxxxxx:…` notation, so that
/// mdadm.conf can be rendered before the array exists.
pub fn array_uuid(hostname: &str, array: &str) -> String {
    let digest = Sha256::digest(format!("picaboot md array {hostname}:{array}").as_bytes());
    let h = hex::encode(&digest[..16]);
    format!("{}:{}:{}:{}", &h[0..8], &h[8..16], &h[16..24], &h[24..32])
}

/// `b` rounded up to a whole MiB, in u128 (it cannot overflow).
fn mib_up(b: u64) -> u128 {
    u128::from(b.div_ceil(MIB)) * u128::from(MIB)
}

fn md_overhead(size: u64) -> u64 {
    // mdadm 4.x reserves up to 128 MiB of data offset on large members; smaller members get
    // proportionally less, never under 1 MiB.
    (size / 512).clamp(MIB, MD_OVERHEAD_MAX)
}

fn round_down_mib(x: u64) -> u64 {
    x / MIB * MIB
}

/// A member partition laid out: (array, disk, partition number, size).
type MemberPart = (String, String, u32, u64);

/// One disk's partitions (BIOS boot area, then one RAID member per array on it), or `None`
/// when it carries nothing or does not fit (the reason pushed on `errors`).
fn disk_plan(
    host: &Host,
    disk: &crate::profile::Disk,
    errors: &mut Vec<PlanError>,
    member_parts: &mut Vec<MemberPart>,
) -> Option<DiskPlan> {
    let st = &host.storage;
    let boot = st.boot_disks.contains(&disk.id);
    let arrays: Vec<(usize, &crate::profile::Array)> = st
        .arrays
        .iter()
        .enumerate()
        .filter(|(_, a)| a.disks.contains(&disk.id))
        .collect();
    if arrays.is_empty() && !boot {
        return None;
    }
    let at_install = arrays.iter().any(|(_, a)| a.stage == Stage::Install) || boot;
    if arrays.iter().any(|(_, a)| a.stage == Stage::FirstBoot) && at_install {
        errors.push(PlanError {
            field: format!("storage.arrays[{}].disks", arrays[0].0),
            reason: format!(
                "disk `{}` mixes install-time and first-boot arrays; keep each disk to one stage",
                disk.id
            ),
        });
    }
    let mut parts = Vec::new();
    let mut start = MIB; // first usable, 1 MiB aligned
    let end = round_down_mib(disk.size_bytes.saturating_sub(GPT_TAIL));
    // Every install-time RAID member keeps a BIOS boot partition when the host boots from
    // any disk: partman applies one layout to all install disks, and the partition lets
    // GRUB go onto a member later (after a disk swap) even when `boot-disks` leaves it out.
    let install_member = arrays.iter().any(|(_, a)| a.stage == Stage::Install);
    let boot_area = boot || (install_member && !st.boot_disks.is_empty());
    if boot_area && host.gpt && host.firmware == crate::profile::Firmware::Bios {
        parts.push(Partition {
            number: 1,
            start,
            size: MIB,
            rest: false,
            kind: PartitionKind::BiosGrub,
        });
        start += MIB;
    }
    // Summed in u128: any number of u64 sizes rounded up to MiB fits, so a sum past the
    // disk is reported instead of wrapping (or panicking in a debug build).
    let fixed: u128 = arrays
        .iter()
        .filter_map(|(_, a)| match a.size {
            Size::Bytes(b) => Some(mib_up(b)),
            Size::Rest => None,
        })
        .sum();
    let rest_count = arrays.iter().filter(|(_, a)| a.size == Size::Rest).count();
    let available = end.saturating_sub(start);
    if rest_count > 1 {
        errors.push(PlanError {
            field: format!("storage.arrays[{}].size", arrays[1].0),
            reason: format!("two arrays take the rest of disk `{}`", disk.id),
        });
    }
    let need = fixed + rest_count as u128 * u128::from(MIB);
    if need > u128::from(available) {
        errors.push(PlanError {
            field: format!("storage.arrays[{}].size", arrays.last().map_or(0, |a| a.0)),
            reason: format!(
                "the partitions need {} MiB but disk `{}` ({}) has {} MiB usable",
                need / u128::from(MIB),
                disk.id,
                disk.device,
                available / MIB
            ),
        });
        return None;
    }
    // fixed <= available (checked above), so it is a u64.
    let fixed = fixed as u64;
    let rest_size = available - fixed;
    for (_, a) in &arrays {
        let (size, rest) = match a.size {
            Size::Bytes(b) => (b.div_ceil(MIB) * MIB, false),
            Size::Rest => (rest_size, true),
        };
        let number = parts.len() as u32 + 1;
        parts.push(Partition {
            number,
            start,
            size,
            rest,
            kind: PartitionKind::Raid {
                array: a.name.clone(),
            },
        });
        member_parts.push((a.name.clone(), disk.id.clone(), number, size));
        start += size;
    }
    Some(DiskPlan {
        id: disk.id.clone(),
        device: disk.device.clone(),
        size_bytes: disk.size_bytes,
        boot,
        at_install,
        partitions: parts,
    })
}

/// Each array with its members (the partitions laid out), sized by its smallest member.
fn array_plans(host: &Host, member_parts: &[MemberPart]) -> Vec<ArrayPlan> {
    let st = &host.storage;
    let mut arrays = Vec::new();
    for a in &st.arrays {
        let members: Vec<Member> = a
            .disks
            .iter()
            .filter_map(|d| {
                let (_, _, n, _) = member_parts
                    .iter()
                    .find(|(arr, disk, _, _)| arr == &a.name && disk == d)?;
                let device = host.disk(d)?.device.clone();
                Some(Member {
                    disk: d.clone(),
                    partition_device: partition_device(&device, *n),
                    device,
                    partition: *n,
                })
            })
            .collect();
        let smallest = member_parts
            .iter()
            .filter(|(arr, ..)| arr == &a.name)
            .map(|p| p.3)
            .min()
            .unwrap_or(0);
        arrays.push(ArrayPlan {
            name: a.name.clone(),
            device: format!("/dev/{}", a.name),
            level: a.level,
            members,
            size: smallest.saturating_sub(md_overhead(smallest)),
            stage: a.stage,
            content: a.content.clone(),
            uuid: (a.stage == Stage::FirstBoot).then(|| array_uuid(&host.hostname, &a.name)),
            md_name: format!("{}:{}", host.hostname, a.number),
        });
    }
    arrays.sort_by_key(|a| a.name.clone());

    arrays
}

/// Each logical volume sized inside its group's array (the rest of a group taken by one).
fn volume_plans(host: &Host, arrays: &[ArrayPlan], errors: &mut Vec<PlanError>) -> Vec<VolumePlan> {
    let st = &host.storage;
    let mut volumes = Vec::new();
    for a in arrays {
        let ArrayContent::VolumeGroup(vg) = &a.content else {
            continue;
        };
        let declared = st
            .arrays
            .iter()
            .find(|x| x.name == a.name)
            .map_or(0, |x| x.disks.len());
        if a.members.len() < declared {
            // A member disk did not fit (already reported): its size says nothing.
            continue;
        }
        let capacity = round_down_mib(a.size.saturating_sub(LVM_OVERHEAD));
        let decl: Vec<(usize, &crate::profile::Volume)> = st
            .volumes
            .iter()
            .enumerate()
            .filter(|(_, v)| &v.group == vg)
            .collect();
        let fixed: u128 = decl
            .iter()
            .filter_map(|(_, v)| match v.size {
                Size::Bytes(b) => Some(mib_up(b)),
                Size::Rest => None,
            })
            .sum();
        let has_rest = decl.iter().any(|(_, v)| v.size == Size::Rest);
        if fixed + u128::from(has_rest) * u128::from(MIB) > u128::from(capacity) {
            errors.push(PlanError {
                field: format!("storage.volumes[{}].size", decl.last().map_or(0, |d| d.0)),
                reason: format!(
                    "the volumes of `{vg}` need {} MiB but {} holds about {} MiB",
                    fixed / u128::from(MIB) + u128::from(has_rest),
                    a.name,
                    capacity / MIB
                ),
            });
            continue;
        }
        // fixed <= capacity (checked above), so it is a u64.
        let fixed = fixed as u64;
        for (_, v) in decl {
            let (size, rest) = match v.size {
                Size::Bytes(b) => (b.div_ceil(MIB) * MIB, false),
                Size::Rest => (capacity - fixed, true),
            };
            volumes.push((
                st.volumes
                    .iter()
                    .position(|x| std::ptr::eq(x, v))
                    .unwrap_or(0),
                VolumePlan {
                    group: vg.clone(),
                    name: v.name.clone(),
                    size,
                    rest,
                    filesystem: v.filesystem.clone(),
                    mount: v.mount.clone(),
                    stage: a.stage,
                },
            ));
        }
    }
    volumes.sort_by_key(|(i, _)| *i);
    volumes.into_iter().map(|(_, v)| v).collect()
}

/// A boot disk must hold an array the installer creates (GRUB goes there).
fn boot_disk_errors(host: &Host, errors: &mut Vec<PlanError>) {
    let st = &host.storage;
    for (i, b) in st.boot_disks.iter().enumerate() {
        let holds_boot = st
            .arrays
            .iter()
            .any(|a| a.stage == Stage::Install && a.disks.contains(b));
        if !holds_boot {
            errors.push(PlanError {
                field: format!("storage.boot-disks[{i}]"),
                reason: format!("boot disk `{b}` holds no array the installer creates"),
            });
        }
    }
}

/// Builds the storage plan of a host, or every reason it does not fit.
pub fn plan(host: &Host) -> Result<Plan, Vec<PlanError>> {
    let mut errors = Vec::new();
    let mut member_parts: Vec<MemberPart> = Vec::new();
    let disks: Vec<DiskPlan> = host
        .disks
        .iter()
        .filter_map(|d| disk_plan(host, d, &mut errors, &mut member_parts))
        .collect();
    let arrays = array_plans(host, &member_parts);
    let volumes = volume_plans(host, &arrays, &mut errors);
    boot_disk_errors(host, &mut errors);
    if errors.is_empty() {
        Ok(Plan {
            disks,
            arrays,
            volumes,
        })
    } else {
        Err(errors)
    }
}

crate::exit_class::fixed_class!(crate::exit_class::Class::User; PlanError);
