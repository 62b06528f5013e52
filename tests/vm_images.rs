//! QEMU tier of `picaboot image test --vm`: tx-apache (built with its parent tx-debian) runs
//! under podman inside the cached Debian guest and its declared check passes (apache answers on
//! loopback with output computed by PHP); the JUnit report names the checks.

mod common;

use common::require;

#[test]
fn tx_apache_passes_its_check_in_the_qemu_guest() {
    for (p, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("debootstrap", "debootstrap"),
    ] {
        require(p, pkg);
    }
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("images");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["image", "test", "tx-apache", "--vm", "--host-mirror", "-o"])
        .arg(&out)
        .current_dir(common::root())
        .env("PATH", common::path_with_sbin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stdout}");
    assert!(
        o.status.success(),
        "image test --vm failed ({:?}):\n{stdout}\n{stderr}",
        o.status.code()
    );
    assert!(stdout.contains("PASS tx-apache-check"), "{stdout}");
    let junit = std::fs::read_to_string(out.join("image-test.junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"tx-apache-check\"") && junit.contains("failures=\"0\""),
        "{junit}"
    );
}

/// Debian's docker.io (classic image store, the runtime of Picasoft's Swarm nodes) as the
/// guest's runtime: `docker load` takes `tx-apache.oci.tar` as it is (its docker-archive
/// `manifest.json`), `docker run` starts it and its declared check passes.
#[test]
fn tx_apache_oci_tar_is_docker_loaded_and_passes_its_check_in_the_qemu_guest() {
    for (p, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("debootstrap", "debootstrap"),
    ] {
        require(p, pkg);
    }
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("images");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args([
            "image",
            "test",
            "tx-apache",
            "--vm",
            "--runtime",
            "docker",
            "--host-mirror",
            "-o",
        ])
        .arg(&out)
        .current_dir(common::root())
        .env("PATH", common::path_with_sbin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stdout}");
    assert!(
        o.status.success(),
        "image test --vm --runtime docker failed ({:?}):\n{stdout}\n{stderr}",
        o.status.code()
    );
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
