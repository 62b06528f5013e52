//! The registry `picaboot test services` serves the stack's images from: the tx-registry
//! configuration run by Debian's docker-registry on loopback ([`crate::services::test_registry`]:
//! TLS with a throwaway CA, htpasswd with a throwaway password), filled with the stack's own
//! images built by picaboot's image builder (its cache) and pushed by picaboot's push.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ProofError, ProofOptions, ServedRegistry};
use crate::image::build::BuildMirror;
use crate::profile::services::{Image, Services};
use crate::services::test_registry::{build_image, TestRegistry};

/// The images directory beside `profiles` (where the loader finds them).
fn images_dir(profiles: &Path) -> PathBuf {
    profiles
        .parent()
        .map_or_else(|| PathBuf::from("images"), |p| p.join("images"))
}

/// The stack's images picaboot builds (`images/NAME`), each once, in order.
pub fn local_images(s: &Services) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for svc in &s.services {
        if let Image::Local(name) = &svc.image {
            if !v.contains(name) {
                v.push(name.clone());
            }
        }
    }
    v
}

/// A registry server for [`super::run`]: started under the run's work directory, each local
/// image of the stack built (from `o.mirror`, with `o.cache`) and pushed.
pub fn serve(
    o: &ProofOptions,
) -> impl FnMut(&Path, &Services) -> Result<ServedRegistry, ProofError> {
    let (profiles, mirror, cache) = (o.profiles.clone(), o.mirror.clone(), o.cache.clone());
    move |work: &Path, s: &Services| {
        let images = images_dir(&profiles);
        let host = s.registry.address.split(':').next().unwrap_or_default();
        let err = |e: crate::services::test_registry::TestRegistryError| {
            ProofError::Registry(e.to_string())
        };
        let reg = TestRegistry::start(&images, &work.join("registry"), host).map_err(err)?;
        let layout = work.join("oci");
        let mut digests = BTreeMap::new();
        for name in local_images(s) {
            crate::progress::event(&format!(
                "test services: building {name} and pushing it to the test registry"
            ));
            build_image(
                &images,
                &profiles,
                &name,
                &layout,
                BuildMirror::Url(mirror.clone()),
                Some(cache.clone()),
            )
            .map_err(err)?;
            let digest = reg.push(&layout, &name).map_err(err)?;
            digests.insert(name, digest);
        }
        let ca = reg.ca_pem().to_path_buf();
        let ca_pem = std::fs::read_to_string(&ca).map_err(ProofError::io("read", &ca))?;
        Ok(ServedRegistry {
            port: reg.port(),
            ca_pem,
            user: reg.user().to_string(),
            password: reg.password().clone(),
            digests,
            running: vec![Box::new(reg)],
        })
    }
}
