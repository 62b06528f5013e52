//! A serve session: the HTTP server (boot files, progress reports, the mirror proxies of a
//! test box) and the installer's syslog over UDP on the same address, their log files, and a
//! stop that runs when the session is dropped. `test install` and `reinstall` both follow an
//! install through one.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use super::mirror::MirrorProxy;
use super::syslog::SyslogReceiver;
use super::{LogSink, ProgressLog, ServeError, Served, Server};

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The HTTP server could not start.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The syslog socket could not be bound.
    #[error("the installer's syslog on udp {addr}")]
    Syslog {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A log file could not be created.
    #[error("creating {path}")]
    Log {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

crate::exit_class::fixed_class!(crate::exit_class::Class::Env; SessionError);

/// What to serve and where to log it.
pub struct SessionConfig<'a> {
    /// The tree served over HTTP.
    pub root: &'a Path,
    /// HTTP (TCP) and syslog (UDP) address; port 0 picks one free for both.
    pub listen: SocketAddr,
    /// serve's log (one line per request and event).
    pub serve_log: PathBuf,
    /// The installer's syslog lines as received.
    pub syslog_log: PathBuf,
    /// The Debian mirror proxy (a test box).
    pub mirror: Option<MirrorProxy>,
    /// The security mirror proxy (a test box).
    pub security: Option<MirrorProxy>,
    /// Progress reports of this host are also accepted from this address (a VM booted from
    /// files, whose reports come from QEMU's address).
    pub trust_progress: Option<(String, IpAddr)>,
}

/// Tries for a port free for both TCP and UDP when the caller let the system choose.
const PORT_TRIES: usize = 8;

/// A running session; stopped (server drained, syslog closed) when dropped.
pub struct ServeSession {
    rt: tokio::runtime::Handle,
    addr: SocketAddr,
    progress: ProgressLog,
    served: mpsc::Receiver<Served>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    syslog: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

fn log_file(path: &Path) -> Result<Mutex<std::fs::File>, SessionError> {
    std::fs::File::create(path)
        .map(Mutex::new)
        .map_err(|source| SessionError::Log {
            path: path.to_path_buf(),
            source,
        })
}

impl ServeSession {
    /// Binds both sockets, opens both logs and starts serving on `rt`; `on_syslog` sees each
    /// installer line after it is written to the syslog log.
    pub fn start(
        rt: &tokio::runtime::Runtime,
        cfg: SessionConfig<'_>,
        on_syslog: impl Fn(&str) + Send + Sync + 'static,
    ) -> Result<Self, SessionError> {
        let serve_file = log_file(&cfg.serve_log)?;
        let sink: LogSink = Arc::new(move |line: &str| {
            if let Ok(mut f) = serve_file.lock() {
                let _ = writeln!(f, "{line}");
            }
        });
        let tries = if cfg.listen.port() == 0 {
            PORT_TRIES
        } else {
            1
        };
        let mut attempt = 0;
        let (mut server, receiver) = loop {
            attempt += 1;
            let server = rt.block_on(Server::bind(cfg.root, cfg.listen, sink.clone()))?;
            let addr = server.local_addr();
            match rt.block_on(SyslogReceiver::bind(addr)) {
                Ok(r) => break (server, r),
                // The port the system chose for TCP is taken for UDP: choose again.
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < tries => {}
                Err(source) => return Err(SessionError::Syslog { addr, source }),
            }
        };
        let set = server.set_mirrors(cfg.mirror, cfg.security);
        debug_assert!(set, "a server just bound is not shared");
        let addr = server.local_addr();
        if let Some((host, ip)) = &cfg.trust_progress {
            server.trust_progress(host, *ip);
        }
        let progress = server.progress();
        let served = server.served_events();
        let syslog_file = log_file(&cfg.syslog_log)?;
        let syslog = rt.spawn(receiver.run(move |_, line| {
            if let Ok(mut f) = syslog_file.lock() {
                let _ = writeln!(f, "{line}");
            }
            on_syslog(line);
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = rt.spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Ok(ServeSession {
            rt: rt.handle().clone(),
            addr,
            progress,
            served,
            stop: Some(stop),
            server: Some(server),
            syslog: Some(syslog),
        })
    }

    /// The address bound (HTTP and syslog).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The progress reports accepted so far.
    pub fn progress(&self) -> &ProgressLog {
        &self.progress
    }

    /// Requests answered since the start, typed.
    pub fn served(&self) -> &mpsc::Receiver<Served> {
        &self.served
    }

    /// Stops receiving syslog lines (the install is over); HTTP goes on until the stop.
    pub fn close_syslog(&mut self) {
        if let Some(s) = self.syslog.take() {
            s.abort();
        }
    }

    /// Stops the session: syslog closed, the server drained and stopped.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.close_syslog();
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = self.rt.block_on(h);
        }
    }
}

impl Drop for ServeSession {
    fn drop(&mut self) {
        self.shut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::time::Duration;

    /// HTTP and syslog on one chosen port; answered requests come typed; the installer's
    /// lines reach both the log and the callback; dropping the session frees the port.
    #[test]
    fn one_port_typed_events_and_a_stop_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("alice/netboot")).unwrap();
        std::fs::write(root.join("alice/netboot/linux"), b"kernel bytes").unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let tx = Mutex::new(tx);
        let session = ServeSession::start(
            &rt,
            SessionConfig {
                root: &root,
                listen: "127.0.0.1:0".parse().unwrap(),
                serve_log: dir.path().join("serve.log"),
                syslog_log: dir.path().join("syslog.log"),
                mirror: None,
                security: None,
                trust_progress: None,
            },
            move |l| {
                let _ = tx.lock().unwrap().send(l.to_string());
            },
        )
        .unwrap();
        let addr = session.addr();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /alice/netboot/linux HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.ends_with("kernel bytes"), "{reply}");
        let ev = session
            .served()
            .recv_timeout(Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            (ev.method.as_str(), ev.path.as_str(), ev.status, ev.bytes),
            ("GET", "/alice/netboot/linux", 200, 12)
        );
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(
            b"<13>main-menu[312]: INFO: Menu item 'partman-base' selected",
            addr,
        )
        .unwrap();
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            line,
            "main-menu[312]: INFO: Menu item 'partman-base' selected"
        );
        drop(session);
        let log = std::fs::read_to_string(dir.path().join("syslog.log")).unwrap();
        assert_eq!(log, format!("{line}\n"));
        let served = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
        assert!(served.contains(&ev.to_string()), "{served}");
        // Stopped: the TCP port can be bound again.
        std::net::TcpListener::bind(addr).expect("the session's port is free after the drop");
    }
}
