//! HTTP Digest access authentication (RFC 7616, compatible with RFC 2617): challenge parsing
//! and the `Authorization` header, `qop=auth` with MD5, MD5-sess, SHA-256 and SHA-256-sess.

use md5::Md5;
use sha2::{Digest as _, Sha256};

use super::AmtError;

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (AMT's and Apache's).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256.
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Self::Md5),
            "MD5-SESS" => Some(Self::Md5Sess),
            "SHA-256" => Some(Self::Sha256),
            "SHA-256-SESS" => Some(Self::Sha256Sess),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Self::Md5 | Self::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Self::Sha256 | Self::Sha256Sess => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }

    fn sess(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    fn strength(self) -> u8 {
        match self {
            Self::Md5 | Self::Md5Sess => 0,
            Self::Sha256 | Self::Sha256Sess => 1,
        }
    }
}

/// A parsed `WWW-Authenticate: Digest …` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Realm.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque value to echo.
    pub opaque: Option<String>,
    /// Hash algorithm.
    pub algorithm: Algorithm,
    /// The server offered `qop=auth` (otherwise the RFC 2069 form is used).
    pub qop_auth: bool,
    /// The previous nonce was only stale (the credentials were right).
    pub stale: bool,
}

/// Splits auth-params `a=b, c="d, e"` into pairs (names lower-cased, quotes removed).
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_string();
            }
        }
        out.push((name.trim().to_ascii_lowercase(), value));
    }
    out
}

impl Challenge {
    /// Parses one `WWW-Authenticate` value; `None` when it is not a usable Digest challenge.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let p = params(rest);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::parse(&a)?,
            None => Algorithm::Md5,
        };
        let qop = get("qop");
        let qop_auth = qop
            .as_deref()
            .map(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")))
            .unwrap_or(false);
        if qop.is_some() && !qop_auth {
            return None; // auth-int only
        }
        Some(Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The strongest usable challenge among several header values.
    pub fn best<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        headers
            .into_iter()
            .filter_map(Self::parse)
            .max_by_key(|c| c.algorithm.strength())
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Computes the `Authorization` header value for one request.
pub fn authorization(
    c: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> Result<String, AmtError> {
    if username.contains(['\r', '\n']) || uri.contains(['\r', '\n', '"']) {
        return Err(AmtError::Credentials(
            "the user name holds a line break".into(),
        ));
    }
    let h = |s: &str| c.algorithm.hash(s);
    let mut ha1 = h(&format!("{username}:{}:{password}", c.realm));
    if c.algorithm.sess() {
        ha1 = h(&format!("{ha1}:{}:{cnonce}", c.nonce));
    }
    let ha2 = h(&format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let mut v = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm={}",
        quote(username),
        quote(&c.realm),
        quote(&c.nonce),
        c.algorithm.name()
    );
    if c.qop_auth {
        let response = h(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce));
        v.push_str(&format!(
            ", response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{}\"",
            quote(cnonce)
        ));
    } else {
        let response = h(&format!("{ha1}:{}:{ha2}", c.nonce));
        v.push_str(&format!(", response=\"{response}\""));
    }
    if let Some(o) = &c.opaque {
        v.push_str(&format!(", opaque=\"{}\"", quote(o)));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_of(header: &str) -> String {
        params(header.trim_start_matches("Digest "))
            .into_iter()
            .find(|(n, _)| n == "response")
            .unwrap()
            .1
    }

    /// RFC 2617 §3.5's worked example (MD5, qop=auth).
    #[test]
    fn rfc2617_example() {
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(c.qop_auth);
        let h = authorization(
            &c,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        )
        .unwrap();
        assert_eq!(response_of(&h), "6629fae49393a05397450978507c4ef1");
        assert!(h.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
        assert!(h.contains("nc=00000001"));
    }

    /// RFC 7616 §3.9.1's worked examples (SHA-256 and MD5, qop=auth).
    #[test]
    fn rfc7616_examples() {
        let sha = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        let md5 = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        let best = Challenge::best([
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        ])
        .unwrap();
        assert_eq!(best.algorithm, Algorithm::Sha256);
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let a = |c: &Challenge| {
            response_of(
                &authorization(
                    c,
                    "Mufasa",
                    "Circle of Life",
                    "GET",
                    "/dir/index.html",
                    1,
                    cnonce,
                )
                .unwrap(),
            )
        };
        assert_eq!(
            a(&sha),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(a(&md5), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rejects_other_schemes_and_auth_int_only() {
        assert!(Challenge::parse(r#"Basic realm="x""#).is_none());
        assert!(Challenge::parse(r#"Digest realm="x", nonce="n", qop="auth-int""#).is_none());
        assert!(
            Challenge::parse(r#"Digest realm="x", nonce="n", algorithm=SHA-512-256"#).is_none()
        );
        let c = Challenge::parse(r#"Digest realm="x", nonce="n", stale=TRUE"#).unwrap();
        assert!(c.stale && !c.qop_auth);
    }
}
