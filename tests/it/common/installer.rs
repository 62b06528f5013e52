//! The Debian installer under QEMU, for the netboot tiers: alice's text-frontend netboot tree
//! built through the library, and the newt screen text of a serial console.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use picaboot::debian::{Client, ClientOptions, DEFAULT_KEYRING};
use picaboot::netboot::{self, NetbootOptions};
use picaboot::output;
use picaboot::profile::Frontend;
use picaboot::render::{render_hosts, RenderOptions};

/// Screens an unattended install must never show: questions the preseed answers (the mirror
/// screen showing means the preseed's mirror was refused) and a kernel panic.
pub const NEVER_SHOWN: &[&str] = &[
    "Select a language",
    "Select your location",
    "Configure the keyboard",
    "Configure the network",
    "Choose a mirror of the Debian archive",
    "Set up users and passwords",
    "Kernel panic",
];

/// Builds alice's text-frontend netboot tree under `out`, installing from this machine's
/// mirror (the profile's public mirror may be out of reach here); returns the netboot
/// directory, the install MAC and the kernel arguments.
pub fn alice_netboot(out: &Path) -> (PathBuf, String, String) {
    crate::common::sbin_path();
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let project = picaboot::project::open_with(
        &profiles,
        &picaboot::project::Overrides {
            mirror: Some(crate::common::mirror()),
            ..Default::default()
        },
    )
    .unwrap();
    let host = &project.loaded.profiles.hosts["alice"];
    let tree = render_hosts(&project, &["alice".to_string()], RenderOptions::default())
        .unwrap()
        .trees
        .remove("alice")
        .unwrap();
    let client = Client::new(ClientOptions {
        mirror: crate::common::mirror(),
        keyring: DEFAULT_KEYRING.into(),
        insecure: false,
        cache_dir: crate::common::shared_cache(),
    });
    let target = netboot::target_dir(out, "alice");
    let (staged, _) = netboot::stage(
        &client,
        host,
        &tree,
        &target,
        &NetbootOptions {
            frontend: Some(Frontend::Text),
            supplement: true,
            base_url: "http://10.0.2.2:8080".into(),
            keyring_append: None,
            report_to: None,
        },
    )
    .unwrap();
    output::publish(vec![staged]).unwrap();
    let mac = netboot::install_mac(host).unwrap().to_string();
    let args = netboot::boot::kernel_args(host, Frontend::Text, &mac);
    (target, mac, args.to_string())
}

/// The text of a newt screen drawn on a serial console: escape sequences (CSI, charset
/// selection) and shift-in/out removed, whitespace runs folded to one space.
pub fn screen_text(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            match chars.peek() {
                Some('[') => {
                    chars.next();
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                Some('(') | Some(')') => {
                    chars.next();
                    chars.next();
                }
                _ => {}
            }
            out.push(' ');
        } else if c != '\x0e' && c != '\x0f' {
            out.push(c);
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
