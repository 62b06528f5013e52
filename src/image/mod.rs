//! Container images: declarative specs (`images/<name>/image.toml`), Dockerfiles for Docker
//! users, and a daemonless, reproducible OCI build.
//!
//! - [`spec`]: load and check specs (`file:line: field: reason`).
//! - [`build`]: parents first; base from `debootstrap --variant=minbase`; each step in a mount +
//!   pid namespace over overlayfs; layers cached by a key over their inputs.
//! - [`layer`]: deterministic tar + gzip with diff_id and blob digest in one pass.
//! - [`oci`]: config, manifest, `index.json`, `oci-archive`.
//! - [`dockerfile`]: Dockerfile + build context.
//! - [`runtest`]: podman runs an image and its declared check.

pub mod build;
pub mod dockerfile;
pub mod layer;
pub mod oci;
pub mod runtest;
pub mod spec;

pub use build::{build, BuildError, BuildOptions, Built};
pub use spec::{load, Image, ImageSpec, Images, SpecError};
