//! One VM profile on its own (`vms/NAME.toml`): names, sizes, keys and the grammar of every
//! address. What needs the other profiles (the node, its routed addresses and bridges, the
//! cluster's vmids and MACs) is checked in [`crate::profile::vms`].

use std::net::{Ipv4Addr, Ipv6Addr};

use super::storage::lvm_reserved;
use super::{is_link_local_v6, valid_name, verify_identity, verify_nameservers, Checker, Identity};
use crate::profile::model::{Vm, VmDataDisk, VmDisk, VmNic};
use crate::profile::raw::{RawVm, RawVmDisk, RawVmNic};
use crate::profile::units::{parse_bytes, parse_mac};

/// Proxmox's VM id range (`pve-vmid`: 100 to 999999999).
pub const VMID_RANGE: std::ops::RangeInclusive<i64> = 100..=999_999_999;

/// The most cores a VM may ask for (Proxmox's `cores` maximum); the node's own count is
/// checked against the hardware profile.
const MAX_CORES: i64 = 128;

/// The smallest memory a Debian VM boots with.
const MIN_MEMORY: u64 = 256 << 20;

/// A size field, at least `min` bytes.
fn size(c: &mut Checker<'_>, field: &str, text: &str, min: u64) -> Option<u64> {
    let bytes = c.parse(field, parse_bytes(text))?;
    if bytes < min {
        c.err(field, format!("`{text}` is less than {} MiB", min >> 20));
        return None;
    }
    Some(bytes)
}

/// A Proxmox storage id (`pve-storage-id`: a letter, then letters, digits, `-`, `_`, `.`).
fn storage_id(c: &mut Checker<'_>, field: &str, s: Option<&String>) -> String {
    let s = s.map_or("local", String::as_str);
    let ok = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        c.err(field, format!("`{s}` is not a Proxmox storage id"));
    }
    s.to_string()
}

fn system_disk(c: &mut Checker<'_>, d: &RawVmDisk) -> Option<VmDisk> {
    let size_bytes = size(c, "disks.system.size", &d.size, 2 << 30)?;
    let storage = storage_id(c, "disks.system.storage", d.storage.as_ref());
    Some(VmDisk {
        size_bytes,
        storage,
    })
}

fn data_disk(c: &mut Checker<'_>, raw: &RawVm) -> Option<VmDataDisk> {
    let d = raw.disks.data.as_ref()?;
    let f = |k: &str| format!("disks.data.{k}");
    let size_bytes = size(c, &f("size"), &d.size, 64 << 20);
    let storage = storage_id(c, &f("storage"), d.storage.as_ref());
    for (k, name, vg) in [
        ("volume-group", &d.volume_group, true),
        ("volume", &d.volume, false),
    ] {
        if !valid_name(name, 63) {
            c.err(f(k), format!("`{name}` is not an LVM name"));
        } else if let Some(why) = lvm_reserved(name, vg) {
            c.err(f(k), why);
        }
    }
    if !matches!(d.filesystem.as_str(), "ext4" | "xfs") {
        c.err(
            f("filesystem"),
            format!("`{}`: the data disk takes ext4 or xfs", d.filesystem),
        );
    }
    let mount_ok = d.mount.starts_with('/')
        && d.mount.len() > 1
        && !d.mount.ends_with('/')
        && d.mount
            .split('/')
            .skip(1)
            .all(|p| !p.is_empty() && p != "." && p != ".." && valid_path_part(p));
    if !mount_ok {
        c.err(
            f("mount"),
            format!("`{}` is not an absolute mount point", d.mount),
        );
    } else if [
        "/", "/boot", "/usr", "/var", "/etc", "/home", "/root", "/tmp",
    ]
    .contains(&d.mount.as_str())
    {
        c.err(
            f("mount"),
            format!("`{}` belongs to the system disk", d.mount),
        );
    }
    Some(VmDataDisk {
        disk: VmDisk {
            size_bytes: size_bytes?,
            storage,
        },
        volume_group: d.volume_group.clone(),
        volume: d.volume.clone(),
        filesystem: d.filesystem.clone(),
        mount: d.mount.clone(),
    })
}

/// A path component of a mount point that lands in fstab and systemd unit names unquoted.
fn valid_path_part(p: &str) -> bool {
    p.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn nic(c: &mut Checker<'_>, i: usize, n: &RawVmNic) -> Option<VmNic> {
    let f = |k: &str| format!("nics[{i}].{k}");
    if !valid_name(&n.bridge, 15) {
        c.err(f("bridge"), format!("`{}` is not a bridge name", n.bridge));
    }
    let mac = c.parse(&f("mac"), parse_mac(&n.mac));
    let ipv4 = n.ipv4.as_ref().and_then(|t| c.ipv4_host(&f("ipv4"), t));
    let ipv4_gateway = n.ipv4_gateway.as_ref().and_then(|t| {
        t.parse::<Ipv4Addr>()
            .map_err(|_| c.err(f("ipv4-gateway"), format!("`{t}` is not an IPv4 address")))
            .ok()
    });
    if ipv4_gateway.is_some() && ipv4.is_none() {
        c.err(f("ipv4-gateway"), "a gateway needs `ipv4` on the same NIC");
    }
    if let (Some(a), Some(g)) = (ipv4, ipv4_gateway) {
        if a.addr() == g {
            c.err(f("ipv4-gateway"), format!("{g} is this VM's own address"));
        }
    }
    let ipv6 = n.ipv6.as_ref().and_then(|t| c.ipv6_host(&f("ipv6"), t));
    if let Some(a) = ipv6 {
        if is_link_local_v6(&a.addr()) {
            c.err(
                f("ipv6"),
                format!("{a} is link-local: put it in `ipv6-link-local`"),
            );
        }
    }
    let ipv6_link_local = n
        .ipv6_link_local
        .as_ref()
        .and_then(|t| c.ipv6_net(&f("ipv6-link-local"), t));
    if let Some(a) = ipv6_link_local {
        if !is_link_local_v6(&a.addr()) {
            c.err(f("ipv6-link-local"), format!("{a} is not in fe80::/10"));
        }
    }
    let ipv6_gateway = n.ipv6_gateway.as_ref().and_then(|t| {
        t.parse::<Ipv6Addr>()
            .map_err(|_| c.err(f("ipv6-gateway"), format!("`{t}` is not an IPv6 address")))
            .ok()
    });
    if ipv6_gateway.is_some() && ipv6.is_none() {
        c.err(f("ipv6-gateway"), "a gateway needs `ipv6` on the same NIC");
    }
    Some(VmNic {
        name: format!("net{i}"),
        bridge: n.bridge.clone(),
        mac: mac?,
        ipv4,
        ipv4_gateway,
        ipv6,
        ipv6_link_local,
        ipv6_gateway,
    })
}

/// At most one default route per family, and at least one address on the VM.
fn routes(c: &mut Checker<'_>, nics: &[VmNic]) {
    for (what, key, n) in [
        (
            "IPv4",
            "ipv4-gateway",
            nics.iter().filter(|n| n.ipv4_gateway.is_some()).count(),
        ),
        (
            "IPv6",
            "ipv6-gateway",
            nics.iter().filter(|n| n.ipv6_gateway.is_some()).count(),
        ),
    ] {
        if n > 1 {
            let last = nics
                .iter()
                .rposition(|n| match key {
                    "ipv4-gateway" => n.ipv4_gateway.is_some(),
                    _ => n.ipv6_gateway.is_some(),
                })
                .unwrap_or(0);
            c.err(
                format!("nics[{last}].{key}"),
                format!("{n} NICs set an {what} gateway; a VM has one default route per family"),
            );
        }
    }
    if !nics.is_empty() && nics.iter().all(|n| n.ipv4.is_none() && n.ipv6.is_none()) {
        c.err(
            "nics",
            "no NIC has an address (a VM takes nothing from DHCP)",
        );
    }
}

/// A VM profile on its own.
pub(crate) fn verify_vm(c: &mut Checker<'_>, name: &str, raw: &RawVm) -> Option<Vm> {
    verify_identity(
        c,
        name,
        Identity {
            hostname: &raw.hostname,
            domain: &raw.domain,
            root_password_hash: &raw.root_password_hash,
            ssh_keys: &raw.ssh_keys,
        },
    );
    if !valid_name(&raw.node, 63) {
        c.err("node", format!("`{}` is not a host profile name", raw.node));
    }
    if !VMID_RANGE.contains(&raw.vmid) {
        c.err(
            "vmid",
            format!("{} is not a Proxmox VM id (100 to 999999999)", raw.vmid),
        );
    }
    if !(1..=MAX_CORES).contains(&raw.cores) {
        c.err(
            "cores",
            format!("{} is not 1 to {MAX_CORES} cores", raw.cores),
        );
    }
    let memory = size(c, "memory", &raw.memory, MIN_MEMORY);
    for (i, r) in raw.roles.iter().enumerate() {
        if !valid_name(r, 32) {
            c.err(format!("roles[{i}]"), format!("`{r}` is not a role name"));
        }
    }
    if raw.ssh_keys.is_empty() {
        c.err(
            "ssh-keys",
            "a VM needs at least one admin key (it has no console password login over ssh)",
        );
    }
    let nameservers = verify_nameservers(c, "nameservers", &raw.nameservers);
    let system_disk = system_disk(c, &raw.disks.system);
    let data_disk = data_disk(c, raw);
    if raw.nics.is_empty() {
        c.err("nics", "a VM needs at least one NIC");
    }
    let nics: Vec<VmNic> = raw
        .nics
        .iter()
        .enumerate()
        .filter_map(|(i, n)| nic(c, i, n))
        .collect();
    routes(c, &nics);
    if nics.len() != raw.nics.len() || (raw.disks.data.is_some() && data_disk.is_none()) {
        return None;
    }
    Some(Vm {
        name: name.to_string(),
        hostname: raw.hostname.clone(),
        domain: raw.domain.clone(),
        node: raw.node.clone(),
        vmid: u32::try_from(raw.vmid).ok()?,
        cores: u32::try_from(raw.cores).ok()?,
        memory_bytes: memory?,
        roles: raw.roles.clone(),
        root_password_hash: raw.root_password_hash.clone(),
        ssh_keys: raw.ssh_keys.clone(),
        nameservers,
        system_disk: system_disk?,
        data_disk,
        nics,
    })
}
