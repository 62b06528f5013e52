//! `picaboot serve`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::serve::{self, Server};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeConfig {
    /// Output tree to serve (holds HOST/netboot/…).
    #[arg(value_name = "OUT", default_value = "out")]
    pub out: PathBuf,
    /// Address to listen on (loopback by default; give another address explicitly).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Also proxy this Debian mirror under /debian/ (`apt` = this machine's apt mirror), with
    /// pool files cached and Release/Release.gpg served from InRelease (for installs under test).
    #[arg(long, value_name = "URL")]
    pub mirror_proxy: Option<String>,
    /// Also receive installers' syslog on the same address over UDP (`netboot --report-to`)
    /// and print each install phase and failure as it happens (`install CLIENT: …`).
    #[arg(long)]
    pub syslog: bool,
    /// Print the banner as one JSON object on stdout (`{"root", "listen", "hosts": {NAME:
    /// boot.ipxe URL}, "progress", "mirror"}`); request log lines stay on stderr.
    #[arg(long)]
    pub json: bool,
}

/// Serves OUT over HTTP until Ctrl-C or SIGTERM.
pub fn serve(c: ServeConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        // A closed stdout or stderr (`picaboot serve | head -1`) must not stop the server.
        let sink: serve::LogSink = Arc::new(|line: &str| {
            let _ = writeln!(
                std::io::stderr().lock(),
                "serve: {}",
                serve::terminal_safe(line)
            );
        });
        let proxy = match &c.mirror_proxy {
            None => None,
            Some(u) => {
                let url = if u == "apt" {
                    // No mirror on this machine is the environment's problem (exit 2), as in
                    // `netboot --mirror apt`.
                    crate::debian::sources::system_mirror()
                        .context("reading this machine's apt mirror")?
                } else {
                    u.clone()
                };
                let cache = crate::qemu::guest::cache_root().join("mirror");
                Some(serve::mirror::MirrorProxy::new(&url, &cache).context("mirror proxy cache")?)
            }
        };
        // A root that cannot be served is bad input (1), a port that cannot be bound the
        // environment's (2): the error says which.
        let server = Server::bind_with_mirror(&c.out, c.listen, sink, proxy).await?;
        let addr = server.local_addr();
        if c.syslog {
            let receiver = serve::syslog::SyslogReceiver::bind(addr)
                .await
                .with_context(|| format!("the installers' syslog on udp {addr}"))?;
            let report = std::sync::Mutex::new(serve::syslog::phase_reporter());
            tokio::spawn(receiver.run(move |from, line| {
                let Ok(mut report) = report.lock() else {
                    return;
                };
                if let Some(msg) = (*report)(from, line) {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "serve: install {}: {}",
                        from.ip(),
                        serve::terminal_safe(&msg)
                    );
                }
            }));
        }
        if !addr.ip().is_loopback() {
            sink_warn(&format!(
                "listening on {addr}, which is not a loopback address"
            ));
        }
        // Directory names are anyone's: escaped (bidi overrides, line separators, controls).
        let mut banner = format!(
            "picaboot serve: serving {} at http://{addr}/\n",
            serve::terminal_safe(&server.root().display().to_string())
        );
        let hosts = serve::netboot_hosts(server.root());
        for h in &hosts {
            let h = serve::terminal_safe(h);
            banner += &format!("  {h}: http://{addr}/{h}/netboot/boot.ipxe\n");
        }
        banner += &format!("  progress: http://{addr}/progress/HOST?stage=STAGE&status=STATUS\n");
        if c.syslog {
            banner += &format!("  installer syslog: udp {addr} (netboot --report-to {addr})\n");
        }
        if let Some(u) = &c.mirror_proxy {
            banner += &format!("  mirror: http://{addr}/debian/ (proxy of {u})\n");
        }
        if c.json {
            let boot: std::collections::BTreeMap<&str, String> = hosts
                .iter()
                .map(|h| (h.as_str(), format!("http://{addr}/{h}/netboot/boot.ipxe")))
                .collect();
            banner = serde_json::json!({
                "root": server.root(),
                "listen": addr.to_string(),
                "hosts": boot,
                "progress": format!("http://{addr}/progress/HOST?stage=STAGE&status=STATUS"),
                "mirror": c.mirror_proxy.as_ref().map(|_| format!("http://{addr}/debian/")),
            })
            .to_string()
                + "\n";
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
        drop(out);
        server.run(serve::shutdown_signal()).await;
        Ok(())
    })
}

fn sink_warn(msg: &str) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "serve: warning: {}",
        serve::terminal_safe(msg)
    );
}
