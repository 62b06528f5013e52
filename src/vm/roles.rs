//! What a VM's roles (its profile's `roles`) add to its system: the Debian packages the
//! layer above needs, installed by debootstrap with the base, from the same verified archive.

/// The packages role `role` needs (none for a role picaboot does not build anything for).
pub fn role_packages(role: &str) -> &'static [&'static str] {
    match role {
        // GlusterFS /DATA, Docker Swarm, the nftables filter (002 §12-18). trixie's docker.io
        // only Recommends docker-cli (ENVIRONMENT.md). curl: the services' health checks.
        "services" => &[
            "glusterfs-server",
            "docker.io",
            "docker-cli",
            "nftables",
            "curl",
            "ca-certificates",
        ],
        // The registry runs as a container (tx-registry) behind the same filter.
        "registry" => &["docker.io", "docker-cli", "nftables", "ca-certificates"],
        _ => &[],
    }
}

/// Every package `roles` need, sorted and once each.
pub fn packages(roles: &[String]) -> Vec<String> {
    let mut v: Vec<String> = roles
        .iter()
        .flat_map(|r| role_packages(r))
        .map(|p| p.to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Whether `name` is a Debian package name (policy §5.6.1: lower case letters, digits,
/// `+ - .`, at least two characters, starting with a letter or digit).
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_vms_get_gluster_docker_and_its_cli_once() {
        let p = packages(&["services".into(), "registry".into(), "monitoring".into()]);
        for want in ["glusterfs-server", "docker.io", "docker-cli", "nftables"] {
            assert_eq!(
                p.iter().filter(|x| *x == want).count(),
                1,
                "{want} in {p:?}"
            );
        }
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(p, sorted);
        assert!(packages(&["monitoring".into()]).is_empty());
        assert!(p.iter().all(|x| is_package_name(x)));
        assert!(!is_package_name("docker.io,evil") && !is_package_name("-x"));
    }
}
