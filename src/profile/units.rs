//! Small value parsers shared by the profile checks: sizes, MAC addresses, crypt hashes, SSH keys.

/// Parses `480GB`, `2TB`, `200MiB`, `8 GiB` or a plain byte count into bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    if num.is_empty() {
        return Err(format!(
            "`{text}` is not a size (write e.g. `200MiB`, `30GiB`, `2TB`)"
        ));
    }
    let mult: u64 = match unit {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000u64.pow(2),
        "GB" => 1000u64.pow(3),
        "TB" => 1000u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    let value: f64 = num.parse().map_err(|_| format!("`{text}` is not a size"))?;
    let bytes = value * mult as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is not a positive size"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a unicast MAC address; returns it lowercased.
pub fn parse_mac(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(format!("`{text}` is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    let mac = text.to_ascii_lowercase();
    let first = u8::from_str_radix(parts[0], 16).unwrap_or(0);
    if first & 1 == 1 {
        return Err(format!("`{text}` is a multicast MAC address, not a NIC's"));
    }
    if mac == "00:00:00:00:00:00" {
        return Err("the all-zero MAC address is not a NIC's".into());
    }
    Ok(mac)
}

/// Checks that a root password is a crypt(3) hash, never plaintext. The value is never echoed.
pub fn check_password_hash(text: &str) -> Result<(), String> {
    if text == "!" || text == "*" {
        return Ok(()); // locked account: key-only login
    }
    let fields: Vec<&str> = text.split('$').collect();
    let known = ["1", "5", "6", "y", "gy", "7", "2b", "2y", "sha1"];
    let alphabet = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '/')
    };
    let looks_hashed = text.starts_with('$')
        && fields.len() >= 4
        && known.contains(&fields[1])
        && fields.last().is_some_and(|h| h.len() >= 20 && alphabet(h));
    if looks_hashed {
        Ok(())
    } else {
        Err(
            "is not a crypt(3) hash (a plaintext password?); put the output of \
             `mkpasswd -m yescrypt` or `openssl passwd -6` here, or `!` to lock the account"
                .into(),
        )
    }
}

/// Checks an SSH public key line (`type base64 [comment]`).
pub fn check_ssh_key(text: &str) -> Result<(), String> {
    if text.contains("PRIVATE KEY") {
        return Err("is a private key; give the public key (.pub) only".into());
    }
    let mut words = text.split_whitespace();
    let kind = words.next().unwrap_or("");
    let body = words.next().unwrap_or("");
    let kinds = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    let b64 = |s: &str| {
        s.len() >= 16
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
    };
    if kinds.contains(&kind) && b64(body) && body.starts_with("AAAA") {
        Ok(())
    } else {
        Err("is not an SSH public key line (`ssh-ed25519 AAAA… comment`)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("200MiB"), Ok(200 << 20));
        assert_eq!(parse_bytes("480GB"), Ok(480_000_000_000));
        assert_eq!(parse_bytes("1.5 GiB"), Ok(3 << 29));
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("GiB").is_err());
        assert!(parse_bytes("0").is_err());
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:AB:00:00:00:01").as_deref(),
            Ok("02:ab:00:00:00:01")
        );
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
        assert!(parse_mac("02:ab:00:00:00").is_err());
    }

    #[test]
    fn password_hashes() {
        assert!(check_password_hash("hunter2").is_err());
        assert!(check_password_hash("$6$salt$short").is_err());
        assert!(check_password_hash(
            "$6$rounds=5000$abcdefgh$abcdefghijklmnopqrstuvwxyz0123456789./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
        )
        .is_ok());
        assert!(check_password_hash("!").is_ok());
    }
}
