//! Size limits on everything picaboot reads that it did not write: replies from mirrors,
//! registries and token services, and files downloaded for images. One [`Limit`] per kind,
//! named in the error ([`TooLarge`]) with the URL, so that a hostile or broken server that
//! sends an endless body or announces a huge `Content-Length` costs at most the limit in
//! memory or on disk, and the user learns which limit stopped what.
//!
//! Where a signed index gives the exact size (a `Packages` file listed in `InRelease`, a
//! `.deb` listed in `Packages`, a blob in its descriptor), that size is the bound; the limits
//! here cover what has no signed size.

use std::io::Read;

/// A named bound on the size of one kind of untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What is read (`"InRelease"`, `"registry token reply"`…), as the error names it.
    pub kind: &'static str,
    /// Largest size accepted, in bytes.
    pub bytes: u64,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// A Debian `InRelease` (unsigned until it is checked, so unbounded until then). bookworm's
/// is 151 KB (`/var/lib/apt/lists` of this kind of machine): 16 MiB is a hundred times that.
pub const INRELEASE: Limit = Limit {
    kind: "InRelease",
    bytes: 16 * MIB,
};

/// A mirror file read without a signed size to compare with (the install harness's check of
/// a possibly stale udeb index). Debian's largest index, `main/binary-amd64/Packages.xz`, is
/// about 10 MB.
pub const UNVERIFIED_INDEX: Limit = Limit {
    kind: "unverified mirror index",
    bytes: 64 * MIB,
};

/// A `dists/` file passed through `serve --mirror-proxy` (indexes: the clients check them
/// against the signed InRelease; Debian's largest, `Contents-amd64.gz`, is about 50 MB).
pub const MIRROR_INDEX: Limit = Limit {
    kind: "mirror index",
    bytes: 256 * MIB,
};

/// A `pool/` file passed through `serve --mirror-proxy` (a `.deb`; the installer checks it
/// against the signed `Packages`). Debian's largest packages are under 2 GB.
pub const MIRROR_POOL_FILE: Limit = Limit {
    kind: "mirror pool file",
    bytes: 4 * GIB,
};

/// A CA file given to `image push --ca-file` (PEM; a whole distribution bundle of roots is
/// about 220 KB).
pub const CA_FILE: Limit = Limit {
    kind: "CA file",
    bytes: 4 * MIB,
};

/// An OCI manifest or index, the size the OCI distribution spec recommends registries accept.
pub const OCI_MANIFEST: Limit = Limit {
    kind: "OCI manifest",
    bytes: 4 * MIB,
};

/// The reply of a registry's token service (a JSON object with a token of a few KB).
pub const TOKEN_REPLY: Limit = Limit {
    kind: "registry token reply",
    bytes: MIB,
};

/// The body of an error reply, read for its first lines (only [`ERROR_BODY_SHOWN`] characters
/// are shown); the rest is not read.
pub const ERROR_BODY: Limit = Limit {
    kind: "error reply",
    bytes: 64 * KIB,
};

/// Characters of an error reply shown in a message.
pub const ERROR_BODY_SHOWN: usize = 300;

/// A file an image spec downloads (pinned by its sha256, with no size in the spec).
pub const IMAGE_DOWNLOAD: Limit = Limit {
    kind: "image download",
    bytes: 4 * GIB,
};

/// What an external program run under a deadline writes on stdout or on stderr (ssh with a
/// remote command, `podman exec`): the answers picaboot reads are a few KB to a few MB.
pub const PROGRAM_OUTPUT: Limit = Limit {
    kind: "program output",
    bytes: 64 * MIB,
};

impl Limit {
    /// The same limit with another size (a signed size, when one is known).
    pub fn with_bytes(self, bytes: u64) -> Limit {
        Limit { bytes, ..self }
    }

    /// The error for `url` exceeding this limit.
    pub fn exceeded(self, url: &str) -> TooLarge {
        TooLarge {
            kind: self.kind,
            limit: self.bytes,
            url: url.to_string(),
        }
    }

    /// Refuses a `Content-Length` above the limit before anything is read.
    pub fn check_announced(self, url: &str, len: Option<u64>) -> Result<(), TooLarge> {
        match len {
            Some(n) if n > self.bytes => Err(self.exceeded(url)),
            _ => Ok(()),
        }
    }
}

/// A reply or file larger than the limit of its kind: refused, and nothing beyond the limit
/// was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: larger than the {kind} limit of {} ({limit} bytes): refusing it", human(*.limit))]
pub struct TooLarge {
    /// The kind of input ([`Limit::kind`]).
    pub kind: &'static str,
    /// The limit in bytes.
    pub limit: u64,
    /// Where it came from.
    pub url: String,
}

/// `16 MiB`, `64 KiB`, `4 GiB`, or bytes.
pub fn human(n: u64) -> String {
    for (unit, size) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The input is larger than its limit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads `r` whole, at most `limit.bytes` (one byte more is read to tell "exactly the limit"
/// from "more").
pub fn read_bounded(r: impl Read, limit: Limit, url: &str) -> Result<Vec<u8>, ReadError> {
    let mut v = Vec::new();
    r.take(limit.bytes.saturating_add(1)).read_to_end(&mut v)?;
    if v.len() as u64 > limit.bytes {
        return Err(limit.exceeded(url).into());
    }
    Ok(v)
}

/// Reads an async reply body whole, at most `limit.bytes`: a `Content-Length` above the
/// limit is refused before reading, and the body is read chunk by chunk and dropped as soon as
/// it passes the limit (a chunked or endless body).
pub async fn reply_bounded(resp: reqwest::Response, limit: Limit) -> Result<Vec<u8>, ReplyError> {
    use futures_util::StreamExt;
    let url = resp.url().to_string();
    limit.check_announced(&url, resp.content_length())?;
    let mut v = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReplyError::Transfer)?;
        if (v.len() + chunk.len()) as u64 > limit.bytes {
            return Err(limit.exceeded(&url).into());
        }
        v.extend_from_slice(&chunk);
    }
    Ok(v)
}

/// Why a bounded async read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// The reply is larger than its limit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// The transfer broke off.
    #[error("{0}")]
    Transfer(reqwest::Error),
}

/// The first [`ERROR_BODY_SHOWN`] characters of an error reply, reading at most
/// [`ERROR_BODY`]; empty when the body cannot be read.
pub async fn error_detail(resp: reqwest::Response) -> String {
    use futures_util::StreamExt;
    let mut v = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = (ERROR_BODY.bytes as usize).saturating_sub(v.len());
        v.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if v.len() as u64 >= ERROR_BODY.bytes {
            break;
        }
    }
    String::from_utf8_lossy(&v)
        .trim()
        .chars()
        .take(ERROR_BODY_SHOWN)
        .collect()
}

// A reply larger than the limit of its kind: the server's fault.
crate::exit_class::fixed_class!(crate::exit_class::Class::Env; TooLarge);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sizes() {
        assert_eq!(human(16 * MIB), "16 MiB");
        assert_eq!(human(64 * KIB), "64 KiB");
        assert_eq!(human(4 * GIB), "4 GiB");
        assert_eq!(human(1000), "1000 bytes");
        let e = INRELEASE.exceeded("http://m/debian/dists/x/InRelease");
        assert_eq!(
            e.to_string(),
            format!(
                "http://m/debian/dists/x/InRelease: larger than the InRelease limit of 16 MiB ({} bytes): refusing it",
                16 * MIB
            )
        );
    }

    #[test]
    fn reads_up_to_the_limit_and_not_beyond() {
        let l = Limit {
            kind: "test",
            bytes: 10,
        };
        assert_eq!(read_bounded(&[7u8; 10][..], l, "u").unwrap().len(), 10);
        let e = read_bounded(std::io::repeat(0), l, "u").unwrap_err();
        assert!(
            matches!(e, ReadError::TooLarge(ref t) if t.limit == 10),
            "{e}"
        );
        assert!(l.check_announced("u", Some(11)).is_err());
        assert!(l.check_announced("u", Some(10)).is_ok());
        assert!(l.check_announced("u", None).is_ok());
    }
}
