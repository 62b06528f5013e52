//! Mapping a request path onto the served tree without ever leaving it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a request path does not name a file of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The path tries to leave the tree (`..`, NUL, a symlink pointing outside): 403.
    Forbidden,
    /// Nothing (or no regular file) there: 404.
    NotFound,
}

/// Splits a raw (percent-encoded) URL path into checked segments.
///
/// Empty segments and `.` are dropped (so `//etc` stays relative to the tree); `..`, a NUL byte,
/// or a `/` produced by percent-decoding (`%2f`) is refused.
pub fn segments(raw_path: &str) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut out = Vec::new();
    for seg in raw_path.split('/') {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(seg).collect();
        if decoded.is_empty() || decoded == b"." {
            continue;
        }
        if decoded == b".."
            || decoded.contains(&0)
            || decoded.contains(&b'/')
            || decoded.contains(&b'\\')
        {
            return Err(Refusal::Forbidden);
        }
        out.push(decoded);
    }
    Ok(out)
}

/// Resolves a raw URL path to a regular file under `root` (already canonical).
///
/// The joined path is canonicalized (resolving every symlink) and must still lie under
/// `root`; the canonical path is returned, so the file opened is the one that was checked.
pub fn resolve(root: &Path, raw_path: &str) -> Result<PathBuf, Refusal> {
    let segs = segments(raw_path)?;
    let mut p = root.to_path_buf();
    for s in &segs {
        p.push(OsStr::from_bytes(s));
    }
    let canon = match std::fs::canonicalize(&p) {
        Ok(c) => c,
        Err(_) => {
            // A dangling symlink, or a missing file: if any existing prefix already escapes,
            // say so; otherwise it is simply not there.
            return Err(Refusal::NotFound);
        }
    };
    if !canon.starts_with(root) {
        return Err(Refusal::Forbidden);
    }
    match std::fs::metadata(&canon) {
        Ok(m) if m.is_file() => Ok(canon),
        _ => Err(Refusal::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_refuse_escapes() {
        assert_eq!(
            segments("/a/./b//c").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(segments("/a/../b"), Err(Refusal::Forbidden));
        assert_eq!(segments("/a/%2e%2e/b"), Err(Refusal::Forbidden));
        assert_eq!(segments("/a%2f..%2fb"), Err(Refusal::Forbidden));
        assert_eq!(segments("/a%00b"), Err(Refusal::Forbidden));
        assert_eq!(
            segments("//etc/passwd").unwrap(),
            vec![b"etc".to_vec(), b"passwd".to_vec()]
        );
    }

    #[test]
    fn resolve_stays_inside() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("h/netboot")).unwrap();
        std::fs::write(root.join("h/netboot/linux"), "k").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("leak")).unwrap();
        std::os::unix::fs::symlink("netboot/linux", root.join("h/alias")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        assert!(resolve(&root, "/h/netboot/linux").is_ok());
        assert!(resolve(&root, "/h/alias").is_ok());
        assert_eq!(resolve(&root, "/leak"), Err(Refusal::Forbidden));
        assert_eq!(resolve(&root, "/h"), Err(Refusal::NotFound));
        assert_eq!(resolve(&root, "/nope"), Err(Refusal::NotFound));
    }
}
