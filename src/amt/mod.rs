//! Intel AMT over WS-Management: SOAP envelopes ([`wsman`]), reply parsing ([`reply`]), HTTP
//! Digest authentication ([`digest`]), the transport (TCP, TLS pinned by certificate
//! fingerprint, or a tunnel through `ssh -W` to a jump host) and client ([`client`]), and the
//! power and one-time PXE operations ([`power`]). A leaf module: it knows nothing of profiles.

pub mod client;
pub mod digest;
pub mod power;
pub mod reply;
pub mod wsman;

use std::path::{Path, PathBuf};

pub use client::{Client, Target};
pub use power::{PowerAction, PowerOutcome, PowerStatus};

/// Environment variable holding the AMT user name (default `admin`).
pub const ENV_USERNAME: &str = "PICABOOT_AMT_USERNAME";
/// Environment variable holding the AMT password.
pub const ENV_PASSWORD: &str = "PICABOOT_AMT_PASSWORD";
/// Environment variable holding the user-consent code shown on the box's screen.
pub const ENV_CONSENT_CODE: &str = "PICABOOT_AMT_CONSENT_CODE";
/// Environment variable naming a file with `USER:PASSWORD` on its first line.
pub const ENV_CREDENTIALS_FILE: &str = "PICABOOT_AMT_CREDENTIALS";

/// What went wrong talking to AMT; each variant names the failing part.
#[derive(Debug, thiserror::Error)]
pub enum AmtError {
    /// A hop could not be reached (the jump host, or AMT itself).
    #[error("unreachable: {hop}: {reason}")]
    Unreachable {
        /// Which hop: `jump host root@gw`, `AMT 192.168.128.151:16992 (through root@gw)`.
        hop: String,
        /// Why.
        reason: String,
    },
    /// AMT rejected the credentials (a fresh Digest challenge was answered 401 again).
    #[error("wrong credentials: AMT at {origin} refused user `{username}` (realm `{realm}`)")]
    WrongCredentials {
        /// The AMT origin.
        origin: String,
        /// User name tried (never the password).
        username: String,
        /// Digest realm.
        realm: String,
    },
    /// Credentials are missing or unreadable.
    #[error("credentials: {0}")]
    Credentials(String),
    /// A method answered a non-zero ReturnValue.
    #[error("AMT refused {method}: ReturnValue {value} ({})", return_value_meaning(*.value))]
    Refused {
        /// Method name, e.g. `RequestPowerStateChange`.
        method: String,
        /// The ReturnValue.
        value: u32,
    },
    /// A SOAP fault.
    #[error("AMT answered a SOAP fault: {code}: {reason}")]
    Fault {
        /// Fault subcode (or code) value.
        code: String,
        /// Reason text.
        reason: String,
    },
    /// The reply could not be understood.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// An HTTP status other than 200/401 without a SOAP fault.
    #[error("HTTP {status} from AMT: {reason}")]
    Http {
        /// Status code.
        status: u16,
        /// Status text or body excerpt.
        reason: String,
    },
    /// The box does not list the requested power state as available now.
    #[error("AMT does not offer power state {requested} ({}) now; available: {}", power::state_name(*.requested), power::list_states(.available))]
    NotAvailable {
        /// Requested PowerState.
        requested: u16,
        /// AvailableRequestedPowerStates.
        available: Vec<u16>,
    },
    /// The TLS certificate is not the pinned one.
    #[error("TLS: the certificate of {origin} has SHA-256 fingerprint {got}, the profile pins {expected}")]
    TlsPin {
        /// The AMT origin.
        origin: String,
        /// Pinned fingerprint.
        expected: String,
        /// Presented fingerprint.
        got: String,
    },
    /// Another TLS failure.
    #[error("TLS with {origin}: {reason}")]
    Tls {
        /// The AMT origin.
        origin: String,
        /// Why.
        reason: String,
    },
    /// A reply broke a size limit (a header line, the header count, the body); nothing more
    /// of it was read.
    #[error("{hop} sent a reply picaboot will not read: {why}")]
    TooLarge {
        /// Which hop.
        hop: String,
        /// Which limit, and by how much.
        why: String,
    },
    /// A power change was sent but AMT's state did not reach the asked one within the bound.
    #[error("requested power state {requested} ({}){}, but after {attempts} reads AMT still reports {seen} ({}); the request was not resent", power::state_name(*.requested), lost.as_ref().map(|l| format!(" and its reply was lost ({l})")).unwrap_or_default(), power::state_name(*.seen))]
    PowerUnconfirmed {
        /// Requested PowerState.
        requested: u16,
        /// Why the reply was lost, if it was.
        lost: Option<String>,
        /// Reads of the state.
        attempts: u32,
        /// The last PowerState read.
        seen: u16,
    },
    /// AMT_BootCapabilities does not offer ForcePXEBoot.
    #[error("this AMT cannot force a PXE boot (AMT_BootCapabilities ForcePXEBoot is {0}): nothing was changed")]
    NoForcePxe(String),
    /// AMT requires user consent and no code was given.
    #[error("user consent required: AMT now shows a 6-digit code on the box's screen; run again with --consent-code CODE (or {ENV_CONSENT_CODE}=CODE) within its timeout")]
    ConsentNeeded,
    /// The consent code was refused (wrong or expired).
    #[error("AMT refused the user-consent code (SendOptInCode ReturnValue {0}): wrong or expired; run without a code to show a new one")]
    ConsentRefused(u32),
    /// The consent code is not six digits.
    #[error("the user-consent code must be the 6 digits shown on the box's screen")]
    ConsentCodeFormat,
    /// No boot source for PXE.
    #[error("no PXE boot source among CIM_BootSourceSetting instances: {}", .0.join(", "))]
    NoPxeSource(Vec<String>),
}

/// The CIM meaning of a method ReturnValue.
pub fn return_value_meaning(v: u32) -> &'static str {
    match v {
        0 => "Completed with No Error",
        1 => "Not Supported",
        2 => "Unknown or Unspecified Error",
        3 => "Cannot complete within Timeout Period",
        4 => "Failed",
        5 => "Invalid Parameter",
        6 => "In Use",
        4096 => "Method Parameters Checked - Job Started",
        4097 => "Invalid State Transition",
        4098 => "Use of Timeout Parameter Not Supported",
        4099 => "Busy",
        _ => "vendor specific",
    }
}

pub use crate::secret::Secret;

/// AMT credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name (AMT's default administrator is `admin`).
    pub username: String,
    /// Password.
    pub password: Secret,
}

impl Credentials {
    /// Reads credentials: the file named by `file` (or by `PICABOOT_AMT_CREDENTIALS`), holding
    /// `USER:PASSWORD` on its first line; else `PICABOOT_AMT_USERNAME` (default `admin`) and
    /// `PICABOOT_AMT_PASSWORD`. Never from the command line.
    pub fn from_env(file: Option<&Path>) -> Result<Self, AmtError> {
        let file: Option<PathBuf> = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(ENV_CREDENTIALS_FILE).map(PathBuf::from));
        if let Some(path) = file {
            let line = crate::secret::first_line_of(&path).map_err(AmtError::Credentials)?;
            let (u, p) = line.expose().split_once(':').ok_or_else(|| {
                AmtError::Credentials(format!(
                    "{}: the first line must be USER:PASSWORD",
                    path.display()
                ))
            })?;
            if u.is_empty() || p.is_empty() {
                return Err(AmtError::Credentials(format!(
                    "{}: empty user name or password",
                    path.display()
                )));
            }
            return Ok(Credentials {
                username: u.to_string(),
                password: Secret::new(p),
            });
        }
        let username = std::env::var(ENV_USERNAME).unwrap_or_else(|_| "admin".into());
        let password = std::env::var(ENV_PASSWORD).map_err(|_| {
            AmtError::Credentials(format!(
                "no AMT password: set {ENV_PASSWORD} (and {ENV_USERNAME}) or {ENV_CREDENTIALS_FILE}=FILE (USER:PASSWORD)"
            ))
        })?;
        if password.is_empty() {
            return Err(AmtError::Credentials(format!("{ENV_PASSWORD} is empty")));
        }
        Ok(Credentials {
            username,
            password: Secret::new(password),
        })
    }
}

/// Parses a SHA-256 fingerprint written as 64 hex digits, optionally colon-separated.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], String> {
    let hex_digits: String = s.chars().filter(|c| *c != ':').collect();
    let bytes =
        hex::decode(&hex_digits).map_err(|_| format!("`{s}` is not a hex SHA-256 fingerprint"))?;
    bytes
        .try_into()
        .map_err(|_| format!("`{s}` is not 32 bytes (a SHA-256 fingerprint has 64 hex digits)"))
}

/// Formats a fingerprint as colon-separated upper-case hex (as `openssl x509 -fingerprint`).
pub fn format_fingerprint(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl crate::exit_class::ExitClass for AmtError {
    fn exit_class(&self) -> crate::exit_class::Class {
        use crate::exit_class::Class;
        match self {
            AmtError::Credentials(_)
            | AmtError::WrongCredentials { .. }
            | AmtError::ConsentNeeded
            | AmtError::ConsentRefused(_)
            | AmtError::ConsentCodeFormat => Class::User,
            _ => Class::Env,
        }
    }
}

#[cfg(test)]
mod tests;
