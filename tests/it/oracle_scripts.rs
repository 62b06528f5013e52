//! Real programs judge the rendered scripts and the preseed: shellcheck for every shell script,
//! debconf-set-selections --checkonly for preseed.cfg.

use crate::common;

use common::{cmd, require, run_ok};

const SCRIPTS: &[&str] = &[
    "rootfs/etc/rc.local",
    "rootfs/usr/local/sbin/picaboot-storage-setup",
    "rootfs/usr/local/sbin/picaboot-find-disks",
    "rootfs/usr/local/sbin/picaboot-proxmox",
    "partman-early.sh",
    "late-command.sh",
];

/// `debconf-set-selections --checkonly` accepts `preseed` without a word on stderr.
fn assert_debconf_accepts(host: &str, preseed: &std::path::Path) {
    let o = cmd("debconf-set-selections")
        .arg("--checkonly")
        .arg(preseed)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && stderr.trim().is_empty(),
        "{host}: {stderr}"
    );
}

/// The test variant (`picaboot test install`) of a host, rendered through the library.
fn test_variant_tree(profiles: &std::path::Path, host: &str) -> picaboot::output::Tree {
    let project = picaboot::project::open(profiles).unwrap();
    let variant = picaboot::render::TestVariant {
        console_params: vec!["console=ttyS0,115200".into()],
        progress_url: Some(format!("http://10.0.2.2:8080/progress/{host}?run=test")),
        resync_limit_kib: Some(10),
        mark_arrays_in_sync: true,
        syslog_tty: Some("/dev/ttyS1".into()),
        tamper: Some("/etc/hosts".into()),
        harness_uid: picaboot::render::HARNESS_UID.into(),
    };
    let r = picaboot::render::render_hosts(
        &project,
        &[host.to_string()],
        picaboot::render::RenderOptions {
            locked: false,
            test: Some(variant),
            sources: Some(picaboot::render::InstallerSources {
                udeb_suite: Some("trixie-picaboot".into()),
                no_kernel_modules: true,
                security_host: Some("10.0.2.2:8080".into()),
                security_path: Some("/debian-security".into()),
            }),
        },
    )
    .unwrap();
    r.trees[host].clone()
}

#[test]
fn the_test_variant_passes_shellcheck_and_debconf() {
    require("shellcheck", "shellcheck");
    require("debconf-set-selections", "debconf");
    let scratch = common::scratch_profiles();
    let dir = tempfile::tempdir().unwrap();
    for host in ["alice", "bob"] {
        let tree = test_variant_tree(&scratch.path().join("profiles"), host);
        for (path, f) in tree.files() {
            let file = dir
                .path()
                .join(format!("{host}-{}", path.replace('/', "_")));
            std::fs::write(&file, &f.bytes).unwrap();
            if f.bytes.starts_with(b"#!/bin/sh") {
                run_ok(
                    cmd("shellcheck")
                        .args(["--shell=sh", "--severity=style"])
                        .arg(&file),
                );
            }
            if path == "preseed.cfg" {
                assert_debconf_accepts(host, &file);
            }
        }
        let names: Vec<&str> = tree.files().map(|(p, _)| p).collect();
        assert!(
            names.contains(&"rootfs/usr/local/sbin/picaboot-selftest"),
            "{names:?}"
        );
    }
    // The production render never carries the self-test or the test preseed lines.
    let (_keep, out) = common::render_all(&scratch.path().join("profiles"));
    for host in ["alice", "bob"] {
        assert!(!out
            .join(host)
            .join("rootfs/usr/local/sbin/picaboot-selftest")
            .exists());
        let preseed = std::fs::read_to_string(out.join(host).join("preseed.cfg")).unwrap();
        for test_only in [
            "TEST VARIANT",
            "HARNESS SOURCES",
            "trixie-picaboot",
            "security_host",
            "ttyS1",
        ] {
            assert!(
                !preseed.contains(test_only),
                "{host}: production preseed has `{test_only}`"
            );
        }
    }
}

#[test]
fn shellcheck_accepts_every_rendered_script() {
    require("shellcheck", "shellcheck");
    let scratch = common::scratch_profiles();
    let (_keep, out) = common::render_all(&scratch.path().join("profiles"));
    for host in ["alice", "bob"] {
        for s in SCRIPTS {
            let path = out.join(host).join(s);
            run_ok(
                cmd("shellcheck")
                    .args(["--shell=sh", "--severity=style"])
                    .arg(&path),
            );
        }
    }
}

#[test]
fn debconf_accepts_the_preseed() {
    require("debconf-set-selections", "debconf");
    let scratch = common::scratch_profiles();
    let (_keep, out) = common::render_all(&scratch.path().join("profiles"));
    for host in ["alice", "bob"] {
        let preseed = out.join(host).join("preseed.cfg");
        assert_debconf_accepts(host, &preseed);
        // Every line is a full `owner question type value` (debconf warns, not fails, on
        // some malformed lines): check the shape ourselves too, joining continuations.
        let text = std::fs::read_to_string(&preseed).unwrap();
        let joined = text.replace("\\\n", " ");
        for line in joined
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let fields: Vec<&str> = line.splitn(4, char::is_whitespace).collect();
            assert!(fields.len() >= 3, "{host}: malformed preseed line `{line}`");
            assert!(
                [
                    "string",
                    "boolean",
                    "select",
                    "multiselect",
                    "password",
                    "note"
                ]
                .contains(&fields[2]),
                "{host}: unknown type in `{line}`"
            );
        }
    }
}

#[test]
fn preseed_carries_the_storage_plan() {
    // The partman values in the preseed come from the same plan as the first-boot script:
    // md0 and md1 on both SSDs after a bios_grub partition, GRUB on both SSDs.
    let scratch = common::scratch_profiles();
    let (_keep, out) = common::render_all(&scratch.path().join("profiles"));
    let project = picaboot::project::open(&scratch.path().join("profiles")).unwrap();
    for host in ["alice", "bob"] {
        let text = std::fs::read_to_string(out.join(host).join("preseed.cfg")).unwrap();
        let recipe = &project.recipes[host];
        assert!(text.contains(&format!("d-i partman-auto/disk string {}\n", recipe.disks)));
        assert!(text.contains(&format!(
            "d-i grub-installer/bootdev string {}\n",
            recipe.grub_devices
        )));
        let plan = &project.plans[host];
        let boot_disks: Vec<&str> = plan
            .disks
            .iter()
            .filter(|d| d.boot)
            .map(|d| d.device.as_str())
            .collect();
        assert_eq!(recipe.grub_devices, boot_disks.join(" "));
        assert_eq!(boot_disks.len(), 2, "GRUB goes on both SSDs");
        for a in plan
            .arrays
            .iter()
            .filter(|a| a.stage == picaboot::profile::Stage::Install)
        {
            let members: Vec<&str> = a
                .members
                .iter()
                .map(|m| m.partition_device.as_str())
                .collect();
            assert!(
                text.contains(&members.join("#")),
                "{host}: {} members in the raid recipe",
                a.name
            );
        }
        assert!(text.contains("method{ biosgrub }"));
        assert!(text.contains("d-i partman-auto-lvm/new_vg_name string pve\n"));
    }
}

/// `rootfs/etc/default/grub.d/picaboot.cfg` is sourced by `update-grub` as root: `dash -n`
/// accepts it and sourcing it in a subshell sets exactly the parameters and runs nothing (a
/// canary that any command substitution would create stays absent). The parameters are the
/// widest the kernel-parameter grammar accepts.
#[test]
fn grub_defaults_parse_and_source_to_the_parameters_only() {
    require("dash", "dash");
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let params = [
        "i915.modeset=0",
        "console=ttyS0,115200n8",
        "x_y-z.w=a:b/c@1%2+3=4,5",
        "quiet",
    ];
    let list: Vec<String> = params.iter().map(|p| format!("\"{p}\"")).collect();
    common::edit(
        &profiles.join("hardware/q170m-i5-6500.toml"),
        "kernel-params = [\"i915.modeset=0\"]",
        &format!("kernel-params = [{}]", list.join(", ")),
    );
    let (_keep, out) = common::render_all(&profiles);
    let cfg = out.join("alice/rootfs/etc/default/grub.d/picaboot.cfg");
    run_ok(cmd("dash").arg("-n").arg(&cfg));
    let canary = scratch.path().join("canary");
    let o = cmd("dash")
        .arg("-c")
        .arg("GRUB_CMDLINE_LINUX_DEFAULT=base; . \"$1\"; printf %s \"$GRUB_CMDLINE_LINUX_DEFAULT\"")
        .arg("dash")
        .arg(&cfg)
        .env("CANARY", &canary)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("base {}", params.join(" "))
    );
    assert!(!canary.exists());
}
