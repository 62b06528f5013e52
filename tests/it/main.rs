//! picaboot's integration tests, one binary: one module per area, shared helpers in
//! [`common`]. A tier runs by its module name: `cargo test --test it amt::`, and the slow
//! proofs outside CI by their scripts (`scripts/test-reinstall`, `scripts/test-proxmox`,
//! `scripts/test-docker`).

mod common;

mod amt;
mod bad_profiles;
mod check_deadline;
mod cli;
mod closed_stdout;
mod diff;
mod exit_codes;
mod golden;
mod hostile;
mod hostile_replies;
mod image_check_deadline;
mod image_test_sigint;
mod images;
mod junit_xml;
mod kill9;
mod netboot_build;
mod netboot_chain;
mod netboot_qemu;
mod oracle_corosync;
mod oracle_find_disks;
mod oracle_mirror;
mod oracle_rc_local;
mod oracle_scripts;
mod oracle_storage;
mod output_layout;
mod power_vm;
mod push;
mod push_bearer;
mod readme;
mod reinstall_vm;
mod save_sync;
mod serve;
mod serve_done;
mod serve_hostile;
mod serve_mirror;
mod serve_mirror_escape;
mod serve_names;
mod serve_syslog;
mod serve_trust;
mod services;
mod services_proof;
mod ssh_deadline;
mod test_install_sigint;
mod test_registry;
mod vm_create;
mod vm_images;
mod vm_netboot;
mod vm_podman;
mod vm_proxmox;
mod vm_storage;
mod vm_system;
