//! Archive formats shared by netboot and images: `ar` / `.deb` reading (the `data.tar.*`
//! member, xz, zstd, gzip or plain), a deterministic newc cpio writer and reader, and
//! deterministic gzip streams.
//!
//! Everything here is pure data handling: no network, no external programs.

pub mod ar;
pub mod cpio;
pub mod deb;

use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

/// An archive could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The bytes are not the format they should be.
    #[error("{file}: {reason}")]
    Malformed {
        /// The archive (path or description).
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("{file}: {source}")]
    Io {
        /// The archive (path or description).
        file: String,
        /// The cause.
        source: io::Error,
    },
}

impl ArchiveError {
    pub(crate) fn malformed(file: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Malformed {
            file: file.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(file: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let file = file.into();
        move |source| Self::Io { file, source }
    }
}

/// A deterministic gzip encoder: no file name, mtime 0, fixed level 9.
pub fn gzip_writer<W: Write>(w: W) -> GzEncoder<W> {
    GzBuilder::new().mtime(0).write(w, Compression::best())
}

/// Gzips `data` deterministically (same bytes in, same bytes out).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = gzip_writer(Vec::with_capacity(data.len() / 2));
    enc.write_all(data).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// Decompresses a stream of one or more concatenated gzip members.
pub fn gunzip_all(data: &[u8], file: &str) -> Result<Vec<u8>, ArchiveError> {
    use std::io::Read;
    let mut out = Vec::with_capacity(data.len() * 3);
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(ArchiveError::io(file))?;
    Ok(out)
}

/// A writer that hashes (SHA-256) and counts what goes through it to `inner`: the one hashing
/// writer (layers, installer extraction, downloads).
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<W: std::io::Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        use sha2::Digest;
        Self {
            inner,
            hasher: sha2::Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The inner writer, the hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        use sha2::Digest;
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

crate::exit_class::fixed_class!(crate::exit_class::Class::Env; ArchiveError);

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn hashing_writer_hashes_what_it_writes() {
        let mut w = super::HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (v, sha, n) = w.finish();
        assert_eq!(v, b"abc");
        assert_eq!(n, 3);
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    use super::*;

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let a = gzip(b"hello hello hello");
        assert_eq!(a, gzip(b"hello hello hello"));
        let mut two = a.clone();
        two.extend(gzip(b" world"));
        assert_eq!(gunzip_all(&two, "t").unwrap(), b"hello hello hello world");
    }
}
