//! Registry credentials and `WWW-Authenticate` challenges.
//!
//! Credentials come from `PICABOOT_REGISTRY_USERNAME` / `PICABOOT_REGISTRY_PASSWORD`, else from
//! a Docker-style auth file (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, then
//! `$XDG_RUNTIME_DIR/containers/auth.json`), `auths.<registry>.auth` = base64 of `user:pass`.
//! They never come from the command line, and the password lives in a [`Secret`] whose
//! `Debug` and `Display` print `<redacted>`.

use std::path::{Path, PathBuf};

use base64::Engine;

use super::RegistryError;

/// Environment variable holding the registry user name.
pub const ENV_USERNAME: &str = "PICABOOT_REGISTRY_USERNAME";
/// Environment variable holding the registry password.
pub const ENV_PASSWORD: &str = "PICABOOT_REGISTRY_PASSWORD";

pub use crate::secret::Secret;

/// A user name and password for one registry, and where they were found.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password (or token used as a password).
    pub password: Secret,
    /// Where they came from (an environment variable pair or a file path), for messages.
    pub source: String,
}

impl Credentials {
    /// The `Basic` authorization header value.
    pub fn basic_header(&self) -> Secret {
        let raw = format!("{}:{}", self.username, self.password.expose());
        Secret::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }
}

/// Finds credentials for `registry` (`host[:port]` as written in the reference).
///
/// `env` reads an environment variable (the process environment in the CLI; a map in tests).
pub fn lookup(
    registry: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>, RegistryError> {
    let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    match (nonempty(ENV_USERNAME), nonempty(ENV_PASSWORD)) {
        (Some(u), Some(p)) => {
            return Ok(Some(Credentials {
                username: u,
                password: Secret::new(p),
                source: format!("{ENV_USERNAME}/{ENV_PASSWORD}"),
            }))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(RegistryError::Credentials(format!(
                "set both {ENV_USERNAME} and {ENV_PASSWORD}, or neither"
            )))
        }
        (None, None) => {}
    }
    for file in auth_files(env) {
        if let Some(c) = from_auth_file(&file, registry)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The auth files consulted, in order.
pub fn auth_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = env("DOCKER_CONFIG").filter(|s| !s.is_empty()) {
        v.push(Path::new(&d).join("config.json"));
    } else if let Some(h) = env("HOME").filter(|s| !s.is_empty()) {
        v.push(Path::new(&h).join(".docker/config.json"));
    }
    if let Some(x) = env("XDG_RUNTIME_DIR").filter(|s| !s.is_empty()) {
        v.push(Path::new(&x).join("containers/auth.json"));
    }
    v
}

/// `https://host:port/v1/` -> `host:port`; Docker Hub aliases -> `docker.io`.
fn normalize_key(k: &str) -> &str {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        _ => k,
    }
}

/// Reads `auths.<registry>.auth` from one Docker-style file (absent file: `None`).
pub fn from_auth_file(path: &Path, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RegistryError::Credentials(format!(
                "{}: {e}",
                path.display()
            )))
        }
    };
    // Never echo the file's content in an error: it holds secrets.
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        RegistryError::Credentials(format!(
            "{}: not valid JSON (line {})",
            path.display(),
            e.line()
        ))
    })?;
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let want = normalize_key(registry);
    let Some(entry) = auths
        .iter()
        .find(|(k, _)| normalize_key(k) == want)
        .map(|(_, e)| e)
    else {
        return Ok(None);
    };
    let Some(auth) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    else {
        return Ok(None);
    };
    let bad = || {
        RegistryError::Credentials(format!(
            "{}: auths.{registry}.auth is not base64 of user:password",
            path.display()
        ))
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (u, p) = raw.split_once(':').ok_or_else(bad)?;
    Ok(Some(Credentials {
        username: u.to_string(),
        password: Secret::new(p),
        source: path.display().to_string(),
    }))
}

/// An authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic.
    Basic,
    /// Token flow: GET `realm?service=…&scope=…`.
    Bearer {
        /// Token endpoint.
        realm: String,
        /// `service` parameter, if any.
        service: Option<String>,
        /// `scope` parameter, if any.
        scope: Option<String>,
    },
}

/// Parses `auth-scheme param=value, param="quoted, value"`.
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(char::is_whitespace).unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
            } else {
                value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                    .collect::<String>()
                    .trim()
                    .to_string();
            }
        }
        params.push((key.trim().to_ascii_lowercase(), value));
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let c = Credentials {
            username: "u".into(),
            password: Secret::new("hunter2"),
            source: "x".into(),
        };
        let shown = format!("{c:?} {} {:?}", c.password, c.basic_header());
        assert!(
            !shown.contains("hunter2") && !shown.contains("aHVudGVyMg"),
            "{shown}"
        );
        assert_eq!(c.basic_header().expose(), "Basic dTpodW50ZXIy");
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn lookup_order() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(
            docker.join("config.json"),
            r#"{"auths":{"https://127.0.0.1:5000/v1/":{"auth":"ZG9jazpwdw=="},"other:1":{"auth":"!!"}}}"#,
        )
        .unwrap();
        let xdg = dir.path().join("run");
        std::fs::create_dir_all(xdg.join("containers")).unwrap();
        std::fs::write(
            xdg.join("containers/auth.json"),
            r#"{"auths":{"reg.example":{"auth":"cG9kOnNlYw=="}}}"#,
        )
        .unwrap();
        let mut m: HashMap<&'static str, String> = HashMap::new();
        m.insert("DOCKER_CONFIG", docker.display().to_string());
        m.insert("XDG_RUNTIME_DIR", xdg.display().to_string());
        fn env(m: &HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> {
            let m = m.clone();
            move |k: &str| m.get(k).cloned()
        }
        let c = lookup("127.0.0.1:5000", &env(&m)).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("dock", "pw"));
        let c = lookup("reg.example", &env(&m)).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("pod", "sec"));
        assert!(lookup("nowhere:1", &env(&m)).unwrap().is_none());
        let e = lookup("other:1", &env(&m)).unwrap_err().to_string();
        assert!(e.contains("not base64") && !e.contains("!!"), "{e}");
        m.insert(ENV_USERNAME, "envu".into());
        assert!(lookup("reg.example", &env(&m)).is_err());
        m.insert(ENV_PASSWORD, "envp".into());
        let c = lookup("reg.example", &env(&m)).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("envu", "envp"));
    }
}
