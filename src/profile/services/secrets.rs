//! Swarm secrets a service reads (`secrets = ["mysql-root"]`): names only, the values live in
//! the swarm (`docker secret create NAME -`), never in a profile.

use std::collections::BTreeSet;

use super::raw::RawService;
use crate::profile::validate::Checker;

/// Longest secret name swarmkit accepts.
pub const MAX_NAME: usize = 64;

/// True for a name swarmkit accepts for a secret: at most 64 characters of `[a-zA-Z0-9-_.]`,
/// first and last alphanumeric (swarmkit, manager/controlapi/common.go,
/// `isValidConfigOrSecretName = ^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`).
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || b"-_.".contains(c);
    !b.is_empty()
        && b.len() <= MAX_NAME
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(inner)
}

/// Service `i`'s secrets: valid names, each once; returned sorted (the rendered stack and the
/// plan list them in this order).
pub(super) fn verify(c: &mut Checker<'_>, i: usize, s: &RawService) -> Vec<String> {
    let mut seen = BTreeSet::new();
    for (j, name) in s.secrets.iter().enumerate() {
        let field = format!("services[{i}].secrets[{j}]");
        if !valid_name(name) {
            c.err(
                field,
                format!(
                    "`{name}` is not a swarm secret name (1 to {MAX_NAME} characters of letters, digits and `-_.`, first and last a letter or digit)"
                ),
            );
        } else if !seen.insert(name.clone()) {
            c.err(field, format!("secret `{name}` is listed twice"));
        }
    }
    seen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_follow_swarmkit() {
        for ok in ["mysql-root", "a", "A.b_c-9", &"x".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a b",
            "a/b",
            "é",
            ".a",
            "a_",
            &"x".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
