//! Reading an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::reference::valid_digest;
use super::RegistryError;

// The one set of descriptor and media types, shared with the image builder.
pub use crate::image::oci::{
    Descriptor, DOCKER_LIST, DOCKER_MANIFEST, INDEX as OCI_INDEX, MANIFEST as OCI_MANIFEST,
    REF_NAME,
};

/// The parts of a manifest or index that a push needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Media type declared inside the document, if any.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Config blob (image manifests).
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Layer blobs (image manifests).
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes).
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Manifest {
    /// Whether this is an index / manifest list (children are manifests, not blobs).
    pub fn is_index(&self, media_type: &str) -> bool {
        media_type == OCI_INDEX
            || media_type == DOCKER_LIST
            || (self.config.is_none() && !self.manifests.is_empty())
    }
}

/// An opened OCI image layout.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    index: Manifest,
}

use crate::limits::OCI_MANIFEST as MANIFEST_LIMIT;

fn err(root: &Path, reason: impl Into<String>) -> RegistryError {
    RegistryError::Layout {
        path: root.to_path_buf(),
        reason: reason.into(),
    }
}

/// A layout file (`oci-layout`, `index.json`) read whole, at most
/// [`crate::limits::OCI_MANIFEST`] bytes.
fn read_small(path: &Path) -> Result<Vec<u8>, crate::limits::ReadError> {
    let f = std::fs::File::open(path)?;
    crate::limits::read_bounded(f, MANIFEST_LIMIT, &path.display().to_string())
}

impl Layout {
    /// Opens the layout at `root` (checks `oci-layout` and reads `index.json`).
    pub fn open(root: &Path) -> Result<Layout, RegistryError> {
        let marker = read_small(&root.join("oci-layout"))
            .map_err(|e| err(root, format!("not an OCI image layout (oci-layout: {e})")))?;
        let v: serde_json::Value =
            serde_json::from_slice(&marker).map_err(|e| err(root, format!("oci-layout: {e}")))?;
        if v.get("imageLayoutVersion").and_then(|x| x.as_str()) != Some("1.0.0") {
            return Err(err(root, "oci-layout: imageLayoutVersion is not 1.0.0"));
        }
        let text = read_small(&root.join("index.json"))
            .map_err(|e| err(root, format!("index.json: {e}")))?;
        let index: Manifest =
            serde_json::from_slice(&text).map_err(|e| err(root, format!("index.json: {e}")))?;
        Ok(Layout {
            root: root.to_path_buf(),
            index,
        })
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The image names (`ref.name` annotations) in `index.json`.
    pub fn names(&self) -> Vec<String> {
        self.index
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(REF_NAME).cloned())
            .collect()
    }

    /// The descriptor in `index.json` whose `ref.name` is `name`.
    pub fn find(&self, name: &str) -> Result<Descriptor, RegistryError> {
        let found: Vec<&Descriptor> = self
            .index
            .manifests
            .iter()
            .filter(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(name))
            .collect();
        match found.as_slice() {
            [d] => Ok((*d).clone()),
            [] => Err(RegistryError::NameNotFound {
                name: name.to_string(),
                layout: self.root.clone(),
                available: self.names().join(", "),
            }),
            _ => Err(err(
                &self.root,
                format!("index.json names {name:?} more than once"),
            )),
        }
    }

    /// Path of a blob (the digest is checked first, so it cannot point outside the layout).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, RegistryError> {
        if !valid_digest(digest) {
            return Err(err(
                &self.root,
                format!("unsupported or malformed digest {digest:?}"),
            ));
        }
        Ok(self
            .root
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]))
    }

    /// Reads a small blob (a manifest) whole, checking its size and digest.
    pub fn read_verified(&self, d: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        let p = self.blob_path(&d.digest)?;
        if d.size > MANIFEST_LIMIT.bytes {
            return Err(err(
                &self.root,
                MANIFEST_LIMIT
                    .exceeded(&p.display().to_string())
                    .to_string(),
            ));
        }
        // One byte more than the descriptor's size tells a longer file from the right one.
        let bytes = std::fs::File::open(&p)
            .and_then(|f| {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(f, d.size + 1), &mut v)?;
                Ok(v)
            })
            .map_err(|e| err(&self.root, format!("{}: {e}", p.display())))?;
        if bytes.len() as u64 != d.size {
            return Err(err(
                &self.root,
                format!(
                    "{}: {} bytes, descriptor says {}",
                    d.digest,
                    bytes.len(),
                    d.size
                ),
            ));
        }
        let got = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if got != d.digest {
            return Err(err(
                &self.root,
                format!("blob {} has digest {got}", d.digest),
            ));
        }
        Ok(bytes)
    }

    /// Checks that a blob to upload exists with the descriptor's size.
    pub fn check_blob(&self, d: &Descriptor) -> Result<PathBuf, RegistryError> {
        let p = self.blob_path(&d.digest)?;
        let len = std::fs::metadata(&p)
            .map_err(|e| err(&self.root, format!("blob {}: {e}", d.digest)))?
            .len();
        if len != d.size {
            return Err(err(
                &self.root,
                format!("blob {}: {len} bytes, descriptor says {}", d.digest, d.size),
            ));
        }
        Ok(p)
    }
}
