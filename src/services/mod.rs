//! The services layer (stage 1): what `services.toml` declares, rendered into the stack file
//! and the per-VM files ([`render`]), and the ordered remote commands that apply it
//! ([`plan`]). Nothing here connects anywhere; GlusterFS, Docker and Traefik did not run here.
//! [`test_registry`] serves the tx-registry image's configuration on loopback for tests.

pub mod apply;
pub mod labels;
pub mod plan;
pub mod proof;
pub mod render;
pub mod test_registry;

use crate::profile::Loaded;

/// Why the services layer cannot be rendered or planned.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    /// The profiles declare no `services.toml`.
    #[error("{0}/services.toml does not exist: no services layer is declared")]
    Undeclared(String),
    /// A template failed (a bug: the model was checked).
    #[error("rendering {what}: {source}")]
    Template {
        /// The file.
        what: String,
        /// The cause.
        source: tera::Error,
    },
}

/// The `note:` `check` prints when the swarm has exactly two managers: Raft needs a majority
/// of managers, so two tolerate no manager failure.
pub fn quorum_note(loaded: &Loaded) -> Option<String> {
    let s = loaded.profiles.services.as_ref()?;
    let src = loaded.services_source.as_ref()?;
    (s.swarm.managers() == 2).then(|| {
        format!(
            "note: {}:{}: swarm.managers: two managers tolerate zero manager failures (Raft \
             needs a majority: 2 of 2); if either is lost the swarm cannot be managed or \
             reschedule tasks (running tasks go on). Declare one manager and one worker (the \
             worker's tasks are rescheduled only while the manager lives), or a third manager \
             (tolerates one failure)",
            src.path().display(),
            src.line_of("swarm.managers")
        )
    })
}

impl crate::exit_class::ExitClass for ServicesError {
    fn exit_class(&self) -> crate::exit_class::Class {
        match self {
            ServicesError::Undeclared(_) => crate::exit_class::Class::User,
            ServicesError::Template { .. } => crate::exit_class::Class::Bug,
        }
    }
}

/// The shipped `profiles/services.toml`, loaded (unit tests of the services modules).
#[cfg(test)]
pub(crate) fn shipped() -> crate::profile::services::Services {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    crate::profile::load(&dir)
        .expect("shipped profiles load")
        .profiles
        .services
        .expect("services.toml is shipped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_managers_get_the_quorum_note_one_does_not() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let mut loaded = crate::profile::load(&dir).unwrap();
        assert_eq!(
            quorum_note(&loaded),
            None,
            "shipped: one manager, one worker"
        );
        let s = loaded.profiles.services.as_mut().unwrap();
        s.swarm.members[1].manager = true;
        let note = quorum_note(&loaded).unwrap();
        assert!(note.starts_with("note: "), "{note}");
        assert!(note.contains("zero manager failures") && note.contains("third manager"));
    }
}
