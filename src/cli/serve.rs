//! `picaboot serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::UsageError;
use crate::serve::{self, ServeError, Server};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeConfig {
    /// Output tree to serve (holds HOST/netboot/…).
    #[arg(value_name = "OUT", default_value = "out")]
    pub out: PathBuf,
    /// Address to listen on (loopback by default; give another address explicitly).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

/// Serves OUT over HTTP until Ctrl-C or SIGTERM.
pub fn serve(c: ServeConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let sink: serve::LogSink = Arc::new(|line: &str| eprintln!("serve: {line}"));
        let server = match Server::bind(&c.out, c.listen, sink).await {
            Ok(s) => s,
            Err(e @ ServeError::Root { .. }) => return Err(UsageError(e.to_string()).into()),
            Err(e) => return Err(e.into()),
        };
        let addr = server.local_addr();
        if !addr.ip().is_loopback() {
            eprintln!("serve: warning: listening on {addr}, which is not a loopback address");
        }
        println!(
            "picaboot serve: serving {} at http://{addr}/",
            server.root().display()
        );
        let mut hosts: Vec<String> = std::fs::read_dir(server.root())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().join("netboot/boot.ipxe").is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        hosts.sort();
        for h in &hosts {
            println!("  {h}: http://{addr}/{h}/netboot/boot.ipxe");
        }
        println!("  progress: http://{addr}/progress/HOST?stage=STAGE&status=STATUS");
        server.run(serve::shutdown_signal()).await;
        Ok(())
    })
}
