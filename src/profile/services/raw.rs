//! `services.toml` as written (unknown keys are errors).

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawServices {
    /// The GlusterFS volume.
    pub volume: RawVolume,
    /// The swarm.
    pub swarm: RawSwarm,
    /// The private registry.
    pub registry: RawRegistry,
    /// Traefik.
    pub traefik: RawTraefik,
    /// The services of the stack.
    #[serde(default)]
    pub services: Vec<RawService>,
}

/// `[volume]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawVolume {
    /// Volume name.
    pub name: String,
    /// Brick directory on every services VM.
    pub brick: String,
    /// Where the volume is mounted.
    pub mount: String,
}

/// `[swarm]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawSwarm {
    /// Manager VMs.
    pub managers: Vec<String>,
    /// Worker VMs.
    #[serde(default)]
    pub workers: Vec<String>,
    /// The overlay network.
    pub network: String,
}

/// `[registry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawRegistry {
    /// The VM serving it.
    pub vm: String,
    /// `host:port` images are pulled from.
    pub address: String,
}

/// `[traefik]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawTraefik {
    /// Image, pinned by digest.
    pub image: String,
    /// Let's Encrypt account address.
    pub acme_email: String,
}

/// `[[services]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawService {
    /// Service name.
    pub name: String,
    /// One of picaboot's images, or `ref@sha256:…`.
    pub image: String,
    /// Replicas (default 1).
    pub replicas: Option<u32>,
    /// Networks (default: the swarm's).
    pub networks: Option<Vec<String>>,
    /// Bind mounts.
    #[serde(default)]
    pub mounts: Vec<RawMount>,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<RawPort>,
    /// Host name Traefik routes here.
    pub host: Option<String>,
    /// Container port Traefik routes to.
    pub port: Option<u16>,
    /// Environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// For a DB-backup service: when and how many dumps are kept.
    pub backup: Option<RawBackup>,
    /// Swarm secrets mounted at `/run/secrets/NAME` (created beforehand, outside any profile).
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// A bind mount.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawMount {
    /// Host path (under the volume's mount).
    pub source: String,
    /// Container path.
    pub target: String,
}

/// A published port.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawPort {
    /// Port on every node (routing mesh).
    pub published: u16,
    /// Container port.
    pub target: u16,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<String>,
}

/// A backup schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawBackup {
    /// Cron expression (5 fields).
    pub schedule: String,
    /// Dumps kept.
    pub keep: u32,
}
