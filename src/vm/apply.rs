//! `picaboot vm create` against a node: the reads of [`super::create::read_steps`] over SSH
//! (the system `ssh`, the admin's config and agent, as `cluster form`), the judgement, then
//! the steps one at a time, stopping at the first that fails.

use std::path::Path;
use std::time::Duration;

use super::create::{self, ImageOnNode, Judgement, NodeState, Refusal, Step, StepKind};
use crate::exec::Input;
use crate::profile::Vm;

/// The longest the image upload may take (a 2 GiB image over a slow uplink).
pub const UPLOAD_DEADLINE: Duration = Duration::from_secs(60 * 60);

/// Why `vm create` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// ssh could not run, or the remote command failed.
    #[error("step {step} on {dest} ({command}): {reason}")]
    Step {
        /// Step number (1-based).
        step: usize,
        /// ssh destination.
        dest: String,
        /// The command.
        command: String,
        /// Why.
        reason: String,
    },
    /// The node answered something that is not Proxmox's.
    #[error(transparent)]
    State(#[from] create::StateError),
    /// The node's state forbids acting.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The image cannot be read.
    #[error("image {path}: {reason}")]
    Image {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
}

impl crate::exit_class::ExitClass for ApplyError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            ApplyError::Refused(_) | ApplyError::Image { .. } => Class::User,
            ApplyError::Step { .. } | ApplyError::State(_) => Class::Env,
        }
    }
}

/// One remote command; its stdout on success.
fn remote(dest: &str, step: &Step, input: Input<'_>, n: usize) -> Result<String, ApplyError> {
    let deadline = if step.kind == StepKind::Upload {
        UPLOAD_DEADLINE
    } else {
        crate::ops::SSH_DEADLINE
    };
    let fail = |reason: String| ApplyError::Step {
        step: n,
        dest: dest.to_string(),
        command: step.command.clone(),
        reason,
    };
    crate::ops::remote(dest, &step.command, &step.command, input, deadline).map_err(fail)
}

/// What `vm create` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// What the node's state was.
    pub judgement: Judgement,
    /// The steps run after the reads.
    pub steps: Vec<Step>,
}

/// Reads the node's state, judges it and acts: creates `vm` with `image` (at `image_path`
/// here), replaces a differing one only with `replace`.
pub fn run(
    vm: &Vm,
    dest: &str,
    image_path: &Path,
    image: &ImageOnNode,
    replace: bool,
    progress: &mut dyn FnMut(usize, usize, &Step),
) -> Result<Outcome, ApplyError> {
    let reads = create::read_steps(vm);
    progress(1, reads.len(), &reads[0]);
    let resources = remote(dest, &reads[0], Input::Nothing, 1)?;
    let holder = create::holder_of(&resources, vm.vmid)?;
    let config = if holder.as_deref() == Some(vm.node.as_str()) {
        progress(2, reads.len(), &reads[1]);
        Some(create::parse_config(&remote(
            dest,
            &reads[1],
            Input::Nothing,
            2,
        )?)?)
    } else {
        None
    };
    let judgement = create::judge(vm, &NodeState { holder, config });
    let steps = create::apply_steps(vm, image, &judgement, replace)?;
    for (i, step) in steps.iter().enumerate() {
        progress(i + 1, steps.len(), step);
        let input = if step.kind == StepKind::Upload {
            let f = std::fs::File::open(image_path).map_err(|e| ApplyError::Image {
                path: image_path.display().to_string(),
                reason: e.to_string(),
            })?;
            Input::File(f)
        } else {
            Input::Nothing
        };
        remote(dest, step, input, reads.len() + i + 1)?;
    }
    Ok(Outcome { judgement, steps })
}
