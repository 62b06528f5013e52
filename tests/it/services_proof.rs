//! QEMU tier of issue 25: `picaboot test services` boots pica01 and pica02 (the images `test
//! vm` proves, with their roles' packages: GlusterFS, Docker, nftables) linked by their public
//! addresses, applies the layer with `services form`'s own plan and ssh runner, and every named
//! check passes: the replicated volume both ways, the swarm's roles and encrypted overlay, the
//! stack pulled from the test registry (Debian's docker-registry with the tx-registry
//! configuration, htpasswd and TLS) answering on both nodes, the firewall refusing a stranger,
//! a second `services form` changing nothing, the mount before Docker after a reboot, and
//! pica02's power cut.

use crate::common;

use common::require;

/// The checks the issue names, in the report.
const CHECKS: &[&str] = &[
    "pica01-system",
    "pica02-system",
    "test-setup",
    "services-form-needs-secret",
    "test-secrets",
    "services-form",
    "gluster-replicated",
    "swarm-roles",
    "stack-routing-mesh",
    "db-backup-kept",
    "firewall-peers-only",
    "services-form-again",
    "mount-before-docker",
    "survives-kill",
];

#[test]
fn pica01_and_pica02_form_the_volume_the_swarm_and_the_stack_and_survive_a_power_cut() {
    for (p, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("debootstrap", "debootstrap"),
        ("sfdisk", "fdisk"),
        ("qemu-img", "qemu-utils"),
        ("mkfs.ext4", "e2fsprogs"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
        ("socat", "socat"),
        ("docker-registry", "docker-registry"),
        ("htpasswd", "apache2-utils"),
        ("openssl", "openssl"),
    ] {
        require(p, pkg);
    }
    // Two guests fill both cores: no other QEMU tier of this binary runs beside them (the
    // install proof, started by scripts/test, still does). Always taken in this order.
    let relock = |m: &'static std::sync::Mutex<()>| m.lock().unwrap_or_else(|e| e.into_inner());
    let _vm = relock(&crate::vm_system::ONE_GUEST);
    let _netboot = relock(&crate::netboot_qemu::ONE_AT_A_TIME);
    let _images = relock(&crate::images::HEAVY);
    let work = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(["test", "services", "-o"])
        .arg(work.path())
        .current_dir(common::root())
        .env("PATH", common::path_with_sbin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stdout}");
    assert!(
        o.status.success(),
        "test services failed ({:?}):\n{stdout}\n{stderr}",
        o.status.code()
    );
    for c in CHECKS {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("PASS {c} "))),
            "{c} did not pass:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("test services: TEST: "),
        "the report says what differs from production"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("services/report.json")).unwrap())
            .unwrap();
    assert_eq!(
        json["checks"].as_array().unwrap().len(),
        CHECKS.len(),
        "{json}"
    );
    let xml = std::fs::read_to_string(work.path().join("services/report.xml")).unwrap();
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(
        !stdout.contains("SWMTKN") && !stderr.contains("SWMTKN"),
        "the join token is never printed"
    );
}
