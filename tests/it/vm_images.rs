//! QEMU tier of `picaboot image test --vm`: tx-apache (built with its parent tx-debian) runs
//! under podman inside the cached Debian guest and its declared check passes (apache answers on
//! loopback with output computed by PHP); the JUnit report names the checks.

use crate::common;

use common::require;

/// Runs `picaboot image test tx-apache --vm EXTRA… --host-mirror` in a scratch output
/// directory; returns stdout and that directory after asserting success.
fn image_test_vm(extra: &[&str]) -> (String, tempfile::TempDir) {
    for (p, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("debootstrap", "debootstrap"),
    ] {
        require(p, pkg);
    }
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("images");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["image", "test", "tx-apache", "--vm"])
        .args(extra)
        .args(["--host-mirror", "-o"])
        .arg(&out)
        .current_dir(common::root())
        .env("PATH", common::path_with_sbin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stdout}");
    assert!(
        o.status.success(),
        "image test --vm {extra:?} failed ({:?}):\n{stdout}\n{stderr}",
        o.status.code()
    );
    (stdout, work)
}

#[test]
fn tx_apache_passes_its_check_in_the_qemu_guest() {
    let (stdout, work) = image_test_vm(&[]);
    assert!(stdout.contains("PASS tx-apache-check"), "{stdout}");
    let junit = std::fs::read_to_string(work.path().join("images/image-test.junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"tx-apache-check\"") && junit.contains("failures=\"0\""),
        "{junit}"
    );
}

/// Debian's docker.io (classic image store, the runtime of Picasoft's Swarm nodes) as the
/// guest's runtime: `docker load` takes `tx-apache.oci.tar` as it is (its docker-archive
/// `manifest.json`), `docker run` starts it and its declared check passes.
#[test]
#[ignore = "6-7 min under TCG: outside CI's time budget; run by `scripts/test-docker` (README)"]
fn tx_apache_oci_tar_is_docker_loaded_and_passes_its_check_in_the_qemu_guest() {
    let (stdout, _work) = image_test_vm(&["--runtime", "docker"]);
    for check in [
        "dockerd",
        "tx-apache-load",
        "tx-apache-start",
        "tx-apache-check",
    ] {
        assert!(
            stdout.contains(&format!("PASS {check}")),
            "{check}: {stdout}"
        );
    }
}
