//! Output trees: files built in memory with their modes, a sorted `manifest.json`, and an
//! atomic publish (written to a temporary directory beside the target, then swapped into
//! place), so that a failed run leaves the previous output untouched.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Name of the manifest written at the root of every tree.
pub const MANIFEST: &str = "manifest.json";

/// An output-tree problem.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A path would leave the tree.
    #[error("refusing path `{0}`: output paths are relative and stay inside the tree")]
    BadPath(String),
    /// The target exists but is not a directory picaboot can replace (a regular file, a
    /// symlink, dangling or not, a device...); nothing was moved.
    #[error("{path} exists and is a {kind}, not an output directory: refusing to replace it (move it away or choose another -o)")]
    NotReplaceable {
        /// The target.
        path: PathBuf,
        /// What is there.
        kind: &'static str,
    },
    /// A tree would bring an entry that the target keeps for another command.
    #[error(
        "the new tree of {path} has `{name}`, which belongs to another command's output there"
    )]
    Collision {
        /// The target.
        path: PathBuf,
        /// The entry.
        name: String,
    },
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Content.
    pub bytes: Vec<u8>,
    /// Unix permission bits.
    pub mode: u32,
}

/// One manifest row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ManifestEntry {
    /// Path relative to the tree root.
    pub path: String,
    /// sha256 of the content, hex.
    pub sha256: String,
    /// Permission bits in octal, e.g. `0755`.
    pub mode: String,
}

/// A tree of files held in memory until published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    files: BTreeMap<String, TreeFile>,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file at a relative path.
    pub fn add(
        &mut self,
        path: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<(), OutputError> {
        let path = path.into();
        let p = Path::new(&path);
        let ok = !path.is_empty()
            && path != MANIFEST
            && p.components().all(|c| matches!(c, Component::Normal(_)));
        if !ok {
            return Err(OutputError::BadPath(path));
        }
        self.files.insert(
            path,
            TreeFile {
                bytes: bytes.into(),
                mode,
            },
        );
        Ok(())
    }

    /// The files, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = (&str, &TreeFile)> {
        self.files.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// A file by path.
    pub fn get(&self, path: &str) -> Option<&TreeFile> {
        self.files.get(path)
    }

    /// The manifest rows, sorted by path.
    pub fn manifest(&self) -> Vec<ManifestEntry> {
        self.files
            .iter()
            .map(|(path, f)| ManifestEntry {
                path: path.clone(),
                sha256: hex::encode(Sha256::digest(&f.bytes)),
                mode: format!("{:04o}", f.mode),
            })
            .collect()
    }

    /// The manifest as pretty JSON with a trailing newline.
    pub fn manifest_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.manifest()).expect("manifest serializes");
        s.push('\n');
        s
    }

    /// Writes the tree (and its manifest) into an existing empty directory.
    fn write_into(&self, dir: &Path) -> Result<(), OutputError> {
        for (path, f) in &self.files {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
            write_file(&target, &f.bytes, f.mode)?;
        }
        write_file(&dir.join(MANIFEST), self.manifest_json().as_bytes(), 0o644)
    }
}

/// Writes one file with a mode, flushing it to disk.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), OutputError> {
    let mut f = fs::File::create(path).map_err(io_err("create", path))?;
    f.write_all(bytes).map_err(io_err("write", path))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err("chmod", path))?;
    f.sync_all().map_err(io_err("sync", path))
}

/// A tree written to a temporary directory beside its target, not yet in place.
#[derive(Debug)]
pub struct Staged {
    temp: tempfile::TempDir,
    target: PathBuf,
    carry: Vec<String>,
}

impl Staged {
    /// The temporary directory (for adding large files written by streaming).
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Names of top-level entries of the existing target that belong to other commands and are
    /// moved into the new tree when it is published (e.g. [`FOREIGN`] for a rendered host).
    pub fn carry_over(mut self, names: &[&str]) -> Self {
        self.carry = names.iter().map(|n| n.to_string()).collect();
        self
    }
}

/// Entries of `OUT/HOST/` that `render` does not own and carries over when it replaces the
/// rest: `netboot/` (written by `netboot`), what `reinstall` records (`known_hosts`, its
/// `install-syslog.log` and `reinstall-serve.log`), `state/` (reserved for what later commands
/// record).
pub const FOREIGN: &[&str] = &[
    "netboot",
    "known_hosts",
    "install-syslog.log",
    "reinstall-serve.log",
    "state",
];

/// What a path is, for [`OutputError::NotReplaceable`]; `None` when it does not exist or is a
/// real directory (not a symlink to one).
fn not_a_dir(target: &Path) -> Result<Option<&'static str>, OutputError> {
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OutputError::Io {
            what: "inspect",
            path: target.to_path_buf(),
            source: e,
        }),
        Ok(m) => {
            let t = m.file_type();
            Ok(if t.is_dir() {
                None
            } else if t.is_symlink() {
                Some("symbolic link")
            } else if t.is_file() {
                Some("regular file")
            } else {
                Some("special file")
            })
        }
    }
}

/// Refuses a target that exists and is not a directory, before anything is written.
fn check_replaceable(target: &Path) -> Result<(), OutputError> {
    match not_a_dir(target)? {
        Some(kind) => Err(OutputError::NotReplaceable {
            path: target.to_path_buf(),
            kind,
        }),
        None => Ok(()),
    }
}

/// Writes `tree` into a temporary directory next to `target` (creating `target`'s parent).
pub fn stage(tree: &Tree, target: &Path) -> Result<Staged, OutputError> {
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check_replaceable(target)?;
    fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    remove_stale(parent, &name);
    // The creator's PID is in the name, so a later run can tell a dead run's leftovers from a
    // live one's work in progress.
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-{}-", std::process::id()))
        .tempdir_in(parent)
        .map_err(io_err("create temporary directory in", parent))?;
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755))
        .map_err(io_err("chmod", temp.path()))?;
    tree.write_into(temp.path())?;
    Ok(Staged {
        temp,
        target: target.to_path_buf(),
        carry: Vec::new(),
    })
}

/// Removes what killed runs left beside `parent/name`: `.NAME.tmp-PID-*` directories (a staged
/// tree, or a previous tree swapped out but not yet deleted) whose process is gone. Those of
/// live processes (a concurrent run) are left alone; failures are ignored (best effort).
fn remove_stale(parent: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid
            .is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if !alive && e.file_type().is_ok_and(|t| t.is_dir()) {
            // A run killed between its swap and its carry-over left another command's entries
            // in the swapped-out tree: put them back before deleting it.
            let target = parent.join(name);
            if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                for keep in FOREIGN {
                    let from = e.path().join(keep);
                    let to = target.join(keep);
                    if fs::symlink_metadata(&from).is_ok() && fs::symlink_metadata(&to).is_err() {
                        let _ = fs::rename(&from, &to);
                    }
                }
            }
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Puts staged trees into place: a missing target is renamed into place, an existing one is
/// atomically exchanged with the new tree, the entries named by [`Staged::carry_over`] moved
/// from the old tree into the new one, and the old content removed.
///
/// Every target is checked before anything moves: one that is not a directory (a file, a
/// symlink) or whose new tree would clobber a carried entry is refused and nothing is
/// published; the staged trees are then removed.
pub fn publish(staged: Vec<Staged>) -> Result<(), OutputError> {
    for s in &staged {
        check_replaceable(&s.target)?;
        for name in &s.carry {
            if fs::symlink_metadata(s.temp.path().join(name)).is_ok()
                && fs::symlink_metadata(s.target.join(name)).is_ok()
            {
                return Err(OutputError::Collision {
                    path: s.target.clone(),
                    name: name.clone(),
                });
            }
        }
    }
    for s in staged {
        let exists = fs::symlink_metadata(&s.target).is_ok();
        if exists {
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                s.temp.path(),
                rustix::fs::CWD,
                &s.target,
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .map_err(|e| OutputError::Io {
                what: "swap into place",
                path: s.target.clone(),
                source: e.into(),
            })?;
            // `old` now holds the previous output. If a carry-over fails it stays there, and
            // the next stage of this target puts the carried entries back (remove_stale).
            let old = s.temp.keep();
            for name in &s.carry {
                let from = old.join(name);
                if fs::symlink_metadata(&from).is_ok() {
                    let to = s.target.join(name);
                    fs::rename(&from, &to).map_err(io_err("carry over", &to))?;
                }
            }
            fs::remove_dir_all(&old).map_err(io_err("remove old output", &old))?;
        } else {
            fs::rename(s.temp.path(), &s.target).map_err(io_err("rename into place", &s.target))?;
            // Renamed away: nothing left for the TempDir to remove.
            let _ = s.temp.keep();
        }
    }
    Ok(())
}

impl crate::exit_class::ExitClass for OutputError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            // Output paths come from picaboot's own trees, never from the user.
            OutputError::BadPath(_) => Class::Bug,
            OutputError::NotReplaceable { .. } | OutputError::Collision { .. } => Class::User,
            OutputError::Io { .. } => Class::Env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escaping_paths() {
        let mut t = Tree::new();
        assert!(t.add("../etc/passwd", "x", 0o644).is_err());
        assert!(t.add("/etc/passwd", "x", 0o644).is_err());
        assert!(t.add("a/./b", "x", 0o644).is_ok());
    }

    #[test]
    fn publish_replaces_previous_tree() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("alice");
        let mut t = Tree::new();
        t.add("old", "1", 0o644).unwrap();
        publish(vec![stage(&t, &target).unwrap()]).unwrap();
        let mut t = Tree::new();
        t.add("etc/rc.local", "#!/bin/sh\n", 0o755).unwrap();
        publish(vec![stage(&t, &target).unwrap()]).unwrap();
        assert!(!target.join("old").exists());
        let mode = fs::metadata(target.join("etc/rc.local"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only the published tree remains");
    }

    #[test]
    fn carried_entries_survive_and_a_collision_is_refused_before_anything_moves() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("alice");
        let mut t = Tree::new();
        t.add("preseed.cfg", "1", 0o644).unwrap();
        publish(vec![stage(&t, &target).unwrap().carry_over(FOREIGN)]).unwrap();
        fs::create_dir_all(target.join("netboot")).unwrap();
        fs::write(target.join("netboot/boot.ipxe"), "#!ipxe\n").unwrap();
        fs::write(target.join("known_hosts"), "k\n").unwrap();
        let mut t2 = Tree::new();
        t2.add("preseed.cfg", "2", 0o644).unwrap();
        publish(vec![stage(&t2, &target).unwrap().carry_over(FOREIGN)]).unwrap();
        assert_eq!(fs::read_to_string(target.join("preseed.cfg")).unwrap(), "2");
        assert_eq!(
            fs::read_to_string(target.join("known_hosts")).unwrap(),
            "k\n"
        );
        assert!(target.join("netboot/boot.ipxe").is_file());
        // A new tree that brings its own `known_hosts`: refused, the old tree untouched.
        let mut t3 = Tree::new();
        t3.add("known_hosts", "other", 0o644).unwrap();
        let e = publish(vec![stage(&t3, &target).unwrap().carry_over(FOREIGN)]).unwrap_err();
        assert!(matches!(e, OutputError::Collision { .. }), "{e}");
        assert_eq!(fs::read_to_string(target.join("preseed.cfg")).unwrap(), "2");
        assert_eq!(
            fs::read_to_string(target.join("known_hosts")).unwrap(),
            "k\n"
        );
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the refused staged tree was removed");
    }

    #[test]
    fn a_target_that_is_not_a_directory_is_refused_before_staging() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tree::new();
        let file = dir.path().join("alice");
        fs::write(&file, "mine").unwrap();
        let e = stage(&t, &file).unwrap_err();
        assert!(
            matches!(
                e,
                OutputError::NotReplaceable {
                    kind: "regular file",
                    ..
                }
            ),
            "{e}"
        );
        let link = dir.path().join("bob");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        let e = stage(&t, &link).unwrap_err();
        assert!(
            matches!(
                e,
                OutputError::NotReplaceable {
                    kind: "symbolic link",
                    ..
                }
            ),
            "{e}"
        );
        // Also when the target turns into a file between stage and publish.
        let carol = dir.path().join("carol");
        let staged = stage(&t, &carol).unwrap();
        fs::write(&carol, "appeared").unwrap();
        assert!(publish(vec![staged]).is_err());
        assert_eq!(fs::read_to_string(&carol).unwrap(), "appeared");
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["alice", "bob", "carol"]);
    }

    #[test]
    fn a_dead_runs_leftovers_are_removed_by_the_next_stage() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("alice");
        // PID 0 is never a live process we could see; an old-style name has no PID at all.
        for stale in [".alice.tmp-0-abc", ".alice.tmp-XyZ12"] {
            fs::create_dir_all(dir.path().join(stale).join("etc")).unwrap();
        }
        // A live process' work in progress (ours, and PID 1) and other trees stay.
        let ours = format!(".alice.tmp-{}-live", std::process::id());
        for keep in [ours.as_str(), ".alice.tmp-1-init", ".bob.tmp-0-other"] {
            fs::create_dir_all(dir.path().join(keep)).unwrap();
        }
        let mut t = Tree::new();
        t.add("etc/hostname", "alice\n", 0o644).unwrap();
        publish(vec![stage(&t, &target).unwrap()]).unwrap();
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want = vec![
            ours,
            ".alice.tmp-1-init".into(),
            ".bob.tmp-0-other".into(),
            "alice".into(),
        ];
        want.sort();
        assert_eq!(names, want);
    }
}
