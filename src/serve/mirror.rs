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
    /// A proxy of `upstream` (`http://host/debian`) caching pool files under `pool_cache`.
    pub fn new(upstream: &str, pool_cache: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(pool_cache)?;
        Ok(MirrorProxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            pool_cache: pool_cache.to_path_buf(),
            scratch: tempfile::tempdir()?,
            client: reqwest::Client::builder()
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

    /// A local file holding `rel` (a path below the mirror root), fetched if needed;
    /// `None` when upstream has no such file or the path is not one a mirror serves.
    pub async fn file_for(&self, rel: &str) -> Result<Option<PathBuf>, MirrorError> {
        let safe = !rel.is_empty()
            && rel
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != "..")
            && rel
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/._-+~%".contains(&c));
        if !safe {
            return Ok(None);
        }
        if let Some(o) = &self.overlay {
            let p = o.join(rel);
            if p.is_file() {
                return Ok(Some(p));
            }
            if rel.starts_with("dists/") && rel.contains("-picaboot/") {
                return Ok(None);
            }
        }
        let lock = {
            let mut locks = self.locks.lock().await;
            locks.entry(rel.to_string()).or_default().clone()
        };
        let _guard = lock.lock().await;
        let local = if rel.starts_with("pool/") {
            self.pool_cache.join(rel)
        } else {
            self.scratch.path().join(rel)
        };
        if local.is_file() {
            return Ok(Some(local));
        }
        if let Some(suite_dir) = rel
            .strip_suffix("/Release")
            .or_else(|| rel.strip_suffix("/Release.gpg"))
        {
            if suite_dir.starts_with("dists/") && suite_dir.matches('/').count() == 1 {
                return self.release_pair(suite_dir, rel).await;
            }
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
        let text = resp.text().await.map_err(|e| upstream(&url, e))?;
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

    /// Streams `url` into `local` (temporary file + rename); false on 404.
    async fn download(&self, url: &str, local: &Path) -> Result<bool, MirrorError> {
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
        let dir = local.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| cache(dir, e))?;
        let tmp = dir.join(format!(
            ".{}.part-{}",
            local
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| cache(&tmp, e))?;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| upstream(url, e))?;
            f.write_all(&chunk).await.map_err(|e| cache(&tmp, e))?;
        }
        f.flush().await.map_err(|e| cache(&tmp, e))?;
        drop(f);
        tokio::fs::rename(&tmp, local)
            .await
            .map_err(|e| cache(local, e))?;
        Ok(true)
    }
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
    let tmp = path.with_extension("part");
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| cache(&tmp, e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| cache(path, e))
}
