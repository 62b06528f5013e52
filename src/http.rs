//! The one HTTP client policy (reqwest): every outgoing request of picaboot is made by a client
//! built here, so that all of them trust the same roots, use the same proxies, time out alike
//! and retry alike.
//!
//! - Trust: the system's roots (rustls with the platform verifier's native roots, which honour
//!   `SSL_CERT_FILE` / `SSL_CERT_DIR`).
//! - Proxies: `http_proxy` / `https_proxy` / `no_proxy` from the environment (reqwest's system
//!   proxy), or one explicit proxy where the caller has one (a profile's `install.proxy`).
//! - Timeouts: [`CONNECT_TIMEOUT`], and [`READ_TIMEOUT`] between two reads of a body.
//! - Retries: [`get`] retries an idempotent GET on a connection error, a timeout or a 5xx
//!   answer, [`RETRIES`] times with exponential backoff, logging each retry.
//!
//! The registry push (async, its own retry rule for uploads) and the mirror proxy start from
//! [`async_builder`].

use std::time::Duration;

/// Time to establish a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest silence between two reads.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries of an idempotent GET after the first try.
pub const RETRIES: u32 = 3;
/// Backoff before the first retry (doubled each time).
pub const BACKOFF: Duration = Duration::from_millis(500);
/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("picaboot/", env!("CARGO_PKG_VERSION"));

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The client could not be built (a bad proxy URL, no TLS roots).
    #[error("HTTP client: {0}")]
    Client(String),
    /// The request failed (after its retries).
    #[error("GET {url}: {reason}")]
    Get {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
    },
    /// The body is larger than the limit of its kind.
    #[error(transparent)]
    TooLarge(crate::limits::TooLarge),
}

impl From<crate::limits::TooLarge> for HttpError {
    fn from(t: crate::limits::TooLarge) -> Self {
        HttpError::TooLarge(t)
    }
}

/// A blocking client with the policy; `proxy` (`http://host:port`) replaces the environment's.
pub fn blocking(proxy: Option<&str>) -> Result<reqwest::blocking::Client, HttpError> {
    let mut b = reqwest::blocking::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        // The blocking client applies this to the wait for the answer and to each read of
        // the body, not to the whole transfer.
        .timeout(READ_TIMEOUT);
    if let Some(p) = proxy {
        if !(p.starts_with("http://") || p.starts_with("https://")) {
            return Err(HttpError::Client(format!(
                "proxy {p}: expected an http:// or https:// URL"
            )));
        }
        b = b.proxy(
            reqwest::Proxy::all(p).map_err(|e| HttpError::Client(format!("proxy {p}: {e}")))?,
        );
    }
    b.build().map_err(|e| HttpError::Client(describe(&e)))
}

/// An async client builder with the policy's user agent, timeouts and proxies.
pub fn async_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
}

/// An error with its causes (reqwest's own message is often just "error sending request").
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// GET `url`, retried on transient failures; returns the response once its status is 2xx.
pub fn get(
    client: &reqwest::blocking::Client,
    url: &str,
) -> Result<reqwest::blocking::Response, HttpError> {
    let mut wait = BACKOFF;
    let mut attempt = 0;
    loop {
        let (reason, status, transient) = match client.get(url).send() {
            Ok(r) if r.status().is_success() => return Ok(r),
            Ok(r) => {
                let s = r.status();
                (
                    format!("HTTP {} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
                        .trim_end()
                        .to_string(),
                    Some(s.as_u16()),
                    s.is_server_error() || s == reqwest::StatusCode::TOO_MANY_REQUESTS,
                )
            }
            Err(e) => (
                describe(&e),
                None,
                e.is_connect() || e.is_timeout() || e.is_request(),
            ),
        };
        if !transient || attempt >= RETRIES {
            return Err(HttpError::Get {
                url: url.to_string(),
                reason,
                status,
            });
        }
        attempt += 1;
        log::warn!(
            "GET {url}: {reason}; retry {attempt}/{RETRIES} in {:.1} s",
            wait.as_secs_f64()
        );
        crate::progress::event(&format!(
            "GET {url}: {reason}; retry {attempt}/{RETRIES} in {:.1} s",
            wait.as_secs_f64()
        ));
        std::thread::sleep(wait);
        wait *= 2;
    }
}

/// Streams `url` into the file `path` (created or truncated), hashing while streaming and
/// showing a transfer labelled `label`; returns the hex SHA-256 and the size. Nothing is held
/// in memory beyond one buffer, and at most `limit.bytes` are written (a larger
/// `Content-Length` is refused before the file is created).
pub fn download_to_file(
    client: &reqwest::blocking::Client,
    url: &str,
    path: &std::path::Path,
    label: &str,
    limit: crate::limits::Limit,
) -> Result<(String, u64), HttpError> {
    use std::io::{Read, Write};
    let err = |reason: String| HttpError::Get {
        url: url.to_string(),
        reason,
        status: None,
    };
    let mut resp = get(client, url)?;
    limit.check_announced(url, resp.content_length())?;
    let t = crate::progress::transfer(label, resp.content_length());
    let f = std::fs::File::create(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    let mut w = crate::archive::HashingWriter::new(std::io::BufWriter::new(f));
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = resp.read(&mut buf).map_err(|e| err(describe(&e)))?;
        if n == 0 {
            break;
        }
        if w.bytes() + n as u64 > limit.bytes {
            return Err(limit.exceeded(url).into());
        }
        w.write_all(&buf[..n])
            .map_err(|e| err(format!("{}: {e}", path.display())))?;
        t.inc(n as u64);
    }
    let (mut f, sha, n) = w.finish();
    f.flush()
        .map_err(|e| err(format!("{}: {e}", path.display())))?;
    t.finish();
    Ok((sha, n))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn get_names_the_status_and_does_not_retry_a_404() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = std::io::Read::read(&mut s, &mut buf);
            s.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .unwrap();
        });
        let c = super::blocking(None).unwrap();
        let e = super::get(&c, &format!("http://{addr}/x")).unwrap_err();
        assert!(e.to_string().contains("HTTP 404"), "{e}");
        server.join().unwrap();
    }
}
