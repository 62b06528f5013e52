//! Which udeb index an install under test uses, and the **harness udeb suite** for a mirror
//! whose udeb index does not match its signed `InRelease` (test harness only).
//!
//! The installer's net-retriever reads `dists/SUITE/Release` + `Release.gpg` of the suite
//! named by `mirror/udeb/suite`, checks them with `gpgv --keyring
//! /usr/share/keyrings/archive.gpg`, then the udeb index's hash against that Release. When
//! the mirror's udeb index matches Debian's signed InRelease, the install uses it as it is
//! ([`UdebSource::Signed`]). When it does not (a stale mirror), nothing signed by Debian can
//! vouch for it: with an explicit flag only, the harness publishes `dists/SUITE-picaboot/`
//! listing the udebs the mirror actually serves (with the hashes of the served index), signs
//! its Release with an **ephemeral key made for this run**, and the test initrd's keyring is
//! Debian's plus that key. Everything else stays on Debian's chain: the installer itself
//! (`netboot`'s InRelease -> Packages -> .deb), debootstrap (the real InRelease, Debian's
//! key), the installed system's apt (its own keyring; the self-test proves the harness key is
//! not there). Production `netboot` never calls this module.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::debian::{Client, DebianError};
use crate::exec;
use crate::render::{InstallerSources, HARNESS_UID};
use crate::serve::mirror::MirrorProxy;

/// The udeb index of the signed chain, relative to `dists/SUITE/`.
pub const UDEB_INDEX: &str = "main/debian-installer/binary-amd64/Packages.xz";

/// Why the udeb source could not be settled.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The served udeb index is not the signed one and the flag was not given.
    #[error(
        "the mirror's udeb index {url} does not match Debian's signed InRelease (signed: sha256 {signed}, {signed_size} bytes; served: sha256 {served}, {served_size} bytes): the installer would stop at \"Download installer components\". For a test install only, pass --allow-unverified-udebs to serve a harness udeb suite signed by a key made for this run (recorded in the report; never shipped, never trusted by the installed system)"
    )]
    StaleIndex {
        /// Index URL.
        url: String,
        /// Signed sha256.
        signed: String,
        /// Signed size.
        signed_size: u64,
        /// Served sha256.
        served: String,
        /// Served size.
        served_size: u64,
    },
    /// The archive client failed (signature, download).
    #[error(transparent)]
    Debian(#[from] DebianError),
    /// An external program (gpg, gpgv) failed.
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    /// Something else.
    #[error("harness udeb suite: {0}")]
    Other(String),
}

/// Where the installer's udebs come from, as printed and recorded in the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum UdebSource {
    /// The mirror's udeb index matches the signed InRelease: used as it is.
    Signed {
        /// Its sha256.
        sha256: String,
    },
    /// The harness suite, signed by an ephemeral key (`--allow-unverified-udebs`).
    Harness {
        /// Suite name served (`trixie-picaboot`).
        suite: String,
        /// sha256 InRelease lists for the udeb index.
        signed_sha256: String,
        /// sha256 of the index the mirror serves.
        served_sha256: String,
        /// udebs listed (those the mirror answers for).
        udebs: usize,
        /// udebs of the served index left out (the mirror answers 404).
        missing: usize,
        /// Fingerprint of the ephemeral key.
        key_fingerprint: String,
    },
}

impl UdebSource {
    /// The render's installer sources for these udebs, serve being `seen` (`ADDR:PORT`) from
    /// the box: its mirror proxy, the harness suite if that is the source, the security proxy.
    pub fn installer_sources(&self, seen: &str) -> InstallerSources {
        let udeb_suite = match self {
            UdebSource::Harness { suite, .. } => Some(suite.clone()),
            UdebSource::Signed { .. } => None,
        };
        InstallerSources {
            no_kernel_modules: udeb_suite.is_some(),
            udeb_suite,
            security_host: Some(seen.to_string()),
            security_path: Some("/debian-security".into()),
        }
    }

    /// One line for the console and the report.
    pub fn describe(&self) -> String {
        match self {
            UdebSource::Signed { sha256 } => {
                format!("signed udeb index (sha256 {sha256}, matches InRelease)")
            }
            UdebSource::Harness {
                suite,
                signed_sha256,
                served_sha256,
                udebs,
                missing,
                key_fingerprint,
            } => format!(
                "HARNESS udeb suite {suite} (--allow-unverified-udebs): the served index {served_sha256} is not the signed {signed_sha256}; {udebs} udebs listed, {missing} left out (404); Release signed by ephemeral key {key_fingerprint}"
            ),
        }
    }
}

/// The result of checking the mirror's udeb index.
#[derive(Debug)]
pub enum IndexCheck {
    /// It matches the signed InRelease.
    Signed(String),
    /// It does not; the served bytes (xz) and both digests.
    Stale {
        /// The served Packages.xz.
        served_xz: Vec<u8>,
        /// Signed sha256.
        signed: String,
        /// Signed size.
        signed_size: u64,
        /// Served sha256.
        served: String,
    },
}

/// Compares the served udeb index of `suite` with the hash in the verified InRelease.
pub fn check_index(client: &Client, suite: &str) -> Result<IndexCheck, HarnessError> {
    let release = client.release(suite)?;
    let listed = release
        .sha256
        .get(UDEB_INDEX)
        .ok_or_else(|| HarnessError::Other(format!("InRelease of {suite} lists no {UDEB_INDEX}")))?
        .clone();
    let rel = format!("dists/{suite}/{UDEB_INDEX}");
    let served = client.unverified_bytes(&rel)?;
    let served_sha = hex::encode(Sha256::digest(&served));
    if served_sha == listed.sha256 {
        return Ok(IndexCheck::Signed(served_sha));
    }
    Ok(IndexCheck::Stale {
        served_xz: served,
        signed: listed.sha256,
        signed_size: listed.size,
        served: served_sha,
    })
}

/// The error for a stale index without the flag.
pub fn stale_error(client: &Client, suite: &str, check: &IndexCheck) -> HarnessError {
    match check {
        IndexCheck::Stale {
            served_xz,
            signed,
            signed_size,
            served,
        } => HarnessError::StaleIndex {
            url: format!("{}/dists/{suite}/{UDEB_INDEX}", client.mirror()),
            signed: signed.clone(),
            signed_size: *signed_size,
            served: served.clone(),
            served_size: served_xz.len() as u64,
        },
        IndexCheck::Signed(_) => HarnessError::Other("the index is signed".into()),
    }
}

/// A built harness suite.
#[derive(Debug)]
pub struct Harness {
    /// Directory to serve as an overlay of the mirror root (holds `dists/SUITE/…`).
    pub root: tempfile::TempDir,
    /// The ephemeral public key (binary OpenPGP), to append to the test initrd's keyring.
    pub public_key: Vec<u8>,
    /// What was built.
    pub source: UdebSource,
}

/// Splits a Packages index into paragraphs with their `Filename`.
fn paragraphs(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .filter_map(|p| {
            let file = p
                .lines()
                .find_map(|l| l.strip_prefix("Filename: "))?
                .trim()
                .to_string();
            Some((p.trim_end().to_string(), file))
        })
        .collect()
}

/// Builds the harness suite `SUITE-picaboot` from the served (stale) index: only udebs the
/// upstream mirror answers for, Release signed by a fresh key (checked with gpgv before use).
pub async fn build(
    upstream: &str,
    suite: &str,
    check: &IndexCheck,
) -> Result<Harness, HarnessError> {
    let IndexCheck::Stale {
        served_xz,
        signed,
        served,
        ..
    } = check
    else {
        return Err(HarnessError::Other(
            "the udeb index is signed; no harness needed".into(),
        ));
    };
    let mut text = String::new();
    liblzma::read::XzDecoder::new_multi_decoder(&served_xz[..])
        .read_to_string(&mut text)
        .map_err(|e| HarnessError::Other(format!("served udeb index: {e}")))?;
    let paras = paragraphs(&text);
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| HarnessError::Other(e.to_string()))?;
    let up = upstream.trim_end_matches('/').to_string();
    let present: Vec<bool> = futures_util::stream::iter(paras.iter().map(|(_, f)| {
        let url = format!("{up}/{f}");
        let client = client.clone();
        async move {
            for _ in 0..3 {
                if let Ok(r) = client.head(&url).send().await {
                    return r.status().is_success();
                }
            }
            false
        }
    }))
    .buffered(16)
    .collect()
    .await;
    let kept: Vec<&str> = paras
        .iter()
        .zip(&present)
        .filter(|(_, ok)| **ok)
        .map(|((p, _), _)| p.as_str())
        .collect();
    let missing = paras.len() - kept.len();
    let mut index = kept.join("\n\n");
    index.push_str("\n\n");

    let harness_suite = format!("{suite}-picaboot");
    let root = tempfile::tempdir().map_err(|e| HarnessError::Other(e.to_string()))?;
    let dir = root.path().join("dists").join(&harness_suite);
    let idx_dir = dir.join("main/debian-installer/binary-amd64");
    std::fs::create_dir_all(&idx_dir).map_err(|e| HarnessError::Other(e.to_string()))?;
    let gz = crate::archive::gzip(index.as_bytes());
    let mut xz = Vec::new();
    {
        let mut enc = liblzma::write::XzEncoder::new(&mut xz, 6);
        enc.write_all(index.as_bytes())
            .and_then(|_| enc.finish().map(|_| ()))
            .map_err(|e| HarnessError::Other(e.to_string()))?;
    }
    let files: [(&str, &[u8]); 3] = [
        ("Packages", index.as_bytes()),
        ("Packages.gz", &gz),
        ("Packages.xz", &xz),
    ];
    let mut release = format!(
        "Origin: picaboot\nLabel: picaboot install harness (test only)\nSuite: {harness_suite}\nCodename: {harness_suite}\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nDescription: udebs the mirror serves, from its unsigned udeb index (sha256 {served}; InRelease lists {signed})\nSHA256:\n"
    );
    for (name, bytes) in files {
        std::fs::write(idx_dir.join(name), bytes)
            .map_err(|e| HarnessError::Other(e.to_string()))?;
        release.push_str(&format!(
            " {} {} main/debian-installer/binary-amd64/{name}\n",
            hex::encode(Sha256::digest(bytes)),
            bytes.len()
        ));
    }
    std::fs::write(dir.join("Release"), &release)
        .map_err(|e| HarnessError::Other(e.to_string()))?;
    let (fingerprint, public_key) = sign(&dir)?;
    Ok(Harness {
        root,
        public_key,
        source: UdebSource::Harness {
            suite: harness_suite,
            signed_sha256: signed.clone(),
            served_sha256: served.clone(),
            udebs: kept.len(),
            missing,
            key_fingerprint: fingerprint,
        },
    })
}

/// Makes an ephemeral key, signs `dir/Release` into `Release.gpg` and `InRelease`, checks
/// the detached signature with gpgv, and returns the fingerprint and the public key. The
/// secret key lives in a temporary GNUPGHOME that is deleted on return.
fn sign(dir: &Path) -> Result<(String, Vec<u8>), HarnessError> {
    let home = tempfile::tempdir().map_err(|e| HarnessError::Other(e.to_string()))?;
    let gpg = |args: &[&str]| -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", home.path())
            .args([
                "--batch",
                "--quiet",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args);
        c
    };
    exec::run(
        "make the ephemeral harness key (gpg, package gnupg)",
        &mut gpg(&["--quick-gen-key", HARNESS_UID, "rsa3072", "sign", "2d"]),
    )?;
    let listing = exec::run(
        "read the harness key's fingerprint",
        &mut gpg(&["--with-colons", "--list-secret-keys"]),
    )?;
    let fingerprint = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .ok_or_else(|| HarnessError::Other("gpg listed no fingerprint".into()))?;
    let release = dir.join("Release");
    let out = |name: &str| -> PathBuf { dir.join(name) };
    exec::run(
        "sign the harness Release",
        gpg(&["--armor", "--detach-sign", "--output"])
            .arg(out("Release.gpg"))
            .arg(&release),
    )?;
    exec::run(
        "clearsign the harness Release",
        gpg(&["--clearsign", "--output"])
            .arg(out("InRelease"))
            .arg(&release),
    )?;
    let public = exec::run(
        "export the harness key",
        &mut gpg(&["--export", &fingerprint]),
    )?;
    let keyring = home.path().join("harness.gpg");
    std::fs::write(&keyring, &public.stdout).map_err(|e| HarnessError::Other(e.to_string()))?;
    // The installer's check, done here first: gpgv with a keyring of this key alone.
    exec::run(
        "verify the harness Release with gpgv",
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg(out("Release.gpg"))
            .arg(&release),
    )?;
    Ok((fingerprint, public.stdout))
}

/// The installer's package sources for a box under test, all served by picaboot: the Debian
/// mirror proxied under `/debian/` (with the harness suite laid over it when the udeb index is
/// stale and the flag was given) and the security mirror under `/debian-security/`.
#[derive(Debug)]
pub struct TestSources {
    /// Where the installer's udebs come from (printed and recorded).
    pub udeb_source: UdebSource,
    /// The harness suite; its directory must outlive the serving.
    pub harness: Option<Harness>,
    /// The mirror proxy, for [`crate::serve::Server::bind_with_mirrors`].
    pub mirror: MirrorProxy,
    /// The security mirror proxy.
    pub security: MirrorProxy,
}

/// Settles the udeb source of `suite` on `mirror` ([`check_index`]) and makes the proxies:
/// a stale index is an error unless `allow_unverified_udebs`, in which case the harness suite
/// is built and laid over the mirror proxy.
pub fn test_sources(
    client: &Client,
    rt: &tokio::runtime::Runtime,
    mirror: &str,
    security: &str,
    suite: &str,
    allow_unverified_udebs: bool,
) -> Result<TestSources, HarnessError> {
    let check = check_index(client, suite)?;
    let (harness, udeb_source) = match &check {
        IndexCheck::Signed(sha) => (
            None,
            UdebSource::Signed {
                sha256: sha.clone(),
            },
        ),
        IndexCheck::Stale { .. } if !allow_unverified_udebs => {
            return Err(stale_error(client, suite, &check))
        }
        IndexCheck::Stale { .. } => {
            let h = rt.block_on(build(mirror, suite, &check))?;
            let source = h.source.clone();
            (Some(h), source)
        }
    };
    let cache = crate::qemu::guest::cache_root();
    let io = |what: &str, e: std::io::Error| HarnessError::Other(format!("{what}: {e}"));
    let mut proxy = MirrorProxy::new(mirror, &cache.join("mirror"))
        .map_err(|e| io("the mirror proxy's cache", e))?;
    if let Some(h) = &harness {
        proxy = proxy.with_overlay(h.root.path());
    }
    let security = MirrorProxy::new(security, &cache.join("mirror-security"))
        .map_err(|e| io("the security proxy's cache", e))?;
    Ok(TestSources {
        udeb_source,
        harness,
        mirror: proxy,
        security,
    })
}

impl TestSources {
    /// The mirror URL the installer is to use, serve being `seen` (`ADDR:PORT`) from the box.
    pub fn mirror_url(seen: &str) -> String {
        format!("http://{seen}/debian")
    }
}

impl crate::exit_class::ExitClass for HarnessError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            // The remedy is the operator's choice: another mirror, or (a test box only) the
            // flag the message names.
            HarnessError::StaleIndex { .. } => Class::User,
            HarnessError::Debian(d) => d.exit_class(),
            HarnessError::Exec(_) | HarnessError::Other(_) => Class::Env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_keep_filenames() {
        let p = paragraphs(
            "Package: a\nFilename: pool/a.udeb\n\nPackage: b\nFilename: pool/b.udeb\n\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].1, "pool/b.udeb");
    }
}
