//! A Debian mirror proxy for installs under test: `/debian/…` on the serve address maps to an
//! upstream mirror. `pool/` files (immutable) are cached on disk across runs, so a repeated
//! install downloads nothing twice; `dists/` files are cached for the life of the process.
//! `dists/SUITE/Release` and `Release.gpg` are served from the upstream `InRelease`
//! ([`crate::mirror::split_inrelease`]): Debian's own signatures, consistent with each other
//! even where the upstream detached `Release.gpg` lags behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// Why a mirror file could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The upstream request failed.
    #[error("upstream {url}: {reason}")]
    Upstream {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The request path is not a clean relative path under the mirror (after
    /// percent-decoding): refused, nothing fetched or cached.
    #[error("refusing mirror path `{0}`: not a clean relative path under the mirror")]
    BadPath(String),
    /// An upstream reply is larger than the limit of its kind (nothing of it is kept).
    #[error(transparent)]
    TooLarge(#[from] crate::limits::TooLarge),
    /// Writing the cache failed.
    #[error("cache {path}: {source}")]
    Cache {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The proxy state.
#[derive(Debug)]
pub struct MirrorProxy {
    upstream: String,
    pool_cache: PathBuf,
    scratch: tempfile::TempDir,
    client: reqwest::Client,
    /// Serialises downloads of the same path.
    locks: Mutex<BTreeMap<String, std::sync::Arc<Mutex<()>>>>,
    /// Files served before upstream's (the install harness's `dists/SUITE-picaboot/`).
    overlay: Option<PathBuf>,
}

impl MirrorProxy {
    /// A proxy of `upstream` (`http://host/debian`) caching pool files under `pool_cache`,
    /// in a directory of its own per upstream ([`upstream_key`]): two upstreams never share
    /// cached files.
    pub fn new(upstream: &str, pool_cache: &Path) -> std::io::Result<Self> {
        let upstream = upstream.trim_end_matches('/').to_string();
        let pool_cache = pool_cache.join(upstream_key(&upstream));
        std::fs::create_dir_all(&pool_cache)?;
        Ok(MirrorProxy {
            upstream,
            pool_cache,
            scratch: tempfile::tempdir()?,
            client: crate::http::async_builder()
                .connect_timeout(std::time::Duration::from_secs(20))
                .build()
                .map_err(std::io::Error::other)?,
            locks: Mutex::new(BTreeMap::new()),
            overlay: None,
        })
    }

    /// Serves files under `dir` (same layout as the mirror root) before upstream's: the
    /// install harness's udeb suite. Only `picaboot test install` sets one.
    pub fn with_overlay(mut self, dir: &Path) -> Self {
        self.overlay = Some(dir.to_path_buf());
        self
    }

    /// The upstream URL.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// A local file holding `rel` (a path below the mirror root, as it came in the request:
    /// percent-encoded), fetched if needed; `None` when upstream has no such file.
    /// [`MirrorError::BadPath`] when `rel`, decoded, is not a clean relative path of the
    /// characters Debian archive paths use.
    pub async fn file_for(&self, rel: &str) -> Result<Option<PathBuf>, MirrorError> {
        let rel = clean_rel(rel).ok_or_else(|| MirrorError::BadPath(rel.to_string()))?;
        let rel = rel.as_str();
        if let Some(o) = &self.overlay {
            let p = o.join(rel);
            if p.is_file() {
                return Ok(Some(p));
            }
            if rel.starts_with("dists/") && rel.contains("-picaboot/") {
                return Ok(None);
            }
        }
        // Release and Release.gpg of a suite are written together: one lock for the pair.
        let release_pair = rel
            .strip_suffix("/Release")
            .or_else(|| rel.strip_suffix("/Release.gpg"))
            .filter(|d| d.starts_with("dists/") && d.matches('/').count() == 1);
        let key = match release_pair {
            Some(d) => format!("{d}/Release*"),
            None => rel.to_string(),
        };
        let lock = {
            let mut locks = self.locks.lock().await;
            locks.entry(key.clone()).or_default().clone()
        };
        let result = {
            let _guard = lock.lock().await;
            self.fetch_locked(rel, release_pair).await
        };
        // Only paths being fetched right now keep a lock: the map stays bounded by the
        // requests in flight.
        let mut locks = self.locks.lock().await;
        if std::sync::Arc::strong_count(&lock) == 2 {
            locks.remove(&key);
        }
        result
    }

    /// Number of per-path locks held (requests in flight); for tests of the bound.
    pub async fn locks_held(&self) -> usize {
        self.locks.lock().await.len()
    }

    async fn fetch_locked(
        &self,
        rel: &str,
        release_pair: Option<&str>,
    ) -> Result<Option<PathBuf>, MirrorError> {
        let local = if rel.starts_with("pool/") {
            self.pool_cache.join(rel)
        } else {
            self.scratch.path().join(rel)
        };
        if local.is_file() {
            return Ok(Some(local));
        }
        if let Some(suite_dir) = release_pair {
            return self.release_pair(suite_dir, rel).await;
        }
        let url = format!("{}/{rel}", self.upstream);
        match self.download(&url, &local).await? {
            true => Ok(Some(local)),
            false => Ok(None),
        }
    }

    /// Writes `Release` and `Release.gpg` of `suite_dir` from its InRelease; returns `rel`.
    async fn release_pair(
        &self,
        suite_dir: &str,
        rel: &str,
    ) -> Result<Option<PathBuf>, MirrorError> {
        let url = format!("{}/{suite_dir}/InRelease", self.upstream);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| upstream(&url, e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = resp.error_for_status().map_err(|e| upstream(&url, e))?;
        let bytes = crate::limits::reply_bounded(resp, crate::limits::INRELEASE)
            .await
            .map_err(|e| match e {
                crate::limits::ReplyError::TooLarge(t) => MirrorError::TooLarge(t),
                crate::limits::ReplyError::Transfer(e) => upstream(&url, e),
            })?;
        let text = String::from_utf8_lossy(&bytes);
        let (release, signature) =
            crate::mirror::split_inrelease(&text).map_err(|e| MirrorError::Upstream {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let dir = self.scratch.path().join(suite_dir);
        for (name, body) in [("Release", release), ("Release.gpg", signature)] {
            write_atomic(&dir.join(name), body.as_bytes()).await?;
        }
        Ok(Some(self.scratch.path().join(rel)))
    }

    /// Streams `url` into `local` (temporary file + rename); false on 404. At most the
    /// [`limit_for`] its path: a larger reply is refused and its partial file removed.
    async fn download(&self, url: &str, local: &Path) -> Result<bool, MirrorError> {
        let limit = limit_for(&url[self.upstream.len()..]);
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| upstream(url, e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let resp = resp.error_for_status().map_err(|e| upstream(url, e))?;
        limit.check_announced(url, resp.content_length())?;
        let dir = local.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| cache(dir, e))?;
        let tmp = temp_name(local);
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| cache(&tmp, e))?;
        let written = copy_bounded(resp, &mut f, &tmp, url, limit).await;
        drop(f);
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, local)
            .await
            .map_err(|e| cache(local, e))?;
        Ok(true)
    }
}

/// The limit of a file below the mirror root (`/dists/…`, `/pool/…`): an `InRelease`
/// [`INRELEASE`](crate::limits::INRELEASE), a `pool/` file
/// [`MIRROR_POOL_FILE`](crate::limits::MIRROR_POOL_FILE), any other
/// [`MIRROR_INDEX`](crate::limits::MIRROR_INDEX).
fn limit_for(rel: &str) -> crate::limits::Limit {
    let rel = rel.trim_start_matches('/');
    if rel.starts_with("pool/") {
        crate::limits::MIRROR_POOL_FILE
    } else if rel.ends_with("/InRelease") {
        crate::limits::INRELEASE
    } else {
        crate::limits::MIRROR_INDEX
    }
}

/// Copies the body of `resp` into `f` (the file `tmp`), at most `limit.bytes`.
async fn copy_bounded(
    resp: reqwest::Response,
    f: &mut tokio::fs::File,
    tmp: &Path,
    url: &str,
    limit: crate::limits::Limit,
) -> Result<(), MirrorError> {
    let mut done = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| upstream(url, e))?;
        done += chunk.len() as u64;
        if done > limit.bytes {
            return Err(limit.exceeded(url).into());
        }
        f.write_all(&chunk).await.map_err(|e| cache(tmp, e))?;
    }
    f.flush().await.map_err(|e| cache(tmp, e))
}

fn upstream(url: &str, e: reqwest::Error) -> MirrorError {
    MirrorError::Upstream {
        url: url.to_string(),
        reason: e.to_string(),
    }
}

fn cache(path: &Path, source: std::io::Error) -> MirrorError {
    MirrorError::Cache {
        path: path.to_path_buf(),
        source,
    }
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MirrorError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| cache(dir, e))?;
    let tmp = temp_name(path);
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| cache(&tmp, e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| cache(path, e))
}

/// A temporary name beside `path` that no other write uses: the file's own name, this
/// process and a per-process counter (`Release` and `Release.gpg` never share one).
fn temp_name(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part-{}-{n}", std::process::id()))
}

/// The cache directory name of an upstream: its URL with every byte outside `[A-Za-z0-9.-]`
/// as `_`, plus 12 hex digits of its sha256 (so that two URLs that map to the same text differ).
pub fn upstream_key(upstream: &str) -> String {
    use sha2::Digest;
    let text: String = upstream
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let h = hex::encode(sha2::Sha256::digest(upstream.as_bytes()));
    format!("{text}-{}", &h[..12])
}

/// `rel` percent-decoded, if it is a clean relative path a Debian mirror serves: non-empty
/// segments, none `.` or `..`, only `[A-Za-z0-9._+~-]` (no `%` left, no NUL, no `/` smuggled
/// inside a segment), at most 1024 bytes.
pub fn clean_rel(rel: &str) -> Option<String> {
    if rel.len() > 3 * 1024 {
        return None;
    }
    let mut segments = Vec::new();
    for raw in rel.split('/') {
        let s = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?
            .into_owned();
        if s.contains('/') {
            return None;
        }
        segments.push(s);
    }
    let decoded = segments.join("/");
    let ok = !decoded.is_empty()
        && decoded.len() <= 1024
        && decoded
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && decoded
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-+~".contains(&c));
    ok.then_some(decoded)
}

crate::exit_class::fixed_class!(crate::exit_class::Class::Env; MirrorError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_after_decoding() {
        for bad in [
            "pool/%2e%2e/%2e%2e/secret.txt",
            "pool/%2E%2E/x",
            "pool/a%2fb",
            "pool/%00",
            "pool/%",
            "../x",
            "pool//x",
            "pool/./x",
            "",
            "pool/%252e%252e/x",
        ] {
            assert_eq!(clean_rel(bad), None, "{bad}");
        }
        assert_eq!(
            clean_rel("pool/main/g/gcc/libgcc-s1_14.2.0-19%2Bdeb13u1_amd64.deb").as_deref(),
            Some("pool/main/g/gcc/libgcc-s1_14.2.0-19+deb13u1_amd64.deb")
        );
    }

    #[test]
    fn release_and_its_signature_never_share_a_temporary_name() {
        let a = temp_name(Path::new("/c/dists/trixie/Release"));
        let b = temp_name(Path::new("/c/dists/trixie/Release.gpg"));
        let c = temp_name(Path::new("/c/dists/trixie/Release"));
        assert_ne!(a, b);
        assert_ne!(a, c, "two writes of the same file");
        assert_eq!(a.parent(), Some(Path::new("/c/dists/trixie")));
    }

    /// An upstream that answers `head` and then `body_len` bytes (at most), on every
    /// connection; its address.
    fn hostile(head: &'static str, body_len: u64) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut s = s;
                    let mut req = [0u8; 4096];
                    let _ = s.read(&mut req);
                    if s.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    let chunk = [b'x'; 1 << 16];
                    let mut sent = 0;
                    while sent < body_len && s.write_all(&chunk).is_ok() {
                        sent += chunk.len() as u64;
                    }
                });
            }
        });
        addr
    }

    /// Files left in a directory tree (a partial download would be one).
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    v.extend(files_under(&p));
                } else {
                    v.push(p);
                }
            }
        }
        v
    }

    #[test]
    fn upstream_replies_are_bounded_by_their_kind() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cache = tempfile::tempdir().unwrap();
        let endless = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        // Twice the InRelease limit, without a length: read until the limit, then refused.
        let inrelease = crate::limits::INRELEASE;
        let up = format!("http://{}/debian", hostile(endless, 2 * inrelease.bytes));
        let proxy = MirrorProxy::new(&up, cache.path()).unwrap();
        for rel in ["dists/trixie/InRelease", "dists/trixie/Release"] {
            let e = rt.block_on(proxy.file_for(rel)).unwrap_err();
            let want = format!(
                "{up}/dists/trixie/InRelease: larger than the InRelease limit of 16 MiB ({} bytes)",
                inrelease.bytes
            );
            assert!(e.to_string().contains(&want), "{rel}: {e}");
        }
        assert_eq!(files_under(proxy.scratch.path()), Vec::<PathBuf>::new());
        // A pool file announced larger than its limit: refused before anything is written.
        let huge = "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n";
        let up = format!("http://{}/debian", hostile(huge, 1 << 20));
        let proxy = MirrorProxy::new(&up, cache.path()).unwrap();
        let e = rt
            .block_on(proxy.file_for("pool/main/h/hello/hello_1_amd64.deb"))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("larger than the mirror pool file limit of 4 GiB"),
            "{e}"
        );
        assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
        assert_eq!(
            limit_for("/dists/trixie/main/binary-amd64/Packages.xz"),
            crate::limits::MIRROR_INDEX
        );
    }

    #[test]
    fn each_upstream_has_its_own_cache_directory() {
        let a = upstream_key("http://a.example/debian");
        let b = upstream_key("http://b.example/debian");
        let c = upstream_key("http://a.example/debian/");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(!a.contains('/'));
    }
}
