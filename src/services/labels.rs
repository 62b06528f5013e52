//! Traefik v3 labels for a routed service, under `deploy.labels` (Swarm provider).
//!
//! Key grammar from Traefik's "Traefik & Docker Swarm" routing page
//! (<https://doc.traefik.io/traefik/routing/providers/swarm/>; the v3 reference:
//! <https://doc.traefik.io/reference/routing-configuration/other-providers/swarm>): `traefik.enable`,
//! `traefik.http.routers.<router_name>.rule`, `….entrypoints`, `….tls.certresolver`,
//! `traefik.http.services.<service_name>.loadbalancer.server.port` (mandatory in Swarm: no
//! port is guessed), `traefik.swarm.network`. v2's `traefik.docker.*` keys and v1's
//! `traefik.port` / `traefik.frontend.*` are ignored by v3 without an error.

use crate::profile::services::Route;

/// The Let's Encrypt resolver's name in Traefik's static configuration.
pub const RESOLVER: &str = "letsencrypt";
/// The HTTPS entrypoint.
pub const ENTRYPOINT: &str = "websecure";

/// `(key, value)` labels routing `route.host` to `service` on `network`, sorted by key.
pub fn traefik_labels(service: &str, route: &Route, network: &str) -> Vec<(String, String)> {
    let r = format!("traefik.http.routers.{service}");
    let mut v = vec![
        ("traefik.enable".to_string(), "true".to_string()),
        (format!("{r}.rule"), format!("Host(`{}`)", route.host)),
        (format!("{r}.entrypoints"), ENTRYPOINT.to_string()),
        (format!("{r}.tls.certresolver"), RESOLVER.to_string()),
        (format!("{r}.service"), service.to_string()),
        (
            format!("traefik.http.services.{service}.loadbalancer.server.port"),
            route.port.to_string(),
        ),
        ("traefik.swarm.network".to_string(), network.to_string()),
    ];
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One key of v3's documented grammar (swarm provider routing page).
    fn v3_key(k: &str) -> bool {
        let p: Vec<&str> = k.split('.').collect();
        let name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        match p.as_slice() {
            ["traefik", "enable"] | ["traefik", "swarm", "network"] => true,
            ["traefik", "http", "routers", n, "rule" | "entrypoints" | "service"] => name(n),
            ["traefik", "http", "routers", n, "tls", "certresolver"] => name(n),
            ["traefik", "http", "services", n, "loadbalancer", "server", "port"] => name(n),
            _ => false,
        }
    }

    #[test]
    fn labels_follow_v3_grammar_and_carry_no_v1_v2_key() {
        let route = Route {
            host: "wiki.picasoft.net".into(),
            port: 80,
        };
        let l = traefik_labels("wiki", &route, "pica-net");
        for (k, _) in &l {
            assert!(v3_key(k), "{k} is not a documented v3 key");
            assert!(!k.starts_with("traefik.docker."), "{k}: v2 key");
            assert!(!k.starts_with("traefik.frontend."), "{k}: v1 key");
            assert_ne!(k, "traefik.port", "v1 key");
        }
        let get = |k: &str| l.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
        assert_eq!(get("traefik.enable"), Some("true"));
        assert_eq!(
            get("traefik.http.routers.wiki.rule"),
            Some("Host(`wiki.picasoft.net`)")
        );
        assert_eq!(
            get("traefik.http.services.wiki.loadbalancer.server.port"),
            Some("80")
        );
        assert_eq!(get("traefik.swarm.network"), Some("pica-net"));
    }

    #[test]
    fn grammar_check_refuses_v2_keys() {
        assert!(!v3_key("traefik.docker.network"));
        assert!(!v3_key("traefik.port"));
        assert!(!v3_key("traefik.frontend.rule"));
    }
}
