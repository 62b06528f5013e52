//! Golden tests: the shipped profiles render byte for byte to `tests/golden/HOST/`.
//! After an intended change, regenerate with `PICABOOT_BLESS=1 cargo test --test golden` and
//! review the diff.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

#[test]
fn shipped_profiles_render_to_golden_files() {
    let scratch = common::scratch_profiles();
    let (_keep, out) = common::render_all(&scratch.path().join("profiles"));
    let golden = common::root().join("tests/golden");
    if std::env::var_os("PICABOOT_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        common::copy_tree(&out, &golden);
    }
    let got = files(&out);
    let want = files(&golden);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "rendered file set differs from tests/golden"
    );
    for (path, bytes) in &got {
        pretty_assertions::assert_eq!(
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&want[path]),
            "{path} differs from its golden copy"
        );
    }
}

#[test]
fn rendering_twice_gives_the_same_bytes() {
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let (_a, out_a) = common::render_all(&profiles);
    let (_b, out_b) = common::render_all(&profiles);
    assert_eq!(files(&out_a), files(&out_b));
}

#[test]
fn manifest_lists_every_file_with_hash_and_mode() {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    let scratch = common::scratch_profiles();
    let (_keep, out) = common::render_all(&scratch.path().join("profiles"));
    for host in ["alice", "bob"] {
        let dir = out.join(host);
        let manifest: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let mut listed = Vec::new();
        for m in &manifest {
            let path = m["path"].as_str().unwrap();
            let bytes = std::fs::read(dir.join(path)).unwrap();
            assert_eq!(
                m["sha256"].as_str().unwrap(),
                hex::encode(Sha256::digest(&bytes)),
                "{path}"
            );
            let mode = std::fs::metadata(dir.join(path))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777;
            assert_eq!(m["mode"].as_str().unwrap(), format!("{mode:04o}"), "{path}");
            listed.push(path.to_string());
        }
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted, "manifest is sorted");
        let mut on_disk: Vec<String> = files(&dir)
            .into_keys()
            .filter(|p| p != "manifest.json")
            .collect();
        on_disk.sort();
        assert_eq!(
            listed, on_disk,
            "manifest covers exactly the files of {host}"
        );
        let rc = manifest
            .iter()
            .find(|m| m["path"] == "rootfs/etc/rc.local")
            .unwrap();
        assert_eq!(rc["mode"], "0755");
    }
}

#[test]
fn corosync_version_rises_exactly_when_content_changes() {
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let version = |out: &Path, host: &str| -> u64 {
        let text =
            std::fs::read_to_string(out.join(host).join("rootfs/etc/picaboot/corosync.conf"))
                .unwrap();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("config_version: "))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (_a, out) = common::render_all(&profiles);
    let v1 = version(&out, "alice");
    assert_eq!(v1, version(&out, "bob"), "both nodes agree");
    // Unchanged content: same version, even rendered again.
    let (_b, out) = common::render_all(&profiles);
    assert_eq!(version(&out, "alice"), v1);
    // A change that does not touch corosync.conf: same version.
    common::edit(
        &profiles.join("hosts/alice.toml"),
        "settle-seconds = 3",
        "settle-seconds = 4",
    );
    let (_c, out) = common::render_all(&profiles);
    assert_eq!(version(&out, "alice"), v1);
    // A change of the cluster address: one more, on both nodes.
    common::edit(
        &profiles.join("hosts/bob.toml"),
        "192.168.10.2/24",
        "192.168.10.3/24",
    );
    let (_d, out) = common::render_all(&profiles);
    assert_eq!(version(&out, "alice"), v1 + 1);
    assert_eq!(version(&out, "bob"), v1 + 1);
    // Rendering only one host afterwards keeps the agreed version.
    let (_e, out) = common::render_all(&profiles);
    assert_eq!(version(&out, "bob"), v1 + 1);
    // --locked refuses to raise it.
    common::edit(
        &profiles.join("hosts/bob.toml"),
        "192.168.10.3/24",
        "192.168.10.4/24",
    );
    let o = common::picaboot(
        scratch.path(),
        &["render", "bob", "--locked", "-o", "locked-out"],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--locked"));
    assert!(
        !scratch.path().join("locked-out").exists(),
        "nothing written"
    );
}

#[test]
fn a_standalone_cluster_installs_corosync_conf_and_a_proxmox_one_leaves_etc_corosync_empty() {
    let scratch = common::scratch_profiles();
    let profiles = scratch.path().join("profiles");
    let (_p, out) = common::render_all(&profiles);
    let alice = out.join("alice");
    assert!(
        !alice.join("rootfs/etc/corosync").exists(),
        "Proxmox-managed: nothing in /etc/corosync"
    );
    for f in [
        "rootfs/etc/picaboot/corosync.conf",
        "rootfs/etc/apt/sources.list.d/proxmox.sources",
        "rootfs/usr/local/sbin/picaboot-proxmox",
        "rootfs/etc/systemd/system/picaboot-proxmox.service",
    ] {
        assert!(alice.join(f).is_file(), "{f}");
    }
    let preseed = std::fs::read_to_string(alice.join("preseed.cfg")).unwrap();
    assert!(
        !preseed.contains(" corosync"),
        "Debian's corosync would ship /etc/corosync/corosync.conf"
    );
    let late = std::fs::read_to_string(alice.join("late-command.sh")).unwrap();
    assert!(late.contains("systemctl enable picaboot-proxmox.service"));

    common::edit(
        &profiles.join("clusters/picasoft.toml"),
        "manager = \"proxmox\"",
        "manager = \"standalone\"",
    );
    let text = std::fs::read_to_string(profiles.join("clusters/picasoft.toml")).unwrap();
    let (head, _) = text.split_once("[proxmox]").unwrap();
    let (_, nodes) = text.split_once("[[nodes]]").unwrap();
    // [backup] is Proxmox's (vzdump): a standalone cluster has none.
    let nodes = nodes.split_once("[backup]").map_or(nodes, |(n, _)| n);
    std::fs::write(
        profiles.join("clusters/picasoft.toml"),
        format!("{head}[[nodes]]{nodes}"),
    )
    .unwrap();
    let (_s, out) = common::render_all(&profiles);
    let alice = out.join("alice");
    assert!(alice.join("rootfs/etc/corosync/corosync.conf").is_file());
    for f in [
        "rootfs/etc/picaboot",
        "rootfs/etc/apt",
        "rootfs/usr/local/sbin/picaboot-proxmox",
    ] {
        assert!(!alice.join(f).exists(), "standalone: no {f}");
    }
    let preseed = std::fs::read_to_string(alice.join("preseed.cfg")).unwrap();
    assert!(
        preseed.contains(" corosync\n"),
        "standalone: Debian's corosync is installed"
    );
}
