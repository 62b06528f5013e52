//! The HTTP/1.1 client AMT needs: POST `/wsman` over plain TCP, TLS with the certificate
//! pinned by SHA-256 fingerprint, or either through `ssh -W ADDR:PORT JUMP` (the system ssh,
//! so the user's ssh config and agent apply). Digest authentication: the first request is
//! answered 401 (AMT closes the connection after it), the challenge is parsed, the request
//! resent on a new connection; the nonce is then reused with an increasing nonce count. Credentials only ever go to the target's origin (no redirects).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::digest::{authorization, Challenge};
use super::{format_fingerprint, AmtError, Credentials};

/// Where AMT is and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// AMT's address (IP or name) on the management network.
    pub address: String,
    /// Port: 16992 (HTTP) or 16993 (TLS).
    pub port: u16,
    /// TLS with this pinned SHA-256 certificate fingerprint.
    pub tls_sha256: Option<[u8; 32]>,
    /// Reach AMT through `ssh -W` via this jump host (`[user@]host[:port]` or an ssh config alias).
    pub jump: Option<String>,
    /// An ssh config file passed to ssh with `-F` (else the user's own config applies).
    pub ssh_config: Option<PathBuf>,
    /// Connect and read timeout.
    pub timeout: Duration,
}

impl Target {
    /// `ADDR:PORT`, as used in messages.
    pub fn origin(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }

    fn amt_hop(&self) -> String {
        match &self.jump {
            Some(j) => format!("AMT {} (through jump host {j})", self.origin()),
            None => format!("AMT {}", self.origin()),
        }
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// `ssh -W` as a byte stream. Reads have the same deadline as a direct TCP socket's: a
/// thread reads ssh's stdout into a channel, and a read that gets nothing within the timeout
/// fails as a timed-out socket read would.
struct SshStream {
    child: Child,
    stdin: ChildStdin,
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    timeout: Duration,
}

/// The message of a read through the jump host that got nothing within the timeout.
const JUMP_READ_TIMEOUT: &str = "no data from AMT through the jump host within";

impl SshStream {
    fn new(child: Child, stdin: ChildStdin, mut stdout: ChildStdout, timeout: Duration) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Ok(Vec::new()));
                        return;
                    }
                    Ok(n) => {
                        if tx.send(Ok(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        SshStream {
            child,
            stdin,
            chunks: rx,
            pending: Vec::new(),
            timeout,
        }
    }
}

impl Read for SshStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.chunks.recv_timeout(self.timeout) {
                Ok(Ok(c)) if c.is_empty() => return Ok(0),
                Ok(Ok(c)) => self.pending = c,
                Ok(Err(e)) => return Err(e),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("{JUMP_READ_TIMEOUT} {} s", self.timeout.as_secs_f32()),
                    ))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

impl Write for SshStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stdin.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.stdin.flush()
    }
}

impl Drop for SshStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why [`pinned_tls`] failed: an answer about AMT, or the byte stream under it ending.
enum PinnedTlsError {
    Amt(AmtError),
    Io(String),
}

/// TLS to AMT with OpenSSL, not rustls: AMT 11 and older speak only TLS 1.0/1.1 with
/// AES-CBC-SHA suites (TLS 1.2 came with AMT 12), which rustls does not implement. So this
/// connection alone accepts TLS 1.0 and up and the AES-SHA suites at OpenSSL security level
/// 0; every other connection of picaboot keeps rustls. The only trust is the pin: the verify
/// callback compares the SHA-256 of the end-entity certificate with it during the handshake,
/// so a wrong certificate ends the handshake before any HTTP (and so any credential) is sent.
fn pinned_tls(
    raw: Box<dyn Stream>,
    address: &str,
    pin: [u8; 32],
    origin: &str,
) -> Result<Box<dyn Stream>, PinnedTlsError> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
    let tls_err = |reason: String| {
        PinnedTlsError::Amt(AmtError::Tls {
            origin: origin.to_string(),
            reason,
        })
    };
    let mut b =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| tls_err(e.to_string()))?;
    b.set_min_proto_version(Some(SslVersion::TLS1))
        .map_err(|e| tls_err(e.to_string()))?;
    // Modern suites first; AES128-SHA / AES256-SHA are what AMT 11 offers.
    b.set_cipher_list("ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:AES128-SHA:AES256-SHA:@SECLEVEL=0")
        .map_err(|e| tls_err(e.to_string()))?;
    let seen: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    b.set_verify_callback(SslVerifyMode::PEER, move |_preverified, ctx| {
        if ctx.error_depth() > 0 {
            // Intermediates and roots are not trusted or distrusted: the leaf's pin decides.
            return true;
        }
        let Some(cert) = ctx.current_cert() else {
            return false;
        };
        let Ok(der) = cert.to_der() else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(&der).into();
        *seen2.lock().unwrap() = Some(format_fingerprint(&got));
        got == pin
    });
    let connector = b.build();
    let config = connector
        .configure()
        .map_err(|e| tls_err(e.to_string()))?
        .verify_hostname(false)
        .use_server_name_indication(false);
    match config.connect(address, raw) {
        Ok(s) => Ok(Box::new(s)),
        Err(e) => {
            if let Some(got) = seen.lock().unwrap().clone() {
                if got != format_fingerprint(&pin) {
                    return Err(PinnedTlsError::Amt(AmtError::TlsPin {
                        origin: origin.to_string(),
                        expected: format_fingerprint(&pin),
                        got,
                    }));
                }
            }
            match e {
                openssl::ssl::HandshakeError::Failure(m) => {
                    let err = m.error();
                    if err.ssl_error().is_none() && err.io_error().is_some() {
                        Err(PinnedTlsError::Io(err.to_string()))
                    } else {
                        Err(tls_err(err.to_string()))
                    }
                }
                openssl::ssl::HandshakeError::SetupFailure(e) => Err(tls_err(e.to_string())),
                openssl::ssl::HandshakeError::WouldBlock(_) => {
                    Err(tls_err("the handshake would block".to_string()))
                }
            }
        }
    }
}

/// An HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    reason: String,
    authenticate: Vec<String>,
    close: bool,
    body: String,
}

fn io_err(hop: &str, e: impl std::fmt::Display) -> AmtError {
    AmtError::Unreachable {
        hop: hop.to_string(),
        reason: e.to_string(),
    }
}

/// A WS-Management client for one AMT.
pub struct Client {
    target: Target,
    creds: Credentials,
    conn: Option<BufReader<Box<dyn Stream>>>,
    ssh_stderr: Option<Arc<Mutex<Vec<u8>>>>,
    challenge: Option<Challenge>,
    nc: u32,
    counter: u64,
    /// False while a state-changing request is in flight: no resend after a transport error.
    may_resend: bool,
    /// How often, and how far apart, the state is read after a power change.
    poll: (u32, Duration),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .field("username", &self.creds.username)
            .finish_non_exhaustive()
    }
}

/// A random-enough hex token (message ids, client nonces): the standard library's randomly
/// seeded hasher over a counter and the time.
fn token(counter: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(counter);
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

impl Client {
    /// A client; nothing is sent until the first call.
    pub fn new(target: Target, creds: Credentials) -> Self {
        Client {
            target,
            creds,
            conn: None,
            ssh_stderr: None,
            challenge: None,
            nc: 0,
            counter: 0,
            may_resend: true,
            poll: (10, Duration::from_secs(1)),
        }
    }

    /// How many times, and how far apart, the power state is read back after a change
    /// (default 10 times, 1 s apart, as MAAS's AMT driver does).
    pub fn set_poll(&mut self, attempts: u32, interval: Duration) {
        self.poll = (attempts.max(1), interval);
    }

    /// The read-back bound set by [`Client::set_poll`].
    pub fn poll(&self) -> (u32, Duration) {
        self.poll
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A fresh message id in UUID form.
    pub fn message_id(&mut self) -> String {
        self.counter += 1;
        let t = token(self.counter);
        format!(
            "{}-{}-{}-{}-{}",
            &t[0..8],
            &t[8..12],
            &t[12..16],
            &t[16..20],
            &t[20..32]
        )
    }

    fn ssh_failure(&mut self, fallback: String) -> AmtError {
        let jump = self.target.jump.clone().unwrap_or_default();
        let stderr = self
            .ssh_stderr
            .as_ref()
            .map(|b| {
                String::from_utf8_lossy(&b.lock().unwrap())
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let tail: String = stderr
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" / ");
        // The jump host was reached but could not open the forward to AMT: OpenSSH says
        // "stdio forwarding failed" for -W (and "open failed" in some versions).
        if stderr.contains("stdio forwarding failed")
            || stderr.contains("open failed")
            || stderr.contains("administratively prohibited")
        {
            AmtError::Unreachable {
                hop: self.target.amt_hop(),
                reason: if tail.is_empty() { fallback } else { tail },
            }
        } else {
            AmtError::Unreachable {
                hop: format!("jump host {jump}"),
                reason: if tail.is_empty() {
                    fallback
                } else {
                    format!("ssh: {tail}")
                },
            }
        }
    }

    fn connect(&mut self) -> Result<Box<dyn Stream>, AmtError> {
        let t = &self.target;
        let raw: Box<dyn Stream> = match &t.jump {
            None => {
                let hop = t.amt_hop();
                let addrs: Vec<_> = (t.address.as_str(), t.port)
                    .to_socket_addrs()
                    .map_err(|e| io_err(&hop, e))?
                    .collect();
                let addr = addrs
                    .first()
                    .ok_or_else(|| io_err(&hop, "the name has no address"))?;
                let s = TcpStream::connect_timeout(addr, t.timeout).map_err(|e| io_err(&hop, e))?;
                s.set_read_timeout(Some(t.timeout)).ok();
                s.set_write_timeout(Some(t.timeout)).ok();
                Box::new(s)
            }
            Some(jump) => {
                let mut c = Command::new("ssh");
                if let Some(cfg) = &t.ssh_config {
                    c.arg("-F").arg(cfg);
                }
                c.args([
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    &format!("ConnectTimeout={}", t.timeout.as_secs().max(1)),
                    "-W",
                    &t.origin(),
                    "--",
                    jump,
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
                let mut child = c.spawn().map_err(|e| AmtError::Unreachable {
                    hop: format!("jump host {jump}"),
                    reason: format!("cannot run ssh (Debian package openssh-client): {e}"),
                })?;
                let stdin = child.stdin.take().expect("piped");
                let stdout = child.stdout.take().expect("piped");
                let mut stderr = child.stderr.take().expect("piped");
                let buf = Arc::new(Mutex::new(Vec::new()));
                let b2 = buf.clone();
                std::thread::spawn(move || {
                    let mut chunk = [0u8; 1024];
                    while let Ok(n) = stderr.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        b2.lock().unwrap().extend_from_slice(&chunk[..n]);
                    }
                });
                self.ssh_stderr = Some(buf);
                Box::new(SshStream::new(child, stdin, stdout, t.timeout))
            }
        };
        let Some(pin) = t.tls_sha256 else {
            return Ok(raw);
        };
        let origin = t.origin();
        let is_jump = t.jump.is_some();
        match pinned_tls(raw, &t.address, pin, &origin) {
            Ok(s) => Ok(s),
            Err(PinnedTlsError::Amt(e)) => Err(e),
            Err(PinnedTlsError::Io(e)) if is_jump => Err(self.ssh_failure(e)),
            Err(PinnedTlsError::Io(e)) => Err(AmtError::Tls { origin, reason: e }),
        }
    }

    fn round_trip(&mut self, body: &str, auth: Option<String>) -> Result<Response, AmtError> {
        let reused = self.conn.is_some();
        match self.try_round_trip(body, auth.as_deref()) {
            Ok(r) => Ok(r),
            Err(_) if reused && self.may_resend => {
                // The kept-alive connection was closed by the server: one fresh attempt.
                self.conn = None;
                self.try_round_trip(body, auth.as_deref())
            }
            Err(e) => Err(e),
        }
    }

    fn try_round_trip(&mut self, body: &str, auth: Option<&str>) -> Result<Response, AmtError> {
        if self.conn.is_none() {
            let s = self.connect()?;
            self.conn = Some(BufReader::new(s));
        }
        let hop = self.target.amt_hop();
        let mut head = format!(
            "POST /wsman HTTP/1.1\r\nHost: {}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
            self.target.origin(),
            body.len()
        );
        if let Some(a) = auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        let result = (|| -> Result<Response, ReadError> {
            let conn = self.conn.as_mut().expect("connected");
            let w = conn.get_mut();
            w.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
            w.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
            w.flush().map_err(|e| e.to_string())?;
            read_response(conn)
        })();
        match result {
            Ok(r) => {
                if r.close {
                    self.conn = None;
                }
                Ok(r)
            }
            Err(ReadError::Limit(why)) => {
                self.conn = None;
                Err(AmtError::TooLarge { hop, why })
            }
            Err(ReadError::Io(e)) => {
                self.conn = None;
                if e.contains(JUMP_READ_TIMEOUT) {
                    // ssh is fine; AMT behind it accepted and then stalled.
                    Err(io_err(&hop, e))
                } else if self.target.jump.is_some() {
                    // Give ssh a moment to say why it ended.
                    std::thread::sleep(Duration::from_millis(200));
                    Err(self.ssh_failure(e))
                } else {
                    Err(io_err(&hop, e))
                }
            }
        }
    }

    /// POSTs a state-changing envelope at most once: on a fresh connection (so no stale
    /// keep-alive can fail it), and never resent after a transport error (the request may have
    /// been acted on). A 401 is still answered (AMT did nothing with an unauthenticated request).
    pub fn call_once(&mut self, envelope: &str) -> Result<String, AmtError> {
        self.conn = None;
        self.may_resend = false;
        let r = self.call(envelope);
        self.may_resend = true;
        r
    }

    /// POSTs one envelope and returns the reply body (HTTP 200), authenticating as needed.
    /// SOAP faults in 400/500 replies become [`AmtError::Fault`].
    pub fn call(&mut self, envelope: &str) -> Result<String, AmtError> {
        let mut fresh = false;
        for _ in 0..3 {
            let auth = match &self.challenge {
                Some(c) => {
                    self.nc += 1;
                    self.counter += 1;
                    Some(authorization(
                        c,
                        &self.creds.username,
                        self.creds.password.expose(),
                        "POST",
                        "/wsman",
                        self.nc,
                        &token(self.counter),
                    )?)
                }
                None => None,
            };
            let sent_auth = auth.is_some();
            let r = self.round_trip(envelope, auth)?;
            match r.status {
                200 => return Ok(r.body),
                401 => {
                    // AMT ends the connection after a 401 (`Connection: close`); the
                    // authenticated request always goes on a new one, header or not, as
                    // MeshCentral's amt-wsman-comm.js does (it ends the socket on every 401 and
                    // resends on a new one). Sending it down a socket AMT is closing would fail
                    // a state-changing request that is never resent (call_once).
                    self.conn = None;
                    let c = Challenge::best(r.authenticate.iter().map(String::as_str)).ok_or_else(
                        || {
                            AmtError::Malformed(format!(
                                "401 without a usable Digest challenge (WWW-Authenticate: {})",
                                r.authenticate.join(" | ")
                            ))
                        },
                    )?;
                    if sent_auth && fresh && !c.stale {
                        return Err(AmtError::WrongCredentials {
                            origin: self.target.origin(),
                            username: self.creds.username.clone(),
                            realm: c.realm,
                        });
                    }
                    self.challenge = Some(c);
                    self.nc = 0;
                    fresh = true;
                }
                status => {
                    if r.body.contains("Fault") {
                        super::reply::check_fault(&r.body)?;
                    }
                    let excerpt: String = r.body.chars().take(200).collect();
                    return Err(AmtError::Http {
                        status,
                        reason: if excerpt.trim().is_empty() {
                            r.reason
                        } else {
                            format!("{}: {}", r.reason, excerpt.trim())
                        },
                    });
                }
            }
        }
        Err(AmtError::WrongCredentials {
            origin: self.target.origin(),
            username: self.creds.username.clone(),
            realm: self
                .challenge
                .as_ref()
                .map(|c| c.realm.clone())
                .unwrap_or_default(),
        })
    }
}

/// The longest status or header line (or chunk-size line) accepted from AMT.
pub const MAX_HEADER_LINE: usize = 8 * 1024;
/// The most header lines accepted in one reply.
pub const MAX_HEADER_LINES: usize = 100;
/// The largest reply body accepted from AMT (its biggest replies, an enumeration of boot
/// sources, are a few KiB).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Why a reply could not be read: the connection failed, or the reply broke a limit.
#[derive(Debug)]
enum ReadError {
    Io(String),
    Limit(String),
}

impl From<String> for ReadError {
    fn from(s: String) -> Self {
        ReadError::Io(s)
    }
}

impl From<&str> for ReadError {
    fn from(s: &str) -> Self {
        ReadError::Io(s.to_string())
    }
}

/// Reads one line (with its `\n`), refusing lines longer than [`MAX_HEADER_LINE`] before
/// buffering more of them. Returns 0 at end of stream.
fn read_line_bounded(
    r: &mut impl BufRead,
    line: &mut String,
    what: &str,
) -> Result<usize, ReadError> {
    let mut bytes = Vec::new();
    loop {
        let buf = r.fill_buf().map_err(|e| ReadError::Io(e.to_string()))?;
        if buf.is_empty() {
            break;
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if bytes.len() + take > MAX_HEADER_LINE {
            return Err(ReadError::Limit(format!(
                "{what} longer than the {} KiB limit for a reply header line",
                MAX_HEADER_LINE / 1024
            )));
        }
        bytes.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            break;
        }
    }
    line.push_str(&String::from_utf8_lossy(&bytes));
    Ok(bytes.len())
}

fn body_limit(n: u64) -> Result<(), ReadError> {
    if n > MAX_BODY as u64 {
        return Err(ReadError::Limit(format!(
            "reply body of {n} bytes is over the {} MiB limit for an AMT reply body",
            MAX_BODY / (1024 * 1024)
        )));
    }
    Ok(())
}

fn read_response(r: &mut impl BufRead) -> Result<Response, ReadError> {
    let mut line = String::new();
    if read_line_bounded(r, &mut line, "status line")? == 0 {
        return Err("the connection closed before a reply".into());
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Io(format!(
            "not an HTTP reply: `{}`",
            line.trim_end()
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ReadError::Io(format!("bad status line `{}`", line.trim_end())))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut close = version == "HTTP/1.0";
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut authenticate = Vec::new();
    let mut count = 0;
    loop {
        let mut h = String::new();
        if read_line_bounded(r, &mut h, "header line")? == 0 {
            return Err("the connection closed inside the reply headers".into());
        }
        count += 1;
        if count > MAX_HEADER_LINES {
            return Err(ReadError::Limit(format!(
                "more than the {MAX_HEADER_LINES} header lines allowed in a reply"
            )));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((k, v)) = h.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = v
                    .parse::<u64>()
                    .map_err(|_| ReadError::Io(format!("bad Content-Length `{v}`")))?;
                body_limit(n)?;
                length = Some(n);
            }
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            "connection" => {
                let v = v.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            }
            "www-authenticate" => authenticate.push(v.to_string()),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            if read_line_bounded(r, &mut size, "chunk size line")? == 0 {
                return Err("the connection closed inside the chunked reply body".into());
            }
            let digits = size.trim().split(';').next().unwrap_or("").trim();
            let n = u64::from_str_radix(digits, 16)
                .map_err(|_| ReadError::Io(format!("bad chunk size `{}`", size.trim())))?;
            if n == 0 {
                loop {
                    let mut t = String::new();
                    if read_line_bounded(r, &mut t, "trailer line")? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            body_limit((body.len() as u64).saturating_add(n))?;
            let start = body.len();
            body.resize(start + n as usize, 0);
            r.read_exact(&mut body[start..])
                .map_err(|e| ReadError::Io(e.to_string()))?;
            let mut crlf = String::new();
            read_line_bounded(r, &mut crlf, "chunk end")?;
        }
    } else if let Some(n) = length {
        body.resize(n as usize, 0);
        r.read_exact(&mut body)
            .map_err(|e| ReadError::Io(e.to_string()))?;
    } else if status != 204 && status != 304 {
        r.take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| ReadError::Io(e.to_string()))?;
        body_limit(body.len() as u64)?;
        close = true;
    }
    Ok(Response {
        status,
        reason,
        authenticate,
        close,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
