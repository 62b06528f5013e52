//! `picaboot test vm NAME`: the VM profile mapped onto its system ([`super::from_profile`]),
//! a throwaway key added to root's keys (said in the report), the proof run
//! ([`super::proof::run`]) and its reports written (`report.xml`, `report.json`).

use std::path::PathBuf;
use std::time::Duration;

use super::proof::{self, ProofOptions, ProofOutcome};
use super::{VmArgError, VmError};
use crate::profile::ProfileError;

/// What `test vm` is asked.
#[derive(Debug, Clone)]
pub struct TestVmOptions {
    /// Profiles directory.
    pub profiles: PathBuf,
    /// VM profile name.
    pub name: String,
    /// Output directory (`OUT/NAME/` gets the reports).
    pub output: PathBuf,
    /// Mirror URL the system is built from (this machine's, under test).
    pub mirror: String,
    /// VM memory in MiB.
    pub memory_mib: u32,
    /// Boot limit.
    pub boot_timeout: Duration,
    /// Cache directory.
    pub cache: PathBuf,
    /// Attach the data disk.
    pub data_disk: bool,
}

/// Why `test vm` could not run (a failed check is not an error: see the outcome).
#[derive(Debug, thiserror::Error)]
pub enum TestVmError {
    /// The profiles do not check.
    #[error(transparent)]
    Profiles(#[from] ProfileError),
    /// No such VM.
    #[error(transparent)]
    Arg(#[from] VmArgError),
    /// Building or booting failed.
    #[error(transparent)]
    Vm(#[from] VmError),
}

impl crate::exit_class::ExitClass for TestVmError {
    fn exit_class(&self) -> crate::exit_class::Class {
        match self {
            TestVmError::Profiles(e) => e.exit_class(),
            TestVmError::Arg(e) => e.exit_class(),
            TestVmError::Vm(e) => e.exit_class(),
        }
    }
}

/// Runs the proof of one VM profile; the reports are in the returned directory.
pub fn run(o: &TestVmOptions) -> Result<(ProofOutcome, PathBuf), TestVmError> {
    let project = crate::project::open(&o.profiles)?;
    let profiles = &project.loaded.profiles;
    let vm = profiles
        .vms
        .get(&o.name)
        .ok_or_else(|| VmArgError::Unknown {
            name: o.name.clone(),
            known: profiles.vm_names(),
        })?;
    let (key, pubkey) = proof::test_key(&o.cache, "declared")?;
    let system =
        super::from_profile::system_of(vm, &profiles.hosts[&vm.node], Some(&o.mirror), &[pubkey]);
    let dir = o.output.join(&o.name);
    let opts = ProofOptions {
        build_mirror: o.mirror.clone(),
        cache: o.cache.clone(),
        out: dir.clone(),
        memory_mib: o.memory_mib,
        boot_timeout: o.boot_timeout,
        data_disk: o.data_disk,
    };
    let outcome = proof::run(&system, &key, &opts)?;
    let seconds = outcome.image.seconds + outcome.boot_seconds;
    let junit = outcome
        .report()
        .junit(&format!("test-vm-{}", o.name), seconds);
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(VmError::io("write", &p))
    };
    write("report.xml", junit)?;
    let json = serde_json::to_string_pretty(&outcome).unwrap_or_default() + "\n";
    write("report.json", json)?;
    Ok((outcome, dir))
}
