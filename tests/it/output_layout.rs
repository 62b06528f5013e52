//! Who owns what under `OUT/HOST/`: `render` replaces its own files (preseed.cfg, rootfs/,
//! manifest.json) and carries over `netboot/` (netboot's) and `known_hosts` (reinstall's);
//! a target picaboot cannot replace is refused before anything moves.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn render(root: &Path, out: &Path) -> std::process::Output {
    common::picaboot(
        root,
        &[
            "render",
            "alice",
            "--profiles",
            root.join("profiles").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    )
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// render → netboot's tree (made as `netboot` publishes it: a staged tree swapped into
/// `OUT/HOST/netboot` by the same `output::publish`; a real netboot downloads ~150 MB) →
/// known_hosts (written where `reinstall` writes it) → render again: both survive, render's
/// own stale file is gone.
#[test]
fn render_again_keeps_netboot_and_known_hosts() {
    let scratch = common::scratch_profiles();
    let root = scratch.path();
    let out = root.join("out");
    let o = render(root, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let host = out.join("alice");
    assert!(host.join("preseed.cfg").is_file());

    let mut nb = picaboot::output::Tree::new();
    nb.add("boot.ipxe", "#!ipxe\nexit\n", 0o644).unwrap();
    nb.add("initrd.gz", vec![7u8; 4096], 0o644).unwrap();
    let target = picaboot::netboot::target_dir(&out, "alice");
    picaboot::output::publish(vec![picaboot::output::stage(&nb, &target).unwrap()]).unwrap();
    let nb_before = std::fs::read(target.join("initrd.gz")).unwrap();

    let known = host.join("known_hosts");
    let keys =
        "alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOt6Yl5cZ6m3yqvR9H5n3W0x3gqbqz8l6C0g0J2c5nJ1\n";
    std::fs::write(&known, keys).unwrap();
    // A file of render's that the next render no longer produces.
    std::fs::write(host.join("stale-from-an-older-render"), "x").unwrap();

    let o = render(root, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(target.join("initrd.gz")).unwrap(), nb_before);
    assert!(target.join("boot.ipxe").is_file());
    assert_eq!(std::fs::read_to_string(&known).unwrap(), keys);
    assert!(!host.join("stale-from-an-older-render").exists());
    assert!(host.join("preseed.cfg").is_file());
    // Nothing left beside the tree.
    assert_eq!(names(&out), vec!["alice".to_string()]);
}

/// `OUT/alice` is a regular file: refused with exit 1 before anything moves; the user's
/// file is untouched and nothing is published or left under a hidden name.
#[test]
fn a_regular_file_at_the_target_is_refused_untouched() {
    let scratch = common::scratch_profiles();
    let root = scratch.path();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mine = out.join("alice");
    std::fs::write(&mine, "my notes\n").unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = render(root, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("regular file") && err.contains("alice"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "my notes\n");
    assert_eq!(
        std::fs::metadata(&mine).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(names(&out), vec!["alice".to_string()]);
}

/// A dangling `OUT/alice` symlink: refused (exit 1), the link untouched, no `.alice.tmp-*`.
#[test]
fn a_dangling_symlink_at_the_target_leaves_no_staged_tree() {
    let scratch = common::scratch_profiles();
    let root = scratch.path();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink("/nonexistent/picaboot-target", out.join("alice")).unwrap();
    let o = render(root, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_link(out.join("alice")).unwrap(),
        Path::new("/nonexistent/picaboot-target")
    );
    assert_eq!(names(&out), vec!["alice".to_string()]);
}

/// `test install -o OUT` clears `OUT/HOST` first: where render/reinstall output lives there it
/// refuses (exit 1) and deletes nothing.
#[test]
fn test_install_refuses_to_clear_renders_output() {
    let scratch = common::scratch_profiles();
    let root = scratch.path();
    let out = root.join("out");
    let o = render(root, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let known = out.join("alice/known_hosts");
    std::fs::write(&known, "alice ssh-ed25519 AAAA\n").unwrap();
    let before = names(&out.join("alice"));
    let o = common::picaboot(
        root,
        &[
            "test",
            "install",
            "alice",
            "--profiles",
            root.join("profiles").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("choose another -o"), "{err}");
    assert_eq!(names(&out.join("alice")), before);
    assert!(known.is_file());
}
