//! `picaboot-find-disks` (the rendered script that finds the profile's disks by identity in the
//! installer and on the installed system) run by a real shell over a fake `/sys/block` in a
//! private mount namespace: shuffled controller order, a missing disk, one disk too many, a
//! removable stick, pinned serials, `--allow-missing`. Each expectation is computed from the
//! fake disks set up here, never from the script's own output.

use crate::common;

use std::path::Path;

use common::{cmd, require};

/// A fake block device.
struct Fake {
    name: &'static str,
    rotational: bool,
    bytes: u64,
    model: &'static str,
    serial: &'static str,
    removable: bool,
}

const SSD: u64 = 480103981056;
const HDD: u64 = 2000398934016;

fn fake(name: &'static str, rotational: bool, bytes: u64, serial: &'static str) -> Fake {
    Fake {
        name,
        rotational,
        bytes,
        model: if rotational {
            "WDC WD20EFRX-68E"
        } else {
            "SanDisk SDSSDHII480G"
        },
        serial,
        removable: false,
    }
}

/// Runs `script ARGS` with `/sys/block` replaced by the fakes; (exit code, stdout, stderr).
fn run(script: &Path, disks: &[Fake], args: &str) -> (i32, String, String) {
    let mut setup = String::from("set -e\nmount -t tmpfs fake /sys/block\n");
    for d in disks {
        let b = format!("/sys/block/{}", d.name);
        setup.push_str(&format!(
            "mkdir -p {b}/queue {b}/device\necho {} > {b}/removable\necho {} > {b}/queue/rotational\necho {} > {b}/size\necho '{}  ' > {b}/device/model\necho '{}' > {b}/device/serial\n",
            u8::from(d.removable),
            u8::from(d.rotational),
            d.bytes / 512,
            d.model,
            d.serial
        ));
    }
    // No udev for the fakes: a `udevadm` that knows nothing, so the script falls back to the
    // serial in sysfs (the host's real udev would describe the host's real disks).
    let bin = tempfile::tempdir().unwrap();
    std::fs::write(bin.path().join("udevadm"), "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(
        bin.path().join("udevadm"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    setup.push_str(&format!(
        "set +e\nPATH={}:$PATH sh {} {args}\n",
        bin.path().display(),
        script.display()
    ));
    let o = cmd("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &setup])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn script(profiles: &Path, out: &Path) -> std::path::PathBuf {
    let o = common::picaboot(
        profiles.parent().unwrap(),
        &[
            "render",
            "alice",
            "--profiles",
            profiles.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.join("alice/rootfs/usr/local/sbin/picaboot-find-disks")
}

#[test]
fn disks_are_found_by_identity_whatever_their_names() {
    require("unshare", "util-linux");
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let out = tempfile::tempdir().unwrap();
    let s = script(&profiles, out.path());

    // HDDs first on the controller: sda/sdb are the HDDs, sdc/sdd the SSDs.
    let shuffled = [
        fake("sda", true, HDD, "WD-H1"),
        fake("sdb", true, HDD, "WD-H2"),
        fake("sdc", false, SSD, "SD-S2"),
        fake("sdd", false, SSD, "SD-S1"),
    ];
    let (code, stdout, stderr) = run(&s, &shuffled, "");
    assert_eq!(code, 0, "{stderr}");
    // Unpinned disks of one kind are taken in serial order.
    assert_eq!(
        stdout,
        "ssd0 /dev/sdd SD-S1\nssd1 /dev/sdc SD-S2\nhdd0 /dev/sda WD-H1\nhdd1 /dev/sdb WD-H2\n"
    );

    // A removable stick of an SSD's size is ignored.
    let mut with_stick: Vec<Fake> = shuffled
        .iter()
        .map(|f| fake(f.name, f.rotational, f.bytes, f.serial))
        .collect();
    with_stick.push(Fake {
        removable: true,
        ..fake("sde", false, SSD, "STICK")
    });
    let (code, stdout2, _) = run(&s, &with_stick, "");
    assert_eq!((code, stdout2), (0, stdout.clone()));

    // One SSD gone: the install stops naming it; --allow-missing reports it absent.
    let three = [
        fake("sda", true, HDD, "WD-H1"),
        fake("sdb", true, HDD, "WD-H2"),
        fake("sdc", false, SSD, "SD-S2"),
    ];
    let (code, _, stderr) = run(&s, &three, "");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("disk ssd1 (SSD, 480.1 GB) matches none"),
        "{stderr}"
    );
    let (code, stdout, _) = run(&s, &three, "--allow-missing");
    assert_eq!(code, 0);
    assert!(
        stdout.contains("ssd0 /dev/sdc SD-S2\nssd1 - -\n"),
        "{stdout}"
    );

    // A third SSD: which two are Alice's is ambiguous, so nothing is chosen.
    let mut five: Vec<Fake> = shuffled
        .iter()
        .map(|f| fake(f.name, f.rotational, f.bytes, f.serial))
        .collect();
    five.push(fake("sde", false, SSD, "SD-S3"));
    let (code, _, stderr) = run(&s, &five, "");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("more disks match ssd0 ssd1 (SSD, 480.1 GB) than the profile has: sde"),
        "{stderr}"
    );

    // A disk of another size (a 1 TB SSD) does not count as one of the profile's.
    let wrong = [
        fake("sda", true, HDD, "WD-H1"),
        fake("sdb", true, HDD, "WD-H2"),
        fake("sdc", false, SSD, "SD-S2"),
        fake("sdd", false, 1_000_204_886_016, "SD-BIG"),
    ];
    let (code, _, stderr) = run(&s, &wrong, "");
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn pinned_serials_decide_and_a_wrong_serial_stops() {
    require("unshare", "util-linux");
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let host = profiles.join("hosts/alice.toml");
    let text = std::fs::read_to_string(&host).unwrap();
    // Pinned in the reverse of serial order: the pins win.
    std::fs::write(
        &host,
        format!("{text}\n[disk-serials]\nssd0 = \"SD-S2\"\nssd1 = \"SD-S1\"\n"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let s = script(&profiles, out.path());
    let disks = [
        fake("sda", false, SSD, "SD-S1"),
        fake("sdb", false, SSD, "SD-S2"),
        fake("sdc", true, HDD, "WD-H1"),
        fake("sdd", true, HDD, "WD-H2"),
    ];
    let (code, stdout, stderr) = run(&s, &disks, "");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("ssd0 /dev/sdb SD-S2\nssd1 /dev/sda SD-S1\n"),
        "{stdout}"
    );
    let swapped = [
        fake("sda", false, SSD, "SD-S1"),
        fake("sdb", false, SSD, "OTHER"),
        fake("sdc", true, HDD, "WD-H1"),
        fake("sdd", true, HDD, "WD-H2"),
    ];
    let (code, _, stderr) = run(&s, &swapped, "");
    assert_eq!(code, 1);
    assert!(stderr.contains("disk ssd0"), "{stderr}");
}
