//! `picaboot serve` in process for the tests: bound on loopback port 0 in its own thread and
//! tokio runtime, every log line kept, stopped (and joined) on drop; and a raw HTTP/1.1 client.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use picaboot::serve::{LogSink, ProgressLog, Server};

/// A running server.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log lines so far.
    pub lines: Arc<Mutex<Vec<String>>>,
    /// Its progress reports.
    pub progress: ProgressLog,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Serves `root` on 127.0.0.1, a free port.
    pub fn start(root: &Path) -> Running {
        Self::start_with_mirror(root, None)
    }

    /// Serves `root` on 127.0.0.1, a free port, proxying `mirror` under `/debian/`.
    pub fn start_with_mirror(
        root: &Path,
        mirror: Option<picaboot::serve::mirror::MirrorProxy>,
    ) -> Running {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        let sink: LogSink = Arc::new(move |s: &str| l2.lock().unwrap().push(s.to_string()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let root = root.to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server =
                    Server::bind_with_mirror(&root, "127.0.0.1:0".parse().unwrap(), sink, mirror)
                        .await
                        .unwrap();
                ready_tx
                    .send((server.local_addr(), server.progress()))
                    .unwrap();
                server
                    .run(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        let (addr, progress) = ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Running {
            addr,
            lines,
            progress,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Stops the server and waits for its thread.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A raw HTTP/1.1 request (no client-side path normalization); returns status, headers, body.
pub fn raw(addr: SocketAddr, method: &str, target: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end")
        + 4;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), buf[split..].to_vec())
}
