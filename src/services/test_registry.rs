//! A throwaway copy of the site's registry for tests (`picaboot test services`, tests/it):
//! Debian's `docker-registry` serving **the same `config.yml` as `images/tx-registry`**, on
//! loopback, with a throwaway CA and a server certificate for the name the test uses, and a
//! random password in a bcrypt htpasswd file.
//!
//! What differs from the admin VM: it listens on `127.0.0.1:PORT` instead of `:5000`, its
//! certificate comes from a CA made for this run (the VM's is the site's real one), and the
//! image's paths (`/certs`, `/auth`, `/var/lib/docker-registry`) are moved into the work
//! directory by docker-registry's own `REGISTRY_*` variables, which override the file.
//!
//! The password is read from `/dev/urandom`, kept as a [`Secret`], given to `htpasswd -B -i`
//! on its stdin (never on a command line) and never logged; the registry only ever sees its
//! bcrypt hash. Every program runs under a deadline; the registry runs in a process group of
//! its own, killed on drop (and on SIGINT/SIGTERM through [`crate::cleanup`]).

use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::exec::{self, ExecError};
use crate::image::build::{BuildError, BuildMirror, Built};
use crate::registry::{self, Credentials, PushOptions, RegistryError};
use crate::secret::Secret;

/// The user name of the test registry's htpasswd file.
pub const USER: &str = "picaboot";
/// The registry's configuration inside the tx-registry image directory.
pub const CONFIG: &str = "tx-registry/config.yml";
/// Deadline of each openssl / htpasswd run.
const TOOL_DEADLINE: Duration = Duration::from_secs(60);
/// How long the registry gets to answer `/v2/`.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Tag every pushed image gets (the stack names images without a tag).
pub const TAG: &str = "latest";

/// Why the test registry could not be made, started or used.
#[derive(Debug, thiserror::Error)]
pub enum TestRegistryError {
    /// A program (openssl, htpasswd, docker-registry) failed or is missing.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The host name cannot go into a certificate.
    #[error("test registry: host name {0:?} is not a DNS name or an IP address")]
    HostName(String),
    /// The registry did not answer `/v2/` with 401 over TLS in time.
    #[error("test registry on 127.0.0.1:{port} not ready within {}s: {reason}; its log ends:\n{log_tail}", START_DEADLINE.as_secs())]
    NotReady {
        /// Its port.
        port: u16,
        /// The last thing seen (an exit status, an HTTP status, a connection error).
        reason: String,
        /// Last lines of its log.
        log_tail: String,
    },
    /// The push to it failed.
    #[error(transparent)]
    Push(#[from] RegistryError),
    /// Building the image to push failed.
    #[error(transparent)]
    Build(#[from] BuildError),
}

impl crate::exit_class::ExitClass for TestRegistryError {
    fn exit_class(&self) -> crate::exit_class::Class {
        match self {
            TestRegistryError::Push(e) => e.exit_class(),
            TestRegistryError::Build(e) => e.exit_class(),
            TestRegistryError::HostName(_) => crate::exit_class::Class::User,
            _ => crate::exit_class::Class::Env,
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestRegistryError {
    let what = what.into();
    move |source| TestRegistryError::Io { what, source }
}

/// The files of a throwaway CA and of one server certificate it signed.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM): what clients trust.
    pub ca_pem: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server key (PEM, mode 0600).
    pub key: PathBuf,
}

/// A running test registry; Drop stops it (its whole process group).
#[derive(Debug)]
pub struct TestRegistry {
    port: u16,
    host_name: String,
    tls: TlsFiles,
    password: Secret,
    log: PathBuf,
    child: Child,
    group: Option<crate::cleanup::Guard>,
}

/// Makes, in `dir` (created mode 0700), a CA (`ca.pem`, `ca.key`) and a server certificate
/// (`server.pem`, `server.key`) for `host_name` and 127.0.0.1 (subjectAltName `DNS:NAME` or
/// `IP:ADDR`, and `IP:127.0.0.1`), valid two days, with Debian's `openssl`. Keys are mode 0600.
pub fn throwaway_tls(dir: &Path, host_name: &str) -> Result<TlsFiles, TestRegistryError> {
    let san = san_of(host_name)?;
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("chmod {}", dir.display())))?;
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca_subject = format!("/CN=picaboot throwaway CA for {host_name}");
    openssl(
        "making the test registry's CA",
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem"))
            .args(["-days", "2", "-subj", &ca_subject]),
    )?;
    openssl(
        "making the test registry's key",
        Command::new("openssl")
            .arg("req")
            .args(ec)
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr"))
            .args(["-subj", &format!("/CN={host_name}")]),
    )?;
    let ext = format!(
        "subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    );
    std::fs::write(p("server.ext"), ext).map_err(io("writing server.ext"))?;
    openssl(
        "signing the test registry's certificate",
        Command::new("openssl")
            .args(["x509", "-req", "-in"])
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .args(["-CAcreateserial", "-days", "2", "-out"])
            .arg(p("server.pem"))
            .arg("-extfile")
            .arg(p("server.ext")),
    )?;
    for k in ["ca.key", "server.key"] {
        std::fs::set_permissions(p(k), std::fs::Permissions::from_mode(0o600))
            .map_err(io(format!("chmod {k}")))?;
    }
    Ok(TlsFiles {
        ca_pem: p("ca.pem"),
        cert: p("server.pem"),
        key: p("server.key"),
    })
}

/// `DNS:NAME` or `IP:ADDR`, then `IP:127.0.0.1`; only names made of letters, digits, `-`
/// and `.` (nothing that could end the extension line).
fn san_of(host_name: &str) -> Result<String, TestRegistryError> {
    let loopback = "IP:127.0.0.1";
    if let Ok(ip) = host_name.parse::<IpAddr>() {
        return Ok(if ip == IpAddr::from([127, 0, 0, 1]) {
            loopback.to_string()
        } else {
            format!("IP:{ip},{loopback}")
        });
    }
    let ok = !host_name.is_empty()
        && host_name.len() <= 253
        && host_name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !ok {
        return Err(TestRegistryError::HostName(host_name.to_string()));
    }
    Ok(format!("DNS:{host_name},{loopback}"))
}

fn openssl(task: &str, cmd: &mut Command) -> Result<(), TestRegistryError> {
    exec::run_deadline(task, cmd, None, TOOL_DEADLINE)?;
    Ok(())
}

/// A password of 32 random bytes from `/dev/urandom`, as 64 hex digits.
pub fn random_password() -> Result<Secret, TestRegistryError> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(io("reading /dev/urandom"))?;
    Ok(Secret::new(hex::encode(b)))
}

/// Writes `path` (mode 0600): one bcrypt entry for `user` made by `htpasswd -B -i` (Debian's
/// apache2-utils), the password given on its stdin.
pub fn write_htpasswd(path: &Path, user: &str, password: &Secret) -> Result<(), TestRegistryError> {
    let mut input = password.expose().as_bytes().to_vec();
    input.push(b'\n');
    let out = exec::run_deadline(
        "hashing the test registry's password",
        Command::new("htpasswd").args(["-B", "-i", "-n", user]),
        Some(&input),
        TOOL_DEADLINE,
    )?;
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.trim_end();
    if !line.starts_with(&format!("{user}:$2y$")) || line.contains('\n') {
        return Err(io("hashing the test registry's password")(
            std::io::Error::other("htpasswd -B did not print one bcrypt entry"),
        ));
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode_0600()
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes())
        .map_err(io(format!("writing {}", path.display())))
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

impl TestRegistry {
    /// Starts the registry with `images/tx-registry/config.yml` from `images`: a CA and
    /// certificate for `host_name` under `work_dir/tls`, the htpasswd file under
    /// `work_dir/auth`, storage under `work_dir/data`, its log in `work_dir/registry.log`;
    /// returns once `https://127.0.0.1:PORT/v2/` answers 401 to a client trusting only the CA.
    /// A QEMU guest on user-mode networking reaches it as `10.0.2.2:PORT` (give `host_name`
    /// as the name or address the guests use). Blocking: not for use inside an async runtime.
    pub fn start(
        images: &Path,
        work_dir: &Path,
        host_name: &str,
    ) -> Result<TestRegistry, TestRegistryError> {
        let config = images.join(CONFIG);
        if !config.is_file() {
            return Err(io(format!("reading {}", config.display()))(
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        let tls = throwaway_tls(&work_dir.join("tls"), host_name)?;
        let auth = work_dir.join("auth");
        std::fs::create_dir_all(&auth).map_err(io(format!("creating {}", auth.display())))?;
        let password = random_password()?;
        write_htpasswd(&auth.join("htpasswd"), USER, &password)?;
        let data = work_dir.join("data");
        std::fs::create_dir_all(&data).map_err(io(format!("creating {}", data.display())))?;
        let port = free_port()?;
        let log = work_dir.join("registry.log");
        let mut cmd = Command::new("/usr/bin/docker-registry");
        cmd.arg("serve")
            .arg(&config)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("REGISTRY_HTTP_TLS_CERTIFICATE", &tls.cert)
            .env("REGISTRY_HTTP_TLS_KEY", &tls.key)
            .env("REGISTRY_AUTH_HTPASSWD_PATH", auth.join("htpasswd"))
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", &data);
        let child = spawn_logged(&mut cmd, &log)?;
        let group = crate::cleanup::Guard::new(crate::cleanup::Action::ProcessGroup(child.id()));
        let mut reg = TestRegistry {
            port,
            host_name: host_name.to_string(),
            tls,
            password,
            log,
            child,
            group: Some(group),
        };
        reg.wait_ready()?;
        Ok(reg)
    }

    /// Polls `/v2/` over TLS (trusting only the throwaway CA) until it answers 401.
    fn wait_ready(&mut self) -> Result<(), TestRegistryError> {
        let client = self.ca_only_client()?;
        let url = format!("https://127.0.0.1:{}/v2/", self.port);
        let t0 = Instant::now();
        let mut reason = String::from("no answer yet");
        while t0.elapsed() < START_DEADLINE {
            if let Ok(Some(status)) = self.child.try_wait() {
                reason = format!("docker-registry exited ({status})");
                break;
            }
            match client.get(&url).send() {
                Ok(r) if r.status().as_u16() == 401 => return Ok(()),
                Ok(r) => reason = format!("GET /v2/ answered HTTP {}", r.status().as_u16()),
                Err(e) => reason = crate::http::describe(&e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(TestRegistryError::NotReady {
            port: self.port,
            reason,
            log_tail: self.log_tail(20),
        })
    }

    /// A blocking client that trusts the throwaway CA and nothing else, with short timeouts.
    fn ca_only_client(&self) -> Result<reqwest::blocking::Client, TestRegistryError> {
        let pem = std::fs::read(&self.tls.ca_pem).map_err(io("reading the CA"))?;
        let bad = |e: reqwest::Error| {
            io("building the readiness client")(std::io::Error::other(e.to_string()))
        };
        let ca = reqwest::Certificate::from_pem(&pem).map_err(bad)?;
        reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(bad)
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The host name its certificate was made for (besides 127.0.0.1).
    pub fn host_name(&self) -> &str {
        &self.host_name
    }

    /// The throwaway CA's certificate (PEM): what a client of this registry trusts.
    pub fn ca_pem(&self) -> &Path {
        &self.tls.ca_pem
    }

    /// The certificate and key files it serves, and the CA's.
    pub fn tls(&self) -> &TlsFiles {
        &self.tls
    }

    /// The htpasswd user name.
    pub fn user(&self) -> &str {
        USER
    }

    /// The password (never printed by its `Debug`/`Display`).
    pub fn password(&self) -> &Secret {
        &self.password
    }

    /// The registry's log file (stdout and stderr of docker-registry).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `127.0.0.1:PORT/NAME:latest`, the reference [`TestRegistry::push`] pushes to.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}:{TAG}", self.address())
    }

    /// Pushes image `name` of the OCI layout `layout` as `127.0.0.1:PORT/NAME:latest` with
    /// the library's push (HTTPS, the throwaway CA trusted for this origin only, Basic auth);
    /// returns the manifest digest the registry stored.
    pub fn push(&self, layout: &Path, name: &str) -> Result<String, TestRegistryError> {
        let to = self.reference(name).parse()?;
        let mut o = PushOptions::new(layout, name, to);
        o.ca_file = Some(self.tls.ca_pem.clone());
        o.credentials = Some(Credentials {
            username: USER.to_string(),
            password: self.password.clone(),
            source: "the test registry".to_string(),
        });
        let report = registry::push(&o, &|e| log::debug!("test registry push: {e}"))?;
        Ok(report.manifest_digest)
    }

    /// Builds image `name` (and its parents) with the library's builder, as `picaboot image
    /// build NAME --images IMAGES --profiles PROFILES -o OUT` does (same cache, default
    /// `~/.cache/picaboot`), then pushes it; returns the built images and the pushed digest.
    pub fn build_and_push(
        &self,
        images: &Path,
        profiles: &Path,
        name: &str,
        out: &Path,
        mirror: BuildMirror,
    ) -> Result<(Vec<Built>, String), TestRegistryError> {
        let built = build_image(images, profiles, name, out, mirror, None)?;
        let digest = self.push(out, name)?;
        Ok((built, digest))
    }

    /// The last `n` lines of the registry's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = read_tail(&self.log, 64 * 1024);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        exec::kill_group(self.child.id(), &mut self.child);
        if let Some(g) = self.group.take() {
            g.disarm();
        }
    }
}

/// Builds image `name` and its parents into the OCI layout `out` with the library's builder
/// (the code `picaboot image build` runs, with its cache: `cache`, default
/// [`default_cache`](crate::image::build::default_cache)).
pub fn build_image(
    images: &Path,
    profiles: &Path,
    name: &str,
    out: &Path,
    mirror: BuildMirror,
    cache: Option<PathBuf>,
) -> Result<Vec<Built>, TestRegistryError> {
    let specs = crate::image::load(images).map_err(BuildError::from)?;
    let opts =
        crate::image::build::options_for(profiles, images, mirror, cache, out.to_path_buf())?;
    let mut progress = |m: &str| log::info!("{m}");
    Ok(crate::image::build(&specs, name, &opts, &mut progress)?)
}

/// The last `max` bytes of a file, as text (empty when unreadable).
fn read_tail(path: &Path, max: u64) -> String {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut b = Vec::new();
    let _ = f.take(max).read_to_end(&mut b);
    String::from_utf8_lossy(&b).into_owned()
}

/// A port free on 127.0.0.1 now (the kernel's choice).
fn free_port() -> Result<u16, TestRegistryError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io("finding a free port on 127.0.0.1"))
}

/// Starts `cmd` in a process group of its own, stdout and stderr to `log`.
fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child, TestRegistryError> {
    let f = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
    let f2 = f.try_clone().map_err(io("duplicating the log"))?;
    cmd.stdout(Stdio::from(f))
        .stderr(Stdio::from(f2))
        .process_group(0);
    Ok(exec::spawn("starting the test registry", cmd)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_alt_names() {
        assert_eq!(
            san_of("registry.picasoft.net").unwrap(),
            "DNS:registry.picasoft.net,IP:127.0.0.1"
        );
        assert_eq!(san_of("10.0.2.2").unwrap(), "IP:10.0.2.2,IP:127.0.0.1");
        assert_eq!(san_of("127.0.0.1").unwrap(), "IP:127.0.0.1");
        for bad in ["", "a..b", "a b", "x\nsubjectAltName=DNS:evil", "a,DNS:b"] {
            assert!(
                matches!(san_of(bad), Err(TestRegistryError::HostName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn passwords_are_random_and_redacted() {
        let (a, b) = (random_password().unwrap(), random_password().unwrap());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
        assert_eq!(format!("{a:?}"), "<redacted>");
    }
}
