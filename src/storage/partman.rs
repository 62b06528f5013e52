//! The storage plan as debian-installer (partman) preseed values: an expert recipe for the
//! install-time disks (bios_grub + RAID members + logical volumes), the partman-auto-raid recipe
//! and the volume group name.

use serde::Serialize;

use super::{PartitionKind, Plan, PlanError, MIB};
use crate::profile::{ArrayContent, Stage};

/// partman's megabyte (10^6 bytes), rounded up.
fn mb(bytes: u64) -> u64 {
    bytes.div_ceil(1_000_000)
}

/// Everything the preseed's partitioning section needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartmanRecipe {
    /// `partman-auto/disk`: the install-time disks, space separated.
    pub disks: String,
    /// Lines of `partman-auto/expert_recipe` (joined with ` \` by the template).
    pub expert_recipe: Vec<String>,
    /// Lines of `partman-auto-raid/recipe`.
    pub raid_recipe: Vec<String>,
    /// `partman-auto-lvm/new_vg_name`.
    pub volume_group: Option<String>,
    /// Devices GRUB is installed on (`grub-installer/bootdev`).
    pub grub_devices: String,
}

/// Builds the partman values for the install-time part of a plan.
pub fn recipe(plan: &Plan) -> Result<PartmanRecipe, PlanError> {
    let disks: Vec<_> = plan.disks.iter().filter(|d| d.at_install).collect();
    let mut expert = vec!["picaboot ::".to_string()];
    // Every install disk has the same partition sequence (RAID1 members mirror each other);
    // the recipe describes one disk and partman applies it to each.
    let first = disks.first().ok_or_else(|| PlanError {
        field: "storage.arrays".into(),
        reason: "no array is created by the installer".into(),
    })?;
    for d in &disks[1..] {
        let shape = |p: &super::Partition| (p.size / MIB, p.rest, p.kind.clone());
        let a: Vec<_> = first.partitions.iter().map(shape).collect();
        let b: Vec<_> = d.partitions.iter().map(shape).collect();
        let same_fixed = a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| x.2 == y.2 && x.1 == y.1 && (x.1 || x.0 == y.0));
        if !same_fixed {
            return Err(PlanError {
                field: "storage.arrays".into(),
                reason: format!(
                    "disks `{}` and `{}` need different partitions; the installer's recipe applies one layout to every install disk",
                    first.id, d.id
                ),
            });
        }
    }
    for p in &first.partitions {
        match &p.kind {
            PartitionKind::BiosGrub => expert.push(
                "1 1 1 free $iflabel{ gpt } $reusemethod{ } method{ biosgrub } .".to_string(),
            ),
            PartitionKind::Raid { .. } => {
                let line = if p.rest {
                    "1000 20 -1 raid $primary{ } $lvmignore{ } method{ raid } .".to_string()
                } else {
                    let s = mb(p.size);
                    format!("{s} 10 {s} raid $primary{{ }} $lvmignore{{ }} method{{ raid }} .")
                };
                expert.push(line);
            }
        }
    }
    let mut vg = None;
    for v in plan.volumes_at(Stage::Install) {
        if vg.as_ref().is_some_and(|g| g != &v.group) {
            return Err(PlanError {
                field: "storage.volumes".into(),
                reason:
                    "the installer creates one volume group; move the others to first-boot arrays"
                        .into(),
            });
        }
        vg = Some(v.group.clone());
        let (min, max) = if v.rest {
            ("1000".to_string(), "-1".to_string())
        } else {
            (mb(v.size).to_string(), mb(v.size).to_string())
        };
        let prio = if v.rest { 100 } else { 50 };
        let line = if v.filesystem == "swap" {
            format!(
                "{min} {prio} {max} linux-swap $defaultignore{{ }} $lvmok{{ }} in_vg{{ {g} }} lv_name{{ {n} }} method{{ swap }} format{{ }} .",
                g = v.group,
                n = v.name
            )
        } else {
            format!(
                "{min} {prio} {max} {fs} $defaultignore{{ }} $lvmok{{ }} in_vg{{ {g} }} lv_name{{ {n} }} method{{ format }} format{{ }} use_filesystem{{ }} filesystem{{ {fs} }} mountpoint{{ {m} }} .",
                fs = v.filesystem,
                g = v.group,
                n = v.name,
                m = v.mount.as_deref().unwrap_or("/")
            )
        };
        expert.push(line);
    }
    let mut raid = Vec::new();
    for a in plan.arrays_at(Stage::Install) {
        let members: Vec<_> = a
            .members
            .iter()
            .map(|m| m.partition_device.clone())
            .collect();
        let (fs, mount) = match &a.content {
            ArrayContent::Filesystem { fs, mount } => (fs.clone(), mount.clone()),
            ArrayContent::VolumeGroup(_) => ("lvm".to_string(), "-".to_string()),
        };
        raid.push(format!(
            "{} {} 0 {fs} {mount} {} .",
            a.level,
            members.len(),
            members.join("#")
        ));
    }
    Ok(PartmanRecipe {
        disks: disks
            .iter()
            .map(|d| d.device.clone())
            .collect::<Vec<_>>()
            .join(" "),
        expert_recipe: expert,
        raid_recipe: raid,
        volume_group: vg,
        grub_devices: plan
            .disks
            .iter()
            .filter(|d| d.boot)
            .map(|d| d.device.clone())
            .collect::<Vec<_>>()
            .join(" "),
    })
}
