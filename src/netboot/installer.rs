//! The Debian installer's netboot images, taken from the package
//! `debian-installer-<N>-netboot-amd64` (verified through the archive chain), and cached as
//! content-addressed blobs per frontend with the installer kernel's version.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::NetbootError;
use crate::archive::deb::{visit_data, Visit};
use crate::archive::{cpio, ArchiveError};
use crate::debian::{Client, DebianError, Package};
use crate::profile::Frontend;

/// Debian release number of a suite codename.
pub fn suite_version(suite: &str) -> Option<u32> {
    match suite {
        "bookworm" => Some(12),
        "trixie" => Some(13),
        "forky" => Some(14),
        _ => None,
    }
}

/// The installer package of a release number.
pub fn package_name(version: u32) -> String {
    format!("debian-installer-{version}-netboot-amd64")
}

/// Directory name of a frontend in the installer package.
pub fn frontend_dir(frontend: Frontend) -> &'static str {
    match frontend {
        Frontend::Gtk => "gtk",
        Frontend::Text => "text",
    }
}

/// Path of an image inside the installer package's data archive.
pub fn member_path(version: u32, frontend: Frontend, file: &str) -> String {
    format!(
        "usr/lib/debian-installer/images/{version}/amd64/{}/debian-installer/amd64/{file}",
        frontend_dir(frontend)
    )
}

/// One frontend's images, as cache digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Images {
    /// sha256 of `linux`.
    pub linux: String,
    /// Size of `linux`.
    pub linux_size: u64,
    /// sha256 of `initrd.gz`.
    pub initrd: String,
    /// Size of `initrd.gz`.
    pub initrd_size: u64,
    /// The installer kernel's version (`lib/modules/<ver>` inside the initrd).
    pub kernel_version: String,
}

/// What was taken from one verified installer package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installer {
    /// Package name.
    pub package: String,
    /// Package version.
    pub version: String,
    /// sha256 of the `.deb`.
    pub deb_sha256: String,
    /// Images per frontend (`gtk`, `text`).
    pub images: BTreeMap<String, Images>,
}

impl Installer {
    /// The images of a frontend.
    pub fn images(&self, frontend: Frontend) -> Result<&Images, NetbootError> {
        self.images.get(frontend_dir(frontend)).ok_or_else(|| {
            NetbootError::Installer(format!(
                "{}: no {} images",
                self.package,
                frontend_dir(frontend)
            ))
        })
    }
}

/// The kernel version of an installer initrd: the directory under `lib/modules/`.
pub fn kernel_version(entries: &[cpio::ReadEntry]) -> Option<String> {
    entries.iter().find_map(|e| {
        let rest = e
            .path
            .strip_prefix("usr/lib/modules/")
            .or_else(|| e.path.strip_prefix("lib/modules/"))?;
        let (ver, _) = rest.split_once('/')?;
        Some(ver.to_string())
    })
}

/// The release (`uname -r`) of an x86 bzImage kernel, from its setup header (`HdrS`
/// magic at 0x202, `kernel_version` pointer at 0x20E, string at pointer + 0x200).
pub fn bzimage_release(image: &[u8]) -> Option<String> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = u16::from_le_bytes([*image.get(0x20e)?, *image.get(0x20f)?]) as usize + 0x200;
    let tail = image.get(ptr..(ptr + 256).min(image.len()))?;
    let end = tail.iter().position(|&b| b == 0 || b == b' ')?;
    let release = std::str::from_utf8(&tail[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_string())
}

/// The verified images of `pkg`: from the cache record when every blob is present, else
/// fetched, verified and extracted (once per package digest).
pub fn fetch(
    client: &Client,
    pkg: &Package,
    release_version: u32,
) -> Result<Installer, NetbootError> {
    let key = format!("installer-{}", pkg.sha256);
    let cache = client.cache();
    if let Some(rec) = cache.record::<Installer>(&key) {
        if rec
            .images
            .values()
            .all(|i| cache.has(&i.linux) && cache.has(&i.initrd))
        {
            log::debug!("installer {} {}: cached", pkg.name, pkg.version);
            return Ok(rec);
        }
    }
    let deb = client.fetch(pkg)?;
    log::info!("extracting the installer images from {}", deb.display());
    let wanted: BTreeMap<String, (Frontend, &str)> = [Frontend::Gtk, Frontend::Text]
        .into_iter()
        .flat_map(|f| {
            ["linux", "initrd.gz"]
                .into_iter()
                .map(move |file| (member_path(release_version, f, file), (f, file)))
        })
        .collect();
    let mut found: BTreeMap<(String, &str), (String, u64)> = BTreeMap::new();
    visit_data(&deb, |e| {
        if let Some((f, file)) = wanted.get(&e.path) {
            if e.header.entry_type() != tar::EntryType::Regular {
                return Err(ArchiveError::malformed(
                    deb.display().to_string(),
                    format!("{} is not a regular file", e.path),
                ));
            }
            let tmp = cache
                .temp_file()
                .map_err(|e| ArchiveError::malformed("cache", e.to_string()))?;
            let mut w = crate::archive::HashingWriter::new(io::BufWriter::new(tmp.as_file()));
            io::copy(e.reader, &mut w).map_err(ArchiveError::io(deb.display().to_string()))?;
            w.flush().map_err(ArchiveError::io("cache"))?;
            let (_, sha, size) = w.finish();
            cache
                .commit(tmp, &sha)
                .map_err(|e| ArchiveError::malformed("cache", e.to_string()))?;
            found.insert((frontend_dir(*f).to_string(), file), (sha, size));
            if found.len() == wanted.len() {
                return Ok(Visit::Stop);
            }
        }
        Ok(Visit::Continue)
    })
    .map_err(DebianError::from)?;
    let mut images = BTreeMap::new();
    for f in [Frontend::Gtk, Frontend::Text] {
        let dir = frontend_dir(f).to_string();
        let (Some(linux), Some(initrd)) = (
            found.get(&(dir.clone(), "linux")),
            found.get(&(dir.clone(), "initrd.gz")),
        ) else {
            return Err(NetbootError::Installer(format!(
                "{} {}: no {} (looked for {})",
                pkg.name,
                pkg.version,
                dir,
                member_path(release_version, f, "initrd.gz")
            )));
        };
        // The kernel's own release string; the initrd's lib/modules/<ver> when unreadable.
        let linux_path = cache.blob_path(&linux.0);
        let mut head = Vec::with_capacity(1 << 16);
        std::fs::File::open(&linux_path)
            .and_then(|f| io::Read::read_to_end(&mut io::Read::take(f, 1 << 16), &mut head))
            .map_err(|e| DebianError::Io {
                what: "read",
                path: linux_path.clone(),
                source: e,
            })?;
        let from_image = bzimage_release(&head);
        let from_initrd = || -> Result<Option<String>, NetbootError> {
            Ok(kernel_version(&read_initrd(client, &initrd.0)?))
        };
        let found_version = match from_image {
            Some(v) => Some(v),
            None => from_initrd()?,
        };
        let kernel_version = found_version.ok_or_else(|| {
            NetbootError::Installer(format!(
                "{} {}: {dir} initrd has no lib/modules/<version>",
                pkg.name, pkg.version
            ))
        })?;
        images.insert(
            dir,
            Images {
                linux: linux.0.clone(),
                linux_size: linux.1,
                initrd: initrd.0.clone(),
                initrd_size: initrd.1,
                kernel_version,
            },
        );
    }
    let rec = Installer {
        package: pkg.name.clone(),
        version: pkg.version.clone(),
        deb_sha256: pkg.sha256.clone(),
        images,
    };
    cache.set_record(&key, &rec)?;
    Ok(rec)
}

/// The entries of a cached (re-hashed) installer initrd.
pub fn read_initrd(client: &Client, sha256: &str) -> Result<Vec<cpio::ReadEntry>, NetbootError> {
    let path = client.cache().get(sha256)?.ok_or_else(|| {
        NetbootError::Installer(format!("installer initrd {sha256} vanished from the cache"))
    })?;
    let gz = std::fs::read(&path).map_err(|e| DebianError::Io {
        what: "read",
        path: path.clone(),
        source: e,
    })?;
    let name = path.display().to_string();
    let raw = crate::archive::gunzip_all(&gz, &name).map_err(DebianError::from)?;
    Ok(cpio::read_all(&raw, &name).map_err(DebianError::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bzimage_header() {
        let mut img = vec![0u8; 0x400];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        img[0x300..0x318].copy_from_slice(b"6.12.117+deb13-amd64 (x)");
        assert_eq!(
            bzimage_release(&img).as_deref(),
            Some("6.12.117+deb13-amd64")
        );
        assert_eq!(bzimage_release(&[0u8; 0x400]), None);
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(suite_version("trixie"), Some(13));
        assert_eq!(suite_version("sid"), None);
        assert_eq!(package_name(13), "debian-installer-13-netboot-amd64");
        assert_eq!(
            member_path(13, Frontend::Text, "linux"),
            "usr/lib/debian-installer/images/13/amd64/text/debian-installer/amd64/linux"
        );
    }
}
