//! An authenticated HTTP session with one repository of one registry (Registry HTTP API v2).

use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::auth::{parse_challenge, Challenge, Credentials, Secret};
use super::reference::Reference;
use super::RegistryError;

/// How the session authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    /// The registry asked for nothing.
    Anonymous,
    /// HTTP Basic with the user's credentials.
    Basic,
    /// Bearer token obtained from the registry's token service.
    Bearer,
}

/// A session: base URL, repository, and the `Authorization` value to send.
pub struct Session {
    /// The client for other origins (a token realm, an upload `Location` on a storage host):
    /// the system's roots only.
    http: reqwest::Client,
    /// The client for the registry's own origin: the system's roots plus the CA file, when
    /// one was given (else the same as `http`).
    own: reqwest::Client,
    base: Url,
    /// The registry as the user wrote it, for messages.
    pub registry: String,
    /// Repository path.
    pub repo: String,
    auth: Mutex<Option<Secret>>,
    /// Token service (realm, service) when the registry uses the Bearer flow.
    bearer: Option<(String, Option<String>)>,
    /// How we authenticated.
    pub kind: AuthKind,
    creds: Option<Credentials>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("base", &self.base.as_str())
            .field("repo", &self.repo)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A short, human reason for a failed request: connection refused, unknown host, timeout, TLS.
pub fn describe(e: &reqwest::Error) -> String {
    let mut chain: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return "connection refused (is a registry running there?)".into()
                }
                std::io::ErrorKind::ConnectionReset => {
                    return "connection reset by the registry".into()
                }
                _ => {}
            }
        }
        chain.push(c.to_string());
        cur = c.source();
    }
    let all = chain.join(": ");
    if all.contains("dns error") || all.contains("failed to lookup address") {
        return "unknown host (name resolution failed)".into();
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    if all.contains("certificate") || all.contains("InvalidCertificate") {
        return format!(
            "TLS certificate not trusted by the system roots ({})",
            chain.last().cloned().unwrap_or_default()
        );
    }
    if all.contains("InvalidContentType") || all.contains("CorruptMessage") {
        return "TLS handshake failed (is it a plain-HTTP registry? then pass --plain-http)".into();
    }
    chain.last().cloned().unwrap_or_else(|| e.to_string())
}

impl Session {
    /// Connects to the registry of `to`: pings `/v2/` and authenticates as it asks
    /// (nothing, Basic, or Bearer token for `repository:REPO:pull,push`). With `ca_file` (PEM,
    /// one or more certificates), the registry's own origin is also trusted when its
    /// certificate chains to one of them; every other origin keeps the system's roots only.
    pub async fn connect(
        to: &Reference,
        plain_http: bool,
        ca_file: Option<&Path>,
        creds: Option<Credentials>,
    ) -> Result<Session, RegistryError> {
        let scheme = if plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{}/", to.api_host()))
            .map_err(|e| RegistryError::Reference(format!("{to}: {e}")))?;
        let builder = || {
            crate::http::async_builder()
                .user_agent(concat!("picaboot/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(15))
                .read_timeout(Duration::from_secs(300))
                .https_only(!plain_http)
        };
        let unreachable = |e: reqwest::Error| RegistryError::Unreachable {
            registry: to.registry.clone(),
            reason: describe(&e),
        };
        let http = builder().build().map_err(unreachable)?;
        let own = match ca_file {
            None => http.clone(),
            Some(path) => {
                let mut b = builder();
                for c in read_ca_file(path)? {
                    b = b.add_root_certificate(c);
                }
                b.build().map_err(unreachable)?
            }
        };
        let mut s = Session {
            http,
            own,
            base,
            registry: to.registry.clone(),
            repo: to.repository.clone(),
            auth: Mutex::new(None),
            bearer: None,
            kind: AuthKind::Anonymous,
            creds,
        };
        let ping = s.url("v2/");
        let resp = s.send(s.own.get(ping.clone()), "GET /v2/", false).await?;
        match resp.status() {
            s2 if s2.is_success() => return Ok(s),
            StatusCode::UNAUTHORIZED => {}
            other => {
                return Err(RegistryError::Http {
                    registry: s.registry.clone(),
                    op: "GET /v2/ (is this a registry?)".into(),
                    status: other.as_u16(),
                    detail: String::new(),
                })
            }
        }
        let challenge = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .min_by_key(|c| matches!(c, Challenge::Basic));
        let Some(challenge) = challenge else {
            return Err(RegistryError::Http {
                registry: s.registry.clone(),
                op: "GET /v2/: 401 without a Basic or Bearer challenge".into(),
                status: 401,
                detail: String::new(),
            });
        };
        match challenge {
            Challenge::Basic => {
                let c = s
                    .creds
                    .as_ref()
                    .ok_or_else(|| RegistryError::AuthRequired {
                        registry: s.registry.clone(),
                    })?;
                s.set_auth(c.basic_header());
                s.kind = AuthKind::Basic;
            }
            Challenge::Bearer { realm, service, .. } => {
                let token = s.token(&realm, service.as_deref()).await?;
                s.set_auth(Secret::new(format!("Bearer {}", token.expose())));
                s.bearer = Some((realm, service));
                s.kind = AuthKind::Bearer;
            }
        }
        // Prove the credentials now, so a wrong password is reported before any upload.
        let resp = s
            .send(s.request(Method::GET, ping), "GET /v2/", true)
            .await?;
        if !resp.status().is_success() {
            return Err(RegistryError::Http {
                registry: s.registry.clone(),
                op: "GET /v2/".into(),
                status: resp.status().as_u16(),
                detail: String::new(),
            });
        }
        Ok(s)
    }

    async fn token(&self, realm: &str, service: Option<&str>) -> Result<Secret, RegistryError> {
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Http {
            registry: self.registry.clone(),
            op: format!("token realm {realm:?}: {e}"),
            status: 401,
            detail: String::new(),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(svc) = service {
                q.append_pair("service", svc);
            }
            q.append_pair("scope", &format!("repository:{}:pull,push", self.repo));
        }
        let mut rb = self.client_for(&url).get(url);
        if let Some(c) = &self.creds {
            rb = rb.header(AUTHORIZATION, sensitive(&c.basic_header()));
        }
        let resp = rb.send().await.map_err(|e| RegistryError::Unreachable {
            registry: format!("{} (token service {realm})", self.registry),
            reason: describe(&e),
        })?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(self.auth_error());
        }
        if !resp.status().is_success() {
            return Err(RegistryError::Http {
                registry: self.registry.clone(),
                op: format!("token service {realm}"),
                status: resp.status().as_u16(),
                detail: String::new(),
            });
        }
        let body = crate::limits::reply_bounded(resp, crate::limits::TOKEN_REPLY)
            .await
            .map_err(|e| match e {
                crate::limits::ReplyError::TooLarge(t) => RegistryError::TooLarge(t),
                crate::limits::ReplyError::Transfer(e) => RegistryError::Transfer {
                    registry: self.registry.clone(),
                    op: "token service".into(),
                    reason: describe(&e),
                },
            })?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Transfer {
                registry: self.registry.clone(),
                op: "token service".into(),
                reason: format!("answer is not JSON: {e}"),
            })?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| RegistryError::Transfer {
                registry: self.registry.clone(),
                op: "token service".into(),
                reason: "answer holds no token".into(),
            })
    }

    fn auth_error(&self) -> RegistryError {
        match &self.creds {
            Some(c) => RegistryError::AuthFailed {
                registry: self.registry.clone(),
                username: c.username.clone(),
                origin: c.source.clone(),
            },
            None => RegistryError::AuthRequired {
                registry: self.registry.clone(),
            },
        }
    }

    /// `base` joined with a path relative to the registry root (`v2/…`).
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("registry paths are valid URLs")
    }

    /// `…/v2/REPO/SUFFIX`.
    pub fn repo_url(&self, suffix: &str) -> Url {
        self.url(&format!("v2/{}/{suffix}", self.repo))
    }

    /// A request with the session's authorization when `url` is on the registry's own origin
    /// (scheme, host and port); to any other origin (an upload `Location` on a storage host)
    /// without it, as the Docker distribution client does: credentials go only where they
    /// came from.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let own_origin = same_origin(&url, &self.base);
        let rb = self.client_for(&url).request(method, url);
        if !own_origin {
            return rb;
        }
        let auth = self.auth.lock().map(|a| a.clone()).unwrap_or(None);
        match auth {
            Some(a) => rb.header(AUTHORIZATION, sensitive(&a)),
            None => rb,
        }
    }

    /// The client whose trust fits `url`: the CA file's (if any) on the registry's own
    /// origin, the system's roots elsewhere.
    fn client_for(&self, url: &Url) -> &reqwest::Client {
        if same_origin(url, &self.base) {
            &self.own
        } else {
            &self.http
        }
    }

    fn set_auth(&self, a: Secret) {
        if let Ok(mut g) = self.auth.lock() {
            *g = Some(a);
        }
    }

    /// Builds and sends a request; when a Bearer token was refused (it expired during a
    /// long push), fetches a new token once and sends a freshly built request again.
    pub async fn send_with<F, Fut>(&self, op: &str, mut build: F) -> Result<Response, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, RegistryError>>,
    {
        let resp = self.send(build().await?, op, false).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return self.send_checked(resp, op);
        }
        let Some((realm, service)) = &self.bearer else {
            return Err(self.auth_error());
        };
        let token = self.token(realm, service.as_deref()).await?;
        self.set_auth(Secret::new(format!("Bearer {}", token.expose())));
        let resp = self.send(build().await?, op, true).await?;
        self.send_checked(resp, op)
    }

    fn send_checked(&self, resp: Response, op: &str) -> Result<Response, RegistryError> {
        match resp.status() {
            StatusCode::UNAUTHORIZED => Err(self.auth_error()),
            StatusCode::FORBIDDEN => Err(RegistryError::Denied {
                registry: self.registry.clone(),
                op: op.to_string(),
            }),
            _ => Ok(resp),
        }
    }

    /// Sends; maps transport failures and (when `authed`) 401/403 to clear errors.
    pub async fn send(
        &self,
        rb: RequestBuilder,
        op: &str,
        authed: bool,
    ) -> Result<Response, RegistryError> {
        let resp = rb.send().await.map_err(|e| {
            if e.is_connect() {
                RegistryError::Unreachable {
                    registry: self.registry.clone(),
                    reason: describe(&e),
                }
            } else {
                RegistryError::Transfer {
                    registry: self.registry.clone(),
                    op: op.to_string(),
                    reason: describe(&e),
                }
            }
        })?;
        if authed && resp.status() == StatusCode::UNAUTHORIZED {
            return Err(self.auth_error());
        }
        if authed && resp.status() == StatusCode::FORBIDDEN {
            return Err(RegistryError::Denied {
                registry: self.registry.clone(),
                op: op.to_string(),
            });
        }
        Ok(resp)
    }

    /// Turns an unexpected answer into an error carrying the start of the registry's error
    /// text (at most [`ERROR_BODY`](crate::limits::ERROR_BODY) of it is read).
    pub async fn unexpected(&self, op: &str, resp: Response) -> RegistryError {
        let status = resp.status().as_u16();
        let detail = crate::limits::error_detail(resp).await;
        RegistryError::Http {
            registry: self.registry.clone(),
            op: op.to_string(),
            status,
            detail: if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            },
        }
    }
}

/// The certificates of a PEM file given as `--ca-file` (at most
/// [`CA_FILE`](crate::limits::CA_FILE) of it is read); an error names the file.
fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, RegistryError> {
    use std::io::Read;
    let bad = |reason: String| RegistryError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let limit = crate::limits::CA_FILE;
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit.bytes + 1).read_to_end(&mut pem))
        .map_err(|e| bad(format!("CA file: {e}")))?;
    if pem.len() as u64 > limit.bytes {
        return Err(limit.exceeded(&path.display().to_string()).into());
    }
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| bad(format!("CA file: not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad("CA file: no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// Whether two URLs share scheme, host and port (an explicit default port counts as the
/// default).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

fn sensitive(s: &Secret) -> HeaderValue {
    let mut v = HeaderValue::from_str(s.expose()).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A resolver that knows no name, as when a registry host does not exist (no network used).
    struct NoSuchHost;

    impl reqwest::dns::Resolve for NoSuchHost {
        fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
            Box::pin(async {
                Err::<reqwest::dns::Addrs, _>(
                    std::io::Error::other(
                        "failed to lookup address information: Name or service not known",
                    )
                    .into(),
                )
            })
        }
    }

    #[test]
    fn origins() {
        let u = |s: &str| Url::parse(s).unwrap();
        let base = u("https://registry.example:5000/");
        assert!(same_origin(
            &u("https://registry.example:5000/v2/a/blobs/uploads/1"),
            &base
        ));
        assert!(!same_origin(&u("https://storage.example:5000/up"), &base));
        assert!(!same_origin(&u("http://registry.example:5000/v2/"), &base));
        assert!(!same_origin(&u("https://registry.example/v2/"), &base));
        assert!(same_origin(
            &u("https://r.example:443/v2/"),
            &u("https://r.example/")
        ));
    }

    #[test]
    fn unknown_host_and_refused_are_named() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = reqwest::Client::builder()
                .dns_resolver(Arc::new(NoSuchHost))
                .build()
                .unwrap();
            let e = c
                .get("http://registry.invalid/v2/")
                .send()
                .await
                .unwrap_err();
            assert_eq!(describe(&e), "unknown host (name resolution failed)");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let e = reqwest::Client::new()
                .get(format!("http://127.0.0.1:{port}/v2/"))
                .send()
                .await
                .unwrap_err();
            assert!(
                describe(&e).starts_with("connection refused"),
                "{}",
                describe(&e)
            );
        });
    }
}
