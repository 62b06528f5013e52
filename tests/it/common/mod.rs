//! Helpers shared by the integration tests: a scratch copy of the shipped profiles, running
//! the real binary, requiring external tools (a missing tool fails the test, naming its
//! Debian package; nothing is skipped), network namespaces, this machine's Debian mirror and a
//! tiny HTTP server over a directory.

#![allow(dead_code)]

pub mod amt;
pub mod amt_vm;
pub mod installer;
pub mod oci;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from).sort_by_file_name() {
        let e = e.unwrap();
        let target = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else if e.file_type().is_file() {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A temp dir holding a copy of the shipped profiles at `DIR/profiles` (and of `images/` at
/// `DIR/images`).
pub fn scratch_profiles() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&root().join("profiles"), &dir.path().join("profiles"));
    // services.toml names picaboot's images, looked up beside the profiles.
    copy_tree(&root().join("images"), &dir.path().join("images"));
    dir
}

/// Replaces exactly one occurrence of `from` in a file (panics if it is not there once).
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{}: `{from}` must occur exactly once",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// Runs the picaboot binary in `cwd`.
pub fn picaboot(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PICABOOT_PROFILES")
        .output()
        .expect("run picaboot")
}

/// A podman container (its name), removed (`podman rm -f`) on drop.
pub struct Container(pub String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "1", &self.0])
            .output();
    }
}

/// Fails the test unless `program` runs; names the Debian package to install.
pub fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .env("PATH", path_with_sbin())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is missing: install the Debian package `{package}` (scripts/test does)"
    );
}

/// PATH including the sbin directories (tools like mdadm live there).
pub fn path_with_sbin() -> String {
    format!(
        "{}:/usr/local/sbin:/usr/sbin:/sbin",
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A command with PATH including sbin.
pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("PATH", path_with_sbin());
    c
}

/// Runs a command (stdin closed), panicking with its output when it fails; returns stdout.
pub fn run_ok(c: &mut Command) -> String {
    String::from_utf8_lossy(&run_output(c).stdout).into_owned()
}

/// Runs a command (stdin closed), panicking with its output when it fails; returns it all.
pub fn run_output(c: &mut Command) -> Output {
    let out = c
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Renders every host of a profiles dir with the library, into a fresh temp dir; returns it.
pub fn render_all(profiles: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = picaboot(
        profiles.parent().unwrap(),
        &[
            "render",
            "--all",
            "--profiles",
            profiles.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        o.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (dir, out)
}

static NETNS_COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A fresh network namespace (loopback up), deleted on drop.
pub struct Netns(pub String);

impl Netns {
    /// Creates `pb-TAG-PID-N`.
    pub fn new(tag: &str) -> Self {
        let n = NETNS_COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("pb-{tag}-{}-{n}", std::process::id());
        run_ok(cmd("ip").args(["netns", "add", &name]));
        run_ok(cmd("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        Netns(name)
    }

    /// `ip -n NS ARGS…`, stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        run_ok(cmd("ip").arg("-n").arg(&self.0).args(args))
    }

    /// `ip -n NS ARGS…` parsed as JSON (pass `-j`).
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ip(args)).unwrap()
    }

    /// A command prefix running inside the namespace (`ip netns exec NS`).
    pub fn exec(&self) -> Command {
        let mut c = cmd("ip");
        c.args(["netns", "exec", &self.0]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = cmd("ip")
            .args(["netns", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::OnceLock;

/// This machine's Debian mirror.
pub fn mirror() -> String {
    picaboot::debian::sources::system_mirror()
        .expect("this machine's apt sources name a Debian mirror")
}

/// A cache shared by the tests of this checkout (kept between runs, so they are warm).
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("picaboot-cache")
}

/// Makes sure sbin directories are on PATH (depmod lives in /usr/sbin).
pub fn sbin_path() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let p = std::env::var("PATH").unwrap_or_default();
        if !p.split(':').any(|d| d == "/usr/sbin") {
            // Tests run single-process; PATH is only extended, never replaced.
            std::env::set_var("PATH", format!("{p}:/usr/sbin:/sbin"));
        }
    });
}

/// Serves `dir` over HTTP on 127.0.0.1 (GET only, 404 for missing files); returns the base URL.
pub fn serve_dir(dir: &Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let root = dir.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let file = root.join(path.trim_start_matches('/'));
                let ok = !path.contains("..") && file.is_file();
                if ok {
                    let mut f = std::fs::File::open(&file).unwrap();
                    let len = f.metadata().unwrap().len();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                    );
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = f.read(&mut buf).unwrap();
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                } else {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Downloads `url` (test fixtures from this machine's mirror).
pub fn get(url: &str) -> Vec<u8> {
    let client = picaboot::http::blocking(None).unwrap();
    picaboot::http::get(&client, url)
        .and_then(|r| {
            r.bytes().map_err(|e| picaboot::http::HttpError::Get {
                url: url.to_string(),
                reason: e.to_string(),
                status: None,
            })
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .to_vec()
}

/// Runs `task` on a current-thread tokio runtime of its own, in a new thread (the mock
/// servers of the registry tests).
pub fn on_own_runtime(task: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(task);
    });
}

/// Set in the child process [`own_process`] starts.
const OWN_PROCESS: &str = "PICABOOT_TEST_OWN_PROCESS";

/// For a test that changes what the whole process shares (PATH, an environment variable the
/// library reads, a watchdog that exits): true in a child process of this test binary that
/// runs only `test` (`module::function`), where the test goes on; in the parent, runs that
/// child, asserts it passed and returns false (the parent's test then returns). The other
/// tests of this binary never see the change.
pub fn own_process(test: &str) -> bool {
    if std::env::var_os(OWN_PROCESS).is_some() {
        return true;
    }
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(OWN_PROCESS, "1")
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in its own process: {}\n{stdout}\n{stderr}",
        out.status
    );
    false
}

/// Processes other than this test binary whose command line mentions `needle` (`PID: argv`):
/// what a test looks for after its program should have ended everything it started.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            found.push(format!("{pid}: {cmd}"));
        }
    }
    found
}
