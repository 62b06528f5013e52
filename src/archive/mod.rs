//! Archive formats shared by netboot and images: `ar` / `.deb` reading (the `data.tar.*`
//! member, xz, zstd, gzip or plain), a deterministic newc cpio writer and reader, and
//! deterministic gzip streams.
//!
//! Everything here is pure data handling: no network, no external programs.

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

#[cfg(test)]
mod tests {
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
