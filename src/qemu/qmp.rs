//! A client of the QEMU Machine Protocol on a Unix socket (`-qmp unix:PATH,server=on,wait=off`),
//! as QEMU's `docs/interop/qmp-spec.rst` specifies it: the server greets first with
//! `{"QMP": {"version": …, "capabilities": […]}}` (spec, "Server Greeting"); the client must
//! send `qmp_capabilities` before any other command ("Capabilities Negotiation"); each command
//! `{"execute": NAME, "arguments": {…}, "id": ID}` gets exactly one answer, `{"return": …}` or
//! `{"error": {"class": …, "desc": …}}`, carrying the command's `id` ("Commands Responses");
//! asynchronous events `{"event": NAME, "data": …, "timestamp": {…}}` may come at any time,
//! also between a command and its answer ("Asynchronous events"). QEMU writes each message
//! on one line (without `pretty=on`), which this client reads bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The longest message line accepted (a screendump answer is `{"return": {}}`).
pub const MAX_LINE: u64 = 1 << 20;

/// Events kept (the last ones), for a report.
const KEEP_EVENTS: usize = 64;

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be reached, read or written.
    #[error("QMP {path}: {what}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The server broke the protocol (no greeting, a line that is not a JSON object, an
    /// answer to another command, a line over [`MAX_LINE`], the socket closed).
    #[error("QMP {path}: {0}", path = .1.display())]
    Protocol(String, PathBuf),
    /// The server answered the command with an error.
    #[error("QMP {command}: {class}: {desc}")]
    Command {
        /// The command.
        command: String,
        /// The error class (`GenericError`, `CommandNotFound`, …).
        class: String,
        /// QEMU's description.
        desc: String,
    },
}

impl crate::exit_class::ExitClass for QmpError {
    fn exit_class(&self) -> crate::exit_class::Class {
        crate::exit_class::Class::Env
    }
}

/// One asynchronous event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its name (`RESET`, `SHUTDOWN`, …).
    pub name: String,
    /// Its data (`null` when none).
    pub data: Value,
}

/// A negotiated QMP connection.
#[derive(Debug)]
pub struct Qmp {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    events: Vec<Event>,
    next_id: u64,
    /// The server's QEMU version from its greeting (`major.minor.micro`).
    pub version: String,
}

impl Qmp {
    /// Connects to `path` (retrying until `connect_within`, as QEMU creates the socket shortly
    /// after it starts), reads the greeting and negotiates capabilities. Every later read and
    /// write has the deadline `io_timeout`.
    pub fn connect(
        path: &Path,
        connect_within: Duration,
        io_timeout: Duration,
    ) -> Result<Qmp, QmpError> {
        let io = |what: &'static str| {
            move |source| QmpError::Io {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if start.elapsed() >= connect_within => return Err(io("connect")(e)),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream
            .set_read_timeout(Some(io_timeout))
            .and_then(|_| stream.set_write_timeout(Some(io_timeout)))
            .map_err(io("set deadlines"))?;
        let writer = stream.try_clone().map_err(io("clone the socket"))?;
        let mut q = Qmp {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
            events: Vec::new(),
            next_id: 0,
            version: String::new(),
        };
        let greeting = q.message()?;
        let v = greeting
            .get("QMP")
            .and_then(|g| g.get("version"))
            .and_then(|v| v.get("qemu"))
            .ok_or_else(|| q.protocol(format!("no QMP greeting: {greeting}")))?;
        q.version = ["major", "minor", "micro"]
            .map(|k| v.get(k).and_then(Value::as_u64).unwrap_or(0).to_string())
            .join(".");
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    fn protocol(&self, what: String) -> QmpError {
        QmpError::Protocol(what, self.path.clone())
    }

    /// One message line, parsed (bounded by [`MAX_LINE`]).
    fn message(&mut self) -> Result<Value, QmpError> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                what: "read",
                source,
            })?;
        if n == 0 {
            return Err(self.protocol("the server closed the connection".into()));
        }
        if n as u64 > MAX_LINE {
            return Err(self.protocol(format!("a message over {MAX_LINE} bytes")));
        }
        let v: Value = serde_json::from_slice(&line).map_err(|e| {
            self.protocol(format!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            ))
        })?;
        if !v.is_object() {
            return Err(self.protocol(format!("not a JSON object: {v}")));
        }
        Ok(v)
    }

    /// Runs `command` with `arguments` and returns its `return` value; events that come before
    /// the answer are kept ([`Qmp::events`]).
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.next_id += 1;
        let id = format!("picaboot-{}", self.next_id);
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(b'\n');
        self.writer
            .write_all(&bytes)
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                what: "write",
                source,
            })?;
        loop {
            let m = self.message()?;
            if let Some(name) = m.get("event").and_then(Value::as_str) {
                if self.events.len() == KEEP_EVENTS {
                    self.events.remove(0);
                }
                self.events.push(Event {
                    name: name.to_string(),
                    data: m.get("data").cloned().unwrap_or(Value::Null),
                });
                continue;
            }
            if m.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                return Err(self.protocol(format!("an answer to another command: {m}")));
            }
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                return Err(QmpError::Command {
                    command: command.to_string(),
                    class: s("class"),
                    desc: s("desc"),
                });
            }
            return Err(self.protocol(format!("neither return, error nor event: {m}")));
        }
    }

    /// The events seen so far (the last [`KEEP_EVENTS`]).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Writes the screen as PNG to `file` (`screendump` with `format: png`, QEMU 7.1 and
    /// later); QEMU itself writes the file, so `file` must be absolute.
    pub fn screendump_png(&mut self, file: &Path) -> Result<(), QmpError> {
        self.execute(
            "screendump",
            Some(json!({ "filename": file.to_string_lossy(), "format": "png" })),
        )
        .map(|_| ())
    }
}

/// The width and height of a PNG file's first chunk (IHDR), when `bytes` is a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

#[cfg(test)]
mod tests {
    //! The server double speaks QMP as `docs/interop/qmp-spec.rst` (QEMU) frames it: greeting
    //! first, one JSON object per line ending in CRLF as QEMU's monitor writes them, the
    //! command's `id` echoed in its answer, events (with `timestamp`) between a command and its
    //! answer, and an error answer `{"error": {"class", "desc"}}`.
    use super::*;
    use std::os::unix::net::UnixListener;

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}"#;

    /// A server that greets, then answers each command line with `answer(command, id)` (lines
    /// to send), and records the commands it received.
    fn server(
        dir: &Path,
        answer: fn(&Value, &str) -> Vec<String>,
    ) -> (PathBuf, std::thread::JoinHandle<Vec<Value>>) {
        let path = dir.join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            write!(w, "{GREETING}\r\n").unwrap();
            let mut got = Vec::new();
            for line in BufReader::new(s).lines() {
                let Ok(line) = line else { break };
                let cmd: Value = serde_json::from_str(&line).unwrap();
                let id = cmd["id"].as_str().unwrap_or("").to_string();
                for out in answer(&cmd, &id) {
                    write!(w, "{out}\r\n").unwrap();
                }
                got.push(cmd);
            }
            got
        });
        (path, h)
    }

    fn ok(id: &str) -> String {
        json!({"return": {}, "id": id}).to_string()
    }

    fn event(name: &str) -> String {
        json!({"event": name, "data": {"guest": false}, "timestamp": {"seconds": 1765000000, "microseconds": 12}}).to_string()
    }

    #[test]
    fn greeting_capabilities_then_a_command_with_events_before_its_answer() {
        let dir = tempfile::tempdir().unwrap();
        let (path, h) = server(dir.path(), |cmd, id| match cmd["execute"].as_str() {
            Some("qmp_capabilities") => vec![ok(id)],
            Some("screendump") => vec![event("RESET"), event("STOP"), ok(id)],
            _ => vec![],
        });
        let mut q = Qmp::connect(&path, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        assert_eq!(q.version, "7.2.22");
        q.screendump_png(Path::new("/tmp/x.png")).unwrap();
        let names: Vec<&str> = q.events().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["RESET", "STOP"]);
        drop(q);
        let got = h.join().unwrap();
        assert_eq!(
            got[0]["execute"], "qmp_capabilities",
            "negotiation comes first"
        );
        assert_eq!(got[1]["execute"], "screendump");
        assert_eq!(got[1]["arguments"]["format"], "png");
        assert_eq!(got[1]["arguments"]["filename"], "/tmp/x.png");
        assert_ne!(got[0]["id"], got[1]["id"]);
    }

    #[test]
    fn an_error_answer_is_the_commands_error() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _h) = server(dir.path(), |cmd, id| match cmd["execute"].as_str() {
            Some("qmp_capabilities") => vec![ok(id)],
            _ => vec![
                event("POWERDOWN"),
                json!({"error": {"class": "GenericError", "desc": "no surface"}, "id": id})
                    .to_string(),
            ],
        });
        let mut q = Qmp::connect(&path, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        let e = q.screendump_png(Path::new("/tmp/x.png")).unwrap_err();
        assert!(
            matches!(&e, QmpError::Command { command, class, desc }
                if command == "screendump" && class == "GenericError" && desc == "no surface"),
            "{e}"
        );
        assert_eq!(q.events()[0].name, "POWERDOWN");
    }

    #[test]
    fn a_server_that_is_not_qmp_or_closes_is_a_protocol_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            write!(s, "{{\"hello\": 1}}\r\n").unwrap();
        });
        let e = Qmp::connect(&path, Duration::from_secs(5), Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("no QMP greeting"), "{e}");
        h.join().unwrap();

        // Greets, reads qmp_capabilities, then closes instead of answering it.
        let path2 = dir.path().join("s2");
        let listener = UnixListener::bind(&path2).unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            write!(s, "{GREETING}\r\n").unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            assert!(line.contains("qmp_capabilities"), "{line}");
        });
        let e = Qmp::connect(&path2, Duration::from_secs(5), Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("closed"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn a_silent_server_meets_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(800));
            drop(s);
        });
        let t = Instant::now();
        let e =
            Qmp::connect(&path, Duration::from_secs(5), Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e, QmpError::Io { what: "read", .. }), "{e}");
        assert!(t.elapsed() < Duration::from_millis(700));
        h.join().unwrap();
    }

    #[test]
    fn png_size_reads_ihdr_and_refuses_other_bytes() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(800u32.to_be_bytes());
        png.extend(600u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((800, 600)));
        assert_eq!(png_size(b"P6\n800 600\n255\n"), None);
        assert_eq!(png_size(&png[..20]), None);
    }
}
