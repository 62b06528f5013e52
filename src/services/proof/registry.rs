//! The test registry the guests pull the stack's images from (DEV STUB: replaced by the
//! tx-registry configuration served by Debian's docker-registry).

use std::path::Path;

use super::{ProofError, ProofOptions, ServedRegistry};
use crate::profile::services::Services;

/// A registry server for [`super::run`].
pub fn serve(
    _o: &ProofOptions,
) -> impl FnMut(&Path, &Services) -> Result<ServedRegistry, ProofError> {
    |_work: &Path, _s: &Services| {
        Ok(ServedRegistry {
            port: 9,
            ca_pem: String::new(),
            user: String::new(),
            password: String::new(),
            digests: Default::default(),
            running: Vec::new(),
        })
    }
}
