//! Rendering: a checked [`Project`] -> one output tree per host (`preseed.cfg`,
//! `late-command.sh`, `rootfs/…`), every file from a tera template and a typed context.

mod backup;
mod context;
pub mod filters;
pub mod selftest;
pub mod templates;
pub mod variant;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cluster;
use crate::output::{OutputError, Tree};
use crate::profile::{cluster_lock_path, ClusterLock, Host};
use crate::project::Project;

pub use context::language_country;
pub use variant::{InstallerSources, TestVariant, HARNESS_UID};

/// Packages every host gets besides the profile's: what the rendered files need.
pub const BASE_PACKAGES: &[&str] = &[
    "openssh-server",
    "mdadm",
    "lvm2",
    "gdisk",
    "iproute2",
    "iptables",
];

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The host has no profile.
    #[error("no host profile `{name}` (known: {known})")]
    UnknownHost {
        /// Asked for.
        name: String,
        /// Known hosts.
        known: String,
    },
    /// A template failed.
    #[error("template {name}: {source}")]
    Template {
        /// Template name.
        name: String,
        /// Tera's error (its source chain says which variable).
        #[source]
        source: tera::Error,
    },
    /// `--locked` and corosync.conf changed.
    #[error(
        "corosync.conf of cluster `{cluster}` changed, so its config_version must rise, but \
         --locked forbids updating {path}; render without --locked and commit the lock file"
    )]
    LockedVersion {
        /// Cluster profile.
        cluster: String,
        /// Lock path.
        path: PathBuf,
    },
    /// Building the tree failed.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Rendering options.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Fail instead of updating a cluster's config_version lock.
    pub locked: bool,
    /// Render the test variant of `picaboot test install` (never for production).
    pub test: Option<TestVariant>,
    /// The installer's sources when they are the harness's (tests only, never the real box).
    pub sources: Option<InstallerSources>,
}

/// The result of rendering some hosts.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Tree per host name.
    pub trees: BTreeMap<String, Tree>,
    /// Lock files to write once the trees are published: `(path, cluster name, lock)`.
    pub lock_updates: Vec<(PathBuf, String, ClusterLock)>,
}

fn template(name: &str, ctx: &impl serde::Serialize) -> Result<String, RenderError> {
    templates::render(name, ctx).map_err(|source| RenderError::Template {
        name: name.to_string(),
        source,
    })
}

/// Where a Proxmox-managed node keeps the rendered corosync.conf (`cluster form` reads it).
pub const PROXMOX_COROSYNC: &str = "etc/picaboot/corosync.conf";

/// The first-boot unit that installs Proxmox VE.
pub const PROXMOX_UNIT: &str = "picaboot-proxmox.service";

/// The corosync.conf of a cluster with its resolved config_version.
fn corosync_conf(
    project: &Project,
    cluster_profile: &str,
    opts: &RenderOptions,
    updates: &mut Vec<(PathBuf, String, ClusterLock)>,
) -> Result<String, RenderError> {
    let profiles = &project.loaded.profiles;
    let cl = &profiles.clusters[cluster_profile];
    let mut data = cluster::corosync(profiles, cl);
    let zero = template("corosync.conf", &context::CorosyncCtx { corosync: &data })?;
    let decision = cluster::resolve_version(cl.lock.as_ref(), &cluster::content_hash(&zero));
    if let Some(lock) = decision.new_lock {
        let path = cluster_lock_path(&project.loaded.dir, cluster_profile);
        if opts.locked {
            return Err(RenderError::LockedVersion {
                cluster: cluster_profile.to_string(),
                path,
            });
        }
        if !updates.iter().any(|(p, ..)| p == &path) {
            updates.push((path, cl.name.clone(), lock));
        }
    }
    data.config_version = decision.version;
    template("corosync.conf", &context::CorosyncCtx { corosync: &data })
}

/// Renders the named hosts (every check has already passed in [`crate::project::open`]).
pub fn render_hosts(
    project: &Project,
    names: &[String],
    opts: RenderOptions,
) -> Result<Rendered, RenderError> {
    let hosts = &project.loaded.profiles.hosts;
    let mut trees = BTreeMap::new();
    let mut lock_updates = Vec::new();
    let mut corosync_cache: BTreeMap<String, String> = BTreeMap::new();
    for name in names {
        let host = hosts.get(name).ok_or_else(|| RenderError::UnknownHost {
            name: name.clone(),
            known: project.loaded.profiles.host_names(),
        })?;
        let corosync = match &host.cluster {
            Some(c) => {
                if !corosync_cache.contains_key(c) {
                    let text = corosync_conf(project, c, &opts, &mut lock_updates)?;
                    corosync_cache.insert(c.clone(), text);
                }
                corosync_cache.get(c).cloned()
            }
            None => None,
        };
        trees.insert(
            name.clone(),
            host_tree(
                project,
                host,
                corosync,
                opts.test.as_ref(),
                opts.sources.as_ref(),
            )?,
        );
    }
    Ok(Rendered {
        trees,
        lock_updates,
    })
}

/// The post-install check of a production render (beside `preseed.cfg`, not in `rootfs/`).
pub const POST_INSTALL_CHECK: &str = "post-install-check.sh";

/// One host's render in progress: its context, its `rootfs/` tree so far, and the systemd
/// units the late command enables.
struct HostRender<'a> {
    project: &'a Project,
    host: &'a Host,
    ctx: context::HostCtx<'a>,
    test: Option<&'a TestVariant>,
    rootfs: Tree,
    enable_units: Vec<String>,
}

impl HostRender<'_> {
    /// rc.local, the NICs' .link files, hostname, hosts, interfaces, the kernel parameters.
    fn network_and_boot(&mut self) -> Result<(), RenderError> {
        let (ctx, host, rootfs) = (&self.ctx, self.host, &mut self.rootfs);
        rootfs.add("etc/rc.local", template("rc.local", ctx)?, 0o755)?;
        for nic in &host.nics {
            let nic_ctx = context::NicCtx {
                source: &ctx.source,
                nic,
            };
            rootfs.add(
                format!("etc/systemd/network/10-picaboot-{}.link", nic.name),
                template("link", &nic_ctx)?,
                0o644,
            )?;
        }
        rootfs.add("etc/hostname", format!("{}\n", host.hostname), 0o644)?;
        rootfs.add("etc/hosts", template("hosts", ctx)?, 0o644)?;
        rootfs.add(
            "etc/network/interfaces",
            template("interfaces", ctx)?,
            0o644,
        )?;
        if !ctx.kernel_params.is_empty() {
            rootfs.add(
                "etc/default/grub.d/picaboot.cfg",
                template("grub.cfg", ctx)?,
                0o644,
            )?;
        }
        Ok(())
    }

    /// corosync.conf: into /etc/corosync for a standalone cluster; for a Proxmox one, the
    /// copy `cluster form` installs and the Proxmox first-boot unit.
    fn cluster(&mut self, corosync: Option<String>) -> Result<(), RenderError> {
        let Some(text) = corosync else {
            return Ok(());
        };
        let host = self.host;
        let cluster = host
            .cluster
            .as_ref()
            .and_then(|c| self.project.loaded.profiles.clusters.get(c));
        match cluster.and_then(|c| c.manager.proxmox().map(|r| (c, r))) {
            Some((cl, repo)) => {
                // pmxcfs owns the cluster config: nothing goes to /etc/corosync (pmxcfs would
                // import it and `pvecm create` would refuse); `cluster form` installs this copy.
                self.rootfs.add(PROXMOX_COROSYNC, text, 0o644)?;
                let px = context::ProxmoxCtx {
                    source: format!("clusters/{}.toml", cl.profile),
                    suite: &host.install.suite,
                    fqdn: host.fqdn(),
                    repo,
                };
                self.rootfs.add(
                    "etc/apt/sources.list.d/proxmox.sources",
                    template("proxmox.sources", &px)?,
                    0o644,
                )?;
                self.rootfs.add(
                    "usr/local/sbin/picaboot-proxmox",
                    template("proxmox-setup.sh", &px)?,
                    0o755,
                )?;
                self.rootfs.add(
                    format!("etc/systemd/system/{PROXMOX_UNIT}"),
                    template("proxmox.service", &px)?,
                    0o644,
                )?;
                // The test variant installs it without starting it: the Proxmox repository
                // is out of reach there (tests/it/vm_proxmox.rs runs it against a local one).
                if self.test.is_none() {
                    self.enable_units.push(PROXMOX_UNIT.to_string());
                }
            }
            None => self.rootfs.add("etc/corosync/corosync.conf", text, 0o644)?,
        }
        self.rootfs.add(
            "etc/systemd/system/corosync.service.d/picaboot.conf",
            template("corosync-override.conf", &self.ctx)?,
            0o644,
        )?;
        Ok(())
    }

    /// mdadm.conf, the disk finder, the first-boot storage setup, root's ssh keys.
    fn storage_and_access(&mut self) -> Result<(), RenderError> {
        let (ctx, host, rootfs) = (&self.ctx, self.host, &mut self.rootfs);
        rootfs.add("etc/mdadm/mdadm.conf", template("mdadm.conf", ctx)?, 0o644)?;
        let find_ctx = context::FindDisksCtx::new(&ctx.source, &ctx.host, host);
        rootfs.add(
            "usr/local/sbin/picaboot-find-disks",
            template("find-disks.sh", &find_ctx)?,
            0o755,
        )?;
        if !ctx.first_boot_arrays.is_empty() {
            rootfs.add(
                "usr/local/sbin/picaboot-storage-setup",
                template("storage-setup.sh", ctx)?,
                0o755,
            )?;
            rootfs.add(
                "etc/systemd/system/picaboot-storage-setup.service",
                template("storage-setup.service", ctx)?,
                0o644,
            )?;
            self.enable_units
                .push("picaboot-storage-setup.service".to_string());
        }
        if !host.ssh_keys.is_empty() {
            let mut keys = host.ssh_keys.join("\n");
            keys.push('\n');
            rootfs.add("root/.ssh/authorized_keys", keys, 0o600)?;
        }
        Ok(())
    }

    /// The self-test over every production file (added after them): installed and enabled
    /// in the test variant.
    fn selftest(&mut self, t: &TestVariant) -> Result<(), RenderError> {
        let st = selftest::SelftestCtx::new(
            &self.ctx.source,
            self.ctx.host.clone(),
            self.host,
            &self.project.plans[&self.host.name],
            &self.rootfs,
            t,
        );
        self.rootfs.add(
            "usr/local/sbin/picaboot-selftest",
            template("selftest.sh", &st)?,
            0o755,
        )?;
        self.rootfs.add(
            "etc/systemd/system/picaboot-selftest.service",
            template("selftest.service", &st)?,
            0o644,
        )?;
        self.enable_units
            .push("picaboot-selftest.service".to_string());
        Ok(())
    }

    /// The install self-test's checks for a live host over ssh (`reinstall`, or by hand:
    /// `ssh root@HOST sh -s < post-install-check.sh`); not installed on the host.
    fn post_install_check(&self) -> Result<String, RenderError> {
        let mut st = selftest::SelftestCtx::new(
            &self.ctx.source,
            self.ctx.host.clone(),
            self.host,
            &self.project.plans[&self.host.name],
            &self.rootfs,
            &TestVariant {
                harness_uid: HARNESS_UID.into(),
                ..TestVariant::default()
            },
        );
        st.over_ssh = true;
        template("selftest.sh", &st)
    }

    /// The installer's files (partman-early.sh, late-command.sh, preseed.cfg), then
    /// `rootfs/` beside them.
    fn into_tree(self) -> Result<Tree, RenderError> {
        let mut tree = Tree::new();
        if self.test.is_none() {
            tree.add(POST_INSTALL_CHECK, self.post_install_check()?, 0o755)?;
        }
        let (ctx, host, test) = (&self.ctx, self.host, self.test);
        let early = context::PartmanEarlyCtx {
            source: &ctx.source,
            host: &ctx.host,
            tokens: context::PartmanTokens::new(host, ctx.recipe),
            progress_url: test.and_then(|t| t.progress_url.clone()),
            resync_limit_kib: test.and_then(|t| t.resync_limit_kib),
        };
        tree.add(
            "partman-early.sh",
            template("partman-early.sh", &early)?,
            0o755,
        )?;
        let files: Vec<context::FileCtx> = self
            .rootfs
            .manifest()
            .into_iter()
            .map(|m| context::FileCtx {
                path: m.path,
                mode: m.mode,
            })
            .collect();
        let late = context::LateCtx {
            host: &ctx.host,
            files,
            enable_units: self.enable_units.clone(),
            test,
        };
        tree.add(
            "late-command.sh",
            template("late-command.sh", &late)?,
            0o755,
        )?;
        tree.add("preseed.cfg", template("preseed.cfg", ctx)?, 0o644)?;
        for (path, f) in self.rootfs.files() {
            tree.add(format!("rootfs/{path}"), f.bytes.clone(), f.mode)?;
        }
        Ok(tree)
    }
}

/// The tree of one host: its `rootfs/` (network, cluster, storage, access, and the test
/// variant's self-test), then the installer's files.
fn host_tree(
    project: &Project,
    host: &Host,
    corosync: Option<String>,
    test: Option<&TestVariant>,
    sources: Option<&InstallerSources>,
) -> Result<Tree, RenderError> {
    let mut r = HostRender {
        project,
        host,
        ctx: context::HostCtx::new(project, host, test, sources),
        test,
        rootfs: Tree::new(),
        enable_units: Vec::new(),
    };
    r.network_and_boot()?;
    r.cluster(corosync)?;
    r.storage_and_access()?;
    r.backup()?;
    if let Some(t) = test {
        r.selftest(t)?;
    }
    r.into_tree()
}

impl crate::exit_class::ExitClass for RenderError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            RenderError::UnknownHost { .. } | RenderError::LockedVersion { .. } => Class::User,
            // Contexts are typed: a template that fails is picaboot's fault.
            RenderError::Template { .. } => Class::Bug,
            RenderError::Output(o) => o.exit_class(),
        }
    }
}
