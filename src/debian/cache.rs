//! A content-addressed cache: files stored under `sha256/<hex>`, written to a temporary file
//! and renamed into place only after their digest was checked, and re-hashed before every
//! use. Small JSON records under `derived/` remember what was computed from verified inputs
//! (e.g. which blobs a package's members are); they only name digests, so a record can point
//! to a blob but never vouch for its content.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::DebianError;

/// The cache directory and its operations.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Size of read buffers for hashing and copying.
pub const CHUNK: usize = 1 << 20;

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DebianError + 'a {
    move |source| DebianError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, DebianError> {
    let f = File::open(path).map_err(io_err("open", path))?;
    let mut r = BufReader::with_capacity(CHUNK, f);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = r.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

impl Cache {
    /// A cache rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/picaboot`, else `~/.cache/picaboot`.
    pub fn default_dir() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("picaboot");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".cache/picaboot")
    }

    /// The cache root.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("sha256").join(sha256)
    }

    /// The blob with this digest, re-hashed first; a blob whose content no longer matches is
    /// removed (with a warning) and reported as absent.
    pub fn get(&self, sha256: &str) -> Result<Option<PathBuf>, DebianError> {
        let p = self.blob_path(sha256);
        if !p.exists() {
            return Ok(None);
        }
        let actual = sha256_file(&p)?;
        if actual == sha256 {
            Ok(Some(p))
        } else {
            drop_corrupt(&p, &actual)?;
            Ok(None)
        }
    }

    /// Whether a blob is present (not re-hashed: use [`Cache::get`] or
    /// [`Cache::copy_verified`] before trusting it).
    pub fn has(&self, sha256: &str) -> bool {
        self.blob_path(sha256).is_file()
    }

    /// A temporary file inside the cache (same filesystem as the blobs).
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile, DebianError> {
        let tmp = self.dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        tempfile::NamedTempFile::new_in(&tmp).map_err(io_err("create a temporary file in", &tmp))
    }

    /// Moves a temporary file whose digest the caller has verified into place.
    pub fn commit(
        &self,
        tmp: tempfile::NamedTempFile,
        sha256: &str,
    ) -> Result<PathBuf, DebianError> {
        let p = self.blob_path(sha256);
        let parent = p.parent().expect("blob has a parent");
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        tmp.persist(&p).map_err(|e| DebianError::Io {
            what: "store in cache",
            path: p.clone(),
            source: e.error,
        })?;
        Ok(p)
    }

    /// Stores bytes, returning their digest and path.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(String, PathBuf), DebianError> {
        let sha = hex::encode(Sha256::digest(bytes));
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes).map_err(io_err("write", tmp.path()))?;
        let p = self.commit(tmp, &sha)?;
        Ok((sha, p))
    }

    /// Streams the blob `sha256` into `out` while hashing it; fails (after writing) when the
    /// content does not match, so the caller must discard `out` on error.
    pub fn copy_verified(&self, sha256: &str, out: &mut dyn Write) -> Result<u64, DebianError> {
        self.copy_verified_state(sha256, out).map(|(n, _)| n)
    }

    /// Like [`Cache::copy_verified`], also returning the sha256 state after the blob, so that
    /// a caller appending more bytes can finish the digest of the whole without re-reading.
    pub fn copy_verified_state(
        &self,
        sha256: &str,
        out: &mut dyn Write,
    ) -> Result<(u64, Sha256), DebianError> {
        let p = self.blob_path(sha256);
        let f = File::open(&p).map_err(io_err("open", &p))?;
        let mut r = BufReader::with_capacity(CHUNK, f);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = r.read(&mut buf).map_err(io_err("read", &p))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io_err("copy", &p))?;
            total += n as u64;
        }
        let state = h.clone();
        let actual = hex::encode(h.finalize());
        if actual != sha256 {
            let _ = fs::remove_file(&p);
            return Err(DebianError::HashMismatch {
                file: p.display().to_string(),
                expected: sha256.to_string(),
                actual,
            });
        }
        Ok((total, state))
    }

    /// The content of the blob `sha256`, read once and checked; a blob whose content no
    /// longer matches is removed (with a warning) and reported as absent.
    pub fn read_verified(&self, sha256: &str) -> Result<Option<Vec<u8>>, DebianError> {
        let p = self.blob_path(sha256);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &p)(e)),
        };
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual == sha256 {
            Ok(Some(bytes))
        } else {
            drop_corrupt(&p, &actual)?;
            Ok(None)
        }
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.dir.join("derived").join(format!("{key}.json"))
    }

    /// Reads a derived record, if any.
    pub fn record<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let text = fs::read(self.record_path(key)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Writes a derived record (atomically).
    pub fn set_record<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), DebianError> {
        let p = self.record_path(key);
        let parent = p.parent().expect("record has a parent");
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        let mut tmp = self.temp_file()?;
        let text = serde_json::to_vec_pretty(value).expect("record serializes");
        tmp.write_all(&text).map_err(io_err("write", tmp.path()))?;
        tmp.persist(&p).map_err(|e| DebianError::Io {
            what: "store record",
            path: p.clone(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// Removes a cache entry whose content no longer has its name's digest.
fn drop_corrupt(p: &Path, actual: &str) -> Result<(), DebianError> {
    log::warn!(
        "cache: {} is corrupt (sha256 {actual}); removing it",
        p.display()
    );
    fs::remove_file(p).map_err(io_err("remove", p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_blob_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path());
        let (sha, p) = c.put_bytes(b"abc").unwrap();
        assert_eq!(c.get(&sha).unwrap().as_deref(), Some(p.as_path()));
        fs::write(&p, b"abd").unwrap();
        assert!(c.get(&sha).unwrap().is_none());
        assert!(!p.exists());
        let (sha, p) = c.put_bytes(b"abc").unwrap();
        fs::write(&p, b"abd").unwrap();
        let mut out = Vec::new();
        let e = c.copy_verified(&sha, &mut out).unwrap_err();
        assert!(e.to_string().contains("SHA256 mismatch"), "{e}");
    }
}
