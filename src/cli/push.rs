//! `picaboot image push`.

use std::path::PathBuf;

use super::UsageError;
use crate::registry::{self, auth, PushOptions, Reference, RegistryError};

/// Arguments of `image push`.
#[derive(Debug, clap::Args)]
pub struct PushConfig {
    /// Image name in the OCI layout (its `org.opencontainers.image.ref.name`).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Destination REGISTRY/REPOSITORY[:TAG] (tag defaults to `latest`).
    #[arg(long, value_name = "REF")]
    pub to: String,
    /// OCI image layout directory holding NAME.
    #[arg(long, value_name = "DIR", default_value = "out/images")]
    pub layout: PathBuf,
    /// Talk plain HTTP to the registry (never implied).
    #[arg(long)]
    pub plain_http: bool,
    /// PEM file of a CA also trusted for this registry's origin (a private CA); other origins
    /// and the default keep the system's roots only.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Blobs larger than this many bytes are uploaded in chunks.
    #[arg(long, value_name = "BYTES", default_value_t = registry::DEFAULT_CHUNK_THRESHOLD)]
    pub chunk_threshold: u64,
    /// Chunk size in bytes for chunked uploads.
    #[arg(long, value_name = "BYTES", default_value_t = registry::DEFAULT_CHUNK_SIZE,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_size: u64,
    /// Print the push report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Pushes an image from an OCI layout to a registry. Credentials come from
/// `PICABOOT_REGISTRY_USERNAME`/`PICABOOT_REGISTRY_PASSWORD` or a Docker-style auth file.
pub fn push(c: PushConfig) -> anyhow::Result<()> {
    let user = |e: RegistryError| -> anyhow::Error {
        if e.is_user_error() {
            UsageError(e.to_string()).into()
        } else {
            e.into()
        }
    };
    let to: Reference = c.to.parse().map_err(user)?;
    let env = |k: &str| std::env::var(k).ok();
    let credentials = auth::lookup(&to.registry, &env).map_err(user)?;
    let mut opts = PushOptions::new(&c.layout, &c.name, to);
    opts.plain_http = c.plain_http;
    opts.ca_file = c.ca_file;
    opts.chunk_threshold = c.chunk_threshold;
    opts.chunk_size = c.chunk_size;
    opts.credentials = credentials;
    // Progress and results never panic on a closed pipe (`picaboot image push … | head -1`).
    let report = registry::push(&opts, &|ev| crate::progress::event(&format!("push: {ev}")))
        .map_err(user)?;
    let text = if c.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        format!(
            "pushed {} as {}: {} blobs uploaded ({} bytes), {} already present\ndigest: {}\n",
            c.name,
            report.reference,
            report.uploaded(),
            report.bytes_uploaded,
            report.skipped(),
            report.manifest_digest
        )
    };
    super::out::write_bytes(text.as_bytes())
}
