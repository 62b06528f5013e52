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
        if registry.is_empty() || registry.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(bad(s, "bad registry host"));
        }
        let (repo, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), Some(t.to_string())),
            _ => (path.clone(), None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && !t.starts_with(['.', '-'])
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
            if !ok {
                return Err(bad(s, "bad tag"));
            }
        }
        if repo.is_empty()
            || repo.split('/').any(|c| {
                c.is_empty()
                    || !c.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'_' | b'-')
                    })
            })
        {
            return Err(bad(s, "the repository must be lowercase path components"));
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
        ] {
            assert!(b.parse::<Reference>().is_err(), "{b}");
        }
    }
}
