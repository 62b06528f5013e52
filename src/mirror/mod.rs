//! Serving a Debian mirror to an installer under test: the pieces that do not depend on HTTP.
//!
//! debian-installer's net-retriever still fetches `dists/SUITE/Release` and its detached
//! `Release.gpg`, while apt and picaboot use the clearsigned `InRelease`. A mirror whose
//! `Release.gpg` lags behind its `Release` (seen on this project's CI mirror: a signature two
//! months older than the file) makes every install fail with "Bad signature". The signatures in
//! `InRelease` are Debian's own; as OpenPGP text-mode signatures they verify equally as detached
//! signatures over the signed text. [`split_inrelease`] recovers both, so a proxy can serve a
//! consistent pair signed by Debian, without any key of ours and without weakening the
//! installer's check.

/// Why an InRelease file could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InReleaseError {
    /// Not a clearsigned message.
    #[error("not a clearsigned OpenPGP message (no `-----BEGIN PGP SIGNED MESSAGE-----` header)")]
    NotClearsigned,
    /// The signature block is missing.
    #[error("the clearsigned message has no signature block")]
    NoSignature,
}

/// Splits a clearsigned `InRelease` into the signed text (the `Release` file, dash-escaping
/// undone, without the line ending that the cleartext framework does not sign) and the armored
/// signature block (usable as `Release.gpg`).
pub fn split_inrelease(inrelease: &str) -> Result<(String, String), InReleaseError> {
    let text = inrelease.replace("\r\n", "\n");
    let rest = text
        .strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----\n")
        .ok_or(InReleaseError::NotClearsigned)?;
    // Armor headers (`Hash: SHA256`) end at the first empty line.
    let body_start = rest.find("\n\n").ok_or(InReleaseError::NotClearsigned)? + 2;
    let body_and_sig = &rest[body_start..];
    let sig_at = body_and_sig
        .find("\n-----BEGIN PGP SIGNATURE-----")
        .ok_or(InReleaseError::NoSignature)?;
    let body = &body_and_sig[..sig_at];
    let signature = body_and_sig[sig_at + 1..].to_string();
    let release: Vec<&str> = body
        .split('\n')
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect();
    Ok((release.join("\n"), signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_unescapes() {
        let signed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\n- -----not armor\nLast: x\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        let (release, sig) = split_inrelease(signed).unwrap();
        assert_eq!(release, "Origin: Debian\n-----not armor\nLast: x");
        assert!(sig.starts_with("-----BEGIN PGP SIGNATURE-----\n"));
        assert!(sig.ends_with("-----END PGP SIGNATURE-----\n"));
    }

    #[test]
    fn rejects_unsigned_text() {
        assert_eq!(
            split_inrelease("Origin: Debian\n"),
            Err(InReleaseError::NotClearsigned)
        );
        assert_eq!(
            split_inrelease("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n"),
            Err(InReleaseError::NoSignature)
        );
    }
}
