//! The services layer declared in `services.toml`: the GlusterFS volume behind /DATA, the swarm
//! over the services VMs, the registry, Traefik and the stack's services. Read and checked with
//! the other profiles ([`load`]), so that `check` and `render` refuse the same problems.

pub mod raw;
pub mod secrets;
mod verify;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;

pub(super) use verify::load;

/// The services layer, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Services {
    /// The GlusterFS volume.
    pub volume: Volume,
    /// The swarm.
    pub swarm: Swarm,
    /// The registry.
    pub registry: Registry,
    /// Traefik.
    pub traefik: Traefik,
    /// The stack's services (Traefik aside), in file order.
    pub services: Vec<Service>,
}

/// The GlusterFS volume: one brick per member, mounted on every member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Volume name.
    pub name: String,
    /// Brick directory.
    pub brick: String,
    /// Mount point.
    pub mount: String,
}

/// One swarm member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// VM profile name.
    pub vm: String,
    /// Its public IPv4 address: swarm advertise address, gluster peer address.
    pub address: Ipv4Addr,
    /// True for a manager.
    pub manager: bool,
}

/// The swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Swarm {
    /// Members: managers first (the first one inits the swarm), then workers, in file order.
    pub members: Vec<Member>,
    /// The encrypted overlay network.
    pub network: String,
}

impl Swarm {
    /// The number of managers.
    pub fn managers(&self) -> usize {
        self.members.iter().filter(|m| m.manager).count()
    }
}

/// The private registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registry {
    /// VM serving it.
    pub vm: String,
    /// `host:port`.
    pub address: String,
}

/// Traefik.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Traefik {
    /// Image reference pinned by digest.
    pub image: String,
    /// Let's Encrypt account address.
    pub acme_email: String,
}

/// Where a service's image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Image {
    /// One of picaboot's `images/NAME`, pulled from the registry.
    Local(String),
    /// An external reference pinned by digest.
    Pinned(String),
}

/// A bind mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Host path.
    pub source: String,
    /// Container path.
    pub target: String,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Port on every node.
    pub published: u16,
    /// Container port.
    pub target: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// What Traefik routes to a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Host name.
    pub host: String,
    /// Container port.
    pub port: u16,
}

/// A backup schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backup {
    /// Cron expression.
    pub schedule: String,
    /// Dumps kept.
    pub keep: u32,
}

/// One service of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Name.
    pub name: String,
    /// Image.
    pub image: Image,
    /// Replicas.
    pub replicas: u32,
    /// Networks.
    pub networks: Vec<String>,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
    /// Published ports.
    pub ports: Vec<Port>,
    /// Traefik route.
    pub route: Option<Route>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Backup schedule.
    pub backup: Option<Backup>,
    /// Swarm secrets it reads at `/run/secrets/NAME`, sorted.
    pub secrets: Vec<String>,
}
