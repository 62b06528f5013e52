//! The install proof (`picaboot test install HOST`): a VM shaped like the box installs from the
//! host's netboot artifacts, its disks are checked from the host, then it boots whole and
//! degraded and a self-test rendered from the same profiles reports every check.
//!
//! - [`shape`]: the VM's disks and the scaled volume sizes.
//! - [`harness`]: the udeb source (signed index, or the flagged harness suite).
//! - [`phases`]: install phases and failures from the installer's syslog.
//! - [`gpt_check`]: the SSDs' partition tables against the plan (the `gpt` crate).
//! - [`scenario`]: the whole run and its JUnit report.
//! - [`gtk`]: the proof of the graphical installer that ships (screenshots over QMP).
//! - [`question`]: the debconf question shown, from the installer's syslog.

pub mod gpt_check;
pub mod gtk;
pub mod harness;
pub mod machine;
pub mod phases;
pub mod question;
pub mod scenario;
pub mod shape;
