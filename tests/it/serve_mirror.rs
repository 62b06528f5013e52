//! The mirror proxy of `picaboot serve --mirror-proxy`, against this machine's real Debian
//! mirror: Release/Release.gpg recovered from InRelease verify with gpgv and Debian's keyring,
//! other files pass through byte for byte, pool files land in the cache, and paths that leave
//! the mirror are refused.

use crate::common;

use std::sync::Arc;

use common::{cmd, require, run_ok};
use picaboot::serve::{mirror::MirrorProxy, Server};

#[test]
fn mirror_proxy_serves_a_verifiable_release_pair_and_passes_files_through() {
    require("curl", "curl");
    require("gpgv", "gpgv");
    let upstream = common::mirror();
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = MirrorProxy::new(&upstream, cache.path()).unwrap();
    let server = rt
        .block_on(Server::bind_with_mirror(
            root.path(),
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(|_: &str| {}),
            Some(proxy),
        ))
        .unwrap();
    let base = format!("http://{}/debian", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = rt.spawn(server.run(async {
        let _ = stopped.await;
    }));
    let dir = tempfile::tempdir().unwrap();
    let get = |rel: &str, to: &str| {
        run_ok(
            cmd("curl")
                .args(["-fsS", "-o"])
                .arg(dir.path().join(to))
                .arg(format!("{base}/{rel}")),
        );
    };
    let scratch = common::scratch_profiles();
    let project = picaboot::project::open(&scratch.path().join("profiles")).unwrap();
    let suite = project.loaded.profiles.hosts["alice"].install.suite.clone();
    get(&format!("dists/{suite}/Release"), "Release");
    get(&format!("dists/{suite}/Release.gpg"), "Release.gpg");
    run_ok(
        cmd("gpgv")
            .args([
                "--keyring",
                "/usr/share/keyrings/debian-archive-keyring.gpg",
            ])
            .arg(dir.path().join("Release.gpg"))
            .arg(dir.path().join("Release")),
    );
    // Pass-through: the same bytes as upstream.
    let rel = format!("dists/{suite}/main/binary-amd64/Release");
    get(&rel, "arch-Release");
    let direct = run_ok(cmd("curl").args(["-fsS", &format!("{upstream}/{rel}")]));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("arch-Release")).unwrap(),
        direct
    );
    // Missing files and escapes are 404.
    for bad in [
        format!("dists/{suite}/no-such-file"),
        "../../etc/passwd".to_string(),
    ] {
        let code = run_ok(cmd("curl").args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}/{bad}"),
        ]));
        assert_eq!(code, "404", "{bad}");
    }
    let _ = stop.send(());
    rt.block_on(handle).unwrap();
}
