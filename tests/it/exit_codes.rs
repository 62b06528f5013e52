//! The exit-code contract of every command, one case of each class per command, run through
//! the real binary: 0 for `--help`/`--version`, 1 bad input (clap usage errors included, never
//! clap's own 2), 2 the environment, 3 a failed test (`image test`: tests/it/images.rs
//! `a_failing_check_exits_3…`, which needs podman and a built image), 70 an internal error
//! (unit tests of `cli::exit`: no command can be made to hit a bug on purpose).

use crate::common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn expect(cwd: &Path, args: &[&str], want: i32) -> String {
    let o = common::picaboot(cwd, args);
    assert_eq!(
        code(&o),
        Some(want),
        "picaboot {}: {}",
        args.join(" "),
        text(&o)
    );
    text(&o)
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn help_and_version_exit_0_and_usage_errors_exit_1() {
    let root = common::root();
    expect(&root, &["--help"], 0);
    expect(&root, &["--version"], 0);
    expect(&root, &["image", "--help"], 0);
    let usage: &[&[&str]] = &[
        &[],
        &["no-such-command"],
        &["check", "--bogus"],
        &["render"],
        &["serve", "--listen", "not-an-address"],
        &["netboot"],
        &["image", "build"],
        &["image", "dockerfile"],
        &["image", "test"],
        &["image", "push", "tx"],
        // A zero deadline is refused by the parser (it was exit 2, "unreachable … cannot
        // set a 0 duration timeout").
        &["power", "alice", "status", "--timeout", "0"],
        &["reinstall", "alice", "--timeout", "0"],
        &["reinstall", "alice", "--first-boot-timeout-min", "0"],
        &["test", "install", "alice", "--install-timeout-min", "0"],
    ];
    for args in usage {
        let out = expect(&root, args, 1);
        assert!(
            out.contains("Usage:") || out.contains("try '--help'"),
            "{args:?}: {out}"
        );
    }
}

#[test]
fn bad_input_exits_1_in_every_command() {
    let dir = common::scratch_profiles();
    let p = dir.path().join("profiles");
    let p = p.to_str().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    common::edit(
        &dir.path().join("profiles/hosts/alice.toml"),
        "ipv4 = \"91.224.148.84/32\"",
        "ipv4 = \"91.224.148.300/32\"",
    );
    expect(dir.path(), &["check", "--profiles", p], 1);
    expect(
        dir.path(),
        &["check", "--profiles", "/nonexistent/profiles"],
        1,
    );
    let root = common::root();
    expect(&root, &["render", "no-such-host", "-o", out], 1);
    expect(&root, &["serve", "/nonexistent/out"], 1);
    expect(&root, &["netboot", "no-such-host", "-o", out], 1);
    expect(
        &root,
        &[
            "netboot",
            "alice",
            "--mirror",
            "ftp://example/debian",
            "-o",
            out,
        ],
        1,
    );
    expect(&root, &["image", "build", "no-such-image", "-o", out], 1);
    expect(
        &root,
        &["image", "dockerfile", "no-such-image", "-o", out],
        1,
    );
    expect(
        &root,
        &[
            "image",
            "push",
            "tx",
            "--to",
            "127.0.0.1:1/Bad",
            "--layout",
            out,
        ],
        1,
    );
}

/// A minimal OCI layout holding image `tx` (one empty config, no layer).
fn tiny_layout(dir: &Path) {
    common::oci::write_layout(dir, &[], false);
}

#[test]
fn the_environment_exits_2_in_every_command() {
    let root = common::root();
    let t = tempfile::tempdir().unwrap();
    // Output under /proc cannot be created: the file system refuses.
    expect(
        &root,
        &["render", "alice", "-o", "/proc/picaboot-no-such-dir"],
        2,
    );
    expect(
        &root,
        &[
            "image",
            "dockerfile",
            "tx-debian",
            "-o",
            "/proc/picaboot-no-such-dir",
        ],
        2,
    );
    // The port is taken.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let served = t.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let o = expect(
        &root,
        &["serve", served.to_str().unwrap(), "--listen", &addr],
        2,
    );
    assert!(o.contains("cannot listen on"), "{o}");
    // Nothing answers at the mirror or the registry.
    let closed = format!("http://127.0.0.1:{}/debian", closed_port());
    let out = t.path().join("out");
    let o = expect(
        &root,
        &[
            "netboot",
            "alice",
            "--mirror",
            &closed,
            "-o",
            out.to_str().unwrap(),
        ],
        2,
    );
    assert!(o.contains("InRelease"), "{o}");
    let layout = t.path().join("layout");
    tiny_layout(&layout);
    let to = format!("127.0.0.1:{}/team/tx:v1", closed_port());
    let o = expect(
        &root,
        &[
            "image",
            "push",
            "tx",
            "--to",
            &to,
            "--layout",
            layout.to_str().unwrap(),
            "--plain-http",
        ],
        2,
    );
    assert!(o.contains("cannot reach registry"), "{o}");
    // `check` reads nothing but the profiles: it has no environment failure of its own.
}

/// A credentials value that is not a file (the secret typed where its file was expected) is
/// refused as bad input without being echoed (it was `reading admin:pw: No such file`).
#[test]
fn a_credentials_value_that_is_not_a_file_is_not_echoed() {
    let root = common::root();
    let args = [
        "power",
        "alice",
        "status",
        "--credentials",
        "admin:Pw-0f-alice",
    ];
    let o = common::picaboot(&root, &args);
    let out = text(&o);
    assert_eq!(code(&o), Some(1), "{out}");
    assert!(out.contains("could not be read"), "{out}");
    assert!(!out.contains("Pw-0f-alice"), "{out}");
}
