//! Every command the README shows is exercised by a test: this file extracts each command line
//! from the README's ```sh blocks (comments dropped, `\` continuations joined) and requires one
//! entry of [`COMMANDS`] for it. Cheap commands are run here, verbatim but for the binary
//! (`cargo run --release --` and `$B` become the binary under test) in a scratch copy of the
//! repository's profiles and images; the others name the test that runs them, and that test
//! must exist. A README command without an entry, or an entry no longer in the README, fails.

use crate::common;

use std::process::Command;

/// How a README command is exercised.
enum How {
    /// Run here; must exit 0.
    Run,
    /// Run by this test (file under tests/, function name).
    By(&'static str, &'static str),
    /// Not a command to test: why.
    Not(&'static str),
}

use How::*;

const COMMANDS: &[(&str, How)] = &[
    ("cargo run --release -- render alice", Run),
    ("scripts/test", By("../../.ci/run", "scripts/test")),
    ("cargo build --release", Not("the build of the binary these tests run")),
    ("B=target/release/picaboot", Not("a shell variable")),
    ("$B netboot alice", By("netboot_build.rs", "netboot_all_writes_every_host_and_one_combined_menu")),
    ("$B serve out --listen 0.0.0.0:8080", By("serve.rs", "serve_binary_with_curl_and_sigterm")),
    ("$B image list", Run),
    ("$B image build tx-apache", By("images.rs", "two_clean_builds_give_the_same_manifest_digest")),
    ("$B image build tx-apache --host-mirror", By("images.rs", "two_clean_builds_give_the_same_manifest_digest")),
    ("skopeo inspect oci:out/images:tx-apache", By("images.rs", "skopeo_and_umoci_accept_the_layout")),
    (
        "podman run -d --runtime runc --ulimit nofile=8192:8192 --ulimit nproc=4096:4096 -p 8080:80 oci-archive:out/images/tx-apache.oci.tar",
        By("images.rs", "podman_runs_each_image_and_its_check_passes"),
    ),
    ("$B image test tx-apache", By("images.rs", "a_failing_check_exits_3")),
    ("$B image test tx-debian tx-apache tx-nginx --vm", By("vm_images.rs", "tx_apache_passes_its_check_in_the_qemu_guest")),
    (
        "$B image test tx-apache --vm --runtime docker",
        By("../../scripts/test-docker", "tx_apache_oci_tar_is_docker_loaded"),
    ),
    ("$B image dockerfile tx-apache", Run),
    ("$B check", Run),
    ("$B vm list", Run),
    ("$B services render -o services-out", Run),
    ("$B services form --dry-run", Run),
    (
        "$B services form",
        Not("needs the services VMs over ssh: the plan is unit-tested in src/services/plan.rs, the token hand-over in src/services/apply.rs; the two-guest proof is the next stage's"),
    ),
    ("$B vm create pica01 --dry-run", Run),
    (
        "$B vm create pica01 --image FILE",
        Not("needs a Proxmox node over ssh: the sequence is unit-tested in src/vm/create.rs, the dry run in vm_create.rs"),
    ),
    ("$B test vm pica01", By("vm_system.rs", "pica01_boots_from_its_disk_passes_its_self_test_and_its_image_is_reused")),
    ("$B test services", By("services_proof.rs", "pica01_and_pica02_form_the_volume_the_swarm_and_the_stack_and_survive_a_power_cut")),
    (
        "PICABOOT_REGISTRY_USERNAME=… PICABOOT_REGISTRY_PASSWORD=… $B image push tx-apache --to registry.picasoft.net:5000/tx-apache:latest",
        By("push.rs", "push_cli_errors_are_clear_and_auth_file_works"),
    ),
    ("$B completions bash > /etc/bash_completion.d/picaboot", By("cli.rs", "completion_scripts_parse_in_their_shells")),
    ("$B man /usr/local/share/man/man1", By("cli.rs", "every_man_page_renders_with_man")),
    ("export PATH=$PATH:/usr/sbin:/sbin", Not("environment for the commands below")),
    ("export PICABOOT_AMT_PASSWORD='…'", Not("environment: the AMT credential (tests/it/amt.rs passes its own)")),
    ("$B power alice status", By("amt.rs", "power_status_pxe_once_and_transitions_through_apache_digest")),
    ("$B power alice --pxe-once reset", By("power_vm.rs", "power_pxe_once_reset_brings_a_disk_booted_vm_into_the_installer")),
    ("$B power alice on|off|cycle", By("amt.rs", "power_status_pxe_once_and_transitions_through_apache_digest")),
    (
        "$B backup form picasoft --dry-run",
        Run,
    ),
    (
        "$B cluster form picasoft --dry-run",
        By("cli.rs", "cluster_form_dry_run_prints_the_sequence_for_picasoft"),
    ),
    ("$B diff alice", By("diff.rs", "diff_reports_exactly_the_edited_and_the_deleted_file")),
    ("$B reinstall alice --listen ADDR:8080", By("amt.rs", "reinstall_refuses_a_silent_amt_and_asks_for_the_host_name")),
    (
        "$B test install alice --allow-unverified-udebs",
        By("../../scripts/test-install", "picaboot test install \"$host\" --allow-unverified-udebs"),
    ),
    (
        "scripts/test-install alice",
        Not("the whole install proof, about 55 min under TCG: by hand (scripts/test runs its install and first boot)"),
    ),
    (
        "scripts/test-reinstall",
        Not("reinstall alice end to end against a QEMU box, about an hour under TCG: by hand, outside CI's budget (its run is in README)"),
    ),
    (
        "scripts/test-proxmox",
        Not("the Proxmox first-boot unit in a guest, about 10 min under TCG: by hand, outside CI's budget (its run is in README)"),
    ),
    (
        r#"cp -r profiles /tmp/grub-on-ssd0 && sed -i 's/^boot-disks = .*/boot-disks = ["ssd0"]/' /tmp/grub-on-ssd0/hosts/alice.toml"#,
        By("oracle_storage.rs", "grub_on_one_ssd_keeps_the_boot_area_on_both_and_names_one_bootdev"),
    ),
    (
        "$B test install alice --profiles /tmp/grub-on-ssd0 --tamper /etc/hosts --allow-unverified-udebs",
        Not("the install proof's failure demo: one whole install (about 55 min), by hand"),
    ),
    (
        "$B test install alice --frontend gtk --allow-unverified-udebs",
        By("../../scripts/test-gtk", "test install \"$host\" --frontend gtk --allow-unverified-udebs"),
    ),
    (
        "$B test install alice --frontend gtk --allow-unverified-udebs --omit-answer passwd/root-password-crypted",
        By("../../scripts/test-gtk", "--omit-answer passwd/root-password-crypted"),
    ),
    (
        "scripts/test-gtk",
        Not("the gtk proof and its failing variant, about 13 min under TCG: by hand, outside CI's budget (its run is in README)"),
    ),
    (
        "$B test install bob --allow-unverified-udebs",
        Not("the same scenario as alice's with bob's profiles; about 40 minutes, run by hand"),
    ),
];

/// The command lines of the README's ```sh blocks.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = match line.find(" #") {
            Some(i) => &line[..i],
            None => line,
        };
        let code = code.trim();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head.trim());
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        out.push(pending.split_whitespace().collect::<Vec<_>>().join(" "));
        pending.clear();
    }
    out
}

#[test]
fn every_readme_command_is_exercised() {
    let shown = readme_commands();
    assert!(shown.len() > 10, "{shown:?}");
    for cmd in &shown {
        let entry = COMMANDS.iter().find(|(c, _)| c == cmd);
        let Some((_, how)) = entry else {
            panic!("README command `{cmd}` has no entry in tests/it/readme.rs COMMANDS");
        };
        if let Not(why) = how {
            assert!(!why.is_empty(), "`{cmd}`: say why it is not tested");
        }
        if let By(file, name) = how {
            let src = std::fs::read_to_string(common::root().join("tests/it").join(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(
                src.contains(&format!("fn {name}()")) || src.contains(name),
                "`{cmd}`: {file} has no {name}"
            );
        }
    }
    for (c, _) in COMMANDS {
        assert!(
            shown.iter().any(|s| s == c),
            "`{c}` is listed but no longer in the README"
        );
    }
}

#[test]
fn cheap_readme_commands_run_verbatim() {
    let bin = env!("CARGO_BIN_EXE_picaboot");
    let scratch = common::scratch_profiles();
    common::copy_tree(
        &common::root().join("images"),
        &scratch.path().join("images"),
    );
    for (cmd, how) in COMMANDS {
        if !matches!(how, Run) {
            continue;
        }
        let line = cmd
            .replace("cargo run --release --", "\"$PICABOOT\"")
            .replace("$B", "\"$PICABOOT\"");
        let o = Command::new("sh")
            .args(["-ec", &line])
            .env("PICABOOT", bin)
            .env_remove("PICABOOT_PROFILES")
            .current_dir(scratch.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "README `{cmd}` failed ({:?}):\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(scratch.path().join("out/alice/manifest.json").is_file());
    assert!(scratch
        .path()
        .join("out/dockerfiles/tx-apache/Dockerfile")
        .is_file());
}
