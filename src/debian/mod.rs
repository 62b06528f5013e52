//! Debian archive client: the signed chain `dists/SUITE/InRelease` (checked with `gpgv`
//! against Debian's archive keyring) -> `Packages` (SHA256 from InRelease) -> `pool/…` `.deb`
//! (SHA256 from Packages).
//!
//! Every download is hashed while it streams into a temporary file and renamed into the
//! content-addressed [`cache::Cache`] only when its digest matches; cached files are
//! re-hashed before use. `insecure` skips only the signature check (loudly); hashes are
//! always checked.

pub mod cache;
pub mod deb822;
pub mod index;
pub mod sources;

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

pub use cache::Cache;
pub use index::{Listed, Package, Packages, Release};

use crate::archive::ArchiveError;
use crate::exec::{self, ExecError};

/// Debian's archive keyring (package debian-archive-keyring).
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A failure of the archive client.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    /// The mirror could not be reached or answered an error.
    #[error("download {url}: {reason}")]
    Http {
        /// URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The signature of `InRelease` is not good.
    #[error(
        "{file}: signature check against {keyring} failed: refusing the whole chain\n{detail}"
    )]
    BadSignature {
        /// The InRelease URL.
        file: String,
        /// The keyring used.
        keyring: String,
        /// gpgv's message.
        detail: String,
    },
    /// A file's content does not match its signed digest.
    #[error("{file}: SHA256 mismatch (expected {expected}, got {actual}): refusing it")]
    HashMismatch {
        /// The file (URL or cache path).
        file: String,
        /// Digest from the signed index.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// A file's size does not match the signed index.
    #[error("{file}: size mismatch (expected {expected} bytes, got {actual}): refusing it")]
    SizeMismatch {
        /// The file.
        file: String,
        /// Size from the signed index.
        expected: u64,
        /// Size that arrived.
        actual: u64,
    },
    /// Something the chain needs is not listed.
    #[error("{file}: {what}")]
    Missing {
        /// The index that should list it.
        file: String,
        /// What is missing.
        what: String,
    },
    /// No mirror configured.
    #[error("no Debian mirror: {0}")]
    NoMirror(String),
    /// The keyring to check signatures with is missing.
    #[error(
        "keyring {0} is missing (Debian package debian-archive-keyring, or pass another keyring)"
    )]
    NoKeyring(PathBuf),
    /// The signed Release file has expired (`Valid-Until` in the past): a replayed old index.
    #[error("{file}: expired on {valid_until} (Valid-Until): refusing a possibly replayed index")]
    Expired {
        /// The InRelease URL.
        file: String,
        /// The Valid-Until field.
        valid_until: String,
    },
    /// A reply with no signed size is larger than the limit of its kind.
    #[error(transparent)]
    TooLarge(#[from] crate::limits::TooLarge),
    /// A local file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// Operation.
        what: &'static str,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// An external program failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A downloaded archive is malformed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// How to reach and trust the archive.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Mirror root URL (`http://…/debian`, `https://…` or `file:///…`).
    pub mirror: String,
    /// OpenPGP keyring for `gpgv`.
    pub keyring: PathBuf,
    /// Skip the signature check (hashes are still checked).
    pub insecure: bool,
    /// Cache directory.
    pub cache_dir: PathBuf,
}

/// A Debian archive client.
#[derive(Debug)]
pub struct Client {
    mirror: String,
    keyring: PathBuf,
    insecure: bool,
    cache: Cache,
    http: reqwest::blocking::Client,
}

/// The limit passed with a signed size: unused, the signed size bounds the read.
const NO_LIMIT: crate::limits::Limit = crate::limits::Limit {
    kind: "signed file",
    bytes: u64::MAX,
};

/// Most bytes reserved ahead for an index (the rest grows as it arrives).
const PREALLOCATE_MAX: u64 = 64 << 20;

/// Bytes between progress lines for large downloads.
const PROGRESS_EVERY: u64 = 16 << 20;

impl Client {
    /// A client for `opts` (the HTTP policy of [`crate::http`]: system roots, proxies from the
    /// environment, retried GETs).
    pub fn new(opts: ClientOptions) -> Self {
        let http = crate::http::blocking(None).expect("an HTTP client without a proxy builds");
        Self {
            mirror: opts.mirror.trim_end_matches('/').to_string(),
            keyring: opts.keyring,
            insecure: opts.insecure,
            cache: Cache::new(opts.cache_dir),
            http,
        }
    }

    /// Routes HTTP(S) requests through a proxy (`http://host:port`), e.g. the host profile's
    /// `install.proxy`.
    pub fn with_proxy(mut self, proxy: &str) -> Result<Self, DebianError> {
        self.http = crate::http::blocking(Some(proxy)).map_err(|e| DebianError::Http {
            url: proxy.to_string(),
            reason: format!("not a usable proxy: {e}"),
        })?;
        Ok(self)
    }

    /// The mirror root URL.
    pub fn mirror(&self) -> &str {
        &self.mirror
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    fn url(&self, rel: &str) -> String {
        format!("{}/{}", self.mirror, rel)
    }

    /// Opens `rel` on the mirror for reading, with its length when known.
    fn open(&self, rel: &str) -> Result<(Box<dyn Read + Send>, Option<u64>), DebianError> {
        let url = self.url(rel);
        if let Some(path) = url.strip_prefix("file://") {
            let f = std::fs::File::open(path).map_err(|e| DebianError::Http {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            let len = f.metadata().ok().map(|m| m.len());
            return Ok((Box::new(f), len));
        }
        match crate::http::get(&self.http, &url) {
            Ok(resp) => {
                let len = resp.content_length();
                Ok((Box::new(resp), len))
            }
            Err(crate::http::HttpError::Get { reason, .. }) => {
                Err(DebianError::Http { url, reason })
            }
            Err(e) => Err(DebianError::Http {
                url,
                reason: e.to_string(),
            }),
        }
    }

    /// The bytes of `rel` with **no** check: only for comparing what a mirror serves with what
    /// the signed chain lists (the install harness does this to detect a stale udeb index).
    /// Never use the result as trusted content. At most
    /// [`UNVERIFIED_INDEX`](crate::limits::UNVERIFIED_INDEX) bytes are read.
    pub fn unverified_bytes(&self, rel: &str) -> Result<Vec<u8>, DebianError> {
        let mut v = Vec::new();
        self.download(rel, None, crate::limits::UNVERIFIED_INDEX, &mut v)?;
        Ok(v)
    }

    /// Downloads `rel` into `out`, hashing while streaming; checks size and digest when given.
    /// Reads at most the listed size when `expect` is given, else at most `limit` (a
    /// `Content-Length` above either is refused before reading).
    fn download(
        &self,
        rel: &str,
        expect: Option<&Listed>,
        limit: crate::limits::Limit,
        out: &mut dyn Write,
    ) -> Result<Listed, DebianError> {
        let url = self.url(rel);
        let (mut r, len) = self.open(rel)?;
        if let (Some(e), Some(n)) = (expect, len) {
            if n > e.size {
                return Err(DebianError::SizeMismatch {
                    file: url,
                    expected: e.size,
                    actual: n,
                });
            }
        }
        if expect.is_none() {
            limit.check_announced(&url, len)?;
        }
        let total = expect.map(|e| e.size).or(len);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; cache::CHUNK];
        let mut done = 0u64;
        let mut next_report = PROGRESS_EVERY;
        let start = Instant::now();
        let shown = crate::progress::transfer(rel.rsplit('/').next().unwrap_or(rel), total);
        loop {
            let n = r.read(&mut buf).map_err(|e| DebianError::Http {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            done += n as u64;
            match expect {
                Some(e) if done > e.size => {
                    return Err(DebianError::SizeMismatch {
                        file: url,
                        expected: e.size,
                        actual: done,
                    });
                }
                None if done > limit.bytes => return Err(limit.exceeded(&url).into()),
                _ => {}
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| DebianError::Io {
                what: "write download of",
                path: PathBuf::from(&url),
                source: e,
            })?;
            shown.inc(n as u64);
            if done >= next_report {
                next_report += PROGRESS_EVERY;
                match total {
                    Some(t) if t > 0 => log::info!(
                        "{rel}: {} / {} MB ({}%)",
                        done >> 20,
                        t >> 20,
                        done * 100 / t
                    ),
                    _ => log::info!("{rel}: {} MB", done >> 20),
                }
            }
        }
        let got = Listed {
            sha256: hex::encode(h.finalize()),
            size: done,
        };
        log::info!(
            "{rel}: {} bytes in {:.2} s",
            done,
            start.elapsed().as_secs_f64()
        );
        shown.finish();
        if let Some(e) = expect {
            if got.size != e.size {
                return Err(DebianError::SizeMismatch {
                    file: url,
                    expected: e.size,
                    actual: got.size,
                });
            }
            if got.sha256 != e.sha256 {
                return Err(DebianError::HashMismatch {
                    file: url,
                    expected: e.sha256.clone(),
                    actual: got.sha256,
                });
            }
        }
        Ok(got)
    }

    /// Fetches and verifies `dists/SUITE/InRelease`.
    pub fn release(&self, suite: &str) -> Result<Release, DebianError> {
        let rel = format!("dists/{suite}/InRelease");
        let mut bytes = Vec::new();
        self.download(&rel, None, crate::limits::INRELEASE, &mut bytes)?;
        let text = if self.insecure {
            log::warn!(
                "INSECURE: the signature of {} is NOT checked (--insecure); only hashes are",
                self.url(&rel)
            );
            strip_clearsign(&bytes).ok_or_else(|| DebianError::Missing {
                file: self.url(&rel),
                what: "not an OpenPGP clearsigned file".into(),
            })?
        } else {
            self.verify_signature(&rel, &bytes)?
        };
        let release = Release::parse(suite, &text);
        let names = [release.fields.get("Codename"), release.fields.get("Suite")];
        if !names.iter().any(|n| n.map(String::as_str) == Some(suite)) {
            return Err(DebianError::Missing {
                file: self.url(&rel),
                what: format!(
                    "signed for suite {:?} / codename {:?}, not {suite}: refusing it",
                    release.fields.get("Suite"),
                    release.fields.get("Codename")
                ),
            });
        }
        if let Some(until) = release.fields.get("Valid-Until") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            match index::parse_rfc2822(until) {
                Some(t) if t >= now => {}
                _ => {
                    return Err(DebianError::Expired {
                        file: self.url(&rel),
                        valid_until: until.clone(),
                    })
                }
            }
        }
        Ok(release)
    }

    fn verify_signature(&self, rel: &str, bytes: &[u8]) -> Result<String, DebianError> {
        if !self.keyring.is_file() {
            return Err(DebianError::NoKeyring(self.keyring.clone()));
        }
        let dir = tempfile::tempdir().map_err(|e| DebianError::Io {
            what: "create a temporary directory",
            path: std::env::temp_dir(),
            source: e,
        })?;
        let signed = dir.path().join("InRelease");
        let plain = dir.path().join("Release");
        std::fs::write(&signed, bytes).map_err(|e| DebianError::Io {
            what: "write",
            path: signed.clone(),
            source: e,
        })?;
        let result = exec::run(
            "check the archive signature",
            Command::new("gpgv")
                .arg("--keyring")
                .arg(&self.keyring)
                .arg("--output")
                .arg(&plain)
                .arg(&signed),
        );
        match result {
            Ok(_) => std::fs::read_to_string(&plain).map_err(|e| DebianError::Io {
                what: "read",
                path: plain,
                source: e,
            }),
            Err(ExecError::Failed { tail, status, .. }) => Err(DebianError::BadSignature {
                file: self.url(rel),
                keyring: self.keyring.display().to_string(),
                detail: format!("gpgv {status}:{tail}"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The verified `Packages` index `COMPONENT/binary-ARCH/Packages` (or
    /// `COMPONENT/debian-installer/binary-ARCH/Packages`) of a release: taken from the cache
    /// by its signed digest, else downloaded compressed (`.xz`, else `.gz`), checked, and
    /// decompressed and checked again.
    pub fn packages(&self, release: &Release, index: &str) -> Result<Packages, DebianError> {
        let base = format!("dists/{}/", release.suite);
        let origin = format!("{base}{index}");
        let plain = release
            .sha256
            .get(index)
            .ok_or_else(|| DebianError::Missing {
                file: self.url(&format!("{base}InRelease")),
                what: format!("lists no SHA256 for {index}"),
            })?;
        let bytes = match self.cache.read_verified(&plain.sha256)? {
            Some(b) => b,
            None => {
                let (ext, listed) = [".xz", ".gz"]
                    .iter()
                    .find_map(|ext| {
                        release
                            .sha256
                            .get(&format!("{index}{ext}"))
                            .map(|l| (*ext, l))
                    })
                    .ok_or_else(|| DebianError::Missing {
                        file: self.url(&format!("{base}InRelease")),
                        what: format!("lists no SHA256 for {index}.xz or {index}.gz"),
                    })?;
                let rel = format!("{origin}{ext}");
                // Sizes from an unsigned InRelease (`--insecure`) are not trusted for allocation.
                let mut compressed = Vec::with_capacity(listed.size.min(PREALLOCATE_MAX) as usize);
                self.download(&rel, Some(listed), NO_LIMIT, &mut compressed)?;
                let mut text = Vec::with_capacity(plain.size.min(PREALLOCATE_MAX) as usize);
                // Decompressed, at most one byte more than the signed size of the plain index.
                let bound = plain.size.saturating_add(1);
                let r: io::Result<usize> = if ext == ".xz" {
                    liblzma::read::XzDecoder::new_multi_decoder(&compressed[..])
                        .take(bound)
                        .read_to_end(&mut text)
                } else {
                    flate2::read::MultiGzDecoder::new(&compressed[..])
                        .take(bound)
                        .read_to_end(&mut text)
                };
                r.map_err(|e| {
                    DebianError::Archive(ArchiveError::Io {
                        file: self.url(&rel),
                        source: e,
                    })
                })?;
                let actual = hex::encode(Sha256::digest(&text));
                if actual != plain.sha256 {
                    return Err(DebianError::HashMismatch {
                        file: format!("{} (decompressed)", self.url(&rel)),
                        expected: plain.sha256.clone(),
                        actual,
                    });
                }
                self.cache.put_bytes(&text)?;
                text
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| DebianError::Missing {
            file: self.url(&origin),
            what: "not UTF-8 text".into(),
        })?;
        Ok(Packages::new(origin, text))
    }

    /// The verified `.deb` (or `.udeb`) of `pkg`, from the cache or downloaded.
    pub fn fetch(&self, pkg: &Package) -> Result<PathBuf, DebianError> {
        if let Some(p) = self.cache.get(&pkg.sha256)? {
            log::debug!("{}: cached as {}", pkg.filename, p.display());
            return Ok(p);
        }
        log::info!("downloading {} ({} MB)", pkg.filename, pkg.size >> 20);
        let mut tmp = self.cache.temp_file()?;
        let tmp_path = tmp.path().to_path_buf();
        {
            let mut w = io::BufWriter::with_capacity(cache::CHUNK, tmp.as_file_mut());
            self.download(
                &pkg.filename,
                Some(&Listed {
                    sha256: pkg.sha256.clone(),
                    size: pkg.size,
                }),
                NO_LIMIT,
                &mut w,
            )?;
            w.flush().map_err(|e| DebianError::Io {
                what: "write",
                path: tmp_path,
                source: e,
            })?;
        }
        self.cache.commit(tmp, &pkg.sha256)
    }

    /// Looks `name` up in `packages`, with a clear error when it is not there.
    pub fn find(&self, packages: &Packages, name: &str) -> Result<Package, DebianError> {
        packages.get(name).ok_or_else(|| DebianError::Missing {
            file: self.url(&packages.origin),
            what: format!("no package `{name}`"),
        })
    }
}

/// The signed text of an OpenPGP clearsigned message, without checking the signature (for
/// `--insecure` only). `None` when the framing is not that of a clearsigned message.
pub fn strip_clearsign(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----\n")?;
    let body_start = rest.find("\n\n")? + 2;
    let rest = &rest[body_start..];
    let end = rest.find("\n-----BEGIN PGP SIGNATURE-----")?;
    let body = &rest[..end];
    let mut out = String::with_capacity(body.len() + 1);
    for line in body.lines() {
        out.push_str(line.strip_prefix("- ").unwrap_or(line));
        out.push('\n');
    }
    Some(out)
}

impl crate::exit_class::ExitClass for DebianError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        // Network, a mirror that serves bad or stale data, no mirror or keyring on this
        // machine, a missing tool, the cache: all the environment.
        Class::Env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_is_checked() {
        let c = || {
            Client::new(ClientOptions {
                mirror: "http://127.0.0.1:9/debian".into(),
                keyring: DEFAULT_KEYRING.into(),
                insecure: false,
                cache_dir: std::env::temp_dir(),
            })
        };
        assert!(c().with_proxy("http://proxy.example:3128").is_ok());
        assert!(c().with_proxy("ftp://x:1").is_err());
    }

    #[test]
    fn clearsign_body() {
        let msg = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\n- -dash\n-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n";
        assert_eq!(strip_clearsign(msg).unwrap(), "Origin: Debian\n-dash\n");
    }
}
