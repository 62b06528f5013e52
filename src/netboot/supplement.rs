//! The installer supplement: what an install needs that the installer would otherwise
//! download as `.udeb` files, taken from ordinary, verified Debian packages instead.
//!
//! Why: a mirror may lack the kernel-module udebs of the installer's exact kernel (the
//! installer images are rebuilt for point releases while the udeb index may still list an
//! older kernel, and some mirrors answer 404 for them). Without `md-mod`, `raid1`, `ahci`,
//! `ext4` or `dm-mod` partitioning a RAID1 + LVM layout fails.
//!
//! What: the modules of [`MODULE_SETS`] and their dependencies (read from each module's
//! `.modinfo`: `depends=` and `softdep=`), taken from `linux-image-<kernel version>` (the
//! installer's exact kernel), `modules.dep` & co rebuilt with `depmod -b` over the initrd's
//! own modules plus the added ones (then checked: every dependency it records is present), and
//! `/var/lib/dpkg/status` = the initrd's status plus one paragraph per supplied module udeb
//! (`Status: install ok installed`, `Provides: <set>`) so that anna, which keeps its state
//! in that file, counts them as installed and never tries to download them.
//!
//! The same holds for the udebs of [`REPLACED_UDEBS`] (e2fsprogs and util-linux pieces that
//! partman needs and some mirrors answer 404 for): their files come from the ordinary
//! packages of the same source, their status paragraphs carry that source's version (the
//! udeb index itself is not used: on some mirrors it does not match the signed InRelease),
//! and two of them (xfs and ntfs tools, which
//! picaboot's ext4 layouts never run) are recorded as installed without files, only so that
//! anna does not fail on their download.
//!
//! The result is one newc archive (gzip'd), cached by the digests of its inputs.
//!
//! Limit: the installer still downloads its other components (anna, through net-retriever,
//! which checks `main/debian-installer/binary-amd64/Packages` against the signed Release).
//! A mirror whose udeb index does not match its InRelease (measured on the development
//! machine's mirror) stops the installer at "Download installer components" whatever this
//! supplement holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::NetbootError;
use crate::archive::deb::{visit_data, Visit};
use crate::archive::{cpio, gzip, ArchiveError};
use crate::debian::{Client, DebianError, Package};
use crate::exec;

/// Bump when the supplement's content rules change (part of the cache key).
const FORMAT: u32 = 3;

/// The module udebs supplied, as in the installer's udeb names
/// (`<set>-<kernel version>-di`), with the modules each one must carry. Dependencies
/// (`libata`, `jbd2`, `crc16`, …) are added from `modules.dep`.
pub const MODULE_SETS: &[(&str, &[&str])] = &[
    (
        "md-modules",
        &[
            "md-mod",
            "raid0",
            "raid1",
            "raid10",
            "raid456",
            "dm-mod",
            "dm-mirror",
            "dm-snapshot",
        ],
    ),
    ("sata-modules", &["ahci", "ata_piix", "ata_generic"]),
    ("scsi-modules", &["sd_mod", "sr_mod", "virtio_scsi"]),
    ("ext4-modules", &["ext4"]),
    ("crc-modules", &["crc16"]),
    ("nic-modules", &["e1000e"]),
    ("nvme-modules", &["nvme"]),
    ("virtio-modules", &["virtio_blk", "virtio_net"]),
];

/// A udeb replaced by files of ordinary packages.
#[derive(Debug, Clone, Copy)]
pub struct ReplacedUdeb {
    /// The udeb recorded as installed.
    pub udeb: &'static str,
    /// Ordinary packages to take files from (`a|b`: the first one the index has).
    pub debs: &'static [&'static str],
    /// Files to take (paths in the initrd); shared libraries of `debs` are always taken.
    pub files: &'static [&'static str],
    /// The ordinary package whose version is recorded (same source package as the udeb).
    pub version_of: &'static str,
}

/// The udebs replaced by ordinary packages (file lists from the udebs' Contents index).
pub const REPLACED_UDEBS: &[ReplacedUdeb] = &[
    ReplacedUdeb {
        udeb: "e2fsprogs-udeb",
        debs: &[
            "e2fsprogs",
            "libext2fs2t64|libext2fs2",
            "libcom-err2",
            "libss2",
        ],
        files: &[
            "etc/mke2fs.conf",
            "usr/sbin/badblocks",
            "usr/sbin/dumpe2fs",
            "usr/sbin/e2fsck",
            "usr/sbin/e2label",
            "usr/sbin/e2mmpstatus",
            "usr/sbin/fsck.ext2",
            "usr/sbin/fsck.ext3",
            "usr/sbin/fsck.ext4",
            "usr/sbin/mke2fs",
            "usr/sbin/mkfs.ext2",
            "usr/sbin/mkfs.ext3",
            "usr/sbin/mkfs.ext4",
            "usr/sbin/resize2fs",
            "usr/sbin/tune2fs",
        ],
        version_of: "e2fsprogs",
    },
    ReplacedUdeb {
        udeb: "libfdisk1-udeb",
        debs: &["libfdisk1"],
        files: &[],
        version_of: "libfdisk1",
    },
    ReplacedUdeb {
        udeb: "libmount1-udeb",
        debs: &["libmount1"],
        files: &[],
        version_of: "libmount1",
    },
    ReplacedUdeb {
        udeb: "libsmartcols1-udeb",
        debs: &["libsmartcols1"],
        files: &[],
        version_of: "libsmartcols1",
    },
    ReplacedUdeb {
        udeb: "fdisk-udeb",
        debs: &["fdisk"],
        files: &["usr/sbin/fdisk", "usr/sbin/sfdisk"],
        version_of: "fdisk",
    },
    ReplacedUdeb {
        udeb: "eject-udeb",
        debs: &["eject"],
        files: &["usr/bin/eject"],
        version_of: "eject",
    },
    ReplacedUdeb {
        udeb: "xfsprogs-udeb",
        debs: &[],
        files: &[],
        version_of: "xfsprogs",
    },
    ReplacedUdeb {
        udeb: "ntfs-3g-udeb",
        debs: &[],
        files: &[],
        version_of: "ntfs-3g",
    },
];

/// Description of a built supplement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supplement {
    /// sha256 of the gzip'd archive in the cache.
    pub sha256: String,
    /// Kernel version.
    pub kernel_version: String,
    /// The linux-image package and version the modules came from.
    pub source: String,
    /// Module files added (paths inside the initrd).
    pub modules: Vec<String>,
    /// udeb names recorded as installed.
    pub udebs: Vec<String>,
    /// Files added from ordinary packages in place of udebs.
    pub udeb_files: Vec<String>,
}

/// Inputs of a supplement, all from the verified chain.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// sha256 of the installer initrd (in the cache).
    pub initrd_sha256: &'a str,
    /// The installer kernel's version.
    pub kernel_version: &'a str,
    /// `linux-image-<kernel version>`.
    pub linux_image: &'a Package,
    /// The ordinary packages of [`REPLACED_UDEBS`] (files and versions), by name.
    pub debs: BTreeMap<String, Package>,
}

/// Looks up the ordinary packages [`REPLACED_UDEBS`] needs.
pub fn replacement_debs(
    client: &Client,
    packages: &crate::debian::Packages,
) -> Result<BTreeMap<String, Package>, NetbootError> {
    let mut out = BTreeMap::new();
    for r in REPLACED_UDEBS {
        for alts in r.debs.iter().chain([&r.version_of]) {
            let found = alts.split('|').find_map(|n| packages.get(n));
            let pkg = match found {
                Some(p) => p,
                None => client.find(packages, alts)?,
            };
            out.insert(pkg.name.clone(), pkg);
        }
    }
    Ok(out)
}

/// Normalizes a package path to the merged-/usr layout of the installer initrd.
fn usr_path(path: &str) -> String {
    for top in ["bin/", "sbin/", "lib/"] {
        if path.starts_with(top) {
            return format!("usr/{path}");
        }
    }
    path.to_string()
}

fn is_shared_lib(path: &str) -> bool {
    path.strip_prefix("usr/lib/x86_64-linux-gnu/")
        .is_some_and(|f| !f.contains('/') && f.starts_with("lib") && f.contains(".so."))
}

fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> NetbootError + 'a {
    move |source| {
        NetbootError::Debian(DebianError::Io {
            what,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The uncompressed ELF of a module file (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`).
fn decompress_module(raw: &[u8], name: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    let r: io::Result<usize> = if name.ends_with(".xz") {
        io::Read::read_to_end(
            &mut liblzma::read::XzDecoder::new_multi_decoder(raw),
            &mut out,
        )
    } else if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(raw)
            .and_then(|mut d| io::Read::read_to_end(&mut d, &mut out))
    } else if name.ends_with(".gz") {
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(raw), &mut out)
    } else {
        out.extend_from_slice(raw);
        Ok(out.len())
    };
    r.map_err(ArchiveError::io(name))?;
    Ok(out)
}

/// Hard (`depends=`) and soft (`softdep=pre: … post: …`) dependencies from a module's
/// `.modinfo` strings, as module names with `_`.
fn modinfo_deps(elf: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut hard = Vec::new();
    let mut soft = Vec::new();
    for field in elf.split(|&b| b == 0) {
        if let Some(v) = field.strip_prefix(b"depends=") {
            let v = String::from_utf8_lossy(v);
            hard.extend(
                v.split(',')
                    .filter(|x| !x.is_empty())
                    .map(|x| x.replace('-', "_")),
            );
        } else if let Some(v) = field.strip_prefix(b"softdep=") {
            let v = String::from_utf8_lossy(v);
            soft.extend(
                v.split_whitespace()
                    .filter(|x| !x.ends_with(':'))
                    .map(|x| x.replace('-', "_")),
            );
        }
    }
    (hard, soft)
}

/// Parses `modules.dep` into module path -> dependency paths.
fn parse_modules_dep(text: &str) -> BTreeMap<String, Vec<String>> {
    text.lines()
        .filter_map(|l| {
            let (m, deps) = l.split_once(':')?;
            Some((
                m.trim().to_string(),
                deps.split_whitespace().map(str::to_string).collect(),
            ))
        })
        .collect()
}

/// `depmod` from PATH, else from /usr/sbin or /sbin (not on a normal user's PATH).
fn depmod_program() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("depmod").is_file()))
        .unwrap_or(false);
    if !on_path {
        for p in ["/usr/sbin/depmod", "/sbin/depmod"] {
            if Path::new(p).is_file() {
                return p.into();
            }
        }
    }
    "depmod".into()
}

fn depmod(base: &Path, version: &str) -> Result<(), NetbootError> {
    exec::run(
        "rebuild modules.dep",
        Command::new(depmod_program())
            .arg("-b")
            .arg(base)
            .arg(version),
    )?;
    Ok(())
}

/// The cache key of a supplement: everything it is made from.
fn cache_key(inputs: &Inputs<'_>) -> String {
    let mut key_text = format!(
        "supplement v{FORMAT}\ninitrd {}\nkernel {}\nlinux-image {}\nsets {MODULE_SETS:?}\nreplaced {REPLACED_UDEBS:?}\n",
        inputs.initrd_sha256, inputs.kernel_version, inputs.linux_image.sha256
    );
    for (name, p) in &inputs.debs {
        key_text.push_str(&format!("deb {name} {}\n", p.sha256));
    }
    format!(
        "supplement-{}",
        hex::encode(Sha256::digest(key_text.as_bytes()))
    )
}

/// The installer kernel's modules, from the verified linux-image package. Held in memory
/// (~100 MB): only a few dozen of the thousands of files are needed.
struct KernelModules<'a> {
    /// The package.
    image: &'a Package,
    /// Every regular file under the modules directory, by path relative to it.
    files: BTreeMap<String, Vec<u8>>,
    /// Module name -> path of its `.ko`.
    by_name: BTreeMap<String, String>,
    /// Built-in module names.
    builtin: BTreeSet<String>,
}

impl<'a> KernelModules<'a> {
    /// Reads every module of `image` under `mod_prefix` (`usr/lib/modules/VERSION/`).
    fn read(client: &Client, image: &'a Package, mod_prefix: &str) -> Result<Self, NetbootError> {
        let deb = client.fetch(image)?;
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut kos: Vec<String> = Vec::new();
        visit_data(&deb, |e| {
            let rel = e
                .path
                .strip_prefix(mod_prefix)
                .or_else(|| e.path.strip_prefix(&mod_prefix["usr/".len()..]));
            if let Some(rel) = rel {
                if e.header.entry_type() == tar::EntryType::Regular {
                    let mut bytes = Vec::new();
                    io::Read::read_to_end(e.reader, &mut bytes)
                        .map_err(ArchiveError::io(deb.display().to_string()))?;
                    files.insert(rel.to_string(), bytes);
                    if rel.contains(".ko") {
                        kos.push(rel.to_string());
                    }
                }
            }
            Ok(Visit::Continue)
        })
        .map_err(DebianError::from)?;
        if kos.is_empty() {
            return Err(NetbootError::Installer(format!(
                "{} {}: no {mod_prefix} in the package",
                image.name, image.version
            )));
        }
        let builtin = files
            .get("modules.builtin")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
            .lines()
            .map(module_name)
            .collect();
        Ok(KernelModules {
            image,
            by_name: kos.iter().map(|p| (module_name(p), p.clone())).collect(),
            files,
            builtin,
        })
    }

    /// Dependencies from a module's own .modinfo (`depends=`, `softdep=`): read only for
    /// the modules needed, much faster than a depmod over the whole kernel.
    fn deps_of(&self, rel: &str) -> Result<(Vec<String>, Vec<String>), NetbootError> {
        let raw = self.files.get(rel).map(Vec::as_slice).unwrap_or_default();
        let elf = decompress_module(raw, rel).map_err(DebianError::from)?;
        Ok(modinfo_deps(&elf))
    }

    fn missing(&self, what: String) -> NetbootError {
        NetbootError::Installer(format!(
            "{} {}: {what}",
            self.image.name, self.image.version
        ))
    }

    /// Adds `start` and every module it needs (hard dependencies must exist or be built in;
    /// soft ones are taken when present) to `wanted`.
    fn add_with_deps(
        &self,
        start: &str,
        wanted: &mut BTreeSet<String>,
    ) -> Result<(), NetbootError> {
        let mut stack = vec![start.to_string()];
        while let Some(p) = stack.pop() {
            if !wanted.insert(p.clone()) {
                continue;
            }
            let (hard, soft) = self.deps_of(&p)?;
            for d in hard {
                match self.by_name.get(&d) {
                    Some(r) => stack.push(r.clone()),
                    None if self.builtin.contains(&d) => {}
                    None => {
                        return Err(self
                            .missing(format!("module {p} depends on `{d}`, which is not there")))
                    }
                }
            }
            stack.extend(soft.iter().filter_map(|d| self.by_name.get(d).cloned()));
        }
        Ok(())
    }

    /// The closure of the modules of [`MODULE_SETS`].
    fn wanted(&self) -> Result<BTreeSet<String>, NetbootError> {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for (set, mods) in MODULE_SETS {
            for m in *mods {
                let name = m.replace('-', "_");
                match self.by_name.get(&name) {
                    Some(p) => self.add_with_deps(p, &mut wanted)?,
                    None if self.builtin.contains(&name) => {}
                    None => {
                        return Err(self.missing(format!(
                            "module `{m}` (for {set}) is neither a module nor built in"
                        )))
                    }
                }
            }
        }
        Ok(wanted)
    }
}

/// Writes `bytes` at `dest`, creating its directory.
fn write_at(dest: &Path, bytes: &[u8]) -> Result<(), NetbootError> {
    if let Some(p) = dest.parent() {
        fs::create_dir_all(p).map_err(io_err("create", p))?;
    }
    fs::write(dest, bytes).map_err(io_err("write", dest))
}

/// The initrd's own modules written under `fin_mods`; returns its dpkg status and the
/// module paths it has.
fn initrd_modules(
    entries: &[cpio::ReadEntry],
    mod_prefix: &str,
    fin_mods: &Path,
) -> Result<(String, BTreeSet<String>), NetbootError> {
    let mut status = None;
    let mut present = BTreeSet::new();
    for e in entries {
        if e.path == "var/lib/dpkg/status" && e.is_file() {
            status = Some(String::from_utf8_lossy(&e.data).into_owned());
        }
        if let Some(rel) = e.path.strip_prefix(mod_prefix) {
            if e.is_file() {
                write_at(&fin_mods.join(rel), &e.data)?;
                present.insert(rel.to_string());
            }
        }
    }
    let status = status.ok_or_else(|| {
        NetbootError::Installer("the installer initrd has no var/lib/dpkg/status".into())
    })?;
    Ok((status, present))
}

/// depmod over the final module tree, its self-check (every dependency it recorded is in
/// the tree), and its outputs added to the archive.
fn depmod_outputs(
    fin: &Path,
    fin_mods: &Path,
    kernel_version: &str,
    mod_prefix: &str,
    archive: &mut cpio::Newc,
) -> Result<(), NetbootError> {
    depmod(fin, kernel_version)?;
    let final_dep = fin_mods.join("modules.dep");
    let text = fs::read_to_string(&final_dep).map_err(io_err("read", &final_dep))?;
    for (m, ds) in parse_modules_dep(&text) {
        if let Some(d) = ds.iter().find(|d| !fin_mods.join(d).is_file()) {
            return Err(NetbootError::Installer(format!(
                "supplement: {m} needs {d}, which neither the initrd nor the supplement has"
            )));
        }
    }
    let mut outputs: Vec<_> = fs::read_dir(fin_mods)
        .map_err(io_err("list", fin_mods))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("modules.")
                && !matches!(
                    n.as_str(),
                    "modules.order" | "modules.builtin" | "modules.builtin.modinfo"
                )
        })
        .collect();
    outputs.sort();
    for n in outputs {
        let p = fin_mods.join(&n);
        let bytes = fs::read(&p).map_err(io_err("read", &p))?;
        archive
            .add_file(&format!("{mod_prefix}{n}"), bytes, 0o644)
            .map_err(DebianError::from)?;
    }
    Ok(())
}

/// The initrd's own modules plus the wanted ones, depmod over that set: the modules the
/// initrd lacks and depmod's outputs go into the archive. Returns the initrd's dpkg status
/// and the module paths added.
fn module_tree(
    entries: &[cpio::ReadEntry],
    km: &KernelModules<'_>,
    wanted: &BTreeSet<String>,
    kernel_version: &str,
    work: &Path,
    archive: &mut cpio::Newc,
) -> Result<(String, Vec<String>), NetbootError> {
    let mod_prefix = format!("usr/lib/modules/{kernel_version}/");
    let fin = work.join("final");
    let fin_mods = fin.join("lib/modules").join(kernel_version);
    fs::create_dir_all(&fin_mods).map_err(io_err("create", &fin_mods))?;
    let (status, present) = initrd_modules(entries, &mod_prefix, &fin_mods)?;
    let mut added = Vec::new();
    for rel in wanted.iter().filter(|r| !present.contains(*r)) {
        let bytes = km.files.get(rel).cloned().unwrap_or_default();
        write_at(&fin_mods.join(rel), &bytes)?;
        let path = format!("{mod_prefix}{rel}");
        archive
            .add_file(&path, bytes, 0o644)
            .map_err(DebianError::from)?;
        added.push(path);
    }
    for f in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        let dest = fin_mods.join(f);
        if let (Some(bytes), false) = (km.files.get(f), dest.is_file()) {
            fs::write(&dest, bytes).map_err(io_err("write", &dest))?;
        }
    }
    log::info!("supplement: initrd modules written; depmod");
    depmod_outputs(&fin, &fin_mods, kernel_version, &mod_prefix, archive)?;
    Ok((status, added))
}

/// The entries of one ordinary package that a replaced udeb needs: its listed files and
/// every shared library (regular files, symlinks, hard links resolved to files).
fn deb_entries(
    deb: &Path,
    r: &ReplacedUdeb,
) -> Result<Vec<(String, cpio::Kind, u32)>, NetbootError> {
    let mut seen: BTreeMap<String, (Vec<u8>, u32)> = BTreeMap::new();
    let mut add: Vec<(String, cpio::Kind, u32)> = Vec::new();
    let link_target = |e: &crate::archive::deb::DataEntry<'_>| {
        e.header
            .link_name()
            .ok()
            .flatten()
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    visit_data(deb, |e| {
        let path = usr_path(&e.path);
        let wanted = r.files.contains(&path.as_str()) || is_shared_lib(&path);
        let mode = e.header.mode().unwrap_or(0o644) & 0o7777;
        match e.header.entry_type() {
            tar::EntryType::Regular => {
                let mut bytes = Vec::new();
                io::Read::read_to_end(e.reader, &mut bytes)
                    .map_err(ArchiveError::io(deb.display().to_string()))?;
                if wanted {
                    add.push((path.clone(), cpio::Kind::File(bytes.clone()), mode));
                }
                seen.insert(path, (bytes, mode));
            }
            tar::EntryType::Symlink if wanted => {
                add.push((path, cpio::Kind::Symlink(link_target(&e)), 0o777));
            }
            tar::EntryType::Link if wanted => {
                let target = usr_path(link_target(&e).trim_start_matches("./"));
                let (bytes, mode) = seen.get(&target).cloned().ok_or_else(|| {
                    ArchiveError::malformed(
                        deb.display().to_string(),
                        format!("hard link {path} to unknown {target}"),
                    )
                })?;
                add.push((path, cpio::Kind::File(bytes), mode));
            }
            _ => {}
        }
        Ok(Visit::Continue)
    })
    .map_err(DebianError::from)?;
    Ok(add)
}

/// Files of the replaced udebs, from the ordinary packages, into the archive; returns
/// their paths, sorted.
fn replaced_udeb_files(
    client: &Client,
    inputs: &Inputs<'_>,
    archive: &mut cpio::Newc,
) -> Result<Vec<String>, NetbootError> {
    let mut udeb_files = Vec::new();
    for r in REPLACED_UDEBS {
        let mut got: BTreeSet<String> = BTreeSet::new();
        for alts in r.debs {
            let pkg = alts
                .split('|')
                .find_map(|n| inputs.debs.get(n))
                .ok_or_else(|| {
                    NetbootError::Installer(format!("no package {alts} for {}", r.udeb))
                })?;
            let deb = client.fetch(pkg)?;
            for (path, kind, mode) in deb_entries(&deb, r)? {
                match kind {
                    cpio::Kind::File(b) => archive.add_file(&path, b, mode),
                    cpio::Kind::Symlink(t) => archive.add_symlink(&path, &t),
                    cpio::Kind::Dir => archive.add_dir(&path, mode),
                }
                .map_err(DebianError::from)?;
                got.insert(path.clone());
                udeb_files.push(path);
            }
        }
        if let Some(missing) = r.files.iter().find(|f| !got.contains(**f)) {
            return Err(NetbootError::Installer(format!(
                "{}: `{missing}` not found in {}",
                r.udeb,
                r.debs.join(", ")
            )));
        }
    }
    udeb_files.sort();
    Ok(udeb_files)
}

/// The installer's dpkg status plus a paragraph for each supplied module udeb and each
/// replaced udeb it does not list; returns it and the names added.
fn dpkg_status(status: &str, inputs: &Inputs<'_>) -> Result<(String, Vec<String>), NetbootError> {
    let (kernel_version, linux_image) = (inputs.kernel_version, inputs.linux_image);
    let mut status = status.trim_end().to_string();
    status.push_str("\n\n");
    let mut udebs = Vec::new();
    for (set, mods) in MODULE_SETS {
        let name = format!("{set}-{kernel_version}-di");
        if status.contains(&format!("Package: {name}\n")) {
            continue;
        }
        // The ext4 driver mounts ext2 and ext3 too; partman's ext2/ext3 support asks for the
        // module udebs of those names.
        let provides = if *set == "ext4-modules" {
            "ext4-modules, ext2-modules, ext3-modules".to_string()
        } else {
            set.to_string()
        };
        status.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nVersion: {}\nProvides: {provides}\nDescription: {set} for {kernel_version} ({}), supplied by picaboot from {} {}\n\n",
            linux_image.version,
            mods.join(", "),
            linux_image.name,
            linux_image.version
        ));
        udebs.push(name);
    }
    for r in REPLACED_UDEBS {
        if status.contains(&format!("Package: {}\n", r.udeb)) {
            continue;
        }
        let version = inputs
            .debs
            .get(r.version_of)
            .map(|p| p.version.clone())
            .ok_or_else(|| {
                NetbootError::Installer(format!("no package {} for {}", r.version_of, r.udeb))
            })?;
        let what = if r.debs.is_empty() {
            "recorded as installed without files (not used by picaboot's layouts)".to_string()
        } else {
            format!("files supplied by picaboot from {}", r.debs.join(", "))
        };
        status.push_str(&format!(
            "Package: {}\nStatus: install ok installed\nVersion: {version}\nDescription: {what}\n\n",
            r.udeb
        ));
        udebs.push(r.udeb.to_string());
    }
    Ok((status.trim_end().to_string() + "\n", udebs))
}

/// Builds (or takes from the cache) the supplement for an installer initrd: the modules of
/// [`MODULE_SETS`] the initrd lacks (with depmod's outputs over the whole set), the files of
/// [`REPLACED_UDEBS`] from the ordinary packages, and the dpkg status that records both.
pub fn build(client: &Client, inputs: &Inputs<'_>) -> Result<Supplement, NetbootError> {
    let kernel_version = inputs.kernel_version;
    let key = cache_key(inputs);
    let cache = client.cache();
    if let Some(rec) = cache.record::<Supplement>(&key) {
        if cache.has(&rec.sha256) {
            return Ok(rec);
        }
    }
    log::info!("building the installer supplement for kernel {kernel_version}");
    let entries = super::installer::read_initrd(client, inputs.initrd_sha256)?;
    log::info!(
        "supplement: installer initrd read ({} entries)",
        entries.len()
    );
    let work = tempfile::tempdir().map_err(io_err(
        "create a temporary directory",
        &std::env::temp_dir(),
    ))?;
    let mod_prefix = format!("usr/lib/modules/{kernel_version}/");
    let km = KernelModules::read(client, inputs.linux_image, &mod_prefix)?;
    let wanted = km.wanted()?;
    let mut archive = cpio::Newc::from_env();
    let (status, added) = module_tree(
        &entries,
        &km,
        &wanted,
        kernel_version,
        work.path(),
        &mut archive,
    )?;
    drop(km);
    log::info!("supplement: depmod done; replaced udebs");
    let udeb_files = replaced_udeb_files(client, inputs, &mut archive)?;
    let (status, udebs) = dpkg_status(&status, inputs)?;
    archive
        .add_file("var/lib/dpkg/status", status, 0o644)
        .map_err(DebianError::from)?;
    log::info!("supplement: compressing {} entries", archive.len());
    let gz = gzip(&archive.to_bytes());
    log::info!("supplement: {} bytes compressed", gz.len());
    let (sha256, _) = cache.put_bytes(&gz)?;
    let rec = Supplement {
        sha256,
        kernel_version: kernel_version.to_string(),
        source: format!("{} {}", inputs.linux_image.name, inputs.linux_image.version),
        modules: added,
        udebs,
        udeb_files,
    };
    cache.set_record(&key, &rec)?;
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_fields() {
        let elf = b"\x7fELF\0license=GPL\0depends=md-mod,libcrc32c\0softdep=pre: crc32c post: x\0name=raid1\0";
        let (hard, soft) = modinfo_deps(elf);
        assert_eq!(hard, ["md_mod", "libcrc32c"]);
        assert_eq!(soft, ["crc32c", "x"]);
        assert!(modinfo_deps(b"\0depends=\0").0.is_empty());
    }

    #[test]
    fn module_names() {
        assert_eq!(module_name("kernel/drivers/md/md-mod.ko.xz"), "md_mod");
        assert_eq!(module_name("kernel/fs/ext4/ext4.ko"), "ext4");
        let d =
            parse_modules_dep("kernel/a.ko.xz: kernel/b.ko.xz kernel/c.ko.xz\nkernel/b.ko.xz:\n");
        assert_eq!(d["kernel/a.ko.xz"], ["kernel/b.ko.xz", "kernel/c.ko.xz"]);
        assert!(d["kernel/b.ko.xz"].is_empty());
    }
}
