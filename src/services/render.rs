//! The services layer's files, rendered deterministically from the checked model: the stack
//! file, and for each services VM its fstab line for the volume, Docker's drop-in waiting for
//! the mount, and its nftables ruleset.

use std::collections::BTreeMap;

use serde::Serialize;

use super::labels::{traefik_labels, RESOLVER};
use super::ServicesError;
use crate::profile::services::{Image, Member, Port, Services, Traefik, Volume};

/// Where Docker's drop-in goes on a VM.
pub const DROP_IN: &str = "/etc/systemd/system/docker.service.d/picaboot-data.conf";
/// Where the ruleset goes on a VM (Debian's nftables.service loads it at boot).
pub const NFT_PATH: &str = "/etc/nftables.conf";
/// Where the stack file goes on the first manager.
pub const STACK_PATH: &str = "/etc/picaboot/stack.yml";
/// The stack's name.
pub const STACK: &str = "pica";

/// A service as the stack template sees it.
#[derive(Serialize)]
struct StackService<'a> {
    name: &'a str,
    image: String,
    replicas: u32,
    networks: &'a [String],
    mounts: &'a [crate::profile::services::Mount],
    ports: &'a [Port],
    env: BTreeMap<String, String>,
    labels: Vec<(String, String)>,
    secrets: &'a [String],
}

#[derive(Serialize)]
struct StackCtx<'a> {
    traefik: &'a Traefik,
    network: &'a str,
    resolver: &'a str,
    services: Vec<StackService<'a>>,
    secrets: Vec<String>,
}

/// Every secret the stack's services read, sorted, each once (declared `external` at the top
/// level of the stack: created beforehand with `docker secret create`).
pub fn secrets(s: &Services) -> Vec<String> {
    let all: std::collections::BTreeSet<&String> =
        s.services.iter().flat_map(|x| &x.secrets).collect();
    all.into_iter().cloned().collect()
}

fn tmpl<C: Serialize>(name: &str, ctx: &C) -> Result<String, ServicesError> {
    crate::render::templates::render(name, ctx).map_err(|source| ServicesError::Template {
        what: name.to_string(),
        source,
    })
}

/// The image reference a node pulls.
pub fn image_ref(s: &Services, image: &Image) -> String {
    match image {
        Image::Local(name) => format!("{}/{name}", s.registry.address),
        Image::Pinned(r) => r.clone(),
    }
}

/// The stack file (compose format 3.8), Traefik first.
pub fn stack(s: &Services) -> Result<String, ServicesError> {
    let services = s
        .services
        .iter()
        .map(|svc| {
            let mut env = svc.env.clone();
            if let Some(b) = &svc.backup {
                // The backup images' own variables (images/*-backup/image.toml).
                env.insert("CRON_TIME".into(), b.schedule.clone());
                env.insert("MAX_BACKUPS".into(), b.keep.to_string());
            }
            StackService {
                name: &svc.name,
                image: image_ref(s, &svc.image),
                replicas: svc.replicas,
                networks: &svc.networks,
                mounts: &svc.mounts,
                ports: &svc.ports,
                env,
                labels: svc
                    .route
                    .as_ref()
                    .map(|r| traefik_labels(&svc.name, r, &s.swarm.network))
                    .unwrap_or_default(),
                secrets: &svc.secrets,
            }
        })
        .collect();
    tmpl(
        "services/stack.yml",
        &StackCtx {
            traefik: &s.traefik,
            network: &s.swarm.network,
            resolver: RESOLVER,
            services,
            secrets: secrets(s),
        },
    )
}

/// The peers of `m`: every other member's address.
pub fn peers(s: &Services, m: &Member) -> Vec<String> {
    s.swarm
        .members
        .iter()
        .filter(|o| o.vm != m.vm)
        .map(|o| o.address.to_string())
        .collect()
}

#[derive(Serialize)]
struct FstabCtx<'a> {
    volume: &'a Volume,
    self_address: String,
    backups: Vec<String>,
}

/// `m`'s fstab line for the volume (its own glusterd first, the peers as backups).
pub fn fstab(s: &Services, m: &Member) -> Result<String, ServicesError> {
    tmpl(
        "services/fstab",
        &FstabCtx {
            volume: &s.volume,
            self_address: m.address.to_string(),
            backups: peers(s, m),
        },
    )
}

/// Docker's drop-in: start only once the volume is mounted.
pub fn drop_in(s: &Services) -> Result<String, ServicesError> {
    tmpl(
        "services/docker-data.conf",
        &serde_json::json!({ "volume": &s.volume }),
    )
}

/// `m`'s nftables ruleset.
pub fn nftables(s: &Services, m: &Member) -> Result<String, ServicesError> {
    let published: Vec<&Port> = s.services.iter().flat_map(|x| &x.ports).collect();
    tmpl(
        "services/nftables.conf",
        &serde_json::json!({ "vm": m.vm, "peers": peers(s, m), "published": published }),
    )
}

/// Every file: `stack.yml`, and `VM/fstab`, `VM/docker-data.conf`, `VM/nftables.conf` per member.
pub fn files(s: &Services) -> Result<BTreeMap<String, String>, ServicesError> {
    let mut out = BTreeMap::new();
    out.insert("stack.yml".to_string(), stack(s)?);
    for m in &s.swarm.members {
        out.insert(format!("{}/fstab", m.vm), fstab(s, m)?);
        out.insert(format!("{}/docker-data.conf", m.vm), drop_in(s)?);
        out.insert(format!("{}/nftables.conf", m.vm), nftables(s, m)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::services::shipped;

    #[test]
    fn secrets_are_mounted_per_service_and_declared_external_once_sorted() {
        let mut s = shipped();
        s.services[0].secrets = vec!["zz".into(), "mysql-root".into()];
        let text = stack(&s).unwrap();
        let all = secrets(&s);
        let mut want: Vec<String> = s.services.iter().flat_map(|x| x.secrets.clone()).collect();
        want.sort();
        want.dedup();
        assert_eq!(all, want, "sorted, each once");
        let (body, top) = text.split_once("\nsecrets:\n").expect("top-level secrets");
        let declared: Vec<&str> = top
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim().trim_end_matches(':').trim_matches('"'))
            .collect();
        assert_eq!(declared, all);
        assert_eq!(top.matches("external: true").count(), all.len());
        for svc in &s.services {
            for n in &svc.secrets {
                let line = format!("- {{ source: \"{n}\", target: \"{n}\", mode: 0400 }}");
                assert!(body.contains(&line), "{line} in\n{body}");
            }
        }
        assert_eq!(
            body.matches("mode: 0400").count(),
            s.services.iter().map(|x| x.secrets.len()).sum::<usize>()
        );
        assert_eq!(stack(&s).unwrap(), text, "deterministic");
    }

    #[test]
    fn a_stack_without_secrets_declares_none() {
        let mut s = shipped();
        for x in &mut s.services {
            x.secrets.clear();
        }
        let text = stack(&s).unwrap();
        assert!(!text.contains("secrets:"), "{text}");
    }
}
