//! How a render differs from production, when it does: the test variant of `picaboot test
//! install`, and the installer's sources when the harness udeb suite is served. Nothing here
//! reaches a production render.

use serde::Serialize;

/// How a test render differs from production. Nothing here reaches a production render.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestVariant {
    /// Kernel parameters added for the serial console of the VM.
    pub console_params: Vec<String>,
    /// Progress URL base (`http://10.0.2.2:PORT/progress/HOST?run=ID`).
    pub progress_url: Option<String>,
    /// md resync speed limit during the install, KiB/s.
    pub resync_limit_kib: Option<u32>,
    /// The late command marks the md arrays in sync (sparse VM disks: zero where unwritten on
    /// both members, and RAID1 writes both), sparing the first boot a resync under emulation.
    pub mark_arrays_in_sync: bool,
    /// The installer's syslog is copied to this serial port (`/dev/ttyS1`).
    pub syslog_tty: Option<String>,
    /// A rendered file the late command alters after installing it (proves the file check).
    pub tamper: Option<String>,
    /// User id of the harness key: the self-test proves it never reached the installed system.
    pub harness_uid: String,
}

/// Where the installer's udebs and security updates come from when they are not the profile's
/// mirror: the harness udeb suite served by picaboot (`test install`, or `reinstall
/// --allow-unverified-udebs` of a test box), never for the real box.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InstallerSources {
    /// `mirror/udeb/suite`: the harness udeb suite (else the profile's suite).
    pub udeb_suite: Option<String>,
    /// `anna/no_kernel_modules` (the harness suite lists no module udebs of this kernel).
    pub no_kernel_modules: bool,
    /// `apt-setup/security_host` (the harness's proxy of the security mirror).
    pub security_host: Option<String>,
    /// Path of the security archive on `security_host`.
    pub security_path: Option<String>,
}

/// The user id every harness key carries.
pub const HARNESS_UID: &str = "picaboot install harness (test only, ephemeral)";
