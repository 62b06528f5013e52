//! The signed chain InRelease (gpgv + Debian's archive keyring) -> Packages -> .deb, against a
//! local HTTP mirror on 127.0.0.1 holding real files from this machine's Debian mirror, and
//! tampered copies of each link.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use picaboot::debian::{Client, ClientOptions, DebianError, DEFAULT_KEYRING};

const SUITE: &str = "trixie";
const INDEX: &str = "main/binary-amd64/Packages";
/// A small real package for the .deb link.
const SMALL: &str = "hostname";

/// Real files (downloaded once per test run): InRelease, Packages.xz, and the small .deb.
struct Fixture {
    dir: tempfile::TempDir,
    deb_path: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        common::require("gpgv", "gpgv");
        assert!(
            Path::new(DEFAULT_KEYRING).is_file(),
            "{DEFAULT_KEYRING} is missing: install the Debian package `debian-archive-keyring`"
        );
        let m = common::mirror();
        let dir = tempfile::tempdir().unwrap();
        let put = |rel: &str, bytes: &[u8]| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        };
        put(
            &format!("dists/{SUITE}/InRelease"),
            &common::get(&format!("{m}/dists/{SUITE}/InRelease")),
        );
        let xz = common::get(&format!("{m}/dists/{SUITE}/{INDEX}.xz"));
        put(&format!("dists/{SUITE}/{INDEX}.xz"), &xz);
        // Find the small package's pool path through the real index.
        let mut text = String::new();
        use std::io::Read;
        liblzma::read::XzDecoder::new(&xz[..])
            .read_to_string(&mut text)
            .unwrap();
        let p = picaboot::debian::Packages::new("t", text)
            .get(SMALL)
            .expect("small package in the index");
        put(&p.filename, &common::get(&format!("{m}/{}", p.filename)));
        Fixture {
            dir,
            deb_path: p.filename,
        }
    })
}

/// A copy of the fixture mirror, with `tamper` applied, served on 127.0.0.1.
fn mirror_with(tamper: impl FnOnce(&Path)) -> (tempfile::TempDir, String) {
    let f = fixture();
    let copy = tempfile::tempdir().unwrap();
    for rel in [
        format!("dists/{SUITE}/InRelease"),
        format!("dists/{SUITE}/{INDEX}.xz"),
        f.deb_path.clone(),
    ] {
        let to = copy.path().join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(f.dir.path().join(&rel), to).unwrap();
    }
    tamper(copy.path());
    let url = common::serve_dir(copy.path());
    (copy, url)
}

fn client(url: &str, keyring: &Path, insecure: bool) -> (Client, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let c = Client::new(ClientOptions {
        mirror: url.to_string(),
        keyring: keyring.to_path_buf(),
        insecure,
        cache_dir: cache.path().to_path_buf(),
    });
    (c, cache)
}

/// Runs the whole chain; returns the cached .deb.
fn chain(c: &Client) -> Result<PathBuf, DebianError> {
    let r = c.release(SUITE)?;
    let p = c.packages(&r, INDEX)?;
    let pkg = c.find(&p, SMALL)?;
    c.fetch(&pkg)
}

fn flip_byte(p: &Path, at: usize) {
    let mut b = std::fs::read(p).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x01;
    std::fs::write(p, b).unwrap();
}

#[test]
fn untampered_chain_verifies_and_caches() {
    let (_m, url) = mirror_with(|_| {});
    let (c, _cache) = client(&url, Path::new(DEFAULT_KEYRING), false);
    let deb = chain(&c).unwrap();
    let bytes = std::fs::read(&deb).unwrap();
    assert_eq!(&bytes[..8], b"!<arch>\n");
    // Second run: served from the cache (still verified).
    assert_eq!(chain(&c).unwrap(), deb);
}

#[test]
fn bad_inrelease_signature_is_refused() {
    let (_m, url) = mirror_with(|d| {
        let p = d.join(format!("dists/{SUITE}/InRelease"));
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("Origin: Debian\n"));
        std::fs::write(&p, text.replacen("Origin: Debian\n", "Origin: Debiam\n", 1)).unwrap();
    });
    let (c, cache) = client(&url, Path::new(DEFAULT_KEYRING), false);
    let e = chain(&c).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DebianError::BadSignature { .. }), "{msg}");
    assert!(
        msg.contains("dists/trixie/InRelease") && msg.contains("signature"),
        "{msg}"
    );
    assert!(
        !cache.path().join("sha256").exists(),
        "nothing cached from a bad chain"
    );

    // --insecure skips only the signature: the (tampered-but-consistent) chain then passes.
    let (c, _cache) = client(&url, Path::new(DEFAULT_KEYRING), true);
    chain(&c).unwrap();
}

#[test]
fn foreign_keyring_is_refused() {
    let (_m, url) = mirror_with(|_| {});
    let other = Path::new("/usr/share/keyrings/debian-archive-removed-keys.gpg");
    assert!(
        other.is_file(),
        "install the Debian package `debian-archive-keyring`"
    );
    let (c, _cache) = client(&url, other, false);
    let e = chain(&c).unwrap_err();
    assert!(matches!(e, DebianError::BadSignature { .. }), "{e}");
}

#[test]
fn packages_with_wrong_hash_is_refused() {
    let (_m, url) = mirror_with(|d| flip_byte(&d.join(format!("dists/{SUITE}/{INDEX}.xz")), 5000));
    let (c, cache) = client(&url, Path::new(DEFAULT_KEYRING), false);
    let e = chain(&c).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DebianError::HashMismatch { .. }), "{msg}");
    assert!(
        msg.contains("main/binary-amd64/Packages.xz: SHA256 mismatch"),
        "{msg}"
    );
    assert!(
        !cache.path().join("sha256").exists(),
        "nothing cached from a bad chain"
    );
}

#[test]
fn deb_with_wrong_hash_is_refused() {
    let deb = fixture().deb_path.clone();
    let d2 = deb.clone();
    let (_m, url) = mirror_with(move |d| flip_byte(&d.join(&d2), 2000));
    let (c, cache) = client(&url, Path::new(DEFAULT_KEYRING), false);
    let e = chain(&c).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DebianError::HashMismatch { .. }), "{msg}");
    assert!(msg.contains(&format!("{deb}: SHA256 mismatch")), "{msg}");
    // The verified Packages index may be cached; the bad .deb must not be.
    let cached: Vec<_> = std::fs::read_dir(cache.path().join("sha256"))
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert_eq!(
        cached.len(),
        1,
        "only the verified Packages index is cached"
    );
}

#[test]
fn missing_file_names_the_url() {
    let (_m, url) =
        mirror_with(|d| std::fs::remove_file(d.join(format!("dists/{SUITE}/{INDEX}.xz"))).unwrap());
    let (c, _cache) = client(&url, Path::new(DEFAULT_KEYRING), false);
    let msg = chain(&c).unwrap_err().to_string();
    assert!(msg.contains("Packages.xz") && msg.contains("404"), "{msg}");
}

#[test]
fn expired_release_is_refused() {
    // A Valid-Until in the past (inserted, so only checkable with the signature check off).
    let (_m, url) = mirror_with(|d| {
        let p = d.join(format!("dists/{SUITE}/InRelease"));
        let text = std::fs::read_to_string(&p).unwrap();
        let text = text.replacen(
            "Origin: Debian\n",
            "Origin: Debian\nValid-Until: Thu, 01 Jan 2015 00:00:00 UTC\n",
            1,
        );
        std::fs::write(&p, text).unwrap();
    });
    let (c, _cache) = client(&url, Path::new(DEFAULT_KEYRING), true);
    let e = chain(&c).unwrap_err();
    assert!(matches!(e, DebianError::Expired { .. }), "{e}");
    assert!(e.to_string().contains("dists/trixie/InRelease"), "{e}");
}
