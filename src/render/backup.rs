//! The backup files of a cluster node (002 §14): the pull of the peer's dumps (script,
//! service, timer) and the sshd drop-in that lets the peer's key in, restricted.

use serde::Serialize;

use super::{template, HostRender, RenderError};
use crate::backup::{self, Pull};

/// Context of the pull templates.
#[derive(Serialize)]
struct PullCtx<'a> {
    source: String,
    cluster: &'a str,
    path: &'a str,
    pull: &'a Pull,
    key: &'static str,
    known_hosts: &'static str,
    ssh_options: String,
    script: &'static str,
    service: &'static str,
}

/// Context of the sshd drop-in: `serve` is the peer's pull of this node.
#[derive(Serialize)]
struct ServeCtx<'a> {
    source: String,
    cluster: &'a str,
    serve: &'a Pull,
    serve_dir: &'static str,
    restriction: String,
}

impl HostRender<'_> {
    /// The pull script, service and timer, and the sshd drop-in, when the host's cluster has
    /// `[backup]`.
    pub(super) fn backup(&mut self) -> Result<(), RenderError> {
        let profiles = &self.project.loaded.profiles;
        let Some(cl) = self
            .host
            .cluster
            .as_ref()
            .and_then(|c| profiles.clusters.get(c))
        else {
            return Ok(());
        };
        let Some(b) = &cl.backup else { return Ok(()) };
        let pulls = backup::pulls(profiles, cl);
        let source = format!("clusters/{}.toml", cl.profile);
        let name = &self.host.name;
        if let Some(pull) = pulls.iter().find(|p| &p.node == name) {
            let ctx = PullCtx {
                source: source.clone(),
                cluster: &cl.profile,
                path: &b.path,
                pull,
                key: backup::KEY,
                known_hosts: backup::KNOWN_HOSTS,
                ssh_options: backup::plan::ssh_options(),
                script: backup::SCRIPT,
                service: backup::SERVICE,
            };
            let rel = |p: &str| p.trim_start_matches('/').to_string();
            self.rootfs
                .add(rel(backup::SCRIPT), template("save-pull.sh", &ctx)?, 0o755)?;
            let unit = |u: &str| format!("etc/systemd/system/{u}");
            self.rootfs.add(
                unit(backup::SERVICE),
                template("save-pull.service", &ctx)?,
                0o644,
            )?;
            self.rootfs.add(
                unit(backup::TIMER),
                template("save-pull.timer", &ctx)?,
                0o644,
            )?;
            self.enable_units.push(backup::TIMER.to_string());
        }
        if let Some(serve) = pulls.iter().find(|p| &p.peer == name) {
            let ctx = ServeCtx {
                source,
                cluster: &cl.profile,
                serve,
                serve_dir: backup::SERVE_DIR,
                restriction: backup::restriction(serve),
            };
            self.rootfs.add(
                backup::SSHD_DROPIN.trim_start_matches('/'),
                template("sshd-save.conf", &ctx)?,
                0o644,
            )?;
        }
        Ok(())
    }
}
