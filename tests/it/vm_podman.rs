//! QEMU tier for image tests: a tiny OCI image (busybox, made with umoci) runs under podman in
//! the Debian test guest, its check passes, and a check that cannot pass is reported as a
//! failure naming the image — the machinery `image test` uses for the tx-* family.

use crate::common;

use common::{cmd, require, run_ok};
use picaboot::qemu::podman::{self, ImageUnderTest};

fn busybox_archive(dir: &std::path::Path) -> std::path::PathBuf {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let l = format!("{}:t", layout.display());
    run_ok(cmd("umoci").args(["init", "--layout"]).arg(&layout));
    run_ok(cmd("umoci").args(["new", "--image", &l]));
    run_ok(
        cmd("umoci")
            .args(["unpack", "--rootless", "--image", &l])
            .arg(&bundle),
    );
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("sh")).unwrap();
    run_ok(cmd("umoci").args(["repack", "--image", &l]).arg(&bundle));
    run_ok(cmd("umoci").args([
        "config",
        "--image",
        &l,
        "--config.cmd",
        "/bin/busybox",
        "--config.cmd",
        "sleep",
        "--config.cmd",
        "3600",
    ]));
    let archive = dir.join("busybox.tar");
    run_ok(
        cmd("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&archive)
            .arg("."),
    );
    archive
}

#[test]
fn images_run_under_podman_in_the_guest_and_failing_checks_are_named() {
    for (p, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("debootstrap", "debootstrap"),
        ("umoci", "umoci"),
        ("busybox", "busybox-static"),
    ] {
        require(p, pkg);
    }
    let work = tempfile::tempdir().unwrap();
    let archive = busybox_archive(work.path());
    let images = vec![
        ImageUnderTest {
            name: "tiny".into(),
            archive: archive.clone(),
            check: "/bin/busybox echo hello | /bin/busybox grep -q hello".into(),
            timeout_s: 20,
            nofile: 1024,
        },
        ImageUnderTest {
            name: "broken".into(),
            archive,
            check: "/bin/busybox test -e /no/such/file".into(),
            timeout_s: 3,
            nofile: 1024,
        },
    ];
    let scratch = common::scratch_profiles();
    let project = picaboot::project::open(&scratch.path().join("profiles")).unwrap();
    let suite = project.loaded.profiles.hosts["alice"].install.suite.clone();
    let run = podman::run(
        &images,
        podman::Runtime::Podman,
        &suite,
        &common::mirror(),
        work.path(),
        &mut |l| eprintln!("{l}"),
    )
    .unwrap();
    eprintln!("image VM: {:.0} s ({})", run.seconds, run.accel);
    let r = &run.report;
    let verdict = |n: &str| r.checks.iter().find(|c| c.name == n).map(|c| c.passed);
    let why = format!("{:?}\n{:?}", r.checks, r.failures());
    assert_eq!(verdict("storage"), Some(true), "{why}");
    assert_eq!(verdict("tiny-start"), Some(true), "{why}");
    assert_eq!(verdict("tiny-check"), Some(true), "{why}");
    assert_eq!(
        verdict("broken-check"),
        Some(false),
        "the failing check is reported: {:?}",
        r.checks
    );
    let failed: Vec<String> = r.failures().into_iter().map(|c| c.name).collect();
    assert_eq!(failed, ["broken-check"]);
}
