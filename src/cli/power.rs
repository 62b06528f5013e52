//! `picaboot power HOST status|on|off|reset|cycle [--pxe-once]`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{ProfilesArg, UsageError};
use crate::amt::{power, Client, Credentials, PowerAction};
use crate::{ops, project};

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Print the power state and the states AMT offers now.
    Status,
    /// Power on (PowerState 2).
    On,
    /// Power off (PowerState 8).
    Off,
    /// Reset (PowerState 10); a box that is off is powered on instead.
    Reset,
    /// Power cycle (PowerState 5); a box that is off is powered on instead.
    Cycle,
}

/// Arguments of `power`.
#[derive(Debug, clap::Args)]
pub struct PowerConfig {
    /// Host (a file name in hosts/, without .toml).
    host: String,
    /// What to do.
    #[arg(value_enum)]
    action: Action,
    /// Make the next boot (only) a network (PXE) boot first.
    #[arg(long)]
    pxe_once: bool,
    #[command(flatten)]
    profiles: ProfilesArg,
    #[command(flatten)]
    amt: AmtArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How to reach a host's AMT: the options `power` and `reinstall` share.
#[derive(Debug, Clone, clap::Args)]
pub struct AmtArgs {
    /// File with `USER:PASSWORD` on its first line (else PICABOOT_AMT_CREDENTIALS, or
    /// PICABOOT_AMT_USERNAME and PICABOOT_AMT_PASSWORD).
    #[arg(long, value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// Seconds to wait for each AMT connection and reply.
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// The 6-digit user-consent code AMT shows on the box's screen, when AMT requires consent
    /// (else PICABOOT_AMT_CONSENT_CODE, else a prompt when on a terminal).
    #[arg(long, value_name = "CODE")]
    consent_code: Option<String>,
}

impl AmtArgs {
    /// An AMT client for `host` of the profiles.
    pub(crate) fn client(
        &self,
        profiles: &crate::profile::Profiles,
        host: &str,
    ) -> anyhow::Result<Client> {
        let target = ops::amt_target(profiles, host, Duration::from_secs(self.timeout))
            .map_err(|e| UsageError(e.to_string()))?;
        let creds = Credentials::from_env(self.credentials.as_deref())?;
        Ok(Client::new(target, creds))
    }

    /// Where the user-consent code comes from, when AMT asks for one.
    pub(crate) fn consent<'a>(&'a self, host: &'a str) -> impl FnMut() -> Option<String> + 'a {
        move || consent_code(self.consent_code.as_deref(), host)
    }
}

/// The consent code: the flag, the environment, or a prompt on a terminal.
fn consent_code(flag: Option<&str>, host: &str) -> Option<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if let Some(c) = flag {
        return Some(c.to_string());
    }
    if let Ok(c) = std::env::var(crate::amt::ENV_CONSENT_CODE) {
        if !c.is_empty() {
            return Some(c);
        }
    }
    if !std::io::stdin().is_terminal() {
        return None;
    }
    eprint!("{host}: AMT asks for user consent: the 6-digit code on the box's screen: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    let line = line.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// Runs `power`.
pub fn power(c: PowerConfig) -> anyhow::Result<()> {
    // Ctrl-C and SIGTERM end what the run owns (the ssh to the jump host) first.
    crate::cleanup::on_signals();
    if c.action == Action::Status && c.pxe_once {
        return Err(
            UsageError("--pxe-once goes with on, reset or cycle, not status".into()).into(),
        );
    }
    if c.action == Action::Off && c.pxe_once {
        return Err(UsageError("--pxe-once goes with on, reset or cycle, not off".into()).into());
    }
    let project = project::open(&c.profiles.profiles)?;
    let mut client = c.amt.client(&project.loaded.profiles, &c.host)?;
    let origin = client.target().origin();
    let ctx = || format!("power {} via AMT {origin}", c.host);
    let action = match c.action {
        Action::Status => {
            let s = client.status().with_context(ctx)?;
            let consent = client.consent().with_context(ctx)?;
            if c.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "host": c.host, "amt": origin, "status": s,
                        "consent": consent, "consent_needed": consent.needed(),
                    }))?
                )?;
            } else {
                outln!(
                    "{}: power state {} ({}); AMT offers: {}",
                    c.host,
                    s.power_state,
                    s.power_state_name,
                    power::list_states(&s.available)
                )?;
                outln!(
                    "{}: user consent {}",
                    c.host,
                    if consent.needed() {
                        "will be needed for a power change: a 6-digit code shown on the box's screen (--consent-code)"
                    } else {
                        "not needed"
                    }
                )?;
            }
            return Ok(());
        }
        Action::On => PowerAction::On,
        Action::Off => PowerAction::Off,
        Action::Reset => PowerAction::Reset,
        Action::Cycle => PowerAction::Cycle,
    };
    let out = client
        .power_with_consent(action, c.pxe_once, &mut c.amt.consent(&c.host))
        .with_context(ctx)?;
    if c.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "host": c.host, "amt": origin, "action": action, "outcome": out,
            }))?
        )?;
    } else {
        if let Some(src) = &out.pxe_source {
            outln!("{}: next boot only: {src}", c.host)?;
        }
        if let Some(note) = &out.note {
            outln!("{}: {note}", c.host)?;
        }
        if let Some(lost) = &out.reply_lost {
            outln!(
                "{}: the reply to RequestPowerStateChange was lost ({lost}); not resent, the state read back decides",
                c.host
            )?;
        }
        if let Some(s) = out.requested {
            outln!(
                "{}: was {} ({}); requested power state {s} ({}): done",
                c.host,
                out.before.power_state,
                out.before.power_state_name,
                power::state_name(s)
            )?;
        }
        if let Some(seen) = &out.seen {
            outln!(
                "{}: AMT now reports power state {} ({})",
                c.host,
                seen.power_state,
                seen.power_state_name
            )?;
        }
    }
    Ok(())
}
