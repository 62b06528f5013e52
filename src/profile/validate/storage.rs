//! A host's `[storage]`: boot disks, md arrays (canonical names, members, size, stage,
//! a filesystem or a volume group), logical volumes (lvm(8)'s names, one `rest` per group),
//! mount points (no system directory, none twice, none hidden by a later mount), and `/`
//! mounted by the installer.

use std::collections::{BTreeMap, BTreeSet};

use super::{valid_name, Checker};
use crate::profile::model::*;
use crate::profile::raw::*;
use crate::profile::units::parse_bytes;

fn parse_size(c: &mut Checker<'_>, field: &str, text: &str) -> Option<Size> {
    if text == "rest" {
        Some(Size::Rest)
    } else {
        c.parse(field, parse_bytes(text)).map(Size::Bytes)
    }
}

/// Directories the system itself lives in or the kernel provides: a volume mounted there
/// hides the running system (`/boot`, `/var`, `/home`, `/srv`, `/opt`, `/tmp` stay allowed).
const SYSTEM_DIRS: &[&str] = &[
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sys",
    "/dev", "/run",
];

fn check_mount(c: &mut Checker<'_>, field: &str, m: &str, mounts: &mut BTreeSet<String>) {
    let system = SYSTEM_DIRS
        .iter()
        .find(|d| m == **d || m.strip_prefix(**d).is_some_and(|r| r.starts_with('/')));
    if !crate::profile::text::mount_point(m) {
        c.err(field, format!("`{m}` is not an absolute mount point"));
    } else if let Some(d) = system {
        c.err(
            field,
            format!("`{m}` is a system directory ({d}): a volume mounted there hides the running system"),
        );
    } else if !mounts.insert(m.to_string()) {
        c.err(field, format!("`{m}` is mounted twice"));
    }
}

/// True when mount point `inner` lies beneath `outer`.
pub(super) fn beneath(inner: &str, outer: &str) -> bool {
    inner != outer
        && (outer == "/"
            || inner
                .strip_prefix(outer)
                .is_some_and(|r| r.starts_with('/')))
}

/// lvm(8) VALID NAMES: a VG may not be `.`, `..` or anything in /dev/ (the kernel's and
/// udev's names there); an LV may not be `.`, `..`, start with `snapshot` or `pvmove`, or
/// contain one of lvm's internal suffixes.
pub(super) fn lvm_reserved(name: &str, vg: bool) -> Option<String> {
    const DEV: &[&str] = &[
        "mapper",
        "disk",
        "block",
        "char",
        "md",
        "mqueue",
        "shm",
        "pts",
        "hugepages",
        "input",
        "net",
        "snd",
        "dri",
        "bus",
        "cpu",
        "fd",
        "vfio",
        "null",
        "zero",
        "full",
        "random",
        "urandom",
        "tty",
        "console",
        "kmsg",
        "log",
        "stdin",
        "stdout",
        "stderr",
        "core",
        "mem",
        "kvm",
        "fuse",
        "loop-control",
        "ptmx",
        "rtc",
        "watchdog",
        "hpet",
        "port",
        "ppp",
        "uinput",
        "vhost-net",
        "btrfs-control",
        "cuse",
        "autofs",
        "usb",
        "raw",
        "dm",
        "lvm",
    ];
    const KERNEL_PREFIXES: &[&str] = &[
        "tty", "md", "loop", "ram", "nbd", "sr", "dm-", "nvme", "sd", "vd", "hd", "xvd", "sg",
        "vcs", "zram", "mmcblk", "rtc", "watchdog", "hidraw", "i2c-", "dri", "nst", "st",
    ];
    const SUFFIXES: &[&str] = &[
        "_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog", "_pmspare", "_rimage",
        "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig",
    ];
    if name == "." || name == ".." {
        return Some(format!("`{name}` is reserved by lvm(8)"));
    }
    if vg {
        // A kernel device name: the prefix, then up to two letters (sdab) and/or a number.
        let kernel_name = KERNEL_PREFIXES.iter().any(|p| {
            name.strip_prefix(p).is_some_and(|r| {
                let letters = r.trim_end_matches(|c: char| c.is_ascii_digit());
                !r.is_empty()
                    && letters.len() <= 2
                    && letters.chars().all(|c| c.is_ascii_lowercase())
                    && (letters.len() < r.len() || matches!(*p, "sd" | "vd" | "hd" | "xvd"))
            })
        });
        if DEV.contains(&name) || kernel_name {
            return Some(format!(
                "`{name}` is a name in /dev/, which lvm(8) refuses for a volume group"
            ));
        }
        return None;
    }
    if let Some(p) = ["snapshot", "pvmove"]
        .iter()
        .find(|p| name.starts_with(**p))
    {
        return Some(format!(
            "`{name}` starts with `{p}`, which lvm(8) reserves for logical volumes"
        ));
    }
    SUFFIXES
        .iter()
        .find(|s| name.contains(**s))
        .map(|s| format!("`{name}` contains `{s}`, which lvm(8) reserves for its internal volumes"))
}

/// What the arrays and volumes seen so far claim.
#[derive(Default)]
struct Claimed {
    /// md numbers.
    numbers: BTreeSet<Option<u32>>,
    /// Mount points.
    mounts: BTreeSet<String>,
    /// (mount point, when it is mounted, field).
    placed: Vec<(String, Stage, String)>,
    /// Volume groups and the stage of their array.
    groups: BTreeMap<String, Stage>,
    /// (group, volume) names.
    volumes: BTreeSet<(String, String)>,
    /// Groups with a volume that takes the rest.
    rest: BTreeSet<String>,
}

/// Canonical `mdN` only (`md01` and `md+1` would be other names for the number N, or no
/// device at all), N at most 255 (partitionable md minors), unique by N.
fn md_number(c: &mut Checker<'_>, field: String, name: &str, seen: &mut Claimed) -> Option<u32> {
    let number = name
        .strip_prefix("md")
        .and_then(|n| n.parse::<u32>().ok().filter(|x| x.to_string() == n))
        .filter(|&x| x <= 255);
    if number.is_none() {
        c.err(
            field,
            format!("`{name}` is not an md device name (md0 to md255, no leading zero)"),
        );
    } else if !seen.numbers.insert(number) {
        c.err(field, format!("array `{name}` is declared twice"));
    }
    number
}

/// Level 1, at least two members, each a disk of the hardware, once.
fn array_members(c: &mut Checker<'_>, i: usize, a: &RawArray, disks: &[Disk]) {
    let f = |k: &str| format!("storage.arrays[{i}].{k}");
    if a.level != 1 {
        c.err(
            f("level"),
            format!("RAID level {} is not supported (only 1, mirror)", a.level),
        );
    }
    if a.disks.len() < 2 {
        c.err(f("disks"), "a RAID1 array needs at least two member disks");
    }
    let mut members = BTreeSet::new();
    for (j, d) in a.disks.iter().enumerate() {
        if !disks.iter().any(|x| x.id == *d) {
            c.err(
                format!("storage.arrays[{i}].disks[{j}]"),
                format!("the hardware has no disk `{d}`"),
            );
        } else if !members.insert(d) {
            c.err(
                format!("storage.arrays[{i}].disks[{j}]"),
                format!("disk `{d}` is a member twice"),
            );
        }
    }
}

fn stage(c: &mut Checker<'_>, field: String, text: &str) -> Option<Stage> {
    match text {
        "install" => Some(Stage::Install),
        "first-boot" => Some(Stage::FirstBoot),
        other => {
            c.err(field, format!("`{other}` is not `install` or `first-boot`"));
            None
        }
    }
}

/// What an array carries: a filesystem and its mount point, or a volume group.
fn array_content(
    c: &mut Checker<'_>,
    i: usize,
    a: &RawArray,
    stage: Option<Stage>,
    seen: &mut Claimed,
) -> Option<ArrayContent> {
    let f = |k: &str| format!("storage.arrays[{i}].{k}");
    match (&a.filesystem, &a.mount, &a.volume_group) {
        (Some(fs), Some(m), None) => {
            if !["ext2", "ext3", "ext4", "xfs"].contains(&fs.as_str()) {
                c.err(
                    f("filesystem"),
                    format!("`{fs}` is not ext2, ext3, ext4 or xfs"),
                );
            }
            check_mount(c, &f("mount"), m, &mut seen.mounts);
            seen.placed
                .push((m.clone(), stage.unwrap_or(Stage::Install), f("mount")));
            Some(ArrayContent::Filesystem {
                fs: fs.clone(),
                mount: m.clone(),
            })
        }
        (None, None, Some(vg)) => {
            if !valid_name(vg, 64) {
                c.err(
                    f("volume-group"),
                    format!("`{vg}` is not a volume group name"),
                );
            } else if let Some(why) = lvm_reserved(vg, true) {
                c.err(f("volume-group"), why);
            }
            if seen
                .groups
                .insert(vg.clone(), stage.unwrap_or(Stage::Install))
                .is_some()
            {
                c.err(
                    f("volume-group"),
                    format!("volume group `{vg}` sits on two arrays"),
                );
            }
            Some(ArrayContent::VolumeGroup(vg.clone()))
        }
        _ => {
            c.err(
                f("volume-group"),
                "give either `filesystem` and `mount`, or `volume-group`, for the array",
            );
            None
        }
    }
}

fn array(
    c: &mut Checker<'_>,
    i: usize,
    a: &RawArray,
    disks: &[Disk],
    seen: &mut Claimed,
) -> Option<Array> {
    let f = |k: &str| format!("storage.arrays[{i}].{k}");
    let number = md_number(c, f("name"), &a.name, seen);
    array_members(c, i, a, disks);
    let size = parse_size(c, &f("size"), &a.size);
    let stage = stage(c, f("stage"), &a.stage);
    let content = array_content(c, i, a, stage, seen);
    Some(Array {
        name: a.name.clone(),
        number: number?,
        level: 1,
        disks: a.disks.clone(),
        size: size?,
        stage: stage?,
        content: content?,
    })
}

fn volume(c: &mut Checker<'_>, i: usize, v: &RawVolume, seen: &mut Claimed) -> Option<Volume> {
    let f = |k: &str| format!("storage.volumes[{i}].{k}");
    if !seen.groups.contains_key(&v.group) {
        c.err(
            f("group"),
            format!("no array carries volume group `{}`", v.group),
        );
    }
    if !valid_name(&v.name, 64) {
        c.err(
            f("name"),
            format!("`{}` is not a logical volume name", v.name),
        );
    } else if let Some(why) = lvm_reserved(&v.name, false) {
        c.err(f("name"), why);
    } else if !seen.volumes.insert((v.group.clone(), v.name.clone())) {
        c.err(
            f("name"),
            format!("`{}/{}` is declared twice", v.group, v.name),
        );
    }
    let size = parse_size(c, &f("size"), &v.size);
    if size == Some(Size::Rest) && !seen.rest.insert(v.group.clone()) {
        c.err(
            f("size"),
            format!("two volumes of `{}` take the rest", v.group),
        );
    }
    match (v.filesystem.as_str(), &v.mount) {
        ("swap", None) => {}
        ("swap", Some(_)) => c.err(f("mount"), "swap is not mounted"),
        ("ext2" | "ext3" | "ext4" | "xfs", Some(m)) => {
            check_mount(c, &f("mount"), m, &mut seen.mounts);
            let stage = seen.groups.get(&v.group).copied().unwrap_or(Stage::Install);
            seen.placed.push((m.clone(), stage, f("mount")));
        }
        ("ext2" | "ext3" | "ext4" | "xfs", None) => {
            c.err(f("mount"), "a filesystem needs a mount point")
        }
        (other, _) => c.err(
            f("filesystem"),
            format!("`{other}` is not ext2, ext3, ext4, xfs or swap"),
        ),
    }
    Some(Volume {
        group: v.group.clone(),
        name: v.name.clone(),
        size: size?,
        filesystem: v.filesystem.clone(),
        mount: v.mount.clone(),
    })
}

/// A first-boot mount over a directory holding an install-time mount hides it.
fn hidden_mounts(c: &mut Checker<'_>, placed: &[(String, Stage, String)]) {
    for (outer, outer_stage, field) in placed {
        if *outer_stage != Stage::FirstBoot {
            continue;
        }
        if let Some((inner, ..)) = placed
            .iter()
            .find(|(inner, st, _)| *st == Stage::Install && beneath(inner, outer))
        {
            c.err(
                field.clone(),
                format!("`{outer}` is mounted at first boot over `{inner}`, which the installer mounts: it would hide it"),
            );
        }
    }
}

/// A host's `[storage]`, every problem reported with its field.
pub(super) fn verify_storage(
    c: &mut Checker<'_>,
    raw: &RawStorage,
    disks: &[Disk],
) -> Option<Storage> {
    for (i, d) in raw.boot_disks.iter().enumerate() {
        if !disks.iter().any(|x| x.id == *d) {
            c.err(
                format!("storage.boot-disks[{i}]"),
                format!("the hardware has no disk `{d}`"),
            );
        }
    }
    let mut seen = Claimed::default();
    let arrays: Vec<Array> = (raw.arrays.iter().enumerate())
        .filter_map(|(i, a)| array(c, i, a, disks, &mut seen))
        .collect();
    let volumes: Vec<Volume> = (raw.volumes.iter().enumerate())
        .filter_map(|(i, v)| volume(c, i, v, &mut seen))
        .collect();
    hidden_mounts(c, &seen.placed);
    let groups = &seen.groups;
    let root_on_install = arrays.iter().any(|a| {
        a.stage == Stage::Install
            && matches!(&a.content, ArrayContent::Filesystem { mount, .. } if mount == "/")
    }) || volumes
        .iter()
        .any(|v| v.mount.as_deref() == Some("/") && groups.get(&v.group) == Some(&Stage::Install));
    if !root_on_install {
        c.err("storage", "nothing is mounted on `/` by the installer");
    }
    Some(Storage {
        boot_disks: raw.boot_disks.clone(),
        arrays,
        volumes,
    })
}
