//! The profile loader: TOML text -> validated model or `file:line: field: reason`
//! diagnostics. The input replaces `hosts/alice.toml` in a copy of the repository's profiles,
//! so that cross-file checks (hardware, cluster, site) run too.
#![no_main]
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

fn profiles() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap().keep();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
        copy_tree(&src, &tmp);
        tmp
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = profiles();
    std::fs::write(dir.join("hosts/alice.toml"), text).unwrap();
    match picaboot::project::open(dir) {
        Ok(_) => {}
        Err(picaboot::profile::ProfileError::Invalid(d)) => {
            let msg = d.to_string();
            assert!(!msg.is_empty(), "invalid profiles without a diagnostic");
            for line in msg.lines() {
                assert!(
                    !line.chars().any(|c| c.is_control() && c != '\t'),
                    "a diagnostic carries a control character: {line:?}"
                );
            }
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
});
