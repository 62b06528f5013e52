//! Opening a request path beneath the served root in one step, so that no race (a symlink
//! swapped in between a check and the open) can leave the tree.
//!
//! [`open_beneath`] resolves and opens with `openat2(root_fd, path, RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)`: the kernel refuses every path whose resolution would leave the
//! directory `root_fd` names, at the moment of the open. Symlinks that stay inside are
//! followed. On a kernel without `openat2` (before 5.6) it walks fd by fd with `O_NOFOLLOW`,
//! refusing every symlink.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::path::{segments, Refusal};

/// Opens the served root as a directory handle for [`open_beneath`].
pub fn open_root(root: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn refusal(e: Errno) -> Refusal {
    match e {
        // EXDEV: the resolution would leave the root; ELOOP: a magic link, or (fallback) any
        // symlink; EACCES/EPERM: not ours to serve.
        Errno::XDEV | Errno::LOOP | Errno::ACCESS | Errno::PERM => Refusal::Forbidden,
        _ => Refusal::NotFound,
    }
}

/// Opens the regular file a raw (percent-encoded) URL path names under `root`, read-only.
/// `..`, NUL and encoded `/` are refused before any system call ([`segments`]); everything
/// else is left to the kernel's `RESOLVE_BENEATH`.
pub fn open_beneath(root: &OwnedFd, raw_path: &str) -> Result<File, Refusal> {
    let segs = segments(raw_path)?;
    if segs.is_empty() {
        return Err(Refusal::NotFound);
    }
    let mut rel = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            rel.push(b'/');
        }
        rel.extend_from_slice(s);
    }
    let rel = Path::new(OsStr::from_bytes(&rel));
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let fd = match rustix::fs::openat2(
        root,
        rel,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOSYS) => walk_nofollow(root, &segs, flags)?,
        Err(e) => return Err(refusal(e)),
    };
    regular(fd)
}

/// The fallback: one `openat(O_NOFOLLOW)` per component, directories as `O_PATH`.
fn walk_nofollow(root: &OwnedFd, segs: &[Vec<u8>], last: OFlags) -> Result<OwnedFd, Refusal> {
    let mut dir: Option<OwnedFd> = None;
    for (i, s) in segs.iter().enumerate() {
        let name = Path::new(OsStr::from_bytes(s));
        let at = dir.as_ref().unwrap_or(root);
        let flags = if i + 1 == segs.len() {
            last | OFlags::NOFOLLOW
        } else {
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        let fd = rustix::fs::openat(at, name, flags, Mode::empty()).map_err(refusal)?;
        dir = Some(fd);
    }
    dir.ok_or(Refusal::NotFound)
}

/// Only regular files are served (checked on the opened descriptor itself).
fn regular(fd: OwnedFd) -> Result<File, Refusal> {
    let st = rustix::fs::fstat(&fd).map_err(|_| Refusal::NotFound)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Refusal::NotFound);
    }
    // Reads block again (O_NONBLOCK only kept a FIFO from hanging the open).
    let file = File::from(fd);
    let _ = rustix::fs::fcntl_setfl(&file, OFlags::empty());
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_inside_refuses_outside() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("h/netboot")).unwrap();
        std::fs::write(root.join("h/netboot/linux"), "k").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("leak")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("leakdir")).unwrap();
        std::os::unix::fs::symlink("/proc/self/root/etc/hostname", root.join("magic")).unwrap();
        std::os::unix::fs::symlink("netboot/linux", root.join("h/alias")).unwrap();
        std::os::unix::fs::symlink("../../h/netboot/linux", root.join("h/netboot/up")).unwrap();
        let fd = open_root(&root).unwrap();
        let read = |p: &str| open_beneath(&fd, p).map(|f| std::io::read_to_string(f).unwrap());
        assert_eq!(read("/h/netboot/linux").unwrap(), "k");
        assert_eq!(read("/h/alias").unwrap(), "k");
        assert_eq!(read("/h/netboot/up").unwrap(), "k");
        assert_eq!(read("/leak"), Err(Refusal::Forbidden));
        assert_eq!(read("/leakdir/secret"), Err(Refusal::Forbidden));
        assert_eq!(read("/magic"), Err(Refusal::Forbidden));
        assert_eq!(read("/h/../leak"), Err(Refusal::Forbidden));
        assert_eq!(read("/h"), Err(Refusal::NotFound));
        assert_eq!(read("/"), Err(Refusal::NotFound));
        assert_eq!(read("/nope"), Err(Refusal::NotFound));
    }
}
