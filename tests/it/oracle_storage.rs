//! The storage plan and mdadm.conf judged by the real tools: sgdisk lays the planned partitions
//! on sparse images of the real disk sizes (it refuses any that overlap or do not fit) and
//! sfdisk reads them back; mdadm parses the rendered mdadm.conf without a complaint.
//! (Building md2 itself needs the kernel's md driver, which the CI host kernel lacks.)

use crate::common;

use common::{cmd, require, run_ok};
use picaboot::storage::PartitionKind;

const SECTOR: u64 = 512;

#[test]
fn sgdisk_accepts_the_planned_partitions_on_disks_of_the_real_size() {
    require("sgdisk", "gdisk");
    require("sfdisk", "fdisk");
    let scratch = common::scratch_profiles();
    let project = picaboot::project::open(&scratch.path().join("profiles")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (host, plan) in &project.plans {
        for disk in &plan.disks {
            let img = tmp.path().join(format!("{host}-{}.img", disk.id));
            let f = std::fs::File::create(&img).unwrap();
            f.set_len(disk.size_bytes).unwrap(); // sparse
            let mut c = cmd("sgdisk");
            c.arg("--clear");
            for p in &disk.partitions {
                let first = p.start / SECTOR;
                let last = (p.start + p.size) / SECTOR - 1;
                let code = match p.kind {
                    PartitionKind::BiosGrub => "EF02",
                    PartitionKind::Raid { .. } => "FD00",
                };
                c.arg(format!("--new={}:{first}:{last}", p.number));
                c.arg(format!("--typecode={}:{code}", p.number));
            }
            run_ok(c.arg(&img));
            let verify = run_ok(cmd("sgdisk").arg("--verify").arg(&img));
            assert!(
                verify.contains("No problems found"),
                "{host}/{}: {verify}",
                disk.id
            );
            let table: serde_json::Value =
                serde_json::from_str(&run_ok(cmd("sfdisk").arg("--json").arg(&img))).unwrap();
            let parts = table["partitiontable"]["partitions"].as_array().unwrap();
            assert_eq!(parts.len(), disk.partitions.len(), "{host}/{}", disk.id);
            for (got, want) in parts.iter().zip(&disk.partitions) {
                assert_eq!(
                    got["start"].as_u64().unwrap() * SECTOR,
                    want.start,
                    "{host}/{} start",
                    disk.id
                );
                assert_eq!(
                    got["size"].as_u64().unwrap() * SECTOR,
                    want.size,
                    "{host}/{} size",
                    disk.id
                );
                let guid = got["type"].as_str().unwrap();
                let expected = match want.kind {
                    PartitionKind::BiosGrub => "21686148-6449-6E6F-744E-656564454649",
                    PartitionKind::Raid { .. } => "A19D880F-05FC-4D3B-A006-743F0F84911E",
                };
                assert_eq!(
                    guid, expected,
                    "{host}/{} partition {}",
                    disk.id, want.number
                );
            }
            if disk.boot {
                assert!(matches!(disk.partitions[0].kind, PartitionKind::BiosGrub));
                assert_eq!(disk.partitions[0].size, 1 << 20);
            }
            std::fs::remove_file(&img).unwrap();
        }
    }
}

fn mdadm_complaints(conf: &std::path::Path) -> Vec<String> {
    let out = cmd("mdadm")
        .args(["--assemble", "--scan", "--verbose", "--config"])
        .arg(conf)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| {
            !(l.starts_with("mdadm: looking for devices for")
                || l.starts_with("mdadm: cannot open device")
                || l.starts_with("mdadm: no recogniseable superblock")
                || l.starts_with("mdadm: No arrays found")
                || l.contains("has wrong uuid")
                || l.contains("is not one of"))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn mdadm_parses_the_rendered_config() {
    require("mdadm", "mdadm");
    let scratch = common::scratch_profiles();
    let (keep, out) = common::render_all(&scratch.path().join("profiles"));
    let project = picaboot::project::open(&scratch.path().join("profiles")).unwrap();
    for host in ["alice", "bob"] {
        let conf = out.join(host).join("rootfs/etc/mdadm/mdadm.conf");
        assert_eq!(mdadm_complaints(&conf), Vec::<String>::new(), "{host}");
        let text = std::fs::read_to_string(&conf).unwrap();
        for a in project.plans[host]
            .arrays
            .iter()
            .filter(|a| a.uuid.is_some())
        {
            let line = format!(
                "ARRAY {} metadata=1.2 UUID={} name={}",
                a.device,
                a.uuid.as_ref().unwrap(),
                a.md_name
            );
            assert!(text.contains(&line), "{host}: {line}");
        }
    }
    // The oracle can fail: a damaged line is reported.
    let bad = keep.path().join("bad.conf");
    std::fs::write(&bad, "ARRAY /dev/md2 metadata=1.2 UUID=zz name=alice:2\n").unwrap();
    assert!(!mdadm_complaints(&bad).is_empty());
    // Two hosts never share an array UUID.
    let uuid = |h: &str| {
        project.plans[h]
            .arrays
            .iter()
            .find_map(|a| a.uuid.clone())
            .unwrap()
    };
    assert_ne!(uuid("alice"), uuid("bob"));
}

/// `boot-disks` naming one SSD of the RAID1 pair (GRUB on that disk only) is a profile the
/// installer can run: partman applies one layout to both members, so both keep the BIOS boot
/// partition; GRUB's install devices name the boot disk alone (the install proof's degraded
/// boot is what shows such a box cannot start without it).
#[test]
fn grub_on_one_ssd_keeps_the_boot_area_on_both_and_names_one_bootdev() {
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    common::edit(
        &profiles.join("hosts/alice.toml"),
        r#"boot-disks = ["ssd0", "ssd1"]"#,
        r#"boot-disks = ["ssd0"]"#,
    );
    let project = picaboot::project::open(&profiles).unwrap();
    let plan = &project.plans["alice"];
    for id in ["ssd0", "ssd1"] {
        let d = plan.disks.iter().find(|d| d.id == id).unwrap();
        assert!(
            matches!(d.partitions[0].kind, PartitionKind::BiosGrub),
            "{id}: {:?}",
            d.partitions
        );
        assert_eq!(d.boot, id == "ssd0", "{id}");
    }
    let recipe = picaboot::storage::partman::recipe(plan).unwrap();
    let ssd0 = &plan.disks.iter().find(|d| d.id == "ssd0").unwrap().device;
    assert_eq!(recipe.grub_devices, *ssd0);
}
