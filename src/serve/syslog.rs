//! The installer's remote syslog, received over UDP.
//!
//! debian-installer starts busybox `syslogd` from
//! `/usr/lib/debian-installer-startup.d/S10syslog`, which reads `log_host=` and `log_port=`
//! from the kernel command line and then forwards every log line (`-L -R HOST:PORT`, local
//! file kept) as one UDP datagram: `<PRI>` followed by the line as the program logged it
//! (`main-menu[312]: INFO: Menu item 'partman-base' selected`). `netboot --report-to` puts
//! those parameters on the installer's boot line; this module receives the datagrams, so an
//! install on a box with no serial console can be followed phase by phase
//! ([`crate::install::phases::Tracker`]) with the same parser the install proof uses.
//!
//! Datagrams are untrusted: each is cut at [`MAX_DATAGRAM`] bytes, decoded lossily, its
//! control characters replaced, and split into lines.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

/// The most bytes read of one datagram (busybox sends at most 1 KiB per line).
pub const MAX_DATAGRAM: usize = 8192;

/// The printable lines of one syslog datagram, without its `<PRI>` prefix.
pub fn datagram_lines(bytes: &[u8]) -> Vec<String> {
    let bytes = &bytes[..bytes.len().min(MAX_DATAGRAM)];
    let text = String::from_utf8_lossy(bytes);
    text.split(['\n', '\r'])
        .map(|line| {
            let line = match line.strip_prefix('<') {
                Some(rest) => match rest.find('>') {
                    Some(i) if i <= 3 && rest[..i].bytes().all(|b| b.is_ascii_digit()) => {
                        &rest[i + 1..]
                    }
                    _ => line,
                },
                None => line,
            };
            line.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect::<String>()
        })
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// A bound UDP socket receiving syslog datagrams.
#[derive(Debug)]
pub struct SyslogReceiver {
    socket: UdpSocket,
}

impl SyslogReceiver {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(SyslogReceiver {
            socket: UdpSocket::bind(addr).await?,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// Calls `on_line(sender, line)` for every line received, until the socket fails.
    pub async fn run(self, on_line: impl Fn(SocketAddr, &str)) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, from) = self.socket.recv_from(&mut buf).await?;
            for line in datagram_lines(&buf[..n]) {
                on_line(from, &line);
            }
        }
    }
}

/// Senders whose state serve keeps at once (e.g. one install phase tracker per installer);
/// beyond it the least recently heard one is forgotten.
pub const MAX_SOURCES: usize = 256;

/// Per-sender state with a bound: at most `cap` senders, the least recently used evicted.
#[derive(Debug)]
pub struct SourceTable<T> {
    map: std::collections::HashMap<std::net::IpAddr, (u64, T)>,
    tick: u64,
    cap: usize,
}

impl<T> SourceTable<T> {
    /// An empty table of at most `cap` senders (at least 1).
    pub fn new(cap: usize) -> Self {
        SourceTable {
            map: std::collections::HashMap::new(),
            tick: 0,
            cap: cap.max(1),
        }
    }

    /// The state of `from`, made by `make` when it is new.
    pub fn entry(&mut self, from: std::net::IpAddr, make: impl FnOnce() -> T) -> &mut T {
        self.tick += 1;
        if !self.map.contains_key(&from) && self.map.len() >= self.cap {
            if let Some(oldest) = self.map.iter().min_by_key(|(_, v)| v.0).map(|(k, _)| *k) {
                self.map.remove(&oldest);
            }
        }
        let e = self.map.entry(from).or_insert_with(|| (0, make()));
        e.0 = self.tick;
        &mut e.1
    }

    /// Senders held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no sender is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// What one installer's syslog line means to a person watching `serve`: a phase began
/// (`phase partitioning`) or a failure (`FAILED: …`); one [`crate::install::phases::Tracker`]
/// per installer address, at most [`MAX_SOURCES`] of them.
pub fn phase_reporter() -> impl FnMut(SocketAddr, &str) -> Option<String> {
    use crate::install::phases::{Event, Tracker};
    let mut trackers = SourceTable::<Tracker>::new(MAX_SOURCES);
    move |from, line| {
        let tracker = trackers.entry(from.ip(), || Tracker::new(0));
        match tracker.line(line)? {
            Event::Phase(p) => Some(format!("phase {p}")),
            Event::Failed(f) => Some(format!("FAILED: {f}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_table_stays_bounded_and_keeps_the_active_sender() {
        let mut t = SourceTable::new(MAX_SOURCES);
        let active: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        *t.entry(active, || 0u32) += 1;
        for i in 0..100_000u32 {
            let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.entry(ip, || 0);
            if i % 100 == 0 {
                *t.entry(active, || 0) += 1;
            }
            assert!(t.len() <= MAX_SOURCES);
        }
        assert_eq!(t.len(), MAX_SOURCES);
        assert_eq!(
            *t.entry(active, || 0),
            1001,
            "the active sender was never evicted"
        );
    }

    #[test]
    fn priority_is_stripped_and_control_characters_replaced() {
        assert_eq!(
            datagram_lines(
                b"<13>Dec  2 12:00:01 main-menu[312]: INFO: Menu item 'partman-base' selected\n"
            ),
            ["Dec  2 12:00:01 main-menu[312]: INFO: Menu item 'partman-base' selected"]
        );
        assert_eq!(
            datagram_lines(b"<6>a\x1b[31mb\0c\r\nsecond\n\n"),
            ["a?[31mb?c", "second"]
        );
        // Not a priority: kept as it is.
        assert_eq!(datagram_lines(b"<abc>x"), ["<abc>x"]);
        assert_eq!(datagram_lines(b"<13456>x"), ["<13456>x"]);
        assert_eq!(datagram_lines(b"\xff\xfe<13>"), ["\u{fffd}\u{fffd}<13>"]);
        assert!(datagram_lines(b"").is_empty());
        let long = vec![b'x'; MAX_DATAGRAM * 2];
        assert_eq!(datagram_lines(&long)[0].len(), MAX_DATAGRAM);
    }
}
