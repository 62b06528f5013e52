//! JUnit reports made from a guest console full of terminal noise (ESC sequences, CR, NUL,
//! invalid UTF-8) are well-formed XML 1.0, as `xmllint` (libxml2) reads them, and keep the
//! check names and details readable.

use crate::common;

use std::process::Command;

use picaboot::qemu::report::Report;

#[test]
fn junit_from_a_noisy_console_is_valid_xml() {
    common::require("xmllint", "libxml2-utils");
    let console: &[u8] = b"\x1b[2J\x1b[HBooting\r\n\x00\x00\
PICABOOT-CHECK podman-runs PASS ok\r\n\
PICABOOT-CHECK tx-apache FAIL \x1b[31mcurl: (7) refused\x1b[0m \x00\x07\x08\x0b\x0c \xff\xfe\xc3\x28 <&\"'> \xef\xbf\xbe\r\n\
[  3.1] \x1bc PICABOOT-CHECK esc\x1bname FAIL x\n\
PICABOOT-DONE rc=1\r\n";
    let report = Report::parse_bytes(console);
    let xml = report.junit("image-test \x1b[1m<suite>", 12.5);
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("report.xml");
    std::fs::write(&path, &xml).unwrap();
    // --xpath prints what the parser understood: the failure messages, as text.
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmllint refused the report: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("xmllint")
        .args([
            "--nonet",
            "--xpath",
            "string(//testcase[@name='tx-apache']/failure/@message)",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let message = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        message
            .starts_with("\\u{1b}[31mcurl: (7) refused\\u{1b}[0m \\u{0}\\u{7}\\u{8}\\u{b}\\u{c}"),
        "{message:?}"
    );
    assert!(message.contains("<&\"'>"), "{message:?}");
    let out = Command::new("xmllint")
        .args(["--nonet", "--xpath", "count(//testcase)"])
        .arg(&path)
        .output()
        .unwrap();
    // podman-runs, tx-apache, the ESC-named check, and the guest's rc=1.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
}
