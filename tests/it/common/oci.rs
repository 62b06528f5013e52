//! Hand-made OCI layouts for the push and exit-code tests: written byte by byte here (not by
//! picaboot) so that what the registry receives is known independently of the code under test.

use std::path::Path;

use sha2::{Digest, Sha256};

/// What [`write_layout`] wrote: digests of the image manifest and, when asked, the index.
pub struct HandLayout {
    /// Digest of image `tx`'s manifest.
    pub manifest: String,
    /// Digest of the image index `multi` names (when `with_index`).
    pub index: Option<String>,
}

/// Writes an OCI layout in `dir` holding image `tx`: an empty-rootfs config and `layers`
/// (uncompressed tar media type). With `with_index`, also `multi`: an image index naming
/// that manifest for linux/amd64, as a multi-platform image would.
pub fn write_layout(dir: &Path, layers: &[&[u8]], with_index: bool) -> HandLayout {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let d = hex::encode(Sha256::digest(b));
        std::fs::write(blobs.join(&d), b).unwrap();
        format!("sha256:{d}")
    };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = put(config);
    let layer_json: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}"#,
                put(l),
                l.len()
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        layer_json.join(",")
    );
    let md = put(manifest.as_bytes());
    let mut refs = vec![format!(
        r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"tx"}}}}"#,
        manifest.len()
    )];
    let index = with_index.then(|| {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            manifest.len()
        );
        let xd = put(index.as_bytes());
        refs.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{xd}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"multi"}}}}"#,
            index.len()
        ));
        xd
    });
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, refs.join(",")),
    )
    .unwrap();
    HandLayout {
        manifest: md,
        index,
    }
}
