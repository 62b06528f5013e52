//! Layer packing: a directory tree (a whole root filesystem, or an overlayfs upper directory)
//! becomes one deterministic tar stream, gzip-compressed, with the uncompressed digest (diff_id)
//! and the blob digest computed in the same pass.
//!
//! Determinism rules: entries sorted by name (bytes), each path once, mtimes clamped to
//! `SOURCE_DATE_EPOCH`, no atime/ctime, no user/group names, numeric uid/gid preserved (files
//! owned by `www-data` must stay so: forcing 0 would break services that write their state
//! directories), hard links kept as links to the first path, extended attributes dropped,
//! volatile files ([`is_volatile`]) left out. The walk never leaves the tree's filesystem.
//! overlayfs whiteouts (0/0 character devices) become `.wh.NAME` entries and opaque
//! directories (`trusted.overlay.opaque=y`) get a `.wh..wh..opq` entry.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Digests and size of a packed layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerDigest {
    /// `sha256:` of the uncompressed tar (the config's diff_id).
    pub diff_id: String,
    /// `sha256:` of the gzip blob (the manifest's layer digest).
    pub digest: String,
    /// Size of the gzip blob in bytes.
    pub size: u64,
}

/// The gzip level used for every layer (one compressor, one level: the bytes are part of the
/// image's identity).
pub const GZIP_LEVEL: u32 = 1;

/// Paths (relative, no leading `/`) whose content changes between identical builds or never
/// belongs in an image: logs of dpkg/apt/debootstrap, ldconfig's aux cache, apt lists and
/// caches, temporary files, device nodes and mount points' contents.
pub fn is_volatile(rel: &str) -> bool {
    const EXACT: &[&str] = &[
        "var/log/dpkg.log",
        "var/log/alternatives.log",
        "var/log/bootstrap.log",
        "var/log/apt/history.log",
        "var/log/apt/term.log",
        "var/log/apt/eipp.log.xz",
        "var/cache/ldconfig/aux-cache",
        "var/cache/apt/pkgcache.bin",
        "var/cache/apt/srcpkgcache.bin",
        "var/cache/debconf/config.dat-old",
        "var/cache/debconf/templates.dat-old",
        "var/lib/dpkg/status-old",
        "var/lib/dpkg/diversions-old",
        "var/lib/dpkg/statoverride-old",
        "etc/shadow-",
        "etc/gshadow-",
        "etc/passwd-",
        "etc/group-",
        "etc/subuid-",
        "etc/subgid-",
    ];
    const CHILDREN_OF: &[&str] = &[
        "var/lib/apt/lists/",
        "var/cache/apt/archives/",
        "tmp/",
        "var/tmp/",
        "dev/",
        "proc/",
        "sys/",
    ];
    const KEEP: &[&str] = &[
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
    ];
    if EXACT.contains(&rel) {
        return true;
    }
    if KEEP.contains(&rel) {
        return false;
    }
    CHILDREN_OF.iter().any(|p| rel.starts_with(p))
}

fn hash_writer<W: Write>(inner: W) -> crate::archive::HashingWriter<W> {
    crate::archive::HashingWriter::new(inner)
}

/// Packs the tree at `root` into `out` (the gzip blob), returning its digests.
///
/// `epoch` is `SOURCE_DATE_EPOCH`: later mtimes are clamped to it.
pub fn pack(root: &Path, epoch: u64, out: impl Write) -> io::Result<LayerDigest> {
    let gz_hash = hash_writer(io::BufWriter::with_capacity(1 << 20, out));
    let gz = GzEncoder::new(gz_hash, Compression::new(GZIP_LEVEL));
    let tar_hash = hash_writer(gz);
    let mut b = tar::Builder::new(tar_hash);
    b.mode(tar::HeaderMode::Deterministic);
    let dev = fs::symlink_metadata(root)?.dev();
    let mut ctx = Walk {
        epoch,
        dev,
        links: HashMap::new(),
    };
    ctx.dir(&mut b, root, "")?;
    let (gz, tar_sha, _) = b.into_inner()?.finish();
    let diff_id = format!("sha256:{tar_sha}");
    let mut gz_hash = gz.finish()?;
    gz_hash.flush()?;
    let (_, gz_sha, size) = gz_hash.finish();
    Ok(LayerDigest {
        diff_id,
        digest: format!("sha256:{gz_sha}"),
        size,
    })
}

/// The layer walk. Kept hand-written rather than `walkdir` (used for the plain walks) because
/// it must: stay on one filesystem (a mounted /proc below the tree must not be packed), turn
/// overlayfs whiteouts (0/0 character devices, opaque directories) into OCI `.wh.` entries,
/// emit a hard link once and then link entries to it, and write entries in a fixed order with
/// clamped mtimes so that the bytes are deterministic.
struct Walk {
    epoch: u64,
    dev: u64,
    links: HashMap<(u64, u64), String>,
}

fn header(meta: &fs::Metadata, epoch: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(meta.uid().into());
    h.set_gid(meta.gid().into());
    h.set_mtime((meta.mtime().max(0) as u64).min(epoch));
    h.set_size(0);
    h
}

fn empty_file(epoch: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(epoch);
    h.set_size(0);
    h
}

fn is_opaque(path: &Path) -> bool {
    let mut buf = [0u8; 4];
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        if let Ok(n) = rustix::fs::lgetxattr(path, name, &mut buf) {
            if n >= 1 && buf[0] == b'y' {
                return true;
            }
        }
    }
    false
}

impl Walk {
    fn dir<W: Write>(&mut self, b: &mut tar::Builder<W>, dir: &Path, rel: &str) -> io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        if !rel.is_empty() && is_opaque(dir) {
            let p = format!("{rel}/.wh..wh..opq");
            b.append_data(&mut empty_file(self.epoch), p, io::empty())?;
        }
        // Whiteouts first (the OCI spec asks for them before their siblings), then the rest,
        // each group sorted by name.
        let mut whiteouts = Vec::new();
        let mut rest = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path)?;
            if meta.file_type().is_char_device() && meta.rdev() == 0 {
                whiteouts.push(name);
            } else {
                rest.push((name, path, meta));
            }
        }
        for name in whiteouts {
            let name_s = name.to_string_lossy();
            let child_rel = if rel.is_empty() {
                name_s.to_string()
            } else {
                format!("{rel}/{name_s}")
            };
            if is_volatile(&child_rel) {
                continue;
            }
            let p = if rel.is_empty() {
                format!(".wh.{name_s}")
            } else {
                format!("{rel}/.wh.{name_s}")
            };
            b.append_data(&mut empty_file(self.epoch), p, io::empty())?;
        }
        for (name, path, meta) in rest {
            let name_s = name.to_string_lossy();
            let child_rel = if rel.is_empty() {
                name_s.to_string()
            } else {
                format!("{rel}/{name_s}")
            };
            let ft = meta.file_type();
            if is_volatile(&child_rel) {
                continue;
            }
            if ft.is_dir() {
                let mut h = header(&meta, self.epoch, tar::EntryType::Directory);
                b.append_data(&mut h, format!("{child_rel}/"), io::empty())?;
                if meta.dev() == self.dev {
                    self.dir(b, &path, &child_rel)?;
                }
                continue;
            }
            if meta.nlink() > 1 && !ft.is_dir() {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    let mut h = header(&meta, self.epoch, tar::EntryType::Link);
                    b.append_link(&mut h, &child_rel, first)?;
                    continue;
                }
                self.links.insert(key, child_rel.clone());
            }
            if ft.is_file() {
                let mut h = header(&meta, self.epoch, tar::EntryType::Regular);
                h.set_size(meta.len());
                let f = File::open(&path)?;
                b.append_data(&mut h, &child_rel, f)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&path)?;
                let mut h = header(&meta, self.epoch, tar::EntryType::Symlink);
                b.append_link(&mut h, &child_rel, target)?;
            } else if ft.is_fifo() {
                let mut h = header(&meta, self.epoch, tar::EntryType::Fifo);
                b.append_data(&mut h, &child_rel, io::empty())?;
            } else if ft.is_char_device() || ft.is_block_device() {
                let kind = if ft.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                let mut h = header(&meta, self.epoch, kind);
                let rdev = meta.rdev();
                h.set_device_major(rustix::fs::major(rdev))?;
                h.set_device_minor(rustix::fs::minor(rdev))?;
                b.append_data(&mut h, &child_rel, io::empty())?;
            }
            // sockets are skipped: they cannot be archived
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn entries(blob: &[u8]) -> Vec<(String, tar::EntryType, u64, u32)> {
        let gz = flate2::read::GzDecoder::new(blob);
        let mut a = tar::Archive::new(gz);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.entry_type(),
                    h.mtime().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("etc/b")).unwrap();
        fs::create_dir_all(root.join("var/log/apt")).unwrap();
        fs::create_dir_all(root.join("var/lib/apt/lists/partial")).unwrap();
        fs::write(root.join("etc/z"), "z").unwrap();
        fs::write(root.join("etc/a"), "a").unwrap();
        fs::hard_link(root.join("etc/a"), root.join("etc/b/a2")).unwrap();
        symlink("../a", root.join("etc/b/l")).unwrap();
        fs::write(root.join("var/log/dpkg.log"), "noise").unwrap();
        fs::write(root.join("var/lib/apt/lists/deb_Packages"), "noise").unwrap();
    }

    #[test]
    fn sorted_clamped_volatile_excluded_hardlinks() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path());
        let mut blob = Vec::new();
        let d = pack(t.path(), 1000, &mut blob).unwrap();
        assert_eq!(d.size, blob.len() as u64);
        assert_eq!(
            d.digest,
            format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&blob))
            )
        );
        let e = entries(&blob);
        let names: Vec<_> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/a",
                "etc/b/",
                "etc/b/a2",
                "etc/b/l",
                "etc/z",
                "var/",
                "var/lib/",
                "var/lib/apt/",
                "var/lib/apt/lists/",
                "var/lib/apt/lists/partial/",
                "var/log/",
                "var/log/apt/"
            ]
        );
        assert!(e.iter().all(|x| x.2 == 1000), "mtimes clamped");
        assert_eq!(e[3].1, tar::EntryType::Link);
        assert_eq!(e[4].1, tar::EntryType::Symlink);
    }

    #[test]
    fn same_tree_same_digests_whatever_the_times() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tree(a.path());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        tree(b.path());
        let da = pack(a.path(), 1000, io::sink()).unwrap();
        let db = pack(b.path(), 1000, io::sink()).unwrap();
        assert_eq!(da, db);
        // an old mtime is kept, not clamped
        let old = filetime_set(a.path().join("etc/z"), 500);
        let mut blob = Vec::new();
        pack(a.path(), 1000, &mut blob).unwrap();
        assert!(entries(&blob).iter().any(|x| x.0 == "etc/z" && x.2 == old));
    }

    fn filetime_set(p: std::path::PathBuf, t: u64) -> u64 {
        let f = File::options().write(true).open(p).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
            .unwrap();
        t
    }

    #[test]
    fn overlay_whiteouts_and_opaque_dirs() {
        // A real overlayfs: lower has etc/old and dir/x; the change deletes etc/old and
        // replaces dir/ with a new directory; the upper dir must pack as whiteouts.
        let t = tempfile::tempdir().unwrap();
        let (lower, upper, work, merged) = (
            t.path().join("l"),
            t.path().join("u"),
            t.path().join("w"),
            t.path().join("m"),
        );
        for d in [&lower, &upper, &work, &merged] {
            fs::create_dir_all(d).unwrap();
        }
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(lower.join("dir")).unwrap();
        fs::write(lower.join("etc/old"), "old").unwrap();
        fs::write(lower.join("etc/keep"), "keep").unwrap();
        fs::write(lower.join("dir/x"), "x").unwrap();
        let script = format!(
            "mount -t overlay overlay -o lowerdir={l},upperdir={u},workdir={w} {m} && \
             rm {m}/etc/old && rm -r {m}/dir && mkdir {m}/dir && echo y > {m}/dir/y && \
             echo new > {m}/etc/new",
            l = lower.display(),
            u = upper.display(),
            w = work.display(),
            m = merged.display()
        );
        let out = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-ec", &script])
            .output()
            .expect("unshare (util-linux) is installed");
        assert!(
            out.status.success(),
            "overlay mount needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut blob = Vec::new();
        pack(&upper, 1000, &mut blob).unwrap();
        let names: Vec<_> = entries(&blob).into_iter().map(|x| x.0).collect();
        assert_eq!(
            names,
            [
                "dir/",
                "dir/.wh..wh..opq",
                "dir/y",
                "etc/",
                "etc/.wh.old",
                "etc/new"
            ]
        );
        // deleting a whole directory of the lower layer is one whiteout, not a walk
        assert!(!names.iter().any(|n| n.starts_with("dir/x")));
    }
}
