//! QEMU: accelerator probe, VM specs and a runner that boots a kernel with disks and serial
//! consoles, follows the console log for markers, and never leaves a process behind.
//!
//! Guests are driven through the serial console only: the guest prints machine-readable lines
//! (`PICABOOT-CHECK name PASS|FAIL detail`, `PICABOOT-DONE rc=N`) that [`report`] parses.

pub mod accel;
pub mod guest;
pub mod podman;
pub mod qmp;
pub mod report;
pub mod vm;

pub use accel::Accel;
pub use report::{CheckResult, Report};
pub use vm::{Disk, Vm, VmSpec};
