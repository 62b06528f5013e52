//! Request paths checked segment by segment before [`super::open`] opens them beneath the
//! served tree.

/// Why a request path does not name a file of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The path tries to leave the tree (`..`, NUL, a symlink pointing outside): 403.
    Forbidden,
    /// Nothing (or no regular file) there: 404.
    NotFound,
}

/// Splits a raw (percent-encoded) URL path into checked segments.
///
/// Empty segments and `.` are dropped (so `//etc` stays relative to the tree); `..`, a NUL byte,
/// or a `/` produced by percent-decoding (`%2f`) is refused.
pub fn segments(raw_path: &str) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut out = Vec::new();
    for seg in raw_path.split('/') {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(seg).collect();
        if decoded.is_empty() || decoded == b"." {
            continue;
        }
        if decoded == b".."
            || decoded.contains(&0)
            || decoded.contains(&b'/')
            || decoded.contains(&b'\\')
        {
            return Err(Refusal::Forbidden);
        }
        out.push(decoded);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_refuse_escapes() {
        assert_eq!(
            segments("/a/./b//c").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(segments("/a/../b"), Err(Refusal::Forbidden));
        assert_eq!(segments("/a/%2e%2e/b"), Err(Refusal::Forbidden));
        assert_eq!(segments("/a%2f..%2fb"), Err(Refusal::Forbidden));
        assert_eq!(segments("/a%00b"), Err(Refusal::Forbidden));
        assert_eq!(
            segments("//etc/passwd").unwrap(),
            vec![b"etc".to_vec(), b"passwd".to_vec()]
        );
    }
}
