//! newc ("070701") cpio archives, the format the Linux kernel unpacks as an initramfs.
//!
//! [`Newc`] writes deterministic archives: entries sorted by path (so every parent directory
//! comes before its children), uid/gid 0, inode numbers in order, mtime 0 or
//! `SOURCE_DATE_EPOCH`. [`read_all`] parses one or more concatenated archives back (with the
//! NUL padding that may separate them), for tests and for reading an installer initrd.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::ArchiveError;

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFMT: u32 = 0o170000;

/// The largest member a newc archive can describe: its sizes are 8 hex digits (32 bits).
pub const MAX_MEMBER: u64 = u32::MAX as u64;

/// Refuses a member of 4 GiB or more, which newc's 32-bit size field cannot describe (writing
/// it anyway would silently corrupt the initrd).
pub fn check_member_size(path: &str, len: u64) -> Result<(), ArchiveError> {
    if len > MAX_MEMBER {
        return Err(ArchiveError::malformed(
            "cpio",
            format!(
                "`{path}` is {len} bytes: a newc archive member must be smaller than 4 GiB ({} bytes at most)",
                MAX_MEMBER
            ),
        ));
    }
    Ok(())
}

/// What an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file with its content.
    File(Vec<u8>),
    /// A symbolic link to the target.
    Symlink(String),
}

/// One entry of an archive being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits (no file type bits).
    pub mode: u32,
    /// Type and content.
    pub kind: Kind,
}

/// A deterministic newc archive under construction.
#[derive(Debug, Clone, Default)]
pub struct Newc {
    entries: BTreeMap<String, Entry>,
    mtime: u32,
}

/// Normalizes an archive path: no leading `/` or `./`, no empty, `.` or `..` component.
fn normalize(path: &str) -> Result<String, ArchiveError> {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    let ok = !p.is_empty() && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(p.to_string())
    } else {
        Err(ArchiveError::malformed(
            "cpio",
            format!("refusing archive path `{path}`"),
        ))
    }
}

impl Newc {
    /// An empty archive whose entries get mtime `mtime`.
    pub fn new(mtime: u32) -> Self {
        Self {
            entries: BTreeMap::new(),
            mtime,
        }
    }

    /// An empty archive with mtime from `SOURCE_DATE_EPOCH` (0 when unset or invalid).
    pub fn from_env() -> Self {
        let mtime = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0);
        Self::new(mtime)
    }

    fn add_parents(&mut self, path: &str) {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            self.entries.entry(parent.to_string()).or_insert(Entry {
                mode: 0o755,
                kind: Kind::Dir,
            });
            end += i + 1;
        }
    }

    fn insert(&mut self, path: &str, entry: Entry) -> Result<(), ArchiveError> {
        let path = normalize(path)?;
        self.add_parents(&path);
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Adds a regular file (and any missing parent directory, mode 0755).
    pub fn add_file(
        &mut self,
        path: &str,
        bytes: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<(), ArchiveError> {
        let bytes = bytes.into();
        check_member_size(path, bytes.len() as u64)?;
        self.insert(
            path,
            Entry {
                mode: mode & 0o7777,
                kind: Kind::File(bytes),
            },
        )
    }

    /// Adds the regular file at `source` as `path`; its size is checked before a byte is read,
    /// so a file of 4 GiB or more is refused without being loaded.
    pub fn add_file_from(
        &mut self,
        path: &str,
        source: &std::path::Path,
        mode: u32,
    ) -> Result<(), ArchiveError> {
        let name = source.display().to_string();
        let len = std::fs::metadata(source)
            .map_err(ArchiveError::io(&name))?
            .len();
        check_member_size(path, len)?;
        let bytes = std::fs::read(source).map_err(ArchiveError::io(&name))?;
        self.add_file(path, bytes, mode)
    }

    /// Adds a directory (and any missing parent).
    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), ArchiveError> {
        self.insert(
            path,
            Entry {
                mode: mode & 0o7777,
                kind: Kind::Dir,
            },
        )
    }

    /// Adds a symbolic link.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), ArchiveError> {
        self.insert(
            path,
            Entry {
                mode: 0o777,
                kind: Kind::Symlink(target.to_string()),
            },
        )
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the archive has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the archive (entries sorted, then the trailer, padded to 512 bytes).
    pub fn write_to<W: Write>(&self, mut w: W) -> io::Result<()> {
        let mut written = 0usize;
        for (ino, (path, e)) in self.entries.iter().enumerate() {
            let (mode, nlink, data): (u32, u32, &[u8]) = match &e.kind {
                Kind::Dir => (S_IFDIR | e.mode, 2, &[]),
                Kind::File(b) => (S_IFREG | e.mode, 1, b),
                Kind::Symlink(t) => (S_IFLNK | e.mode, 1, t.as_bytes()),
            };
            written += write_entry(&mut w, ino as u32 + 1, mode, nlink, self.mtime, path, data)?;
        }
        written += write_entry(&mut w, 0, 0, 1, 0, TRAILER, &[])?;
        let pad = (512 - written % 512) % 512;
        w.write_all(&vec![0u8; pad])
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v).expect("writing to memory");
        v
    }
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

fn write_entry<W: Write>(
    w: &mut W,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    name: &str,
    data: &[u8],
) -> io::Result<usize> {
    let namesize = name.len() + 1;
    if u32::try_from(data.len()).is_err() || u32::try_from(namesize).is_err() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpio member `{name}` does not fit newc's 32-bit size fields"),
        ));
    }
    let header = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{mtime:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
        0, 0, data.len(), 0, 0, 0, 0, 0
    );
    w.write_all(header.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0u8; 4][..1 + pad4(110 + namesize)])?;
    w.write_all(data)?;
    let dpad = pad4(data.len());
    w.write_all(&[0u8; 3][..dpad])?;
    Ok(110 + namesize + pad4(110 + namesize) + data.len() + dpad)
}

/// An entry read back from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEntry {
    /// Path as stored.
    pub path: String,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Content (link target for symlinks, empty for directories).
    pub data: Vec<u8>,
    /// Modification time.
    pub mtime: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl ReadEntry {
    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

fn hex_field(b: &[u8], file: &str) -> Result<u32, ArchiveError> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or_else(|| ArchiveError::malformed(file, "bad newc header field"))
}

/// Parses one or more concatenated, uncompressed newc archives (NUL padding between them is
/// skipped). Trailer entries are not returned; later entries may repeat earlier paths, as in
/// an initramfs where the later one wins.
pub fn read_all(bytes: &[u8], file: &str) -> Result<Vec<ReadEntry>, ArchiveError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        if bytes[pos] == 0 {
            pos += 1;
            continue;
        }
        let h = bytes.get(pos..pos + 110).ok_or_else(|| {
            ArchiveError::malformed(file, format!("truncated header at byte {pos}"))
        })?;
        if &h[..6] != MAGIC {
            return Err(ArchiveError::malformed(
                file,
                format!("not a newc cpio archive at byte {pos}"),
            ));
        }
        let field = |i: usize| hex_field(&h[6 + 8 * i..14 + 8 * i], file);
        let mode = field(1)?;
        let uid = field(2)?;
        let gid = field(3)?;
        let mtime = field(5)?;
        let size = field(6)? as usize;
        let namesize = field(11)? as usize;
        let name_start = pos + 110;
        let name = bytes
            .get(name_start..name_start + namesize.saturating_sub(1))
            .ok_or_else(|| ArchiveError::malformed(file, "truncated name"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let data_start = name_start + namesize + pad4(110 + namesize);
        let data = bytes
            .get(data_start..data_start + size)
            .ok_or_else(|| ArchiveError::malformed(file, format!("truncated data of {name}")))?;
        pos = data_start + size + pad4(size);
        if name == TRAILER {
            continue;
        }
        out.push(ReadEntry {
            path: name,
            mode,
            data: data.to_vec(),
            mtime,
            uid,
            gid,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_of_4_gib_is_refused_from_a_sparse_file() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.img");
        let f = std::fs::File::create(&big).unwrap();
        // Sparse: 4 GiB of length, no block allocated and nothing read.
        f.set_len(MAX_MEMBER + 1).unwrap();
        let mut a = Newc::new(0);
        let err = a.add_file_from("big.img", &big, 0o644).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cpio: `big.img` is 4294967296 bytes: a newc archive member must be smaller than 4 GiB (4294967295 bytes at most)"
        );
        assert!(a.is_empty(), "nothing was added");
        // One byte less is what the format can still describe.
        assert!(check_member_size("x", MAX_MEMBER).is_ok());
        assert!(check_member_size("x", MAX_MEMBER + 1).is_err());
        // A small file goes through the same path.
        let small = dir.path().join("small");
        std::fs::write(&small, b"hi").unwrap();
        a.add_file_from("etc/small", &small, 0o600).unwrap();
        let read = read_all(&a.to_bytes(), "t").unwrap();
        assert_eq!(read.last().unwrap().data, b"hi");
    }

    #[test]
    fn parents_first_and_round_trip() {
        let mut a = Newc::new(0);
        a.add_file("/picaboot/rootfs/etc/rc.local", "#!/bin/sh\n", 0o755)
            .unwrap();
        a.add_file("preseed.cfg", "d-i x\n", 0o644).unwrap();
        a.add_symlink("picaboot/link", "rootfs").unwrap();
        let bytes = a.to_bytes();
        assert_eq!(bytes.len() % 512, 0);
        let mut two = bytes.clone();
        two.extend(&bytes);
        let read = read_all(&two, "t").unwrap();
        let paths: Vec<&str> = read.iter().take(a.len()).map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "picaboot",
                "picaboot/link",
                "picaboot/rootfs",
                "picaboot/rootfs/etc",
                "picaboot/rootfs/etc/rc.local",
                "preseed.cfg"
            ]
        );
        assert_eq!(read.len(), 2 * a.len());
        let rc = &read[4];
        assert!(rc.is_file() && rc.mode & 0o7777 == 0o755 && rc.data == b"#!/bin/sh\n");
        assert!(read[1].is_symlink() && read[1].data == b"rootfs");
        assert!(read[0].is_dir());
    }

    #[test]
    fn cpio_tool_reads_it() {
        let mut a = Newc::new(0);
        a.add_file("a/b/c.txt", "abc", 0o600).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.cpio");
        std::fs::write(&p, a.to_bytes()).unwrap();
        let out = crate::exec::run(
            "list with cpio",
            std::process::Command::new("cpio")
                .args(["-itv", "--quiet", "-F"])
                .arg(&p),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("a/b/c.txt") && text.contains("-rw-------"),
            "{text}"
        );
    }

    #[test]
    fn refuses_escapes() {
        let mut a = Newc::new(0);
        assert!(a.add_file("../x", "", 0o644).is_err());
        assert!(a.add_file("a//b", "", 0o644).is_err());
    }
}
