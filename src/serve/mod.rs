//! HTTP server for netboot trees and install progress callbacks.
//!
//! `picaboot serve OUT` serves the files under `OUT` (typically `OUT/HOST/netboot/…`) over
//! HTTP/1.1 with GET and HEAD, single byte ranges (206 / 416), and never anything outside the
//! tree: `..` segments and NUL bytes are refused, and every file is resolved and opened in one
//! step beneath the root ([`open::open_beneath`], `openat2` with `RESOLVE_BENEATH`), so a
//! symlink swapped in while requests run cannot escape it. Connections are bounded: at most
//! [`MAX_CONNECTIONS`] at once, request headers within [`HEADER_READ_TIMEOUT`] and
//! [`MAX_HEADER_BYTES`], no request body is read, and a connection that moves no byte for
//! [`IDLE_TIMEOUT`] is closed. Each finished response produces one log
//! line `CLIENT METHOD PATH STATUS BYTES` (the bytes actually handed to the connection).
//!
//! The installer reports progress with `GET /progress/HOST?stage=STAGE&status=STATUS`
//! (busybox wget in d-i can do a GET with a query string; POST is accepted too), which logs
//! `progress HOST: STAGE STATUS` and is kept in [`Server::progress`]. Once a host has
//! reported `stage=done`, its `HOST/netboot/boot.ipxe` is answered with a script that boots
//! the local disk instead (`sanboot` of drive 0x80, else `exit` to the firmware's next boot
//! device), so a box that PXE-boots again does not loop into the installer.
//!
//! Progress reports are trusted only from the box: a report for HOST is accepted only from the
//! IP address that fetched both `HOST/netboot/linux` and `HOST/netboot/initrd.gz` in this serve
//! session (up to [`MAX_FETCHERS_PER_HOST`] addresses per host) (or one given with [`Server::trust_progress`], for a VM booted from files); any
//! other client gets 403 and changes nothing. What serve keeps in memory is bounded: the last
//! [`MAX_PROGRESS_EVENTS`] reports, and per host (only hosts with a netboot tree) who fetched
//! its kernel and initrd and whether it reported done.
//!
//! [`Server::run`] stops accepting when its shutdown future completes, lets open
//! connections finish (at most [`DRAIN_TIMEOUT`]) and returns.

mod idle;
pub mod mirror;
pub mod open;
pub mod path;
pub mod range;
pub mod session;
pub mod syslog;

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Frame, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;
use tokio_util::io::ReaderStream;

use range::{parse_range, RangeRequest};

/// Progress reports kept in memory (the oldest are dropped beyond it).
pub const MAX_PROGRESS_EVENTS: usize = 4096;

/// Hosts whose boot files' fetchers (and done state) serve remembers.
pub const MAX_TRACKED_HOSTS: usize = 4096;

/// How long open connections may take to finish after shutdown was asked.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; further ones wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 512;

/// A client must send a request's whole header within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection that moves no byte either way for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The most header bytes buffered for one connection.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Where log lines go (one call per line, without the newline).
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The tree to serve is missing or not a directory.
    #[error("cannot serve {path}: {reason}")]
    Root {
        /// The directory given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
}

/// The progress stage a box's late command reports at the end of its install: serve then
/// answers its boot script with a boot from disk.
pub const STAGE_DONE: &str = "done";

/// One progress report from an installer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressEvent {
    /// Who reported (the peer address).
    pub client: SocketAddr,
    /// The host name in the URL.
    pub host: String,
    /// `stage=` (empty when absent).
    pub stage: String,
    /// `status=` (empty when absent).
    pub status: String,
}

/// One answered request, as serve's log line says it (`CLIENT METHOD PATH STATUS BYTES`),
/// typed for whoever follows a box's boot ([`Server::served_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Who asked.
    pub client: SocketAddr,
    /// The method (`GET`, `HEAD`).
    pub method: String,
    /// The path asked for (printable, cut as in the log).
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// The body bytes sent.
    pub bytes: u64,
}

impl std::fmt::Display for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.client, self.method, self.path, self.status, self.bytes
        )
    }
}

struct State {
    root: PathBuf,
    /// The root, opened once: every file is opened beneath this descriptor.
    root_fd: std::os::fd::OwnedFd,
    sink: LogSink,
    progress: Mutex<VecDeque<ProgressEvent>>,
    boxes: Mutex<Boxes>,
    mirror: Option<mirror::MirrorProxy>,
    security: Option<mirror::MirrorProxy>,
    /// Where answered requests go as typed events, when someone follows them.
    served: Mutex<Option<std::sync::mpsc::SyncSender<Served>>>,
}

/// Answered requests queued for a follower that has not read them yet; beyond it the newest
/// are dropped (they stay in the log), so a flood of requests cannot grow memory.
pub const MAX_QUEUED_SERVED: usize = 4096;

/// Who may report progress for which host, and who reported done.
#[derive(Default)]
struct Boxes {
    /// Per host: the clients that fetched its kernel (bit 1) and its initrd (bit 2).
    fetched: HashMap<String, HashMap<IpAddr, u8>>,
    /// Addresses trusted explicitly ([`Server::trust_progress`]).
    trusted: HashMap<String, IpAddr>,
    /// Hosts that reported `stage=done` from their box.
    done: HashSet<String>,
}

/// Clients remembered per host (a LAN client fetching one file cannot make the box forget).
pub const MAX_FETCHERS_PER_HOST: usize = 64;

impl Boxes {
    fn may_report(&self, host: &str, ip: IpAddr) -> bool {
        self.trusted.get(host) == Some(&ip)
            || self
                .fetched
                .get(host)
                .and_then(|m| m.get(&ip))
                .is_some_and(|bits| *bits == 3)
    }

    fn saw_fetch(&mut self, host: &str, kernel: bool, ip: IpAddr) {
        if !self.fetched.contains_key(host) && self.fetched.len() >= MAX_TRACKED_HOSTS {
            return;
        }
        let m = self.fetched.entry(host.to_string()).or_default();
        if !m.contains_key(&ip) && m.len() >= MAX_FETCHERS_PER_HOST {
            return;
        }
        *m.entry(ip).or_default() |= if kernel { 1 } else { 2 };
    }
}

/// A bound, not yet running, server.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("root", &self.state.root)
            .field("addr", &self.listener.local_addr().ok())
            .finish()
    }
}

/// Shared view of the progress reports received so far.
#[derive(Clone)]
pub struct ProgressLog(Arc<State>);

impl ProgressLog {
    /// A copy of the accepted events kept (the last [`MAX_PROGRESS_EVENTS`]), in order.
    pub fn events(&self) -> Vec<ProgressEvent> {
        self.0
            .progress
            .lock()
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// True once `host`'s box reported `stage=done` (kept however many reports follow).
    pub fn done(&self, host: &str) -> bool {
        reported_done(&self.0, host)
    }

    /// Number of hosts serve tracks (fetchers, trusted addresses, done); for tests of the bound.
    pub fn tracked_hosts(&self) -> usize {
        self.0
            .boxes
            .lock()
            .map(|b| {
                b.fetched.values().map(|m| m.len()).sum::<usize>() + b.trusted.len() + b.done.len()
            })
            .unwrap_or(0)
    }
}

impl std::fmt::Debug for ProgressLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.events()).finish()
    }
}

impl Server {
    /// Binds `listen` (port 0 picks a free port) to serve the directory `root`.
    pub async fn bind(root: &Path, listen: SocketAddr, sink: LogSink) -> Result<Self, ServeError> {
        Self::bind_with_mirror(root, listen, sink, None).await
    }

    /// Like [`Server::bind`], also proxying a Debian mirror under `/debian/`
    /// ([`mirror::MirrorProxy`]).
    pub async fn bind_with_mirror(
        root: &Path,
        listen: SocketAddr,
        sink: LogSink,
        mirror: Option<mirror::MirrorProxy>,
    ) -> Result<Self, ServeError> {
        Self::bind_with_mirrors(root, listen, sink, mirror, None).await
    }

    /// Like [`Server::bind_with_mirror`], also proxying the security archive under
    /// `/debian-security/` (installs under test reach no other host).
    pub async fn bind_with_mirrors(
        root: &Path,
        listen: SocketAddr,
        sink: LogSink,
        mirror: Option<mirror::MirrorProxy>,
        security: Option<mirror::MirrorProxy>,
    ) -> Result<Self, ServeError> {
        let canon = std::fs::canonicalize(root).map_err(|e| ServeError::Root {
            path: root.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !canon.is_dir() {
            return Err(ServeError::Root {
                path: root.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        let root_fd = open::open_root(&canon).map_err(|e| ServeError::Root {
            path: root.to_path_buf(),
            reason: e.to_string(),
        })?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: listen,
                source,
            })?;
        Ok(Server {
            listener,
            state: Arc::new(State {
                root: canon,
                root_fd,
                sink,
                progress: Mutex::new(VecDeque::new()),
                boxes: Mutex::new(Boxes::default()),
                mirror,
                security,
                served: Mutex::new(None),
            }),
        })
    }

    /// Sets the mirror proxies of a server bound without them; false (nothing set) once the
    /// server's state is shared (a [`ProgressLog`] handed out).
    pub fn set_mirrors(
        &mut self,
        mirror: Option<mirror::MirrorProxy>,
        security: Option<mirror::MirrorProxy>,
    ) -> bool {
        match Arc::get_mut(&mut self.state) {
            Some(st) => {
                st.mirror = mirror;
                st.security = security;
                true
            }
            None => false,
        }
    }

    /// Answered requests from now on, typed (at most [`MAX_QUEUED_SERVED`] waiting; the log
    /// keeps every one). A second call replaces the first receiver.
    pub fn served_events(&self) -> std::sync::mpsc::Receiver<Served> {
        let (tx, rx) = std::sync::mpsc::sync_channel(MAX_QUEUED_SERVED);
        if let Ok(mut s) = self.state.served.lock() {
            *s = Some(tx);
        }
        rx
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The canonical root being served.
    pub fn root(&self) -> &Path {
        &self.state.root
    }

    /// Accepts `host`'s progress reports from `ip` as well: for a box that did not fetch its
    /// kernel and initrd from this server (a VM booted from files, whose reports reach serve
    /// from QEMU's address).
    pub fn trust_progress(&self, host: &str, ip: IpAddr) {
        if let Ok(mut b) = self.state.boxes.lock() {
            b.trusted.insert(host.to_string(), ip);
        }
    }

    /// Handle on the progress reports (usable while and after the server runs).
    pub fn progress(&self) -> ProgressLog {
        ProgressLog(self.state.clone())
    }

    /// Serves until `shutdown` completes, then drains open connections.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            // A free slot first: at the cap, new connections wait in the kernel's backlog.
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            (self.state.sink)(&format!("accept failed: {e}"));
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let state = self.state.clone();
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, peer, req).await) }
                    });
                    let (stream, activity) = idle::Watched::new(stream);
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .max_buf_size(MAX_HEADER_BYTES)
                        .serve_connection(TokioIo::new(stream), svc);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _permit = permit;
                        tokio::select! {
                            _ = conn => {}
                            () = activity.idle_for(IDLE_TIMEOUT) => {}
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(self.listener);
        (self.state.sink)("shutting down: no new connections, waiting for open ones");
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(DRAIN_TIMEOUT) => {
                (self.state.sink)("connections still open after the drain timeout; closing them");
            }
        }
        (self.state.sink)("stopped");
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Response body: a file slice or a small buffer; logs its request line when dropped (after
/// the last byte was handed over, or when the client went away).
pub struct ServeBody {
    inner: Inner,
    remaining: u64,
    log: Option<LogEntry>,
}

enum Inner {
    File(ReaderStream<tokio::io::Take<tokio::fs::File>>),
    Bytes(Option<Bytes>),
}

struct LogEntry {
    sink: LogSink,
    events: Option<std::sync::mpsc::SyncSender<Served>>,
    client: SocketAddr,
    method: Method,
    path: String,
    status: StatusCode,
    sent: u64,
}

impl Drop for ServeBody {
    fn drop(&mut self) {
        if let Some(l) = self.log.take() {
            let served = Served {
                client: l.client,
                method: l.method.to_string(),
                path: l.path,
                status: l.status.as_u16(),
                bytes: l.sent,
            };
            (l.sink)(&served.to_string());
            if let Some(tx) = l.events {
                let _ = tx.try_send(served);
            }
        }
    }
}

impl hyper::body::Body for ServeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let next = match &mut this.inner {
            Inner::Bytes(b) => Poll::Ready(b.take().map(Ok)),
            Inner::File(s) => Pin::new(s).poll_next(cx),
        };
        match next {
            Poll::Ready(Some(Ok(b))) => {
                let n = b.len() as u64;
                this.remaining = this.remaining.saturating_sub(n);
                if let Some(l) = this.log.as_mut() {
                    l.sent += n;
                }
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn log_entry(
    state: &State,
    client: SocketAddr,
    method: &Method,
    path: &str,
    status: StatusCode,
) -> LogEntry {
    LogEntry {
        sink: state.sink.clone(),
        events: state.served.lock().ok().and_then(|s| s.clone()),
        client,
        method: method.clone(),
        path: printable(path, 512),
        status,
        sent: 0,
    }
}

/// Keeps log lines single and readable whatever a client sends.
fn printable(s: &str, max: usize) -> String {
    let cut: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() || c == ' ' { '?' } else { c })
        .collect();
    terminal_safe(&cut)
}

/// True for characters that must not reach a terminal or a log raw: controls, the bidi
/// overrides, embeddings and isolates (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C), the
/// line and paragraph separators (U+2028/9) and the BOM.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{FEFF}'
        )
}

/// The hosts under `root` that have a netboot tree (`HOST/netboot/boot.ipxe`), sorted.
pub fn netboot_hosts(root: &std::path::Path) -> Vec<String> {
    let mut hosts: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("netboot/boot.ipxe").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    hosts.sort();
    hosts
}

/// `s` with every character of [`unsafe_char`] written as `\u{XXXX}`: what serve prints (log,
/// banner) is one line per line and reads in the order it is stored.
pub fn terminal_safe(s: &str) -> String {
    if !s.chars().any(unsafe_char) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if unsafe_char(c) {
                format!("\\u{{{:04x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn small(
    state: &State,
    client: SocketAddr,
    method: &Method,
    path: &str,
    status: StatusCode,
    text: &str,
) -> Response<ServeBody> {
    let body = Bytes::copy_from_slice(text.as_bytes());
    let len = body.len() as u64;
    let head = *method == Method::HEAD;
    let mut resp = Response::new(ServeBody {
        inner: Inner::Bytes(if head { None } else { Some(body) }),
        remaining: if head { 0 } else { len },
        log: Some(log_entry(state, client, method, path, status)),
    });
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    resp
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("ipxe" | "cfg" | "txt" | "conf") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("gz") => "application/gzip",
        _ if path.parent().is_some_and(|p| p.ends_with("pxelinux.cfg")) => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

/// One request being answered: who asked what, as serve's log shows it.
struct Exchange<'a> {
    state: &'a State,
    client: SocketAddr,
    method: Method,
    /// The path and query, as logged.
    shown: String,
}

impl Exchange<'_> {
    /// A short text reply.
    fn reply(&self, status: StatusCode, text: &str) -> Response<ServeBody> {
        small(
            self.state,
            self.client,
            &self.method,
            &self.shown,
            status,
            text,
        )
    }

    fn not_found(&self) -> Response<ServeBody> {
        self.reply(StatusCode::NOT_FOUND, "not found\n")
    }

    fn forbidden(&self) -> Response<ServeBody> {
        self.reply(StatusCode::FORBIDDEN, "forbidden\n")
    }

    /// A read failure, logged, answered 500.
    fn read_error(&self, e: &dyn std::fmt::Display) -> Response<ServeBody> {
        (self.state.sink)(&format!(
            "{} {} {}: {e}",
            self.client, self.method, self.shown
        ));
        self.reply(StatusCode::INTERNAL_SERVER_ERROR, "read error\n")
    }

    fn reads(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }

    /// `file` (a range of it when asked), named `name` for its content type.
    async fn file<B>(
        &self,
        file: std::fs::File,
        name: &Path,
        req: &Request<B>,
    ) -> Response<ServeBody> {
        let r = open_slice(
            self.state,
            self.client,
            &self.method,
            &self.shown,
            file,
            name,
            req,
        )
        .await;
        r.unwrap_or_else(|e| self.read_error(&e))
    }
}

/// `/progress/HOST`: GET or POST only.
fn progress_route(ex: &Exchange<'_>, host: &str, query: &str) -> Response<ServeBody> {
    if ex.method == Method::GET || ex.method == Method::POST {
        return progress(ex.state, ex.client, &ex.method, &ex.shown, host, query);
    }
    let mut r = ex.reply(StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    r
}

/// `HOST/netboot/boot.ipxe` of a host that reported `done`: boot from disk instead.
fn done_route(ex: &Exchange<'_>, raw_path: &str) -> Option<Response<ServeBody>> {
    if !ex.reads() {
        return None;
    }
    let host = raw_path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix("/netboot/boot.ipxe"))
        .filter(|h| valid_host(h) && reported_done(ex.state, h))?;
    Some(ex.reply(StatusCode::OK, &disk_ipxe(host)))
}

/// `/debian/…` and `/debian-security/…` through their proxy, when serve has one.
async fn proxy_route<B>(
    ex: &Exchange<'_>,
    raw_path: &str,
    req: &Request<B>,
) -> Option<Response<ServeBody>> {
    let state = ex.state;
    let (proxy, rel) = match (
        raw_path.strip_prefix("/debian/"),
        raw_path.strip_prefix("/debian-security/"),
    ) {
        (Some(rel), _) => (state.mirror.as_ref()?, rel),
        (_, Some(rel)) => (state.security.as_ref()?, rel),
        _ => return None,
    };
    if !ex.reads() {
        return None;
    }
    Some(match proxy.file_for(rel).await {
        Ok(Some(path)) => match std::fs::File::open(&path) {
            Ok(f) => ex.file(f, &path, req).await,
            Err(e) => ex.read_error(&e),
        },
        Ok(None) => ex.not_found(),
        Err(mirror::MirrorError::BadPath(_)) => ex.forbidden(),
        Err(e) => {
            (state.sink)(&format!("{} {} {}: {e}", ex.client, ex.method, ex.shown));
            ex.reply(StatusCode::BAD_GATEWAY, "upstream error\n")
        }
    })
}

/// A file beneath the root (its boot files noted for the progress trust rule).
async fn file_route<B>(ex: &Exchange<'_>, raw_path: &str, req: &Request<B>) -> Response<ServeBody> {
    if !ex.reads() {
        return ex.reply(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
    }
    match open::open_beneath(&ex.state.root_fd, raw_path) {
        Ok(f) => {
            if ex.method == Method::GET {
                note_boot_fetch(ex.state, raw_path, ex.client.ip());
            }
            ex.file(f, Path::new(raw_path), req).await
        }
        Err(path::Refusal::Forbidden) => ex.forbidden(),
        Err(path::Refusal::NotFound) => ex.not_found(),
    }
}

async fn handle<B>(state: &State, client: SocketAddr, req: Request<B>) -> Response<ServeBody> {
    let raw_path = req.uri().path().to_string();
    let ex = Exchange {
        state,
        client,
        method: req.method().clone(),
        shown: match req.uri().query() {
            Some(q) => format!("{raw_path}?{q}"),
            None => raw_path.clone(),
        },
    };
    if let Some(host) = raw_path.strip_prefix("/progress/") {
        return progress_route(&ex, host, req.uri().query().unwrap_or(""));
    }
    if let Some(r) = done_route(&ex, &raw_path) {
        return r;
    }
    if let Some(r) = proxy_route(&ex, &raw_path, &req).await {
        return r;
    }
    file_route(&ex, &raw_path, &req).await
}

async fn open_slice<B>(
    state: &State,
    client: SocketAddr,
    method: &Method,
    shown: &str,
    file: std::fs::File,
    name: &Path,
    req: &Request<B>,
) -> io::Result<Response<ServeBody>> {
    let mut f = tokio::fs::File::from_std(file);
    let len = f.metadata().await?.len();
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (status, start, count) = match parse_range(range_header, len) {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut r = small(
                state,
                client,
                method,
                shown,
                StatusCode::RANGE_NOT_SATISFIABLE,
                "",
            );
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return Ok(r);
        }
    };
    let head = *method == Method::HEAD;
    if start > 0 && !head {
        f.seek(io::SeekFrom::Start(start)).await?;
    }
    let inner = if head {
        Inner::Bytes(None)
    } else {
        Inner::File(ReaderStream::with_capacity(f.take(count), 256 * 1024))
    };
    let mut resp = Response::new(ServeBody {
        inner,
        remaining: if head { 0 } else { count },
        log: Some(log_entry(state, client, method, shown, status)),
    });
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {}-{}/{}", start, start + count - 1, len))
                .expect("ascii"),
        );
    }
    Ok(resp)
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// Decodes an `application/x-www-form-urlencoded` query into pairs.
fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// True once `host`'s box reported `stage=done`.
fn reported_done(state: &State, host: &str) -> bool {
    state
        .boxes
        .lock()
        .map(|b| b.done.contains(host))
        .unwrap_or(false)
}

/// Remembers who fetched `/HOST/netboot/linux` or `/HOST/netboot/initrd.gz`.
fn note_boot_fetch(state: &State, raw_path: &str, ip: IpAddr) {
    let Some(rest) = raw_path.strip_prefix('/') else {
        return;
    };
    let (host, kernel) = match (
        rest.strip_suffix("/netboot/linux"),
        rest.strip_suffix("/netboot/initrd.gz"),
    ) {
        (Some(h), _) => (h, true),
        (_, Some(h)) => (h, false),
        _ => return,
    };
    if valid_host(host) {
        if let Ok(mut b) = state.boxes.lock() {
            b.saw_fetch(host, kernel, ip);
        }
    }
}

/// The iPXE script for a host whose install is done: boot from the local disk.
pub fn disk_ipxe(host: &str) -> String {
    format!(
        "#!ipxe\n# picaboot: {host} reported its install done: boot from the local disk\n\
         echo picaboot: {host} is installed, booting from disk\n\
         sanboot --no-describe --drive 0x80 || exit\n"
    )
}

fn progress(
    state: &State,
    client: SocketAddr,
    method: &Method,
    shown: &str,
    host: &str,
    query: &str,
) -> Response<ServeBody> {
    let host = host.trim_end_matches('/');
    if !valid_host(host) {
        return small(
            state,
            client,
            method,
            shown,
            StatusCode::BAD_REQUEST,
            "bad host name\n",
        );
    }
    let pairs = query_pairs(query);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| printable(v, 64))
            .unwrap_or_default()
    };
    let ev = ProgressEvent {
        client,
        host: host.to_string(),
        stage: get("stage"),
        status: get("status"),
    };
    let trusted = state
        .boxes
        .lock()
        .map(|b| b.may_report(host, client.ip()))
        .unwrap_or(false);
    if !trusted {
        (state.sink)(&format!(
            "progress {host} from {}: refused (not the address that fetched {host}'s kernel and initrd)",
            client.ip()
        ));
        return small(
            state,
            client,
            method,
            shown,
            StatusCode::FORBIDDEN,
            "progress accepted only from the box that fetched this host's kernel and initrd\n",
        );
    }
    (state.sink)(format!("progress {}: {} {}", ev.host, ev.stage, ev.status).trim_end());
    if ev.stage == STAGE_DONE {
        if let Ok(mut b) = state.boxes.lock() {
            b.done.insert(ev.host.clone());
        }
    }
    if let Ok(mut v) = state.progress.lock() {
        if v.len() >= MAX_PROGRESS_EVENTS {
            v.pop_front();
        }
        v.push_back(ev);
    }
    small(state, client, method, shown, StatusCode::OK, "ok\n")
}

impl crate::exit_class::ExitClass for ServeError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            ServeError::Root { .. } => Class::User,
            _ => Class::Env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_pairs("stage=late_command&status=done+ok&x"),
            vec![
                ("stage".into(), "late_command".into()),
                ("status".into(), "done ok".into()),
                ("x".into(), "".into())
            ]
        );
        assert_eq!(printable("a\nb c", 10), "a?b?c");
        assert_eq!(printable("x\u{202e}y", 10), "x\\u{202e}y");
        assert_eq!(
            terminal_safe("al\u{202e}ice b\u{2028}ob\u{2066}\n"),
            "al\\u{202e}ice b\\u{2028}ob\\u{2066}\\u{000a}"
        );
        assert_eq!(terminal_safe("plain/été"), "plain/été");
        assert!(valid_host("alice"));
        assert!(!valid_host("../x"));
    }
}
