//! OCI image layout output: content-addressed blobs, image config, manifest, `index.json`
//! with one `org.opencontainers.image.ref.name` per image, and an `oci-archive` tar per image.
//! Every JSON document is serialized from structs with a fixed field order and sorted maps,
//! so equal inputs give equal digests.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Media type of an image manifest.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an image config.
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of a gzip layer.
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of an image index.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Annotation naming an image in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Docker schema 2 manifest (read by the registry push).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (read by the registry push).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A content descriptor: the one definition, used by the image builder and the registry push.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type (empty when a document omits it).
    #[serde(default)]
    pub media_type: String,
    /// `sha256:…`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Annotations (the ref name in `index.json`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The runtime part of an image config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// `NAME=value`, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Default command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// User.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Working directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// Exposed ports (`80/tcp` -> `{}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, BTreeMap<String, String>>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One history entry of a config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub struct History {
    /// RFC 3339 time (the build's `SOURCE_DATE_EPOCH`).
    pub created: String,
    /// What made the layer.
    pub created_by: String,
}

/// The root filesystem part of a config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Uncompressed layer digests, base first.
    pub diff_ids: Vec<String>,
}

/// An image config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageConfig {
    /// RFC 3339 time.
    pub created: String,
    /// `amd64`.
    pub architecture: String,
    /// `linux`.
    pub os: String,
    /// Runtime settings.
    pub config: RunConfig,
    /// Layers.
    pub rootfs: RootFs,
    /// One entry per layer.
    pub history: Vec<History>,
}

/// An image manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// 2.
    pub schema_version: u32,
    /// [`MANIFEST`].
    pub media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, base first.
    pub layers: Vec<Descriptor>,
}

/// `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// 2.
    pub schema_version: u32,
    /// [`INDEX`].
    #[serde(default)]
    pub media_type: String,
    /// One manifest per image, sorted by ref name.
    pub manifests: Vec<Descriptor>,
}

/// `sha256:` of bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// RFC 3339 UTC time of a Unix timestamp.
pub use crate::date::rfc3339;

/// Path of a blob in a layout or blob store.
pub fn blob_path(root: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    root.join("blobs/sha256").join(hex)
}

/// Writes bytes as a blob (idempotent), returning its descriptor.
pub fn write_blob(root: &Path, media_type: &str, bytes: &[u8]) -> io::Result<Descriptor> {
    let digest = digest_of(bytes);
    let p = blob_path(root, &digest);
    if !p.exists() {
        fs::create_dir_all(p.parent().expect("blob has a parent"))?;
        let tmp = p.with_extension("tmp");
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, &p)?;
    }
    Ok(Descriptor {
        media_type: media_type.to_string(),
        digest,
        size: bytes.len() as u64,
        annotations: BTreeMap::new(),
    })
}

/// Puts the blob `digest` from `store` into the layout at `root` (hard link, else copy).
pub fn import_blob(store: &Path, root: &Path, digest: &str) -> io::Result<()> {
    let src = blob_path(store, digest);
    let dst = blob_path(root, digest);
    if dst.exists() {
        return Ok(());
    }
    fs::create_dir_all(dst.parent().expect("blob has a parent"))?;
    let tmp = dst.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(&src, &tmp).is_err() {
        fs::copy(&src, &tmp)?;
    }
    fs::rename(&tmp, &dst)
}

/// Creates or updates the layout at `root`: `oci-layout`, and `index.json` with `manifest`
/// named `name` (replacing an earlier image of that name).
pub fn add_to_index(root: &Path, name: &str, manifest: &Descriptor) -> io::Result<()> {
    fs::create_dir_all(root.join("blobs/sha256"))?;
    fs::write(
        root.join("oci-layout"),
        b"{\"imageLayoutVersion\":\"1.0.0\"}",
    )?;
    let path = root.join("index.json");
    let mut index = match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(io::Error::other)?,
        Err(_) => Index {
            schema_version: 2,
            media_type: INDEX.to_string(),
            manifests: Vec::new(),
        },
    };
    index
        .manifests
        .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(name));
    let mut d = manifest.clone();
    d.annotations.insert(REF_NAME.to_string(), name.to_string());
    index.manifests.push(d);
    index.manifests.sort_by(|a, b| {
        a.annotations
            .get(REF_NAME)
            .cmp(&b.annotations.get(REF_NAME))
    });
    index.media_type = INDEX.to_string();
    let tmp = root.join("index.json.tmp");
    fs::write(&tmp, serde_json::to_vec(&index).map_err(io::Error::other)?)?;
    fs::rename(&tmp, &path)
}

/// One entry of a docker-archive `manifest.json` (what `docker save` writes and the classic
/// image store of `docker load` reads, moby `image/tarexport`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct DockerArchiveEntry {
    /// Path of the config blob inside the tar (`blobs/sha256/HEX`).
    pub config: String,
    /// `NAME:latest`.
    pub repo_tags: Vec<String>,
    /// Paths of the layer blobs inside the tar, base first.
    pub layers: Vec<String>,
}

/// Version of the archive format; part of the freshness stamp so that archives written by an
/// older picaboot are rewritten.
pub const ARCHIVE_FORMAT: &str = "oci+docker-archive-v1";

fn tar_blob_path(digest: &str) -> String {
    format!(
        "blobs/sha256/{}",
        digest.strip_prefix("sha256:").unwrap_or(digest)
    )
}

/// The docker-archive `manifest.json` and `repositories` documents for one image whose
/// manifest is `manifest` (blob paths point into the OCI layout's `blobs/`, as Docker 25+
/// `docker save` writes them).
pub fn docker_archive_docs(name: &str, manifest: &Manifest) -> (Vec<u8>, Vec<u8>) {
    let entry = DockerArchiveEntry {
        config: tar_blob_path(&manifest.config.digest),
        repo_tags: vec![format!("{name}:latest")],
        layers: manifest
            .layers
            .iter()
            .map(|l| tar_blob_path(&l.digest))
            .collect(),
    };
    let top = manifest
        .layers
        .last()
        .map(|l| l.digest.trim_start_matches("sha256:").to_string())
        .unwrap_or_default();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    repos
        .entry(name.to_string())
        .or_default()
        .insert("latest".to_string(), top);
    (
        serde_json::to_vec(&[entry]).expect("serializable"),
        serde_json::to_vec(&repos).expect("serializable"),
    )
}

/// Writes an `oci-archive` (a tar of a layout holding only this image) to `path`, atomically.
/// Beside the OCI layout it carries the docker-archive `manifest.json` and `repositories`
/// ([`docker_archive_docs`]), so that `docker load` of a classic Docker image store accepts it
/// as it is, like the archives of Docker 25+ `docker save`.
pub fn write_archive(
    store: &Path,
    path: &Path,
    name: &str,
    manifest: &Descriptor,
    blobs: &[String],
    epoch: u64,
) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let f = io::BufWriter::new(fs::File::create(&tmp)?);
    let mut b = tar::Builder::new(f);
    let entry = |b: &mut tar::Builder<_>, p: &str, bytes: &[u8]| -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(epoch);
        h.set_size(bytes.len() as u64);
        b.append_data(&mut h, p, bytes)
    };
    let dir = |b: &mut tar::Builder<_>, p: &str| -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(epoch);
        h.set_size(0);
        b.append_data(&mut h, p, io::empty())
    };
    entry(&mut b, "oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}")?;
    let mut d = manifest.clone();
    d.annotations.insert(REF_NAME.to_string(), name.to_string());
    let index = Index {
        schema_version: 2,
        media_type: INDEX.to_string(),
        manifests: vec![d],
    };
    entry(
        &mut b,
        "index.json",
        &serde_json::to_vec(&index).map_err(io::Error::other)?,
    )?;
    let parsed: Manifest = serde_json::from_slice(&fs::read(blob_path(store, &manifest.digest))?)
        .map_err(io::Error::other)?;
    let (docker_manifest, repositories) = docker_archive_docs(name, &parsed);
    entry(&mut b, "manifest.json", &docker_manifest)?;
    entry(&mut b, "repositories", &repositories)?;
    dir(&mut b, "blobs/")?;
    dir(&mut b, "blobs/sha256/")?;
    let mut sorted = blobs.to_vec();
    sorted.sort();
    sorted.dedup();
    for digest in sorted {
        let p = blob_path(store, &digest);
        let f = fs::File::open(&p)?;
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(epoch);
        h.set_size(f.metadata()?.len());
        let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
        b.append_data(&mut h, format!("blobs/sha256/{hex}"), f)?;
    }
    let mut f = b.into_inner()?;
    f.flush()?;
    drop(f);
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_carries_the_docker_archive_manifest_beside_the_oci_layout() {
        let store = tempfile::tempdir().unwrap();
        let layer = write_blob(store.path(), LAYER_GZIP, b"layer bytes").unwrap();
        let cfg = write_blob(store.path(), CONFIG, b"{}").unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: MANIFEST.into(),
            config: cfg.clone(),
            layers: vec![layer.clone()],
        };
        let man = write_blob(store.path(), MANIFEST, &serde_json::to_vec(&m).unwrap()).unwrap();
        let blobs = vec![layer.digest.clone(), cfg.digest.clone(), man.digest.clone()];
        let a = store.path().join("a.tar");
        let b = store.path().join("b.tar");
        write_archive(store.path(), &a, "tx-x", &man, &blobs, 7).unwrap();
        write_archive(store.path(), &b, "tx-x", &man, &blobs, 7).unwrap();
        assert_eq!(
            fs::read(&a).unwrap(),
            fs::read(&b).unwrap(),
            "deterministic"
        );
        let mut names = BTreeMap::new();
        let mut ar = tar::Archive::new(fs::File::open(&a).unwrap());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut v = Vec::new();
            io::Read::read_to_end(&mut e, &mut v).unwrap();
            names.insert(e.path().unwrap().to_string_lossy().into_owned(), v);
        }
        let entries: Vec<DockerArchiveEntry> =
            serde_json::from_slice(&names["manifest.json"]).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].repo_tags, ["tx-x:latest"]);
        assert_eq!(names[&entries[0].config], b"{}");
        assert_eq!(names[&entries[0].layers[0]], b"layer bytes");
        let repos: serde_json::Value = serde_json::from_slice(&names["repositories"]).unwrap();
        assert_eq!(
            repos["tx-x"]["latest"],
            layer.digest.trim_start_matches("sha256:")
        );
        assert!(names.contains_key("index.json") && names.contains_key("oci-layout"));
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
