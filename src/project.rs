//! A checked project: profiles loaded and validated, then every host's storage planned, so that
//! every problem is known (and reported as `file:line: field: reason`) before anything renders.

use std::collections::BTreeMap;
use std::path::Path;

use crate::profile::{self, Diagnostics, Loaded, ProfileError};
use crate::storage::{self, partman::PartmanRecipe, Plan};

/// Profiles plus the derived storage plans.
#[derive(Debug, Clone)]
pub struct Project {
    /// Validated profiles and their sources.
    pub loaded: Loaded,
    /// Storage plan per host.
    pub plans: BTreeMap<String, Plan>,
    /// partman values per host.
    pub recipes: BTreeMap<String, PartmanRecipe>,
}

/// Loads, validates and plans every host under `dir`.
pub fn open(dir: &Path) -> Result<Project, ProfileError> {
    let loaded = profile::load(dir)?;
    let mut diags = Diagnostics::default();
    let mut plans = BTreeMap::new();
    let mut recipes = BTreeMap::new();
    for (name, host) in &loaded.profiles.hosts {
        let src = &loaded.host_sources[name];
        match storage::plan(host) {
            Ok(plan) => {
                match storage::partman::recipe(&plan) {
                    Ok(r) => {
                        recipes.insert(name.clone(), r);
                    }
                    Err(e) => diags.push(src.diag(e.field, e.reason)),
                }
                plans.insert(name.clone(), plan);
            }
            Err(errors) => {
                for e in errors {
                    diags.push(src.diag(e.field, e.reason));
                }
            }
        }
    }
    if diags.is_empty() {
        Ok(Project {
            loaded,
            plans,
            recipes,
        })
    } else {
        Err(ProfileError::Invalid(diags.finish()))
    }
}
