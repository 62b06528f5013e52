//! Pushing an image from an OCI image layout to a registry (Registry HTTP API v2).
//!
//! [`push`] reads the manifest named `NAME` (`org.opencontainers.image.ref.name`) from the
//! layout, HEADs every blob it references and uploads only the missing ones (one `PUT` with
//! the digest for blobs up to [`PushOptions::chunk_threshold`], `PATCH` chunks then a closing
//! `PUT` above it), following absolute or relative `Location`s, then PUTs the manifest with
//! its media type and checks that the registry's `Docker-Content-Digest` is the local digest.
//! An index is pushed child manifests first.
//!
//! A blob becomes visible in a registry only when its closing `PUT` (with the digest, which
//! the registry verifies) succeeds, and the manifest is PUT last: an interrupted push leaves
//! at most an abandoned upload session, and running the push again completes it.
//!
//! Credentials: see [`auth`]. The registry's `/v2/` answer decides the scheme: none, Basic, or
//! Bearer (a token for `repository:REPO:pull,push` from the realm it names, fetched again once
//! if it expires during the push). TLS uses the system's root certificates (`SSL_CERT_FILE` /
//! `SSL_CERT_DIR` override them, as for OpenSSL), plus, for the registry's own origin only,
//! the certificates of [`PushOptions::ca_file`]; plain HTTP only with
//! [`PushOptions::plain_http`].

pub mod auth;
pub mod client;
pub mod layout;
pub mod reference;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

pub use auth::{Credentials, Secret};
pub use client::AuthKind;
use client::Session;
use layout::{Descriptor, Layout, Manifest};
pub use reference::Reference;

/// Default size above which a blob is sent in chunks.
pub const DEFAULT_CHUNK_THRESHOLD: u64 = 512 * 1024 * 1024;
/// Default chunk size for chunked uploads.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 * 1024 * 1024;

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The destination reference is malformed.
    #[error("bad image reference {0}")]
    Reference(String),
    /// The OCI layout is missing or inconsistent.
    #[error("{path}: {reason}")]
    Layout {
        /// Layout directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The CA file given (`--ca-file`) cannot be used.
    #[error("{path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The layout holds no image of that name.
    #[error("no image named {name:?} in {layout} (names there: {available})")]
    NameNotFound {
        /// Name asked for.
        name: String,
        /// Layout directory.
        layout: PathBuf,
        /// Names present, comma-separated.
        available: String,
    },
    /// Credentials are misconfigured (never shows a secret).
    #[error("registry credentials: {0}")]
    Credentials(String),
    /// The registry cannot be reached.
    #[error("cannot reach registry {registry}: {reason}")]
    Unreachable {
        /// Registry host.
        registry: String,
        /// Connection refused, unknown host, timeout, TLS…
        reason: String,
    },
    /// The registry wants credentials and none were found.
    #[error(
        "registry {registry} requires authentication: set {} and {} (or log in with docker/podman login)",
        auth::ENV_USERNAME,
        auth::ENV_PASSWORD
    )]
    AuthRequired {
        /// Registry host.
        registry: String,
    },
    /// The registry refused the credentials.
    #[error("authentication failed for {registry} (user {username:?}, credentials from {origin})")]
    AuthFailed {
        /// Registry host.
        registry: String,
        /// User name tried.
        username: String,
        /// Where the credentials came from.
        origin: String,
    },
    /// Authenticated but not allowed.
    #[error("{registry}: access denied ({op})")]
    Denied {
        /// Registry host.
        registry: String,
        /// What was refused.
        op: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{registry}: {op}: HTTP {status}{detail}")]
    Http {
        /// Registry host.
        registry: String,
        /// Request.
        op: String,
        /// Status code.
        status: u16,
        /// `: ` and the registry's error text, or empty.
        detail: String,
    },
    /// A transfer broke off.
    #[error("{registry}: {op}: {reason}")]
    Transfer {
        /// Registry host.
        registry: String,
        /// Request.
        op: String,
        /// Cause.
        reason: String,
    },
    /// A reply is larger than the limit of its kind.
    #[error(transparent)]
    TooLarge(#[from] crate::limits::TooLarge),
    /// The registry computed another manifest digest than ours.
    #[error("{registry}: the registry stored the manifest as {got}, expected {expected}")]
    DigestMismatch {
        /// Registry host.
        registry: String,
        /// Local digest.
        expected: String,
        /// `Docker-Content-Digest` returned (or `none`).
        got: String,
    },
}

impl RegistryError {
    /// Whether the user's input is at fault (exit code 1) rather than the environment
    /// (registry, network, credentials: exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            RegistryError::Reference(_)
                | RegistryError::Layout { .. }
                | RegistryError::NameNotFound { .. }
                | RegistryError::CaFile { .. }
                | RegistryError::Credentials(_)
        )
    }
}

/// What to push, where, and how.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// OCI image layout directory.
    pub layout: PathBuf,
    /// Image name in the layout (`org.opencontainers.image.ref.name`).
    pub name: String,
    /// Destination.
    pub to: Reference,
    /// Talk plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// PEM certificates also trusted for the registry's own origin (a private CA); every other
    /// origin (token realm, upload `Location`s elsewhere) keeps the system's roots only.
    pub ca_file: Option<PathBuf>,
    /// Blobs larger than this go in chunks (PATCH), others in one PUT.
    pub chunk_threshold: u64,
    /// Chunk size for chunked uploads.
    pub chunk_size: u64,
    /// Credentials (see [`auth::lookup`]); `None` for an open registry.
    pub credentials: Option<Credentials>,
    /// Test hook: break the connection after this many blob bytes were sent in this push.
    pub fail_after_bytes: Option<u64>,
}

impl PushOptions {
    /// Options with the defaults (HTTPS, default chunking, no credentials).
    pub fn new(layout: impl Into<PathBuf>, name: impl Into<String>, to: Reference) -> Self {
        PushOptions {
            layout: layout.into(),
            name: name.into(),
            to,
            plain_http: false,
            ca_file: None,
            chunk_threshold: DEFAULT_CHUNK_THRESHOLD,
            chunk_size: DEFAULT_CHUNK_SIZE,
            credentials: None,
            fail_after_bytes: None,
        }
    }
}

/// What happened to one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum BlobAction {
    /// Already in the registry.
    Skipped,
    /// Uploaded in one PUT.
    Uploaded,
    /// Uploaded in this many PATCH chunks.
    UploadedChunked {
        /// Number of chunks.
        chunks: u64,
    },
}

/// One blob of the push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobReport {
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// What was done.
    #[serde(flatten)]
    pub action: BlobAction,
}

/// Progress of a push, one event per step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// Connected and authenticated.
    Connected {
        /// Registry host.
        registry: String,
        /// How.
        auth: AuthKind,
    },
    /// A blob was skipped or uploaded.
    Blob(BlobReport),
    /// A manifest was stored.
    Manifest {
        /// Its digest.
        digest: String,
        /// Tag or digest it was stored under.
        reference: String,
    },
}

impl std::fmt::Display for PushEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushEvent::Connected { registry, auth } => {
                write!(f, "connected to {registry} ({auth:?} auth)")
            }
            PushEvent::Blob(b) => match &b.action {
                BlobAction::Skipped => write!(
                    f,
                    "blob {}: skipped (already present, {} bytes)",
                    b.digest, b.size
                ),
                BlobAction::Uploaded => write!(f, "blob {}: uploaded {} bytes", b.digest, b.size),
                BlobAction::UploadedChunked { chunks } => {
                    write!(
                        f,
                        "blob {}: uploaded {} bytes in {chunks} chunks",
                        b.digest, b.size
                    )
                }
            },
            PushEvent::Manifest { digest, reference } => {
                write!(f, "manifest {digest}: stored as {reference}")
            }
        }
    }
}

/// The result of a push.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// Destination as given.
    pub reference: String,
    /// Digest of the pushed (top) manifest.
    pub manifest_digest: String,
    /// Every blob, in push order.
    pub blobs: Vec<BlobReport>,
    /// Blob bytes sent.
    pub bytes_uploaded: u64,
}

impl PushReport {
    /// Number of blobs uploaded.
    pub fn uploaded(&self) -> usize {
        self.blobs
            .iter()
            .filter(|b| b.action != BlobAction::Skipped)
            .count()
    }

    /// Number of blobs skipped.
    pub fn skipped(&self) -> usize {
        self.blobs
            .iter()
            .filter(|b| b.action == BlobAction::Skipped)
            .count()
    }
}

/// Pushes `opts.name` from `opts.layout` to `opts.to`, blocking (runs its own runtime).
pub fn push(
    opts: &PushOptions,
    on_event: &dyn Fn(&PushEvent),
) -> Result<PushReport, RegistryError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Transfer {
            registry: opts.to.registry.clone(),
            op: "starting the runtime".into(),
            reason: e.to_string(),
        })?;
    rt.block_on(push_async(opts, on_event))
}

/// Pushes `opts.name` from `opts.layout` to `opts.to`.
pub async fn push_async(
    opts: &PushOptions,
    on_event: &dyn Fn(&PushEvent),
) -> Result<PushReport, RegistryError> {
    let layout = Layout::open(&opts.layout)?;
    let top = layout.find(&opts.name)?;
    // Read and verify everything local before touching the network.
    let plan = plan(&layout, &top)?;
    let session = Session::connect(
        &opts.to,
        opts.plain_http,
        opts.ca_file.as_deref(),
        opts.credentials.clone(),
    )
    .await?;
    on_event(&PushEvent::Connected {
        registry: opts.to.registry.clone(),
        auth: session.kind,
    });
    let mut p = Pusher {
        s: &session,
        layout: &layout,
        opts,
        budget: opts.fail_after_bytes.map(|n| Arc::new(AtomicU64::new(n))),
        report: PushReport {
            reference: opts.to.to_string(),
            manifest_digest: top.digest.clone(),
            blobs: Vec::new(),
            bytes_uploaded: 0,
        },
        total: Arc::new(crate::progress::transfer(
            &format!("push {} ({} blobs)", opts.name, plan_blob_count(&plan)),
            Some(plan_bytes(&plan)),
        )),
        current: None,
    };
    let mut seen = HashSet::new();
    for d in &plan.blobs {
        if seen.insert(d.digest.clone()) {
            let r = p.ensure_blob(d).await?;
            on_event(&PushEvent::Blob(r.clone()));
            p.report.blobs.push(r);
        }
    }
    for (i, (d, bytes)) in plan.manifests.iter().enumerate() {
        let last = i + 1 == plan.manifests.len();
        let reference = if last {
            opts.to.manifest_ref().to_string()
        } else {
            d.digest.clone()
        };
        p.put_manifest(d, bytes, &reference).await?;
        on_event(&PushEvent::Manifest {
            digest: d.digest.clone(),
            reference,
        });
    }
    let Pusher { report, total, .. } = p;
    if let Ok(t) = Arc::try_unwrap(total) {
        t.finish();
    }
    Ok(report)
}

fn plan_unique(plan: &Plan) -> impl Iterator<Item = &Descriptor> {
    let mut seen = HashSet::new();
    plan.blobs
        .iter()
        .filter(move |d| seen.insert(d.digest.clone()))
}

fn plan_blob_count(plan: &Plan) -> usize {
    plan_unique(plan).count()
}

fn plan_bytes(plan: &Plan) -> u64 {
    plan_unique(plan).map(|d| d.size).sum()
}

/// Everything to send, in order: blobs, then manifests (children before their index).
struct Plan {
    blobs: Vec<Descriptor>,
    manifests: Vec<(Descriptor, Vec<u8>)>,
}

fn plan(layout: &Layout, top: &Descriptor) -> Result<Plan, RegistryError> {
    let mut plan = Plan {
        blobs: Vec::new(),
        manifests: Vec::new(),
    };
    add_manifest(layout, top, &mut plan, 0)?;
    Ok(plan)
}

fn add_manifest(
    layout: &Layout,
    d: &Descriptor,
    plan: &mut Plan,
    depth: u32,
) -> Result<(), RegistryError> {
    let bad = |reason: String| RegistryError::Layout {
        path: layout.root().to_path_buf(),
        reason,
    };
    if depth > 4 {
        return Err(bad("indexes nested too deeply".into()));
    }
    let bytes = layout.read_verified(d)?;
    let m: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest {}: {e}", d.digest)))?;
    let mut d = d.clone();
    if d.media_type.is_empty() {
        d.media_type = m
            .media_type
            .clone()
            .unwrap_or_else(|| layout::OCI_MANIFEST.to_string());
    }
    d.annotations.clear();
    if m.is_index(&d.media_type) {
        for child in &m.manifests {
            add_manifest(layout, child, plan, depth + 1)?;
        }
    } else {
        let config = m
            .config
            .as_ref()
            .ok_or_else(|| bad(format!("manifest {} has no config", d.digest)))?;
        for b in std::iter::once(config).chain(m.layers.iter()) {
            layout.check_blob(b)?;
            plan.blobs.push(b.clone());
        }
    }
    plan.manifests.push((d, bytes));
    Ok(())
}

struct Pusher<'a> {
    s: &'a Session,
    layout: &'a Layout,
    opts: &'a PushOptions,
    budget: Option<Arc<AtomicU64>>,
    report: PushReport,
    /// Progress of the whole push (every blob's bytes, skipped ones counted as done).
    total: Arc<crate::progress::Transfer>,
    /// Progress of the blob being uploaded.
    current: Option<Arc<crate::progress::Transfer>>,
}

impl Pusher<'_> {
    async fn ensure_blob(&mut self, d: &Descriptor) -> Result<BlobReport, RegistryError> {
        let op = format!("HEAD blob {}", d.digest);
        let url = self.s.repo_url(&format!("blobs/{}", d.digest));
        let resp = self
            .s
            .send_with(&op, || async {
                Ok(self.s.request(Method::HEAD, url.clone()))
            })
            .await?;
        match resp.status() {
            StatusCode::OK => {
                self.total.inc(d.size);
                return Ok(BlobReport {
                    digest: d.digest.clone(),
                    size: d.size,
                    action: BlobAction::Skipped,
                });
            }
            StatusCode::NOT_FOUND => {}
            _ => return Err(self.s.unexpected(&op, resp).await),
        }
        let path = self.layout.check_blob(d)?;
        let short = d.digest.trim_start_matches("sha256:");
        self.current = Some(Arc::new(crate::progress::transfer(
            &format!("push blob {}", &short[..short.len().min(12)]),
            Some(d.size),
        )));
        let action = self.upload(d, &path).await;
        if let Some(t) = self.current.take().and_then(|t| Arc::try_unwrap(t).ok()) {
            if action.is_ok() {
                t.finish();
            }
        }
        let action = action?;
        self.report.bytes_uploaded += d.size;
        Ok(BlobReport {
            digest: d.digest.clone(),
            size: d.size,
            action,
        })
    }

    async fn upload(&self, d: &Descriptor, path: &Path) -> Result<BlobAction, RegistryError> {
        let op = format!("start upload of {}", d.digest);
        let resp = self
            .s
            .send_with(&op, || async {
                Ok(self
                    .s
                    .request(Method::POST, self.s.repo_url("blobs/uploads/"))
                    .header(CONTENT_LENGTH, 0))
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.s.unexpected(&op, resp).await);
        }
        let mut location = self.location(&op, &resp)?;
        let chunked = d.size > self.opts.chunk_threshold;
        let mut chunks = 0;
        if chunked {
            let chunk = self.opts.chunk_size.max(1);
            let mut offset = 0;
            while offset < d.size {
                let n = chunk.min(d.size - offset);
                let op = format!("upload {} bytes {}-{}", d.digest, offset, offset + n - 1);
                let (op, loc) = (&op, &location);
                let resp = self
                    .s
                    .send_with(op, || async move {
                        Ok(self
                            .s
                            .request(Method::PATCH, loc.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_LENGTH, n)
                            .header("Content-Range", format!("{}-{}", offset, offset + n - 1))
                            .body(self.file_body(path, offset, n, op).await?))
                    })
                    .await?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(self.s.unexpected(op, resp).await);
                }
                // The registry says how much it holds: it must be exactly what we sent.
                if let Some(r) = resp.headers().get("Range").and_then(|v| v.to_str().ok()) {
                    let end = r.trim().trim_start_matches("bytes=").rsplit('-').next();
                    if end.and_then(|e| e.parse::<u64>().ok()) != Some(offset + n - 1) {
                        return Err(RegistryError::Transfer {
                            registry: self.s.registry.clone(),
                            op: op.clone(),
                            reason: format!(
                                "the registry holds bytes {r}, expected 0-{}",
                                offset + n - 1
                            ),
                        });
                    }
                }
                location = self.location(op, &resp)?;
                offset += n;
                chunks += 1;
            }
        }
        let op = format!("finish upload of {}", d.digest);
        let mut url = location;
        url.query_pairs_mut().append_pair("digest", &d.digest);
        let (op, url) = (&op, &url);
        let resp = self
            .s
            .send_with(op, || async move {
                let rb = self
                    .s
                    .request(Method::PUT, url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream");
                Ok(if chunked {
                    rb.header(CONTENT_LENGTH, 0)
                } else {
                    rb.header(CONTENT_LENGTH, d.size)
                        .body(self.file_body(path, 0, d.size, op).await?)
                })
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.s.unexpected(op, resp).await);
        }
        Ok(if chunked {
            BlobAction::UploadedChunked { chunks }
        } else {
            BlobAction::Uploaded
        })
    }

    /// The upload URL from `Location`, absolute or relative to the request's URL.
    fn location(&self, op: &str, resp: &Response) -> Result<Url, RegistryError> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Http {
                registry: self.s.registry.clone(),
                op: op.to_string(),
                status: resp.status().as_u16(),
                detail: ": answer without a Location".into(),
            })?;
        resolve_location(resp.url(), loc).ok_or_else(|| RegistryError::Http {
            registry: self.s.registry.clone(),
            op: op.to_string(),
            status: resp.status().as_u16(),
            detail: format!(": bad Location {loc:?}"),
        })
    }

    /// A streamed body of `len` bytes of `path` from `offset`.
    async fn file_body(
        &self,
        path: &Path,
        offset: u64,
        len: u64,
        op: &str,
    ) -> Result<reqwest::Body, RegistryError> {
        let io_err = |e: std::io::Error| RegistryError::Layout {
            path: self.layout.root().to_path_buf(),
            reason: format!("{op}: {}: {e}", path.display()),
        };
        let mut f = tokio::fs::File::open(path).await.map_err(io_err)?;
        if offset > 0 {
            f.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(io_err)?;
        }
        let stream = tokio_util::io::ReaderStream::with_capacity(f.take(len), 1 << 20);
        let budget = self.budget.clone();
        let (total, current) = (self.total.clone(), self.current.clone());
        let stream = stream.map(move |r: std::io::Result<Bytes>| {
            let b = r?;
            total.inc(b.len() as u64);
            if let Some(c) = &current {
                c.inc(b.len() as u64);
            }
            if let Some(budget) = &budget {
                let n = b.len() as u64;
                let left = budget.load(Ordering::SeqCst);
                if n > left {
                    budget.store(0, Ordering::SeqCst);
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "upload interrupted (test hook)",
                    ));
                }
                budget.store(left - n, Ordering::SeqCst);
            }
            Ok(b)
        });
        Ok(reqwest::Body::wrap_stream(stream))
    }

    async fn put_manifest(
        &self,
        d: &Descriptor,
        bytes: &[u8],
        reference: &str,
    ) -> Result<(), RegistryError> {
        let op = format!("PUT manifest {reference}");
        let url = self.s.repo_url(&format!("manifests/{reference}"));
        let resp = self
            .s
            .send_with(&op, || async {
                Ok(self
                    .s
                    .request(Method::PUT, url.clone())
                    .header(CONTENT_TYPE, d.media_type.as_str())
                    .header(CONTENT_LENGTH, bytes.len())
                    .body(bytes.to_vec()))
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.s.unexpected(&op, resp).await);
        }
        let got = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string();
        if got != d.digest {
            return Err(RegistryError::DigestMismatch {
                registry: self.s.registry.clone(),
                expected: d.digest.clone(),
                got,
            });
        }
        Ok(())
    }
}

/// Resolves a `Location` header against the URL of the request that returned it.
pub fn resolve_location(request_url: &Url, location: &str) -> Option<Url> {
    let u = request_url.join(location).ok()?;
    matches!(u.scheme(), "http" | "https").then_some(u)
}

impl crate::exit_class::ExitClass for RegistryError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        if self.is_user_error() {
            Class::User
        } else {
            Class::Env
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let req = Url::parse("http://127.0.0.1:5000/v2/a/b/blobs/uploads/").unwrap();
        assert_eq!(
            resolve_location(&req, "/v2/a/b/blobs/uploads/u1?_state=x")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            resolve_location(&req, "u2").unwrap().as_str(),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u2"
        );
        assert_eq!(
            resolve_location(&req, "https://storage.example/up/1?sig=y")
                .unwrap()
                .as_str(),
            "https://storage.example/up/1?sig=y"
        );
        assert!(resolve_location(&req, "ftp://x/y").is_none());
        let mut u = resolve_location(&req, "/v2/a/b/blobs/uploads/u1?_state=x").unwrap();
        u.query_pairs_mut().append_pair("digest", "sha256:00");
        assert_eq!(u.query(), Some("_state=x&digest=sha256%3A00"));
    }

    #[test]
    fn user_errors() {
        assert!(RegistryError::Reference("x".into()).is_user_error());
        assert!(!RegistryError::AuthRequired {
            registry: "r".into()
        }
        .is_user_error());
    }
}
