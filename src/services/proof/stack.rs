//! The profiles `picaboot test services` applies: the given ones (volume, swarm, registry,
//! Traefik, the VMs) with the shipped `[[services]]` replaced by the stack under test
//! ([`TEST_STACK`]), checked by the same loader as production.

use std::path::{Path, PathBuf};

use super::ProofError;

/// The stack under test (`[[services]]` tables).
pub const TEST_STACK: &str = include_str!("stack.toml");

/// The published port of the stack under test that the checks ask.
pub const WEB_PORT: u16 = 8080;

/// The directory under the volume's mount that the web service serves.
pub const WEB_DIR: &str = "WEB/proof";

/// A copy of `profiles` under `work` whose `services.toml` has the test stack instead of its
/// own services (its `images/` beside it, as the loader looks for them): the copy's path.
pub fn with_test_stack(profiles: &Path, work: &Path) -> Result<PathBuf, ProofError> {
    let dest = work.join("profiles");
    copy_tree(profiles, &dest)?;
    if let Some(images) = profiles.parent().map(|p| p.join("images")) {
        if images.is_dir() {
            let abs = std::fs::canonicalize(&images).map_err(ProofError::io("find", &images))?;
            let link = work.join("images");
            std::os::unix::fs::symlink(&abs, &link).map_err(ProofError::io("link", &link))?;
        }
    }
    let path = dest.join("services.toml");
    let text = std::fs::read_to_string(&path).map_err(ProofError::io("read", &path))?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        ProofError::Shape(format!("{}: {}", path.display(), e.message()))
    })?;
    doc.remove("services");
    let replaced = format!("{}\n{TEST_STACK}", doc.to_string().trim_end());
    std::fs::write(&path, replaced).map_err(ProofError::io("write", &path))?;
    Ok(dest)
}

/// Copies the regular files and directories of `from` into `to` (profiles are small text).
fn copy_tree(from: &Path, to: &Path) -> Result<(), ProofError> {
    std::fs::create_dir_all(to).map_err(ProofError::io("create", to))?;
    for e in std::fs::read_dir(from).map_err(ProofError::io("read", from))? {
        let e = e.map_err(ProofError::io("read", from))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type().map_err(ProofError::io("read", &src))?;
        if t.is_dir() {
            copy_tree(&src, &dst)?;
        } else if t.is_file() {
            std::fs::copy(&src, &dst).map_err(ProofError::io("copy", &src))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_stack_replaces_the_shipped_services_and_still_checks() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let work = tempfile::tempdir().unwrap();
        let dir = with_test_stack(&root.join("profiles"), work.path()).unwrap();
        let s = crate::profile::load(&dir)
            .unwrap()
            .profiles
            .services
            .unwrap();
        let names: Vec<&str> = s.services.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["web", "mysql", "mysql-backup"]);
        assert_eq!(s.services[0].ports[0].published, WEB_PORT);
        assert!(s.services[0].mounts[0].source.ends_with(WEB_DIR));
        let shipped = crate::profile::load(&root.join("profiles")).unwrap();
        assert_eq!(shipped.profiles.services.unwrap().swarm, s.swarm);
    }
}
