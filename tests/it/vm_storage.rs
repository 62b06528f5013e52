//! QEMU tier: the rendered first-boot storage script builds a real md2 mirror, the `backup`
//! volume group and the /SAVE volume inside a Debian guest (this host's kernel has no md
//! driver), refuses to touch a disk that holds data, is idempotent, and the rendered
//! mdadm.conf reassembles the array by its pre-computed UUID.
//!
//! The profile is the shipped one with the /SAVE volume scaled down to fit 1 GiB test disks
//! (the same scaling the install test applies); sizes the guest checks come from the plan.

use crate::common;

use std::time::{Duration, Instant};

use common::require;
use picaboot::profile::Stage;
use picaboot::qemu::guest::{self, GuestRecipe};
use picaboot::qemu::vm::{Bus, Disk, VmSpec};
use picaboot::qemu::{Accel, Report};

const SCENARIO: &str = r#"#!/bin/sh
# Runs inside the guest; prints PICABOOT-CHECK lines. Disks: vdc, vdd blank members; vde holds
# an ext4 filesystem (data that must never be touched).
set -u
export DM_DISABLE_UDEV=1  # no udevd in the test guest
check() { # check NAME CONDITION-RESULT DETAIL
	if [ "$2" = 0 ]; then echo "PICABOOT-CHECK $1 PASS $3"; else echo "PICABOOT-CHECK $1 FAIL $3"; fi
}
mkdir -p /etc/mdadm /usr/local/sbin
cp /scenario/mdadm.conf /etc/mdadm/mdadm.conf
cp /scenario/picaboot-storage-setup /usr/local/sbin/picaboot-storage-setup
chmod 0755 /usr/local/sbin/picaboot-storage-setup
: > /etc/fstab
modprobe raid1; modprobe dm_mod
uuid=$(sed -n 's/^ARRAY .* UUID=\([^ ]*\) .*/\1/p' /etc/mdadm/mdadm.conf)

# A disk holding data is refused, and left as it was.
picaboot-storage-setup /dev/vde /dev/vdc > /tmp/refuse.log 2>&1
rc=$?
[ "$rc" != 0 ] && [ "$(blkid -o value -s TYPE /dev/vde)" = ext4 ] && [ -z "$(wipefs -n /dev/vdc)" ]
check refuses-disk-with-data $? "rc=$rc $(tail -1 /tmp/refuse.log)"

picaboot-storage-setup /dev/vdc /dev/vdd > /tmp/setup.log 2>&1
rc=$?
check setup-exit "$rc" "rc=$rc $(tail -1 /tmp/setup.log | tr -d '\n')"
mdadm --wait /dev/md2 >/dev/null 2>&1
grep -A1 '^md2 ' /proc/mdstat | grep -q '\[2/2\] \[UU\]'
check md2-in-sync $? "$(grep -A1 '^md2 ' /proc/mdstat | tr -s ' \n' ' ')"
mdadm --detail /dev/md2 | grep -q "UUID : $uuid"
check md2-uuid-as-rendered $? "want $uuid"
mdadm --detail /dev/md2 | grep -q "Raid Level : raid1"
check md2-raid1 $? ""
size=$(lvs --noheadings --units b --nosuffix -o lv_size backup/save 2>/dev/null | tr -d ' ')
[ "$size" = "@SAVE_BYTES@" ]
check save-size $? "got $size want @SAVE_BYTES@"
[ "$(findmnt -no FSTYPE /SAVE)" = ext4 ]
check save-mounted $? "$(findmnt -no SOURCE,FSTYPE /SAVE | tr -s ' ' ' ')"
[ "$(grep -c ' /SAVE ' /etc/fstab)" = 1 ]
check fstab-entry $? "$(grep ' /SAVE ' /etc/fstab)"

echo keep > /SAVE/marker
picaboot-storage-setup /dev/vdc /dev/vdd > /tmp/again.log 2>&1
rc=$?
[ "$rc" = 0 ] && [ "$(grep -c ' /SAVE ' /etc/fstab)" = 1 ] && [ "$(cat /SAVE/marker)" = keep ]
check idempotent $? "rc=$rc"

umount /SAVE && vgchange -an backup >/dev/null && mdadm --stop /dev/md2 >/dev/null 2>&1
check stopped $? ""
mdadm --assemble --scan --config=/etc/mdadm/mdadm.conf > /tmp/assemble.log 2>&1
mdadm --detail /dev/md2 2>/dev/null | grep -q "UUID : $uuid"
check reassembled-from-mdadm.conf $? "$(tr -s '\n' ' ' < /tmp/assemble.log)"
exit 0
"#;

#[test]
fn first_boot_storage_script_builds_md2_and_save_in_a_vm() {
    for (p, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("debootstrap", "debootstrap"),
        ("mkfs.ext4", "e2fsprogs"),
    ] {
        require(p, pkg);
    }
    let mirror = common::mirror();
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    common::edit(
        &profiles.join("hosts/alice.toml"),
        "size = \"200GiB\"",
        "size = \"256MiB\"",
    );
    let (keep, out) = common::render_all(&profiles);
    let project = picaboot::project::open(&profiles).unwrap();
    let plan = &project.plans["alice"];
    let save = plan
        .volumes_at(Stage::FirstBoot)
        .find(|v| v.name == "save")
        .unwrap();
    let suite = project.loaded.profiles.hosts["alice"].install.suite.clone();

    let recipe = GuestRecipe {
        suite,
        mirror,
        packages: ["mdadm", "lvm2", "gdisk", "util-linux", "e2fsprogs"]
            .map(String::from)
            .to_vec(),
        image_mib: 1024,
    };
    let g = guest::build(&recipe, &guest::cache_root()).expect("build the test guest");

    let work = keep.path();
    let scen = work.join("scenario");
    std::fs::create_dir_all(&scen).unwrap();
    std::fs::write(
        scen.join("run"),
        SCENARIO.replace("@SAVE_BYTES@", &save.size.to_string()),
    )
    .unwrap();
    let tree = out.join("alice/rootfs");
    std::fs::copy(tree.join("etc/mdadm/mdadm.conf"), scen.join("mdadm.conf")).unwrap();
    std::fs::copy(
        tree.join("usr/local/sbin/picaboot-storage-setup"),
        scen.join("picaboot-storage-setup"),
    )
    .unwrap();
    guest::scenario_disk(&scen, &work.join("scenario.img")).unwrap();
    for d in ["hdd0.img", "hdd1.img"] {
        guest::sparse_disk(&work.join(d), 1 << 30).unwrap();
    }
    let data = work.join("data.img");
    guest::sparse_disk(&data, 64 << 20).unwrap();
    common::run_ok(common::cmd("mkfs.ext4").args(["-q", "-F"]).arg(&data));

    let disk = |path: std::path::PathBuf, read_only: bool, snapshot: bool, serial: &str| Disk {
        path,
        bus: Bus::Virtio,
        serial: Some(serial.to_string()),
        read_only,
        snapshot,
        model: None,
        bootindex: None,
    };
    let (accel, why) = Accel::detect(&g.kernel);
    eprintln!("accelerator: {why}");
    let spec = VmSpec {
        name: "storage".into(),
        accel,
        cpus: 2,
        memory_mib: 1024,
        kernel: Some(g.kernel.clone()),
        initrd: Some(g.initrd.clone()),
        append: "console=ttyS0 root=/dev/vda rw init=/usr/local/sbin/picaboot-guest-init panic=-1 loglevel=4".into(),
        disks: vec![
            disk(g.root.clone(), false, true, "ROOT"),
            disk(work.join("scenario.img"), true, false, "SCENARIO"),
            disk(work.join("hdd0.img"), false, false, "HDD0"),
            disk(work.join("hdd1.img"), false, false, "HDD1"),
            disk(data, false, false, "DATA"),
        ],
        console: work.join("console.log"),
        reboot: false,
        extra_args: Vec::new(),
    };
    let start = Instant::now();
    let mut vm = spec.start().expect("start qemu");
    let outcome = vm.wait_for("PICABOOT-DONE", Duration::from_secs(600), |_| {});
    vm.wait_exit(Duration::from_secs(20));
    let console = vm.console();
    let report = Report::parse(&console);
    let junit = common::root().join("target/junit-vm-storage.xml");
    std::fs::write(
        &junit,
        report.junit("vm-storage", start.elapsed().as_secs_f64()),
    )
    .unwrap();
    eprintln!(
        "storage VM: {:?} in {:.0} s",
        outcome,
        start.elapsed().as_secs_f64()
    );
    for c in &report.checks {
        eprintln!(
            "  {} {} {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    assert!(
        report.passed(),
        "failed checks: {:?}\nconsole tail:\n{}",
        report.failures(),
        console
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(report.checks.len() >= 10, "every check ran");
}
