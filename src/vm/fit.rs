//! Do a node's VMs fit it? Cores per VM against the node's CPU, the sum of memory against
//! its RAM (less what the node keeps), the sum of disks against the storage they live on
//! (`local`: the node's volume mounted on /var/lib/vz, as planned).

use std::collections::BTreeMap;

use crate::profile::{Diagnostics, Loaded, Vm};
use crate::storage::Plan;

/// Memory the node keeps for itself (Proxmox's daemons, page cache): Proxmox's admin guide
/// asks for 2 GiB for the OS and its services beside the guests' memory.
pub const NODE_MEMORY_RESERVE: u64 = 2 << 30;

/// Where Proxmox's `local` storage keeps VM disks on a node installed by picaboot.
pub const LOCAL_STORAGE_PATH: &str = "/var/lib/vz";

/// `n` bytes in GiB, one decimal when needed.
pub fn gib(n: u64) -> String {
    let g = n as f64 / (1u64 << 30) as f64;
    if (g - g.round()).abs() < 0.05 {
        format!("{:.0} GiB", g)
    } else {
        format!("{g:.1} GiB")
    }
}

/// `pica01 8 GiB, admin 4 GiB`.
fn shares(vms: &[&Vm], size: impl Fn(&Vm) -> u64) -> String {
    vms.iter()
        .map(|v| format!("{} {}", v.name, gib(size(v))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Records a problem for every node whose VMs do not fit it.
///
/// `disks`: whether the node's disks are the profile's (not resized for a test VM), so that
/// the VMs' disks are compared with its `/var/lib/vz`.
pub fn verify(
    loaded: &Loaded,
    plans: &BTreeMap<String, Plan>,
    disks: bool,
    diags: &mut Diagnostics,
) {
    let p = &loaded.profiles;
    for (node, host) in &p.hosts {
        let vms: Vec<&Vm> = p.vms_on(node).collect();
        let Some(last) = vms.last() else { continue };
        let Some(hw) = p.hardware.get(&host.hardware) else {
            continue;
        };
        let src = |v: &Vm| &loaded.vm_sources[&v.name];
        for v in &vms {
            if v.cores > hw.cpu_cores {
                diags.push(src(v).diag(
                    "cores",
                    format!(
                        "{} cores: `{node}` has {} ({})",
                        v.cores, hw.cpu_cores, hw.cpu
                    ),
                ));
            }
            for (k, storage) in [
                ("disks.system.storage", Some(&v.system_disk.storage)),
                (
                    "disks.data.storage",
                    v.data_disk.as_ref().map(|d| &d.disk.storage),
                ),
            ] {
                if let Some(s) = storage.filter(|s| *s != "local") {
                    diags.push(src(v).diag(
                        k,
                        format!("`{s}`: the nodes picaboot installs have `local` ({LOCAL_STORAGE_PATH}) only"),
                    ));
                }
            }
        }
        let memory: u64 = vms.iter().map(|v| v.memory_bytes).sum();
        let ram = u64::from(hw.memory_gib) << 30;
        if memory + NODE_MEMORY_RESERVE > ram {
            diags.push(src(last).diag(
                "memory",
                format!(
                    "the VMs on `{node}` ask {} ({}), more than its {} less {} kept for the node",
                    gib(memory),
                    shares(&vms, |v| v.memory_bytes),
                    gib(ram),
                    gib(NODE_MEMORY_RESERVE)
                ),
            ));
        }
        let room = plans.get(node).and_then(|plan| {
            plan.volumes
                .iter()
                .find(|v| v.mount.as_deref() == Some(LOCAL_STORAGE_PATH))
                .map(|v| v.size)
        });
        if !disks {
            continue;
        }
        let asked: u64 = vms.iter().map(|v| v.disk_bytes()).sum();
        match room {
            None => diags.push(src(last).diag(
                "disks",
                format!("`{node}` has no volume mounted on {LOCAL_STORAGE_PATH} (Proxmox's `local` storage) for the VMs' disks"),
            )),
            Some(room) if asked > room => diags.push(src(last).diag(
                "disks",
                format!(
                    "the VMs on `{node}` ask {} of disk ({}), more than the {} of its {LOCAL_STORAGE_PATH}",
                    gib(asked),
                    shares(&vms, Vm::disk_bytes),
                    gib(room)
                ),
            )),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::project::open_with;

    fn profiles() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
    }

    /// `test install` scales the SSDs down to 8 GiB: the VMs' disks are not compared with that
    /// /var/lib/vz (the install proof failed to start before). Fixtures 61 and 62 show the
    /// memory and disk checks firing on the profiles as they are.
    #[test]
    fn scaled_test_disks_skip_the_disk_fit() {
        // The overrides `test install alice` uses (its default shape).
        let loaded = crate::profile::load(&profiles()).unwrap();
        let alice = &loaded.profiles.hosts["alice"];
        let (_, scaled) =
            crate::install::shape::shape(alice, &crate::install::shape::Shape::default()).unwrap();
        open_with(&profiles(), &scaled).expect("the install proof's project opens");
    }
}
