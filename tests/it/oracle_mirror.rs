//! gpgv judges the Release/Release.gpg pair recovered from a real InRelease of this machine's
//! Debian mirror: Debian's own signatures verify it as a detached pair, and a changed byte fails.

use crate::common;

use common::{cmd, require, run_ok};

#[test]
fn release_pair_from_inrelease_verifies_with_debian_keyring() {
    require("gpgv", "gpgv");
    require("curl", "curl");
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    assert!(
        std::path::Path::new(keyring).exists(),
        "{keyring} is missing: install the Debian package `debian-archive-keyring`"
    );
    let mirror = common::mirror();
    let scratch = common::scratch_profiles();
    let project = picaboot::project::open(&scratch.path().join("profiles")).unwrap();
    let suite = &project.loaded.profiles.hosts["alice"].install.suite;
    let inrelease =
        run_ok(cmd("curl").args(["-fsS", &format!("{mirror}/dists/{suite}/InRelease")]));
    let (release, signature) = picaboot::mirror::split_inrelease(&inrelease).unwrap();
    assert!(release.contains(&format!("Codename: {suite}")));
    let dir = tempfile::tempdir().unwrap();
    let (r, s) = (dir.path().join("Release"), dir.path().join("Release.gpg"));
    std::fs::write(&r, &release).unwrap();
    std::fs::write(&s, &signature).unwrap();
    run_ok(cmd("gpgv").args(["--keyring", keyring]).arg(&s).arg(&r));
    std::fs::write(&r, release.replacen("Codename", "Codenamf", 1)).unwrap();
    let bad = cmd("gpgv")
        .args(["--keyring", keyring])
        .arg(&s)
        .arg(&r)
        .output()
        .unwrap();
    assert!(!bad.status.success(), "gpgv accepted a changed Release");
}
