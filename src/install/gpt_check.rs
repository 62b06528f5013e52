//! The SSDs' partition tables read from the host (the `gpt` crate) after the install and
//! before any boot, compared with the storage plan: a wrong layout is named before booting.

use std::path::Path;

use crate::storage::{DiskPlan, PartitionKind};

/// GPT type GUID of a BIOS boot partition.
const BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
/// GPT type GUID of a Linux RAID member.
const LINUX_RAID: &str = "A19D880F-05FC-4D3B-A006-743F0F84911E";

/// Compares the GPT of `image` with `plan`; `Ok(summary)` or `Err(what differs)`.
pub fn check(image: &Path, plan: &DiskPlan) -> Result<String, String> {
    let disk = gpt::GptConfig::new()
        .writable(false)
        .open(image)
        .map_err(|e| format!("{}: no readable GPT: {e}", image.display()))?;
    let lb: u64 = match disk.logical_block_size() {
        gpt::disk::LogicalBlockSize::Lb512 => 512,
        gpt::disk::LogicalBlockSize::Lb4096 => 4096,
    };
    let parts = disk.partitions();
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    if parts.len() != plan.partitions.len() {
        problems.push(format!(
            "{} partitions, the plan has {}",
            parts.len(),
            plan.partitions.len()
        ));
    }
    for p in &plan.partitions {
        let Some(got) = parts.get(&p.number) else {
            problems.push(format!("partition {} is missing", p.number));
            continue;
        };
        let guid = got.part_type_guid.guid.to_string().to_uppercase();
        let (want, what) = match &p.kind {
            PartitionKind::BiosGrub => (BIOS_BOOT, "BIOS boot".to_string()),
            PartitionKind::Raid { array } => (LINUX_RAID, format!("Linux RAID ({array})")),
        };
        if guid != want {
            problems.push(format!(
                "partition {} has type {guid}, the plan wants {what} ({want})",
                p.number
            ));
        }
        let size = (got.last_lba - got.first_lba + 1) * lb;
        // partman sizes in MB (10^6) and aligns to 1 MiB; `rest` takes what is left.
        let ok = if p.rest {
            size >= p.size / 10 * 9 && size <= p.size + (8 << 20)
        } else {
            size + (2 << 20) >= p.size && size <= p.size + p.size / 20 + (2 << 20)
        };
        if !ok {
            problems.push(format!(
                "partition {} is {} MiB, the plan has {} MiB{}",
                p.number,
                size >> 20,
                p.size >> 20,
                if p.rest { " (rest)" } else { "" }
            ));
        }
        summary.push(format!("{}:{what}:{}MiB", p.number, size >> 20));
    }
    if let Some(first) = parts.get(&1) {
        let first_plan = plan.partitions.first();
        if first_plan.is_some_and(|p| matches!(p.kind, PartitionKind::BiosGrub))
            && first.part_type_guid.guid.to_string().to_uppercase() != BIOS_BOOT
        {
            problems.push("the first partition is not the BIOS boot partition".into());
        }
    }
    if problems.is_empty() {
        Ok(summary.join(" "))
    } else {
        Err(problems.join("; "))
    }
}
