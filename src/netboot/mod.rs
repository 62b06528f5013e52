//! Netboot artifacts for a host: the verified Debian installer (`linux`, `initrd.gz`), a
//! self-contained initrd (the original bytes unchanged, then appended gzip'd newc archives:
//! the [`supplement`] and the host's rendered files), and boot entries for iPXE,
//! netboot.xyz, PXELINUX and GRUB.
//!
//! Layout of `OUT/HOST/netboot/`: `linux`, `initrd.gz`, `boot.ipxe`,
//! `netbootxyz-custom.ipxe`, `pxelinux.cfg/01-<mac>`, `grub.cfg`, `manifest.json`.
//! Inside the initrd the rendered `preseed.cfg` lands at `/preseed.cfg` (loaded by the
//! installer's initrd-preseed) and every other rendered file under `/picaboot/`
//! (`/picaboot/late-command.sh`, `/picaboot/rootfs/…`), where the preseed's late_command
//! finds them.

pub mod boot;
pub mod host;
pub mod installer;
pub mod supplement;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::archive::{cpio, gzip};
use crate::debian::{Client, DebianError};
use crate::exec::ExecError;
use crate::output::{self, ManifestEntry, OutputError, Staged, Tree};
use crate::profile::{Frontend, Host};

/// Why netboot artifacts could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NetbootError {
    /// The host profile cannot be netbooted as is (user error).
    #[error("host {host}: {reason}")]
    Profile {
        /// Host name.
        host: String,
        /// What is wrong.
        reason: String,
    },
    /// The installer package is not what we expect.
    #[error("installer: {0}")]
    Installer(String),
    /// Fetching or verifying from the archive failed.
    #[error(transparent)]
    Debian(#[from] DebianError),
    /// An external program failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// Writing the output failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Rendering the host's files failed.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// A `--mirror` that is not one.
    #[error("{0}")]
    Mirror(String),
    /// A cluster lock file could not be written.
    #[error("recording config_version in {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Choices for one build.
#[derive(Debug, Clone)]
pub struct NetbootOptions {
    /// Frontend (defaults to the host profile's).
    pub frontend: Option<Frontend>,
    /// Add the [`supplement`] (modules and dpkg status) to the initrd.
    pub supplement: bool,
    /// Base URL under which `serve` publishes the output directory (for netboot.xyz).
    pub base_url: String,
    /// TEST HARNESS ONLY (`picaboot test install --allow-unverified-udebs`): OpenPGP public
    /// keys appended to the initrd's `/usr/share/keyrings/archive.gpg`. `netboot` never sets it.
    pub keyring_append: Option<Vec<u8>>,
    /// Where the installer reports to (`serve`'s address as the box sees it): its syslog over
    /// UDP and the end of the install over HTTP ([`boot::with_reporting`]).
    pub report_to: Option<std::net::SocketAddrV4>,
}

/// What a build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Host.
    pub host: String,
    /// Frontend used.
    pub frontend: Frontend,
    /// Installer package and version.
    pub installer: String,
    /// Installer kernel version.
    pub kernel_version: String,
    /// Size of the original initrd (the first bytes of `initrd.gz`).
    pub original_initrd_size: u64,
    /// sha256 of the original initrd.
    pub original_initrd_sha256: String,
    /// The supplement, when added.
    pub supplement: Option<supplement::Supplement>,
    /// Manifest of the output.
    pub manifest: Vec<ManifestEntry>,
}

/// The files of a rendered host tree inside the initrd: `preseed.cfg` at the root, the rest
/// under `picaboot/`.
pub fn initrd_path(tree_path: &str) -> String {
    if tree_path == "preseed.cfg" {
        tree_path.to_string()
    } else {
        format!("picaboot/{tree_path}")
    }
}

/// The host archive (uncompressed newc) of a rendered tree.
pub fn host_archive(tree: &Tree) -> Result<cpio::Newc, NetbootError> {
    let mut a = cpio::Newc::from_env();
    for (path, f) in tree.files() {
        a.add_file(&initrd_path(path), f.bytes.clone(), f.mode)
            .map_err(DebianError::from)?;
    }
    Ok(a)
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> NetbootError + 'a {
    move |source| {
        NetbootError::Output(OutputError::Io {
            what,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Writes a large file into the staged directory from cached blobs and in-memory parts,
/// returning its manifest row. Cached blobs are re-hashed while they are copied.
fn write_large(
    client: &Client,
    dir: &Path,
    rel: &str,
    blob: &str,
    extra: &[&[u8]],
) -> Result<ManifestEntry, NetbootError> {
    let path = dir.join(rel);
    let f = File::create(&path).map_err(io_err("create", &path))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    // One pass: the blob's verified digest state continues over the appended parts.
    let (_, mut hash) = client.cache().copy_verified_state(blob, &mut w)?;
    for part in extra {
        hash.update(part);
        w.write_all(part).map_err(io_err("write", &path))?;
    }
    w.flush().map_err(io_err("write", &path))?;
    let sha = hex::encode(hash.finalize());
    let f = w
        .into_inner()
        .map_err(|e| io_err("write", &path)(e.into_error()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io_err("chmod", &path))?;
    f.sync_all().map_err(io_err("sync", &path))?;
    Ok(ManifestEntry {
        path: rel.to_string(),
        sha256: sha,
        mode: "0644".into(),
    })
}

/// The install NIC's MAC address.
pub fn install_mac(host: &Host) -> Result<&str, NetbootError> {
    host.nics
        .iter()
        .find(|n| n.role == crate::profile::NicRole::Install)
        .map(|n| n.mac.as_str())
        .ok_or_else(|| NetbootError::Profile {
            host: host.name.clone(),
            reason: "no NIC with role `install`: the installer would not know which NIC to use"
                .into(),
        })
}

/// Builds the netboot tree of `host` (whose rendered files are `tree`) into a staged
/// directory for `target`; nothing is visible until [`output::publish`].
pub fn stage(
    client: &Client,
    host: &Host,
    tree: &Tree,
    target: &Path,
    opts: &NetbootOptions,
) -> Result<(Staged, Summary), NetbootError> {
    let frontend = opts.frontend.unwrap_or(host.install.frontend);
    let suite = &host.install.suite;
    let version = installer::suite_version(suite).ok_or_else(|| NetbootError::Profile {
        host: host.name.clone(),
        reason: format!("install.suite `{suite}`: no installer known (bookworm, trixie, forky)"),
    })?;
    let mac = install_mac(host)?;

    let release = client.release(suite)?;
    let packages = client.packages(&release, "main/binary-amd64/Packages")?;
    let pkg = client.find(&packages, &installer::package_name(version))?;
    let inst = installer::fetch(client, &pkg, version)?;
    let images = inst.images(frontend)?.clone();

    let supplement = if opts.supplement {
        let image = client.find(&packages, &format!("linux-image-{}", images.kernel_version))?;
        let debs = supplement::replacement_debs(client, &packages)?;
        Some(supplement::build(
            client,
            &supplement::Inputs {
                initrd_sha256: &images.initrd,
                kernel_version: &images.kernel_version,
                linux_image: &image,
                debs,
            },
        )?)
    } else {
        None
    };
    let supplement_gz = match &supplement {
        Some(s) => {
            let mut v = Vec::new();
            client.cache().copy_verified(&s.sha256, &mut v)?;
            v
        }
        None => Vec::new(),
    };
    let mut host_cpio = host_archive(tree)?;
    if let Some(extra) = &opts.keyring_append {
        // The installer's net-retriever checks with /usr/share/keyrings/archive.gpg, which
        // the keyring udeb's postinst links to Debian's keyring unless it exists: a file
        // there holding Debian's keyring plus the extra keys takes its place.
        const DEBIAN: &str = "usr/share/keyrings/debian-archive-keyring.pgp";
        let entries = installer::read_initrd(client, &images.initrd)?;
        let original = entries
            .iter()
            .find(|e| e.path.trim_start_matches("./").trim_start_matches('/') == DEBIAN)
            .ok_or_else(|| NetbootError::Installer(format!("the initrd has no /{DEBIAN}")))?;
        let mut keyring = original.data.clone();
        keyring.extend_from_slice(extra);
        host_cpio
            .add_file("usr/share/keyrings/archive.gpg", keyring, 0o644)
            .map_err(DebianError::from)?;
    }
    let host_gz = gzip(&host_cpio.to_bytes());

    let mut cmdline = boot::kernel_args(host, frontend, mac);
    if let Some(to) = opts.report_to {
        cmdline = cmdline.with_reporting(to, host);
    }
    let args = cmdline.to_string();
    let mut small = Tree::new();
    small.add("boot.ipxe", boot::ipxe(host, &args), 0o644)?;
    small.add(
        "netbootxyz-custom.ipxe",
        boot::netbootxyz(host, &args, &opts.base_url),
        0o644,
    )?;
    small.add(
        format!("pxelinux.cfg/{}", boot::pxelinux_name(mac)),
        boot::pxelinux(host, &args),
        0o644,
    )?;
    small.add("grub.cfg", boot::grub(host, frontend, mac), 0o644)?;
    let staged = output::stage(&small, target)?;
    let dir = staged.path().to_path_buf();
    let mut manifest = small.manifest();
    manifest.push(write_large(client, &dir, "linux", &images.linux, &[])?);
    manifest.push(write_large(
        client,
        &dir,
        "initrd.gz",
        &images.initrd,
        &[&supplement_gz, &host_gz],
    )?);
    manifest.sort_by(|a, b| a.path.cmp(&b.path));
    let mut json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    json.push('\n');
    output::write_file(&dir.join(output::MANIFEST), json.as_bytes(), 0o644)?;
    Ok((
        staged,
        Summary {
            host: host.name.clone(),
            frontend,
            installer: format!("{} {}", inst.package, inst.version),
            kernel_version: images.kernel_version.clone(),
            original_initrd_size: images.initrd_size,
            original_initrd_sha256: images.initrd.clone(),
            supplement,
            manifest,
        },
    ))
}

/// Where `netboot` writes a host's artifacts: `OUT/HOST/netboot`.
pub fn target_dir(out: &Path, host: &str) -> PathBuf {
    out.join(host).join("netboot")
}

impl crate::exit_class::ExitClass for NetbootError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            NetbootError::Profile { .. } | NetbootError::Mirror(_) => Class::User,
            NetbootError::Installer(_) | NetbootError::Exec(_) | NetbootError::Lock { .. } => {
                Class::Env
            }
            NetbootError::Render(r) => r.exit_class(),
            NetbootError::Debian(d) => d.exit_class(),
            NetbootError::Output(o) => o.exit_class(),
        }
    }
}
