//! Image references: `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`, Docker's rules.

use std::fmt;
use std::str::FromStr;

use super::RegistryError;

/// A parsed destination reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry as written (`host` or `host:port`); `docker.io` when none was given.
    pub registry: String,
    /// Repository path (`team/tx-debian`; `library/x` for a one-component Docker Hub name).
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest (`sha256:…`), if given.
    pub digest: Option<String>,
}

impl Reference {
    /// The host (and port) the HTTP API answers on (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" || self.registry == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What the manifest is stored under: the tag, else the digest, else `latest`.
    pub fn manifest_ref(&self) -> &str {
        self.tag
            .as_deref()
            .or(self.digest.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn bad(s: &str, why: &str) -> RegistryError {
    RegistryError::Reference(format!("{s:?}: {why} (expected REGISTRY/REPOSITORY[:TAG])"))
}

/// Checks a `sha256:` digest (64 lowercase hex digits).
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// A tag as the OCI distribution spec allows it: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// One repository path component of the OCI distribution spec:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`. This refuses `.`, `..` and every other component that
/// a registry URL would resolve as a path step.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`, always between alphanumerics.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A repository name: components joined by `/`, 255 characters at most (distribution spec).
pub fn valid_repository(r: &str) -> bool {
    !r.is_empty() && r.len() <= 255 && r.split('/').all(valid_component)
}

/// A registry host: DNS labels (letters, digits, inner `-`) joined by `.`, or `localhost`, with
/// an optional decimal `:PORT` (1-65535).
pub fn valid_registry_host(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    if let Some(p) = port {
        let digits = !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit());
        if !digits || !matches!(p.parse::<u32>(), Ok(1..=65535)) {
            return false;
        }
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

impl FromStr for Reference {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, RegistryError> {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(bad(s, "the digest must be sha256: and 64 hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, p))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), p.to_string())
            }
            _ => ("docker.io".to_string(), rest.to_string()),
        };
        if !valid_registry_host(&registry) {
            return Err(bad(
                s,
                "bad registry host (DNS labels or an IPv4 address, optional :PORT)",
            ));
        }
        let (repo, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), Some(t.to_string())),
            _ => (path.clone(), None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(bad(
                    s,
                    "bad tag (the distribution spec's [A-Za-z0-9_][A-Za-z0-9._-]{0,127})",
                ));
            }
        }
        if !valid_repository(&repo) {
            return Err(bad(
                s,
                "the repository must be lowercase components [a-z0-9]+ joined by '.', '_', '__' or '-' \
                 (no '.' or '..' component), 255 characters at most",
            ));
        }
        let repository = if registry == "docker.io" && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn distribution_grammar_accepts_its_own_examples() {
        for good in [
            "127.0.0.1:5000/a__b/c--d/e.f_g:v1.0-rc_1",
            "localhost:5000/tx-debian:_x",
            "reg.example/a-----b",
        ] {
            assert!(good.parse::<Reference>().is_ok(), "{good}");
        }
    }

    #[test]
    fn parse() {
        let x = r("127.0.0.1:5000/team/tx-debian:v1");
        assert_eq!(
            (x.registry.as_str(), x.repository.as_str(), x.tag.as_deref()),
            ("127.0.0.1:5000", "team/tx-debian", Some("v1"))
        );
        assert_eq!(x.manifest_ref(), "v1");
        let x = r("localhost/a");
        assert_eq!(
            (x.registry.as_str(), x.manifest_ref()),
            ("localhost", "latest")
        );
        let x = r("debian");
        assert_eq!(
            (x.registry.as_str(), x.repository.as_str(), x.api_host()),
            ("docker.io", "library/debian", "registry-1.docker.io")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let x = r(&format!("reg.example:443/x@{d}"));
        assert_eq!(x.manifest_ref(), d);
        assert_eq!(x.to_string(), format!("reg.example:443/x@{d}"));
        for b in [
            "",
            "reg.example/",
            "reg.example/Upper",
            "reg.example/a:b:c",
            "reg.example/a@sha256:12",
            "reg.example/a:-x",
            "reg.example/a//b",
            // Path steps a registry URL would resolve (hostile-input issue 21).
            "127.0.0.1:5000/../../evil:t",
            "127.0.0.1:5000/.:t",
            "127.0.0.1:5000/a/..",
            "127.0.0.1:5000/a/./b",
            "127.0.0.1:5000/a..b",
            "127.0.0.1:5000/a___b",
            "127.0.0.1:5000/-a",
            "127.0.0.1:5000/a-",
            "127.0.0.1:5000/a%2e",
            "127.0.0.1:99999/a",
            "127.0.0.1:/a",
            "reg_example.com:5000/a",
            "reg.example/a:.t",
        ] {
            assert!(b.parse::<Reference>().is_err(), "{b}");
        }
    }
}
