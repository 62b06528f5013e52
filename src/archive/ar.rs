//! The `ar` container of a Debian package, read member by member.
//!
//! A `.deb` is the common `ar` format with short names only (`debian-binary`,
//! `control.tar.*`, `data.tar.*`): no GNU or BSD long-name tables, no symbol tables. This
//! reader parses exactly that: the `!<arch>\n` magic, then 60-byte headers (name 16, mtime 12,
//! uid 6, gid 6, mode 8, size 10, `` `\n ``), each member's bytes padded to an even offset.
//! A long-name reference (`/14`, `#1/20`) is read as the plain name it is, which no `.deb`
//! member matches; any header that does not parse is an error naming its offset.

use std::io::{self, Read};

/// The global header of every `ar` archive.
pub const MAGIC: &[u8; 8] = b"!<arch>\n";
/// The size of a member header.
const HEADER_LEN: usize = 60;

/// What is wrong with an `ar` stream.
#[derive(Debug, thiserror::Error)]
pub enum ArError {
    /// The bytes do not follow the format.
    #[error("ar archive: {0}")]
    Malformed(String),
    /// Reading failed.
    #[error("ar archive: {0}")]
    Io(#[from] io::Error),
}

/// A sequential reader of `ar` members.
pub struct ArReader<R> {
    inner: R,
    /// Offset of the next header.
    offset: u64,
    /// Bytes of the current member not read yet.
    body_left: u64,
    /// The current member's pad byte (0 or 1), read with what is left of it.
    pad: u64,
}

/// One member: its name, its size, and `Read` over its bytes only.
pub struct Member<'a, R> {
    /// The name, trailing spaces and a GNU-style trailing `/` removed.
    pub name: String,
    /// The member's size in bytes.
    pub size: u64,
    archive: &'a mut ArReader<R>,
}

impl<R: Read> Read for Member<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let a = &mut *self.archive;
        if a.body_left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(a.body_left).unwrap_or(usize::MAX));
        let n = a.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("ar member `{}` is truncated", self.name),
            ));
        }
        a.body_left -= n as u64;
        Ok(n)
    }
}

impl<R: Read> ArReader<R> {
    /// Checks the magic and returns a reader positioned at the first member.
    pub fn new(mut inner: R) -> Result<Self, ArError> {
        let mut magic = [0u8; 8];
        if !read_full(&mut inner, &mut magic)? || &magic != MAGIC {
            return Err(ArError::Malformed("no `!<arch>` magic".into()));
        }
        Ok(Self {
            inner,
            offset: MAGIC.len() as u64,
            body_left: 0,
            pad: 0,
        })
    }

    /// The next member, or `None` at the end of the archive. Whatever was left unread of the
    /// previous member is skipped.
    pub fn next_member(&mut self) -> Result<Option<Member<'_, R>>, ArError> {
        let rest = self.body_left + self.pad;
        if rest > 0 {
            let skipped = io::copy(&mut (&mut self.inner).take(rest), &mut io::sink())?;
            // A missing pad byte at the very end is tolerated (some writers omit it).
            if skipped < self.body_left {
                return Err(ArError::Malformed(format!(
                    "the member before offset {} is truncated",
                    self.offset
                )));
            }
            self.body_left = 0;
            self.pad = 0;
        }
        let at = self.offset;
        let mut h = [0u8; HEADER_LEN];
        if !read_full(&mut self.inner, &mut h)? {
            return Ok(None);
        }
        if &h[58..60] != b"`\n" {
            return Err(ArError::Malformed(format!(
                "member header at offset {at} does not end in \"`\\n\""
            )));
        }
        let size = std::str::from_utf8(&h[48..58])
            .ok()
            .map(str::trim_end)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                ArError::Malformed(format!(
                    "member header at offset {at}: size is not a decimal number"
                ))
            })?;
        let name = String::from_utf8_lossy(&h[..16]);
        let name = name.trim_end_matches(' ');
        let name = name
            .strip_suffix('/')
            .filter(|n| !n.is_empty())
            .unwrap_or(name)
            .to_string();
        // size < 10^10, so none of this can overflow.
        self.offset = at + HEADER_LEN as u64 + size + (size & 1);
        self.body_left = size;
        self.pad = size & 1;
        Ok(Some(Member {
            name,
            size,
            archive: self,
        }))
    }
}

/// Fills `buf` completely: `Ok(true)`; at end of stream before the first byte: `Ok(false)`;
/// a partial fill is an error.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool, ArError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    match got {
        0 => Ok(false),
        n if n == buf.len() => Ok(true),
        n => Err(ArError::Malformed(format!(
            "truncated: {n} of {} header bytes",
            buf.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, body: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            100644,
            body.len()
        )
        .into_bytes();
        v.extend_from_slice(body);
        if body.len() % 2 == 1 {
            v.push(b'\n');
        }
        v
    }

    fn names_and_bodies(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ArError> {
        let mut ar = ArReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(mut m) = ar.next_member()? {
            let mut b = Vec::new();
            m.read_to_end(&mut b)?;
            out.push((m.name.clone(), b));
        }
        Ok(out)
    }

    #[test]
    fn reads_members_with_padding_and_gnu_names() {
        let mut a = MAGIC.to_vec();
        a.extend(member("debian-binary", b"2.0\n"));
        a.extend(member("control.tar.xz/", b"odd"));
        a.extend(member("data.tar", b"payload"));
        let got = names_and_bodies(&a).unwrap();
        assert_eq!(
            got,
            vec![
                ("debian-binary".to_string(), b"2.0\n".to_vec()),
                ("control.tar.xz".to_string(), b"odd".to_vec()),
                ("data.tar".to_string(), b"payload".to_vec()),
            ]
        );
    }

    #[test]
    fn an_unread_member_is_skipped_whole() {
        let mut a = MAGIC.to_vec();
        a.extend(member("first", b"abcde"));
        a.extend(member("second", b"xy"));
        let mut ar = ArReader::new(&a[..]).unwrap();
        let mut m = ar.next_member().unwrap().unwrap();
        let mut one = [0u8; 2];
        m.read_exact(&mut one).unwrap();
        let mut m = ar.next_member().unwrap().unwrap();
        assert_eq!(m.name, "second");
        let mut b = Vec::new();
        m.read_to_end(&mut b).unwrap();
        assert_eq!(b, b"xy");
        assert!(ar.next_member().unwrap().is_none());
    }

    #[test]
    fn bad_headers_are_errors_not_panics() {
        assert!(ArReader::new(&b"!<arch"[..]).is_err());
        assert!(ArReader::new(&b"!<arcX>\n"[..]).is_err());
        let mut a = MAGIC.to_vec();
        a.extend(&member("x", b"abc")[..30]);
        let e = names_and_bodies(&a).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let mut a = MAGIC.to_vec();
        let mut h = member("x", b"");
        h[48..58].copy_from_slice(b"12a4      ");
        a.extend(h);
        let e = names_and_bodies(&a).unwrap_err().to_string();
        assert!(e.contains("offset 8: size is not a decimal number"), "{e}");
        let mut a = MAGIC.to_vec();
        a.extend(member("x", b"abcdef"));
        a.truncate(a.len() - 2);
        let e = names_and_bodies(&a).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    /// The input that made the `ar` crate (0.9.0) panic under `cargo fuzz run deb_read`: a
    /// member named `/0000…14` (a GNU long-name reference) with no name table before it.
    #[test]
    fn the_fuzzer_s_long_name_crash_is_an_error() {
        let bytes = include_bytes!(
            "../../fuzz/crashes/deb_read/crash-3eb749b5aa72ff66dba7e68736d1c9468ad1fd56"
        );
        // Whatever it reads before the first bad header, it is no package's data member.
        if let Ok(members) = names_and_bodies(bytes) {
            assert!(members.iter().all(|(n, _)| !n.starts_with("data.tar")));
        }
    }
}
