//! The mirror proxy stays under its upstream's prefix after percent-decoding, and keeps one
//! cache per upstream. The upstreams here are two `picaboot serve` trees on loopback (their
//! logs show every request they receive).

use crate::common::serve as in_process;

use in_process::{raw, Running};
use picaboot::serve::mirror::MirrorProxy;

fn files(dir: &std::path::Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().display().to_string())
        .collect()
}

#[test]
fn encoded_dot_segments_are_refused_and_nothing_is_fetched_or_cached() {
    let up = tempfile::tempdir().unwrap();
    std::fs::write(up.path().join("secret.txt"), "secret\n").unwrap();
    std::fs::create_dir_all(up.path().join("debian/pool/main")).unwrap();
    let upstream = Running::start(up.path());
    let cache = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let proxy =
        MirrorProxy::new(&format!("http://{}/debian", upstream.addr), cache.path()).unwrap();
    let srv = Running::start_with_mirror(root.path(), Some(proxy));
    for bad in [
        "/debian/pool/%2e%2e/%2e%2e/secret.txt",
        "/debian/pool/%2E%2E/%2e%2E/secret.txt",
        "/debian/pool/..%2f..%2fsecret.txt",
        "/debian/%2e%2e/secret.txt",
        "/debian/pool/main/%00x",
    ] {
        let (st, _, body) = raw(srv.addr, "GET", bad, "");
        assert_eq!(st, 403, "{bad}: {}", String::from_utf8_lossy(&body));
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
    }
    let seen = upstream.lines.lock().unwrap().clone();
    assert!(seen.is_empty(), "upstream was asked: {seen:?}");
    assert_eq!(files(cache.path()), Vec::<String>::new(), "nothing cached");
}

#[test]
fn two_upstreams_do_not_share_cached_pool_files() {
    let rel = "debian/pool/main/h/hello/hello_1.0_amd64.deb";
    let mut ups = Vec::new();
    for content in ["from upstream A\n", "from upstream B\n"] {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        let r = Running::start(d.path());
        ups.push((d, r, content));
    }
    let cache = tempfile::tempdir().unwrap();
    for (_, up, content) in &ups {
        let root = tempfile::tempdir().unwrap();
        let proxy = MirrorProxy::new(&format!("http://{}/debian", up.addr), cache.path()).unwrap();
        let srv = Running::start_with_mirror(root.path(), Some(proxy));
        let (st, _, body) = raw(srv.addr, "GET", &format!("/{rel}"), "");
        assert_eq!(st, 200);
        assert_eq!(String::from_utf8_lossy(&body), *content);
    }
    assert_eq!(files(cache.path()).len(), 2, "one cached copy per upstream");
}
