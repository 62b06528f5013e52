//! Power status and changes, and the one-time PXE boot, as AMT does them.

use serde::Serialize;

use super::reply::{self, Instance};
use super::wsman::{
    self, ASSOCIATED_POWER, BOOT_CAPABILITIES, BOOT_SETTING_DATA, BOOT_SOURCE, OPT_IN_SERVICE,
};
use super::{AmtError, Client};

/// A requested power change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerAction {
    /// PowerState 2.
    On,
    /// PowerState 8.
    Off,
    /// PowerState 10 (master bus reset).
    Reset,
    /// PowerState 5 (power cycle).
    Cycle,
}

impl PowerAction {
    /// The CIM PowerState this action requests.
    pub fn power_state(self) -> u16 {
        match self {
            Self::On => 2,
            Self::Off => 8,
            Self::Reset => 10,
            Self::Cycle => 5,
        }
    }
}

/// The CIM name of a PowerState value.
pub fn state_name(s: u16) -> &'static str {
    match s {
        1 => "Other",
        2 => "On",
        3 => "Sleep - Light",
        4 => "Sleep - Deep",
        5 => "Power Cycle (Off - Soft)",
        6 => "Off - Hard",
        7 => "Hibernate (Off - Soft)",
        8 => "Off - Soft",
        9 => "Power Cycle (Off - Hard)",
        10 => "Master Bus Reset",
        11 => "Diagnostic Interrupt (NMI)",
        12 => "Off - Soft Graceful",
        13 => "Off - Hard Graceful",
        14 => "Master Bus Reset Graceful",
        15 => "Power Cycle (Off - Soft Graceful)",
        16 => "Power Cycle (Off - Hard Graceful)",
        _ => "Unknown",
    }
}

/// `2 (On), 8 (Off - Soft)`.
pub fn list_states(v: &[u16]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|s| format!("{s} ({})", state_name(*s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The power state AMT reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PowerStatus {
    /// Current PowerState.
    pub power_state: u16,
    /// Its name.
    pub power_state_name: String,
    /// AvailableRequestedPowerStates.
    pub available: Vec<u16>,
}

impl PowerStatus {
    /// True when the box is on.
    pub fn is_on(&self) -> bool {
        self.power_state == 2
    }

    /// From a `CIM_AssociatedPowerManagementService` instance.
    pub fn from_instance(i: &Instance) -> Result<Self, AmtError> {
        let state = i
            .get("PowerState")
            .ok_or_else(|| AmtError::Malformed(format!("{} without a PowerState", i.class)))?;
        let power_state: u16 = state
            .parse()
            .map_err(|_| AmtError::Malformed(format!("PowerState `{state}` is not a number")))?;
        let available = i
            .all("AvailableRequestedPowerStates")
            .into_iter()
            .map(|s| {
                s.parse::<u16>().map_err(|_| {
                    AmtError::Malformed(format!(
                        "AvailableRequestedPowerStates `{s}` is not a number"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PowerStatus {
            power_state,
            power_state_name: state_name(power_state).to_string(),
            available,
        })
    }
}

/// What to send for an action given the current status: `Ok(None)` for nothing (already
/// there), `Ok(Some((state, note)))`, or the refusal AMT would give.
pub fn decide(
    action: PowerAction,
    status: &PowerStatus,
) -> Result<Option<(u16, Option<String>)>, AmtError> {
    let (state, note) = match action {
        PowerAction::On if status.is_on() => return Ok(None),
        PowerAction::Off if !status.is_on() => return Ok(None),
        PowerAction::Reset | PowerAction::Cycle if !status.is_on() => (
            2,
            Some(format!(
                "the box is {} ({}): AMT refuses {} then, so it is powered on instead",
                status.power_state,
                state_name(status.power_state),
                if action == PowerAction::Reset {
                    "a reset"
                } else {
                    "a power cycle"
                }
            )),
        ),
        a => (a.power_state(), None),
    };
    if !status.available.contains(&state) {
        return Err(AmtError::NotAvailable {
            requested: state,
            available: status.available.clone(),
        });
    }
    Ok(Some((state, note)))
}

/// The result of `power`.
#[derive(Debug, Clone, Serialize)]
pub struct PowerOutcome {
    /// Status before anything was sent.
    pub before: PowerStatus,
    /// The one-time PXE boot source set, if asked.
    pub pxe_source: Option<String>,
    /// PowerState requested (none when the box already was in the asked state).
    pub requested: Option<u16>,
    /// Why the request differs from the action, if it does.
    pub note: Option<String>,
    /// The status read back after the change (none when nothing was sent).
    pub seen: Option<PowerStatus>,
    /// The reply to RequestPowerStateChange was lost (why); the outcome was decided from
    /// the state read back, and the request was not resent.
    pub reply_lost: Option<String>,
}

/// True when `status` is what a request of PowerState `requested` leads to: on for on,
/// reset and cycle, anything but on for off.
pub fn reached(requested: u16, status: &PowerStatus) -> bool {
    match requested {
        8 | 6 | 12 | 13 => !status.is_on(),
        _ => status.is_on(),
    }
}

/// User consent as `IPS_OptInService` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    /// OptInRequired: 0 none, 1 KVM only, 4294967295 every redirection and boot change.
    pub opt_in_required: u32,
    /// OptInState: 0 not started, 1 requested, 2 displayed, 3 received, 4 in session.
    pub opt_in_state: u32,
}

impl Consent {
    /// True when a boot change needs a code from the box's screen first.
    pub fn needed(&self) -> bool {
        self.opt_in_required == u32::MAX && !matches!(self.opt_in_state, 3 | 4)
    }
}

/// `AMT_BootSettingData` properties AMT reports but does not accept in a Put.
pub const READ_ONLY_BOOT_SETTINGS: &[&str] = &[
    "BIOSLastStatus",
    "BootguardStatus",
    "OptionsCleared",
    "SecureBootControlEnabled",
    "UEFIHTTPSBootEnabled",
    "UEFILocalPBABootEnabled",
    "WinREBootEnabled",
    "RPEEnabled",
    "PlatformErase",
    "ElementName",
];

/// `AMT_BootSettingData` properties that identify the instance: put back as read.
pub const IDENTITY_BOOT_SETTINGS: &[&str] = &["InstanceID", "OwningEntity"];

/// The fields put to `AMT_BootSettingData`: every option AMT returned zeroed (`false`, or `0`
/// for numbers: ConfigurationDataReset, ReflashBIOS, SecureErase, UseSafeMode, Lock*,
/// BootMediaIndex, IDERBootDevice, FirmwareVerbosity, BIOSPause, BIOSSetup, UseSOL, UseIDER…),
/// whatever another console left there, as MeshCommander does before every power action;
/// the read-only ones left out, the identity kept. A PXE boot needs none of them set.
pub fn boot_settings_zeroed(current: &Instance) -> Vec<(String, String)> {
    current
        .properties
        .iter()
        .filter(|(n, _)| !READ_ONLY_BOOT_SETTINGS.contains(&n.as_str()))
        .map(|(n, v)| {
            let v = if IDENTITY_BOOT_SETTINGS.contains(&n.as_str()) {
                v.clone()
            } else if v == "true" || v == "false" {
                "false".to_string()
            } else if v.parse::<i64>().is_ok() {
                "0".to_string()
            } else {
                v.clone()
            };
            (n.clone(), v)
        })
        .collect()
}

/// The fields put to `AMT_BootSettingData` before a one-time PXE boot
/// ([`boot_settings_zeroed`]).
pub fn boot_settings_for_pxe(current: &Instance) -> Vec<(String, String)> {
    boot_settings_zeroed(current)
}

/// The PXE source among the enumerated boot sources (`CIM:Network:…` or an InstanceID naming
/// PXE).
pub fn pxe_source(sources: &[Instance]) -> Result<String, AmtError> {
    sources
        .iter()
        .find(|s| {
            s.get("StructuredBootString")
                .is_some_and(|b| b.starts_with("CIM:Network"))
        })
        .or_else(|| {
            sources
                .iter()
                .find(|s| s.get("InstanceID").is_some_and(|i| i.contains("PXE")))
        })
        .and_then(|s| s.get("InstanceID").map(str::to_string))
        .ok_or_else(|| {
            AmtError::NoPxeSource(
                sources
                    .iter()
                    .filter_map(|s| s.get("InstanceID").map(str::to_string))
                    .collect(),
            )
        })
}

fn check_return(xml: &str, method: &str) -> Result<(), AmtError> {
    match reply::return_value(xml, method)? {
        0 => Ok(()),
        value => Err(AmtError::Refused {
            method: method.to_string(),
            value,
        }),
    }
}

impl Client {
    /// Reads `IPS_OptInService` (OptInRequired, OptInState).
    pub fn consent(&mut self) -> Result<Consent, AmtError> {
        let id = self.message_id();
        let i = reply::get_instance(
            &self.call(&wsman::get(OPT_IN_SERVICE, &id, &[]))?,
            OPT_IN_SERVICE,
        )?;
        let num = |k: &str| -> Result<u32, AmtError> {
            let v = i.get(k).unwrap_or("0");
            v.parse().map_err(|_| {
                AmtError::Malformed(format!("{OPT_IN_SERVICE} {k} `{v}` is not a number"))
            })
        };
        Ok(Consent {
            opt_in_required: num("OptInRequired")?,
            opt_in_state: num("OptInState")?,
        })
    }

    /// When AMT requires user consent: StartOptIn (the code appears on the box's screen)
    /// unless a code is already shown, then the code from `code` (a flag, the environment or
    /// a prompt) sent with SendOptInCode. Without a code: [`AmtError::ConsentNeeded`].
    pub fn ensure_consent(
        &mut self,
        code: &mut dyn FnMut() -> Option<String>,
    ) -> Result<(), AmtError> {
        let c = self.consent()?;
        if !c.needed() {
            return Ok(());
        }
        if !matches!(c.opt_in_state, 1 | 2) {
            let id = self.message_id();
            let r = self.call(&wsman::start_opt_in(&id))?;
            check_return(&r, "StartOptIn")?;
        }
        let Some(text) = code() else {
            return Err(AmtError::ConsentNeeded);
        };
        let text = text.trim();
        if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmtError::ConsentCodeFormat);
        }
        let n: u32 = text.parse().map_err(|_| AmtError::ConsentCodeFormat)?;
        let id = self.message_id();
        let r = self.call(&wsman::send_opt_in_code(&id, n))?;
        match reply::return_value(&r, "SendOptInCode")? {
            0 => Ok(()),
            v => Err(AmtError::ConsentRefused(v)),
        }
    }

    /// Enumerates a class completely.
    pub fn enumerate_all(&mut self, class: &str) -> Result<Vec<Instance>, AmtError> {
        let id = self.message_id();
        let ctx = reply::enumeration_context(&self.call(&wsman::enumerate(class, &id))?)?;
        let mut out = Vec::new();
        for _ in 0..100 {
            let id = self.message_id();
            let (items, end) = reply::pull_items(&self.call(&wsman::pull(class, &id, &ctx))?)?;
            out.extend(items);
            if end {
                return Ok(out);
            }
        }
        Err(AmtError::Malformed(format!(
            "the enumeration of {class} did not end after 100 pulls"
        )))
    }

    /// The power status (`CIM_AssociatedPowerManagementService`).
    pub fn status(&mut self) -> Result<PowerStatus, AmtError> {
        let items = self.enumerate_all(ASSOCIATED_POWER)?;
        let i = items
            .iter()
            .find(|i| i.class == ASSOCIATED_POWER)
            .ok_or_else(|| {
                AmtError::Malformed(format!("the enumeration returned no {ASSOCIATED_POWER}"))
            })?;
        PowerStatus::from_instance(i)
    }

    /// `RequestPowerStateChange` to `state`; ReturnValue 0 or an error naming it.
    /// Sent at most once ([`Client::call_once`]): a resent reset could land after the one-time
    /// PXE boot was used.
    pub fn request_power_state(&mut self, state: u16) -> Result<(), AmtError> {
        let id = self.message_id();
        let r = self.call_once(&wsman::request_power_state_change(&id, state))?;
        check_return(&r, "RequestPowerStateChange")
    }

    /// Reads the power state until it is what `requested` leads to, within the poll bound
    /// ([`Client::set_poll`]); the last status read, or [`AmtError::PowerUnconfirmed`].
    pub fn wait_for_state(
        &mut self,
        requested: u16,
        lost: Option<&str>,
    ) -> Result<PowerStatus, AmtError> {
        let (attempts, interval) = self.poll();
        let mut last = None;
        for i in 0..attempts {
            if i > 0 {
                std::thread::sleep(interval);
            }
            match self.status() {
                Ok(s) if reached(requested, &s) => return Ok(s),
                Ok(s) => last = Some(s),
                // A box mid-reset may not answer for a moment: read again.
                Err(e) if i + 1 == attempts && last.is_none() => return Err(e),
                Err(_) => {}
            }
        }
        let seen = last.map(|s| s.power_state).unwrap_or(0);
        Err(AmtError::PowerUnconfirmed {
            requested,
            lost: lost.map(str::to_string),
            attempts,
            seen,
        })
    }

    /// Makes the next boot (only) a PXE boot; returns the boot source's InstanceID. Reads
    /// `AMT_BootCapabilities` first: firmware without ForcePXEBoot is refused before any
    /// setting is changed.
    pub fn set_pxe_once(&mut self) -> Result<String, AmtError> {
        let id = self.message_id();
        let caps = reply::get_instance(
            &self.call(&wsman::get(BOOT_CAPABILITIES, &id, &[]))?,
            BOOT_CAPABILITIES,
        )?;
        if caps.get("ForcePXEBoot") != Some("true") {
            return Err(AmtError::NoForcePxe(
                caps.get("ForcePXEBoot").unwrap_or("absent").to_string(),
            ));
        }
        self.put_boot_settings(boot_settings_for_pxe)?;
        let sources = self.enumerate_all(BOOT_SOURCE)?;
        let source = pxe_source(&sources)?;
        let id = self.message_id();
        let r = self.call(&wsman::change_boot_order(&id, &source))?;
        check_return(&r, "ChangeBootOrder")?;
        let id = self.message_id();
        let r = self.call(&wsman::set_boot_config_role(&id, 1))?;
        check_return(&r, "SetBootConfigRole")?;
        Ok(source)
    }

    /// `AMT_BootSettingData`: read, then Put with the fields `settings` makes of it.
    fn put_boot_settings(
        &mut self,
        settings: fn(&Instance) -> Vec<(String, String)>,
    ) -> Result<(), AmtError> {
        let id = self.message_id();
        let current = reply::get_instance(
            &self.call(&wsman::get(BOOT_SETTING_DATA, &id, &[]))?,
            BOOT_SETTING_DATA,
        )?;
        let id = self.message_id();
        let r = self.call(&wsman::put_boot_setting_data(&id, &settings(&current)))?;
        reply::get_instance(&r, BOOT_SETTING_DATA)?;
        Ok(())
    }

    /// Clears any boot override, whoever set it: `AMT_BootSettingData` Put with every option
    /// zeroed, then `CIM_BootConfigSetting.ChangeBootOrder` with no Source (the boot order
    /// AMT forces is emptied, so the next boot follows the BIOS order). MeshCommander does
    /// both before a plain power action.
    pub fn clear_boot_override(&mut self) -> Result<(), AmtError> {
        self.put_boot_settings(boot_settings_zeroed)?;
        let id = self.message_id();
        let r = self.call(&wsman::clear_boot_order(&id))?;
        check_return(&r, "ChangeBootOrder")
    }

    /// Status; then, only when a power change follows, the boot override: the one-time PXE
    /// when asked, else any override cleared; then the power request the status allows. A
    /// power request that fails (other than by a lost reply) clears the PXE override again.
    pub fn power(&mut self, action: PowerAction, pxe_once: bool) -> Result<PowerOutcome, AmtError> {
        self.power_with_consent(action, pxe_once, &mut || None)
    }

    /// [`Client::power`], asking `code` for the user-consent code when AMT requires one
    /// before the boot settings are touched.
    pub fn power_with_consent(
        &mut self,
        action: PowerAction,
        pxe_once: bool,
        code: &mut dyn FnMut() -> Option<String>,
    ) -> Result<PowerOutcome, AmtError> {
        let before = self.status()?;
        let decision = decide(action, &before)?;
        if decision.is_some() {
            self.ensure_consent(code)?;
        }
        let pxe_source = match (&decision, pxe_once) {
            (Some(_), true) => Some(self.set_pxe_once()?),
            (Some(_), false) => {
                self.clear_boot_override()?;
                None
            }
            (None, _) => None,
        };
        let mut reply_lost = None;
        let mut seen = None;
        let (requested, note) = match decision {
            Some((state, note)) => {
                match self.request_power_state(state) {
                    Ok(()) => {}
                    // The request went out but its reply did not come back: AMT may or may not
                    // have acted. Never resend; the state read back decides.
                    Err(e @ (AmtError::Unreachable { .. } | AmtError::TooLarge { .. })) => {
                        reply_lost = Some(e.to_string());
                    }
                    Err(e) => {
                        if pxe_source.is_some() {
                            // The box was not reset: a pending PXE boot would surprise the next
                            // boot, whoever causes it.
                            if let Err(c) = self.clear_boot_override() {
                                return Err(AmtError::Malformed(format!(
                                    "{e}; and clearing the one-time PXE boot failed too ({c}): it may still be pending"
                                )));
                            }
                        }
                        return Err(e);
                    }
                }
                seen = Some(self.wait_for_state(state, reply_lost.as_deref())?);
                (Some(state), note)
            }
            None => (
                None,
                Some(format!(
                    "the box is already {} ({}): nothing sent{}",
                    before.power_state,
                    state_name(before.power_state),
                    if pxe_once {
                        " (and no one-time PXE boot set: no power change follows it)"
                    } else {
                        ""
                    }
                )),
            ),
        };
        Ok(PowerOutcome {
            before,
            pxe_source,
            requested,
            note,
            seen,
            reply_lost,
        })
    }
}
