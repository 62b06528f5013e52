//! `vm create`'s decisions, apart from any connection: the Proxmox configuration a VM
//! profile asks for, the node's state read back (`pvesh … --output-format json`), the
//! judgement (absent, matching, differing, taken), and the exact `qm` sequence.
//!
//! Grammar and behaviour follow Proxmox's own documentation: `qm create` options and the
//! `import-from` disk option (pve-docs `qm.adoc`, "Import Disk Images"; the API schema of
//! `POST /nodes/{node}/qemu`), `GET /cluster/resources?type=vm` for the VM ids in use and
//! `GET /nodes/{node}/qemu/{vmid}/config` for one VM's configuration (pve-manager
//! `PVE/API2/Cluster.pm`, qemu-server `PVE/API2/Qemu.pm`). Proxmox does not run here: the
//! sequence is unit-tested over recorded states (see the tests), as `cluster form`'s is.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::profile::Vm;

/// Where `vm create` copies a VM's system image on the node (Proxmox's `local` storage
/// keeps imports under `import/`; `import-from` reads any absolute path root can read).
pub const IMAGE_DIR: &str = "/var/lib/vz/import/picaboot";

/// The system image of a VM as `vm create` places it on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageOnNode {
    /// Absolute path on the node (`/var/lib/vz/import/picaboot/pica01-<sha>.raw`).
    pub path: String,
    /// The image's SHA-256 (lower-case hex).
    pub sha256: String,
}

impl ImageOnNode {
    /// The place of an image not built yet (`vm create --dry-run` without `--image`).
    pub fn placeholder(vm: &Vm) -> Self {
        ImageOnNode {
            path: format!("{IMAGE_DIR}/{}-<sha256>.raw", vm.name),
            sha256: "<sha256 of the image>".into(),
        }
    }

    /// The image of `vm` with digest `sha256`, named by both.
    pub fn new(vm: &Vm, sha256: &str) -> Self {
        ImageOnNode {
            path: format!(
                "{IMAGE_DIR}/{}-{}.raw",
                vm.name,
                &sha256[..sha256.len().min(16)]
            ),
            sha256: sha256.to_string(),
        }
    }
}

/// Size in whole GiB, rounded up (Proxmox sizes disks in GiB: `local:200`, `size=200G`).
fn gib_ceil(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 30)
}

/// The configuration keys a VM profile decides, as Proxmox shows them in a VM's config.
/// Disks are compared by their size only (their volume names are Proxmox's).
pub fn desired_config(vm: &Vm) -> BTreeMap<String, String> {
    let mut c = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        c.insert(k.to_string(), v);
    };
    set("name", vm.hostname.clone());
    set("cores", vm.cores.to_string());
    set("memory", (vm.memory_bytes >> 20).to_string());
    set("ostype", "l26".into());
    set("scsihw", "virtio-scsi-single".into());
    // The serial console is where the image's self-test reports (`qm terminal VMID`).
    set("serial0", "socket".into());
    // No guest agent in the image: Proxmox must not wait for one (agent 0).
    set("agent", "0".into());
    set("onboot", "1".into());
    set("boot", "order=scsi0".into());
    for n in &vm.nics {
        set(
            &n.name,
            format!("virtio={},bridge={}", n.mac.to_uppercase(), n.bridge),
        );
    }
    set(
        "scsi0.size",
        format!("{}G", gib_ceil(vm.system_disk.size_bytes)),
    );
    if let Some(d) = &vm.data_disk {
        set("scsi1.size", format!("{}G", gib_ceil(d.disk.size_bytes)));
    }
    c
}

/// What the node says of a VM id: where it is, and its configuration when it is on the node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeState {
    /// The node holding this VM id in the cluster, if any (from `/cluster/resources`).
    pub holder: Option<String>,
    /// Its configuration, flattened as [`desired_config`] spells it, when on our node.
    pub config: Option<BTreeMap<String, String>>,
}

/// Why the node's answers could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the node's answer to `{what}` is not what Proxmox prints: {reason}")]
pub struct StateError {
    /// The query.
    pub what: String,
    /// Why.
    pub reason: String,
}

crate::exit_class::fixed_class!(crate::exit_class::Class::Env; StateError);

/// The node holding `vmid`, from `pvesh get /cluster/resources --type vm --output-format json`
/// (an array of `{"vmid": N, "node": "…", "type": "qemu"|"lxc", …}`).
pub fn holder_of(resources_json: &str, vmid: u32) -> Result<Option<String>, StateError> {
    let err = |reason: String| StateError {
        what: "pvesh get /cluster/resources --type vm".into(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_str(resources_json).map_err(|e| err(e.to_string()))?;
    let v = v.get("data").cloned().unwrap_or(v);
    let arr = v.as_array().ok_or_else(|| err("not a JSON array".into()))?;
    for r in arr {
        if r.get("vmid").and_then(serde_json::Value::as_u64) == Some(u64::from(vmid)) {
            let node = r.get("node").and_then(|n| n.as_str()).unwrap_or("?");
            return Ok(Some(node.to_string()));
        }
    }
    Ok(None)
}

/// `size=200G` of a disk property string (`local:101/vm-101-disk-0.raw,size=200G`).
fn disk_size(prop: &str) -> Option<String> {
    prop.split(',')
        .find_map(|kv| kv.strip_prefix("size="))
        .map(str::to_string)
}

/// A VM's configuration from `pvesh get /nodes/NODE/qemu/VMID/config --output-format json`
/// (an object; numbers or strings as the API types them), flattened like [`desired_config`].
pub fn parse_config(config_json: &str) -> Result<BTreeMap<String, String>, StateError> {
    let err = |reason: String| StateError {
        what: "pvesh get /nodes/NODE/qemu/VMID/config".into(),
        reason,
    };
    let v: serde_json::Value = serde_json::from_str(config_json).map_err(|e| err(e.to_string()))?;
    // The API wraps its answer in `data`; pvesh prints the answer alone.
    let v = v.get("data").cloned().unwrap_or(v);
    let obj = v
        .as_object()
        .ok_or_else(|| err("not a JSON object".into()))?;
    let mut c = BTreeMap::new();
    for (k, v) in obj {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => u8::from(*b).to_string(),
            _ => continue,
        };
        if k.starts_with("scsi") && k[4..].chars().all(|c| c.is_ascii_digit()) && k != "scsihw" {
            if let Some(size) = disk_size(&text) {
                c.insert(format!("{k}.size"), size);
            }
            continue;
        }
        // Proxmox adds defaults the profile does not decide (digest, meta, vmgenid, smbios1).
        c.insert(k.clone(), text);
    }
    Ok(c)
}

/// One configuration key that differs on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Key (`memory`, `net0`, `scsi1.size`).
    pub key: String,
    /// What the profile asks.
    pub want: String,
    /// What the node has (`(none)` when missing).
    pub have: String,
}

/// What the node's state means for a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Judgement {
    /// No VM has this id: create it.
    Absent,
    /// The VM is there as the profile says: nothing to do.
    Matches,
    /// The VM is there and differs (each difference named).
    Differs {
        /// The differences.
        differences: Vec<Difference>,
    },
    /// Another node holds this VM id.
    Elsewhere {
        /// That node.
        node: String,
    },
}

/// Compares the node's state with what the profile asks.
pub fn judge(vm: &Vm, state: &NodeState) -> Judgement {
    match (&state.holder, &state.config) {
        (Some(h), _) if *h != vm.node => Judgement::Elsewhere { node: h.clone() },
        (_, None) => Judgement::Absent,
        (_, Some(have)) => {
            let differences: Vec<Difference> = desired_config(vm)
                .into_iter()
                .filter(|(k, want)| have.get(k) != Some(want))
                .map(|(k, want)| Difference {
                    have: have.get(&k).cloned().unwrap_or_else(|| "(none)".into()),
                    key: k,
                    want,
                })
                .collect();
            if differences.is_empty() {
                Judgement::Matches
            } else {
                Judgement::Differs { differences }
            }
        }
    }
}

/// What a step of `vm create` does (the executor acts on its output by kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Which node holds the VM id.
    ReadResources,
    /// The VM's configuration on the node.
    ReadConfig,
    /// `--replace`: the differing VM is stopped and destroyed.
    Destroy,
    /// The system image goes to the node (ssh's stdin), checked by its SHA-256 there.
    Upload,
    /// `qm create` with the image imported.
    Create,
    /// The system disk grows to the profile's size.
    Resize,
    /// The uploaded image is removed (the VM has its own copy).
    Cleanup,
    /// `qm start`.
    Start,
}

/// One step: the remote command on the VM's node, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What it does.
    pub kind: StepKind,
    /// The remote shell command.
    pub command: String,
    /// What it is for.
    pub why: String,
}

impl Step {
    /// What the step's command reads on its stdin, when it reads anything.
    pub fn stdin(&self) -> Option<&'static str> {
        (self.kind == StepKind::Upload)
            .then_some("the VM's system image (from `picaboot vm image`)")
    }
}

fn q(s: &str) -> String {
    crate::render::filters::shell_quote(s)
}

/// The two reads that decide what is done.
pub fn read_steps(vm: &Vm) -> Vec<Step> {
    vec![
        Step {
            kind: StepKind::ReadResources,
            command: "pvesh get /cluster/resources --type vm --output-format json".into(),
            why: format!(
                "is VM id {} free in the cluster, or already {}'s?",
                vm.vmid, vm.node
            ),
        },
        Step {
            kind: StepKind::ReadConfig,
            command: format!(
                "pvesh get /nodes/{}/qemu/{}/config --output-format json",
                q(&vm.node),
                vm.vmid
            ),
            why: format!(
                "{}'s configuration, compared key by key (only when {} holds it)",
                vm.name, vm.node
            ),
        },
    ]
}

/// `qm create`'s options: everything [`desired_config`] decides, the system disk imported
/// from the image, the data disk allocated.
fn create_command(vm: &Vm, image: &ImageOnNode) -> String {
    let mut c = format!("qm create {}", vm.vmid);
    for (k, v) in desired_config(vm) {
        if !k.contains('.') {
            c.push_str(&format!(" --{k} {}", q(&v)));
        }
    }
    c.push_str(&format!(
        " --scsi0 {}",
        q(&format!(
            "{}:0,import-from={}",
            vm.system_disk.storage, image.path
        ))
    ));
    if let Some(d) = &vm.data_disk {
        c.push_str(&format!(
            " --scsi1 {}",
            q(&format!(
                "{}:{}",
                d.disk.storage,
                gib_ceil(d.disk.size_bytes)
            ))
        ));
    }
    c
}

/// Why `vm create` does not act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The VM exists and differs, and `--replace` was not given.
    #[error("{vm} (VM {vmid}) on {node} differs from its profile: {}; nothing was changed (--replace destroys it and creates it again, its disks with it)", list(differences))]
    Differs {
        /// VM name.
        vm: String,
        /// VM id.
        vmid: u32,
        /// Node.
        node: String,
        /// The differences.
        differences: Vec<Difference>,
    },
    /// Another node holds the VM id.
    #[error("VM id {vmid} is {node}'s, not {want}'s: {vm} cannot take it; nothing was changed")]
    Elsewhere {
        /// VM name.
        vm: String,
        /// VM id.
        vmid: u32,
        /// The node holding it.
        node: String,
        /// The profile's node.
        want: String,
    },
}

fn list(d: &[Difference]) -> String {
    d.iter()
        .map(|d| format!("{} is {} (profile: {})", d.key, d.have, d.want))
        .collect::<Vec<_>>()
        .join(", ")
}

crate::exit_class::fixed_class!(crate::exit_class::Class::User; Refusal);

/// The steps after the reads, for what they found: none when the VM matches.
pub fn apply_steps(
    vm: &Vm,
    image: &ImageOnNode,
    judgement: &Judgement,
    replace: bool,
) -> Result<Vec<Step>, Refusal> {
    let mut steps = Vec::new();
    match judgement {
        Judgement::Matches => return Ok(steps),
        Judgement::Elsewhere { node } => {
            return Err(Refusal::Elsewhere {
                vm: vm.name.clone(),
                vmid: vm.vmid,
                node: node.clone(),
                want: vm.node.clone(),
            })
        }
        Judgement::Differs { differences } if !replace => {
            return Err(Refusal::Differs {
                vm: vm.name.clone(),
                vmid: vm.vmid,
                node: vm.node.clone(),
                differences: differences.clone(),
            })
        }
        Judgement::Differs { .. } => steps.push(Step {
            kind: StepKind::Destroy,
            command: format!("qm stop {0} && qm destroy {0} --purge 1", vm.vmid),
            why: format!(
                "--replace: {} is stopped and destroyed with its disks",
                vm.name
            ),
        }),
        Judgement::Absent => {}
    }
    let part = format!("{}.part", image.path);
    steps.push(Step {
        kind: StepKind::Upload,
        command: format!(
            "mkdir -p {dir} && cat > {p} && echo {sum} | sha256sum -c --quiet && mv {p} {img}",
            dir = q(IMAGE_DIR),
            p = q(&part),
            sum = q(&format!("{}  {part}", image.sha256)),
            img = q(&image.path)
        ),
        why: "the system image, checked on the node by its SHA-256 before use".into(),
    });
    steps.push(Step {
        kind: StepKind::Create,
        command: create_command(vm, image),
        why: format!(
            "create {} (VM {}) with its NICs, serial console, no agent, the image imported as scsi0{}",
            vm.name,
            vm.vmid,
            if vm.data_disk.is_some() { " and the data disk as scsi1" } else { "" }
        ),
    });
    steps.push(Step {
        kind: StepKind::Resize,
        command: format!("qm disk resize {} scsi0 {}G", vm.vmid, gib_ceil(vm.system_disk.size_bytes)),
        why: "grow the system disk to the profile's size (the image's root filesystem grows at first boot)".into(),
    });
    steps.push(Step {
        kind: StepKind::Cleanup,
        command: format!("rm -f {}", q(&image.path)),
        why: "the VM holds its own copy of the image".into(),
    });
    steps.push(Step {
        kind: StepKind::Start,
        command: format!("qm start {}", vm.vmid),
        why: format!(
            "start {}; its self-test reports on the serial console (qm terminal {})",
            vm.name, vm.vmid
        ),
    });
    Ok(steps)
}

#[cfg(test)]
mod tests {
    //! The node states below are shaped like Proxmox VE 8.1's answers as recorded in
    //! hashicorp/packer-plugin-proxmox (`datasource/proxmoxtemplate` tests: `/cluster/resources`
    //! and `/nodes/pve/qemu/N/config`, with `memory` a string, `cores` a number, the defaults
    //! Proxmox adds such as `digest`, `meta`, `vmgenid`, `smbios1`, and disks as
    //! `STORAGE:VOLUME,…,size=32G`), with pica01's values put in.
    use super::*;

    fn pica01() -> Vm {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        crate::profile::load(&dir)
            .expect("shipped profiles")
            .profiles
            .vms["pica01"]
            .clone()
    }

    fn image() -> ImageOnNode {
        ImageOnNode::new(&pica01(), &"ab".repeat(32))
    }

    const RESOURCES: &str = r#"[{"diskread":0,"netout":0,"type":"qemu","name":"first-vm","vmid":100,"id":"qemu/100","maxmem":2147483648,"status":"stopped","node":"alice","maxdisk":34359738368},
        {"type":"qemu","name":"pica01","vmid":101,"id":"qemu/101","maxmem":8589934592,"status":"running","node":"alice","maxdisk":42949672960}]"#;

    /// pica01 as `vm create` made it, as Proxmox shows it.
    const CONFIG: &str = r#"{"data":{"digest":"a3a5061cd0f35f0aa14fd98b20095963d53cd225","meta":"creation-qemu=8.1.5,ctime=1729285359",
        "vmgenid":"48935acd-21f9-4733-a695-5072949deab5","smbios1":"uuid=271b5345-f952-4c99-a299-b66d71b4e736",
        "name":"pica01","cores":2,"memory":"8192","ostype":"l26","scsihw":"virtio-scsi-single","serial0":"socket",
        "agent":"0","onboot":1,"boot":"order=scsi0",
        "net0":"virtio=02:50:1C:A1:01:00,bridge=vmbr0","net1":"virtio=02:50:1C:A1:01:01,bridge=vmbr1",
        "scsi0":"local:101/vm-101-disk-0.raw,size=40G","scsi1":"local:101/vm-101-disk-1.raw,size=200G"}}"#;

    fn state(resources: &str, config: Option<&str>) -> NodeState {
        NodeState {
            holder: holder_of(resources, 101).unwrap(),
            config: config.map(|c| parse_config(c).unwrap()),
        }
    }

    #[test]
    fn absent_vm_is_created_with_its_image_nics_and_disks() {
        let vm = pica01();
        let st = state(&RESOURCES.replace("\"vmid\":101", "\"vmid\":199"), None);
        let j = judge(&vm, &st);
        assert_eq!(j, Judgement::Absent);
        let steps = apply_steps(&vm, &image(), &j, false).unwrap();
        let kinds: Vec<StepKind> = steps.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                StepKind::Upload,
                StepKind::Create,
                StepKind::Resize,
                StepKind::Cleanup,
                StepKind::Start
            ]
        );
        let create = &steps[1].command;
        for want in [
            "qm create 101 ",
            "--net0 virtio=02:50:1C:A1:01:00,bridge=vmbr0",
            "--net1 virtio=02:50:1C:A1:01:01,bridge=vmbr1",
            "--serial0 socket",
            "--agent 0",
            "--boot order=scsi0",
            "--memory 8192",
            "--scsi0 local:0,import-from=/var/lib/vz/import/picaboot/pica01-abababababababab.raw",
            "--scsi1 local:200",
        ] {
            assert!(create.contains(want), "`{want}` not in {create}");
        }
        assert!(steps[0].command.contains("sha256sum -c"));
        assert_eq!(steps[2].command, "qm disk resize 101 scsi0 40G");
    }

    #[test]
    fn matching_vm_is_left_alone() {
        let vm = pica01();
        let j = judge(&vm, &state(RESOURCES, Some(CONFIG)));
        assert_eq!(j, Judgement::Matches);
        assert!(apply_steps(&vm, &image(), &j, false).unwrap().is_empty());
    }

    #[test]
    fn differing_vm_is_named_and_refused_unless_replace() {
        let vm = pica01();
        let changed = CONFIG
            .replace("\"memory\":\"8192\"", "\"memory\":\"4096\"")
            .replace("bridge=vmbr1", "bridge=vmbr0")
            .replace(",size=200G", ",size=100G");
        let j = judge(&vm, &state(RESOURCES, Some(&changed)));
        let Judgement::Differs { differences } = &j else {
            panic!("{j:?}")
        };
        let keys: Vec<&str> = differences.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["memory", "net1", "scsi1.size"]);
        let err = apply_steps(&vm, &image(), &j, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory is 4096 (profile: 8192)"), "{err}");
        assert!(err.contains("scsi1.size is 100G (profile: 200G)"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        let steps = apply_steps(&vm, &image(), &j, true).unwrap();
        assert_eq!(steps[0].kind, StepKind::Destroy);
        assert_eq!(steps[0].command, "qm stop 101 && qm destroy 101 --purge 1");
    }

    #[test]
    fn a_vm_id_held_by_the_other_node_is_refused() {
        let vm = pica01();
        let j = judge(
            &vm,
            &state(
                &RESOURCES.replace(
                    "\"running\",\"node\":\"alice\"",
                    "\"running\",\"node\":\"bob\"",
                ),
                None,
            ),
        );
        assert_eq!(j, Judgement::Elsewhere { node: "bob".into() });
        let err = apply_steps(&vm, &image(), &j, true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "VM id 101 is bob's, not alice's: pica01 cannot take it; nothing was changed"
        );
    }

    #[test]
    fn answers_that_are_not_proxmox_json_are_errors() {
        assert!(holder_of("<html>", 101).is_err());
        assert!(holder_of("{}", 101).is_err());
        assert!(parse_config("[1]").is_err());
    }
}
