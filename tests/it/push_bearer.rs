//! `push` against a small in-test registry that asks for the Bearer token flow (as Docker Hub,
//! GitLab or Harbor do) and answers upload `Location`s as relative references: checks the
//! token request, that every registry request carries the token, chunked and monolithic
//! uploads land byte-exact, and wrong or missing credentials give clear errors.

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use picaboot::registry::{self, BlobAction, Credentials, PushOptions, RegistryError, Secret};
use sha2::{Digest, Sha256};

const REPO: &str = "team/bearer";

#[derive(Default)]
struct Mock {
    blobs: HashMap<String, Vec<u8>>,
    uploads: HashMap<String, Vec<u8>>,
    manifests: HashMap<String, (String, Vec<u8>)>,
    token_requests: Vec<String>,
    next: u32,
    port: u16,
    /// Current token generation: only `tok-GEN` is accepted.
    gen: u32,
    /// Requests accepted with the current token.
    accepted: u32,
    /// Expire the token after this many accepted requests (as a 5-minute token would).
    expire_every: Option<u32>,
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn reply(
    status: StatusCode,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    for (k, v) in headers {
        r.headers_mut().insert(*k, v.parse().unwrap());
    }
    r
}

fn handle(
    m: &Mutex<Mock>,
    method: &str,
    path: &str,
    query: &str,
    auth: &str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut m = m.lock().unwrap();
    let good_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:right-pw")
    );
    if path == "/token" {
        m.token_requests.push(query.to_string());
        if auth != good_basic {
            return reply(StatusCode::UNAUTHORIZED, &[], b"{}".to_vec());
        }
        m.gen += 1;
        m.accepted = 0;
        let tok = format!("tok-{}", m.gen);
        return reply(
            StatusCode::OK,
            &[],
            format!(r#"{{"token":"{tok}","expires_in":300}}"#).into_bytes(),
        );
    }
    if m.gen == 0 || auth != format!("Bearer tok-{}", m.gen) {
        let c = format!(
            r#"Bearer realm="http://127.0.0.1:{}/token",service="mock-registry",scope="repository:{REPO}:pull,push""#,
            m.port
        );
        return reply(
            StatusCode::UNAUTHORIZED,
            &[("www-authenticate", c)],
            Vec::new(),
        );
    }
    m.accepted += 1;
    if Some(m.accepted) == m.expire_every {
        m.gen += 1; // this token expires after this request
    }
    let base = format!("/v2/{REPO}/");
    let Some(rest) = path.strip_prefix(&base) else {
        return reply(
            if path == "/v2/" {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
            &[],
            Vec::new(),
        );
    };
    let q: HashMap<String, String> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":")))
        .collect();
    match (method, rest) {
        ("HEAD", r) if r.starts_with("blobs/sha256:") => {
            let d = &r["blobs/".len()..];
            match m.blobs.get(d) {
                Some(b) => reply(
                    StatusCode::OK,
                    &[("content-length", b.len().to_string())],
                    Vec::new(),
                ),
                None => reply(StatusCode::NOT_FOUND, &[], Vec::new()),
            }
        }
        ("POST", "blobs/uploads/") => {
            m.next += 1;
            let id = format!("u{}", m.next);
            m.uploads.insert(id.clone(), Vec::new());
            // Relative to the request URL: /v2/REPO/blobs/uploads/ID.
            reply(
                StatusCode::ACCEPTED,
                &[("location", format!("{id}?_state=s0"))],
                Vec::new(),
            )
        }
        ("PATCH", r) if r.starts_with("blobs/uploads/") => {
            let id = &r["blobs/uploads/".len()..];
            let up = m.uploads.get_mut(id).expect("known upload");
            up.extend_from_slice(&body);
            let end = up.len() - 1;
            // An absolute path this time.
            reply(
                StatusCode::ACCEPTED,
                &[
                    (
                        "location",
                        format!("/v2/{REPO}/blobs/uploads/{id}?_state=s1"),
                    ),
                    ("range", format!("0-{end}")),
                ],
                Vec::new(),
            )
        }
        ("PUT", r) if r.starts_with("blobs/uploads/") => {
            let id = &r["blobs/uploads/".len()..];
            let mut up = m.uploads.remove(id).expect("known upload");
            up.extend_from_slice(&body);
            let d = q.get("digest").cloned().unwrap_or_default();
            if sha(&up) != d {
                return reply(StatusCode::BAD_REQUEST, &[], b"digest invalid".to_vec());
            }
            m.blobs.insert(d, up);
            reply(StatusCode::CREATED, &[], Vec::new())
        }
        ("PUT", r) if r.starts_with("manifests/") => {
            let d = sha(&body);
            m.manifests
                .insert(r["manifests/".len()..].to_string(), (d.clone(), body));
            reply(
                StatusCode::CREATED,
                &[("docker-content-digest", d)],
                Vec::new(),
            )
        }
        _ => reply(StatusCode::NOT_FOUND, &[], Vec::new()),
    }
}

/// Starts the mock on an ephemeral loopback port, on its own runtime thread.
fn start() -> (SocketAddr, Arc<Mutex<Mock>>) {
    let mock = Arc::new(Mutex::new(Mock::default()));
    let (tx, rx) = std::sync::mpsc::channel();
    let m2 = mock.clone();
    common::on_own_runtime(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        m2.lock().unwrap().port = l.local_addr().unwrap().port();
        tx.send(l.local_addr().unwrap()).unwrap();
        loop {
            let (s, _) = l.accept().await.unwrap();
            let m3 = m2.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let m4 = m3.clone();
                    async move {
                        let method = req.method().to_string();
                        let path = req.uri().path().to_string();
                        let query = req.uri().query().unwrap_or("").to_string();
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                        Ok::<_, std::convert::Infallible>(handle(
                            &m4, &method, &path, &query, &auth, body,
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (rx.recv().unwrap(), mock)
}

/// A hand-made OCI layout: config + one layer of `n` bytes, and an index naming the manifest.
fn layout(dir: &Path, n: usize) -> (String, Vec<u8>, String) {
    let layer: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    let l = common::oci::write_layout(dir, &[&layer], true);
    (l.manifest, layer, l.index.unwrap())
}

fn opts(dir: &Path, addr: SocketAddr, pass: Option<&str>) -> PushOptions {
    let mut o = PushOptions::new(dir, "tx", format!("{addr}/{REPO}:v1").parse().unwrap());
    o.plain_http = true;
    o.credentials = pass.map(|p| Credentials {
        username: "alice".into(),
        password: Secret::new(p),
        source: "test".into(),
    });
    o
}

#[test]
fn bearer_token_flow_and_relative_locations() {
    let (addr, mock) = start();
    let t = tempfile::tempdir().unwrap();
    let (md, layer, xd) = layout(t.path(), 2_500_000);

    // Tokens expire every 3 requests: the push must fetch new ones as it goes.
    mock.lock().unwrap().expire_every = Some(3);
    let mut o = opts(t.path(), addr, Some("right-pw"));
    o.chunk_threshold = 1_000_000;
    o.chunk_size = 1_000_000;
    let r = registry::push(&o, &|_| {}).unwrap();
    assert_eq!(r.manifest_digest, md);
    assert!(
        r.blobs
            .iter()
            .any(|b| b.action == BlobAction::UploadedChunked { chunks: 3 }),
        "{r:#?}"
    );
    assert!(
        r.blobs.iter().any(|b| b.action == BlobAction::Uploaded),
        "{r:#?}"
    );
    {
        let m = mock.lock().unwrap();
        assert_eq!(m.manifests.get("v1").map(|x| x.0.clone()), Some(md.clone()));
        assert!(m.blobs.get(&sha(&layer)).is_some_and(|b| *b == layer));
        assert!(m.uploads.is_empty());
        assert!(m.token_requests.len() >= 3, "{:?}", m.token_requests);
        let q = &m.token_requests[0];
        assert!(
            q.contains("service=mock-registry")
                && q.contains("scope=repository%3Ateam%2Fbearer%3Apull%2Cpush"),
            "{q}"
        );
    }
    // Again: nothing to upload.
    let r = registry::push(&opts(t.path(), addr, Some("right-pw")), &|_| {}).unwrap();
    assert_eq!((r.uploaded(), r.skipped()), (0, 2));

    // The index: its child manifest by digest first, then the index under the tag.
    let mut o = opts(t.path(), addr, Some("right-pw"));
    o.name = "multi".into();
    o.to = format!("{addr}/{REPO}:multi").parse().unwrap();
    let r = registry::push(&o, &|_| {}).unwrap();
    assert_eq!((r.manifest_digest.as_str(), r.uploaded()), (xd.as_str(), 0));
    {
        let m = mock.lock().unwrap();
        assert_eq!(
            m.manifests.get("multi").map(|x| x.0.clone()),
            Some(xd.clone())
        );
        assert_eq!(m.manifests.get(&md).map(|x| x.0.clone()), Some(md.clone()));
    }

    let e = registry::push(&opts(t.path(), addr, Some("wrong-pw")), &|_| {}).unwrap_err();
    assert!(matches!(e, RegistryError::AuthFailed { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("authentication failed for {addr}")),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("wrong-pw"));

    let e = registry::push(&opts(t.path(), addr, None), &|_| {}).unwrap_err();
    assert!(matches!(e, RegistryError::AuthRequired { .. }), "{e:?}");
}
