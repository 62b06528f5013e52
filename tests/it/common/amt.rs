//! A test AMT: an HTTP server on loopback answering exactly the WS-Management operations
//! picaboot uses, the way AMT does (replies built from the recorded-style fixtures in
//! tests/fixtures/amt/), checking resource URIs, selectors and references and refusing what
//! AMT refuses. It has no authentication of its own: Apache's mod_auth_digest sits in front
//! ([`Apache`]). Power changes drive a [`Machine`] (a recorder, or a QEMU VM through QMP).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const CIM: &str = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/";
const AMT: &str = "http://intel.com/wbem/wscim/1/amt-schema/1/";
const IPS: &str = "http://intel.com/wbem/wscim/1/ips-schema/1/";
const BOOT_CONFIG_ID: &str = "Intel(r) AMT: Boot Configuration 0";
const SOURCES: &[&str] = &[
    "Intel(r) AMT: Force Hard-drive Boot",
    "Intel(r) AMT: Force PXE Boot",
    "Intel(r) AMT: Force CD/DVD Boot",
];
const READ_ONLY: &[&str] = &[
    "OptionsCleared",
    "UEFIHTTPSBootEnabled",
    "WinREBootEnabled",
    "ElementName",
    "BIOSLastStatus",
];

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/amt/",
            $name
        ))
    };
}

/// What AMT controls: the box's power and its next boot device.
pub trait Machine: Send {
    /// Power on; `pxe`: this boot from the network.
    fn power_on(&mut self, pxe: bool);
    /// Power off (hard).
    fn power_off(&mut self);
    /// Reset; `pxe`: the boot after it from the network.
    fn reset(&mut self, pxe: bool);
    /// Is it on?
    fn is_on(&mut self) -> bool;
}

/// A machine that only records what happened.
#[derive(Debug, Default)]
pub struct Recorder {
    /// On?
    pub on: bool,
    /// `on`, `on pxe`, `off`, `reset`, `reset pxe`.
    pub events: Arc<Mutex<Vec<String>>>,
}

impl Machine for Recorder {
    fn power_on(&mut self, pxe: bool) {
        self.on = true;
        self.events
            .lock()
            .unwrap()
            .push(if pxe { "on pxe" } else { "on" }.into());
    }
    fn power_off(&mut self) {
        self.on = false;
        self.events.lock().unwrap().push("off".into());
    }
    fn reset(&mut self, pxe: bool) {
        self.events
            .lock()
            .unwrap()
            .push(if pxe { "reset pxe" } else { "reset" }.into());
    }
    fn is_on(&mut self) -> bool {
        self.on
    }
}

struct State {
    machine: Box<dyn Machine>,
    settings: Vec<(String, String)>,
    boot_source: Option<String>,
    pxe_next: bool,
    contexts: BTreeMap<String, String>,
    counter: u64,
    /// Operations received, e.g. `Enumerate CIM_AssociatedPowerManagementService`.
    log: Vec<String>,
    /// Force the ReturnValue of the next call of this method.
    refuse: Option<(String, u32)>,
    /// AMT_BootCapabilities ForcePXEBoot.
    force_pxe: bool,
    /// Reply as AMT 11's own web server does: chunked, in several chunks.
    chunked: bool,
    /// IPS_OptInService: the code StartOptIn "shows" when consent is required, and OptInState.
    consent: Option<(u32, u32)>,
    /// Carry out the next power change but close the connection instead of replying.
    drop_power_reply: bool,
}

/// A running test AMT.
#[derive(Clone)]
pub struct AmtSim {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    state: Arc<Mutex<State>>,
}

fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Req<'a> {
    action: String,
    uri: String,
    msg_id: String,
    selectors: BTreeMap<String, String>,
    body: Option<roxmltree::Node<'a, 'a>>,
}

fn child<'a>(n: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn selectors(n: roxmltree::Node<'_, '_>) -> BTreeMap<String, String> {
    child(n, "SelectorSet")
        .map(|s| {
            s.children()
                .filter(|c| c.is_element() && c.tag_name().name() == "Selector")
                .map(|c| {
                    (
                        c.attribute("Name").unwrap_or("").to_string(),
                        c.text().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `(ResourceURI, selectors)` of an endpoint reference element.
fn reference(n: roxmltree::Node<'_, '_>) -> Option<(String, BTreeMap<String, String>)> {
    let rp = child(n, "ReferenceParameters")?;
    let uri = child(rp, "ResourceURI")?.text()?.to_string();
    Some((uri, selectors(rp)))
}

fn sel(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

impl AmtSim {
    /// Starts the endpoint on loopback.
    pub fn start(machine: Box<dyn Machine>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State {
            machine,
            settings: vec![
                ("BIOSPause".into(), "true".into()),
                ("BIOSSetup".into(), "false".into()),
                ("UseIDER".into(), "true".into()),
                ("UseSOL".into(), "true".into()),
                ("BootMediaIndex".into(), "0".into()),
                ("ConfigurationDataReset".into(), "false".into()),
                ("FirmwareVerbosity".into(), "0".into()),
                ("IDERBootDevice".into(), "0".into()),
                ("LockKeyboard".into(), "false".into()),
                ("LockPowerButton".into(), "false".into()),
                ("ReflashBIOS".into(), "false".into()),
                ("SecureErase".into(), "false".into()),
                ("UseSafeMode".into(), "false".into()),
            ],
            boot_source: None,
            pxe_next: false,
            contexts: BTreeMap::new(),
            counter: 0,
            log: Vec::new(),
            refuse: None,
            drop_power_reply: false,
            force_pxe: true,
            consent: None,
            chunked: false,
        }));
        let sim = AmtSim { addr, state };
        let s2 = sim.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let sim = s2.clone();
                std::thread::spawn(move || sim.connection(stream));
            }
        });
        sim
    }

    /// The operations received so far.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// The power states requested so far (`PowerState N`, in order).
    pub fn power_states(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.starts_with("PowerState"))
            .collect()
    }

    /// The current `AMT_BootSettingData` values the sim tracks.
    pub fn setting(&self, name: &str) -> Option<String> {
        let st = self.state.lock().unwrap();
        st.settings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// True while a one-time PXE boot is pending.
    pub fn pxe_pending(&self) -> bool {
        self.state.lock().unwrap().pxe_next
    }

    /// Powers the machine off (end of a test: a QEMU child must not outlive the test).
    pub fn shutdown(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.machine.is_on() {
            st.machine.power_off();
        }
    }

    /// What "another console" left behind: a pending one-time PXE boot and boot options that
    /// would reflash, erase or lock the box (the options MeshCommander zeroes on every plain
    /// power action: index.html `powerActionResponse1` sets BIOSPause, BootMediaIndex,
    /// FirmwareVerbosity, Lock*, ReflashBIOS, UseSafeMode, ConfigurationDataReset, and
    /// SecureErase / IDERBootDevice / UseIDER unless the action asks for them, to off / 0).
    pub fn leave_boot_options(&self) {
        let mut st = self.state.lock().unwrap();
        st.boot_source = Some("Intel(r) AMT: Force PXE Boot".into());
        st.pxe_next = true;
        for (n, v) in st.settings.iter_mut() {
            *v = match n.as_str() {
                "BootMediaIndex" | "FirmwareVerbosity" => "2".into(),
                "IDERBootDevice" => "1".into(),
                _ => "true".into(),
            };
        }
    }

    /// The AMT_BootSettingData options the sim tracks that are not off / zero.
    pub fn options_set(&self) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.settings
            .iter()
            .filter(|(_, v)| v != "false" && v != "0")
            .map(|(n, v)| format!("{n}={v}"))
            .collect()
    }

    /// Client Control Mode: user consent required for every boot and power change; StartOptIn
    /// "shows" `code`.
    pub fn require_consent(&self, code: u32) {
        self.state.lock().unwrap().consent = Some((code, 0));
    }

    /// Replies chunked (Transfer-Encoding: chunked, several chunks), as AMT's firmware web
    /// server frames its WS-Management replies: MeshCentral's amt/amt-wsman-comm.js and
    /// MeshCommander's amt-wsman-node-0.2.0.js (`xxOnSocketData`) decode a reply with neither
    /// `Connection: close` nor `Content-Length` chunk by chunk ("The body is chunked").
    /// (go-wsman-messages' pkg/wsman/client leaves framing to Go's net/http, so it shows
    /// nothing either way; an earlier note here cited it.)
    pub fn chunked_replies(&self) {
        self.state.lock().unwrap().chunked = true;
    }

    /// Sets AMT_BootCapabilities ForcePXEBoot (firmware that cannot force a PXE boot).
    pub fn set_force_pxe(&self, on: bool) {
        self.state.lock().unwrap().force_pxe = on;
    }

    /// The boot source AMT forces on the next boot (`CIM_BootConfigSetting`'s order), if any.
    pub fn forced_boot_source(&self) -> Option<String> {
        self.state.lock().unwrap().boot_source.clone()
    }

    /// The next call of `method` answers this ReturnValue and does nothing. Tests refuse a
    /// power change with 2: "Unknown or Unspecified Error" in CIM_PowerManagementService's
    /// RequestPowerStateChange table, and `NOT_READY` (0x0002) in the firmware status codes
    /// MeshCommander decodes every ReturnValue with (amt-0.2.0.js, `AmtStatusToStr`).
    pub fn refuse_next(&self, method: &str, value: u32) {
        self.state.lock().unwrap().refuse = Some((method.into(), value));
    }

    /// The next RequestPowerStateChange is carried out but its reply never sent: the
    /// connection is closed instead. Real AMT does this: MeshCommander's index.html,
    /// `powerActionResponse4`, after every RequestPowerStateChange: "Sometimes Intel AMT with
    /// not respond and this will timeout. Try to pull the power state" (it then Gets
    /// CIM_AssociatedPowerManagementService). MAAS's AMT driver (canonical/maas
    /// src/provisioningserver/drivers/power/amt.py, `wsman_power_on` / `wsman_power_off`)
    /// polls the power state up to 10 times, 1 s apart, after the command rather than trusting
    /// its reply. (MeshCommander's transport, amt-wsman-node-0.2.0.js `xxOnSocketClosed`,
    /// resends a pending request up to 5 times when the socket closes: it is not a model of
    /// exactly-once, only of the lost reply.)
    pub fn drop_next_power_reply(&self) {
        self.state.lock().unwrap().drop_power_reply = true;
    }

    fn connection(&self, stream: std::net::TcpStream) {
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                if h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            let (status, reply) = if line.starts_with("POST /wsman ") {
                self.handle(&String::from_utf8_lossy(&body))
            } else {
                (404, String::new())
            };
            if status == 0 {
                return; // drop the reply: the connection closes here
            }
            let text = if status == 200 { "OK" } else { "Error" };
            if self.state.lock().unwrap().chunked {
                let mut out = format!(
                    "HTTP/1.1 {status} {text}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                let bytes = reply.as_bytes();
                for part in bytes.chunks(bytes.len().div_ceil(3).max(1)) {
                    out.push_str(&format!("{:x}\r\n", part.len()));
                    out.push_str(&String::from_utf8_lossy(part));
                    out.push_str("\r\n");
                }
                out.push_str("0\r\n\r\n");
                if w.write_all(out.as_bytes()).is_err() {
                    return;
                }
                continue;
            }
            let ok = write!(
                w,
                "HTTP/1.1 {status} {text}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{reply}",
                reply.len()
            );
            if ok.is_err() {
                return;
            }
        }
    }

    fn fault(&self, relates: &str, subcode: &str, reason: &str) -> (u16, String) {
        (
            400,
            fill(
                fixture!("reply_fault.xml"),
                &[
                    ("RELATES_TO", &esc(relates)),
                    ("SUBCODE", subcode),
                    ("REASON", &esc(reason)),
                ],
            ),
        )
    }

    fn handle(&self, xml: &str) -> (u16, String) {
        let Ok(doc) = roxmltree::Document::parse(xml) else {
            return self.fault("", "e:InvalidMessage", "the request is not XML");
        };
        let env = doc.root_element();
        let (Some(header), Some(body)) = (child(env, "Header"), child(env, "Body")) else {
            return self.fault("", "e:InvalidMessage", "no SOAP Header/Body");
        };
        let text = |n: &str| {
            child(header, n)
                .and_then(|c| c.text())
                .unwrap_or("")
                .to_string()
        };
        let req = Req {
            action: text("Action"),
            uri: text("ResourceURI"),
            msg_id: text("MessageID"),
            selectors: selectors(header),
            body: body.children().find(|c| c.is_element()),
        };
        if text("To") != "/wsman" || req.msg_id.is_empty() {
            return self.fault(
                &req.msg_id,
                "b:InvalidMessageInformationHeader",
                "To must be /wsman and MessageID set",
            );
        }
        let class = req
            .uri
            .strip_prefix(CIM)
            .or_else(|| req.uri.strip_prefix(AMT))
            .or_else(|| req.uri.strip_prefix(IPS))
            .unwrap_or("")
            .to_string();
        let op = req.action.rsplit('/').next().unwrap_or("").to_string();
        self.state.lock().unwrap().log.push(format!("{op} {class}"));
        // Client Control Mode: until the code shown on the screen is sent, AMT answers the
        // boot-setting and power calls "access denied" (Intel AMT SDK, User Consent, not
        // checked against a peer here; MeshCommander's index.html `powerActionResponse0` Gets
        // IPS_OptInService before a power action and, when OptInRequired is 0xFFFFFFFF and
        // OptInState is not 3/4, calls StartOptIn and asks for the code, SendOptInCode).
        let consent_missing = matches!(self.state.lock().unwrap().consent, Some((_, s)) if s != 3);
        if consent_missing
            && matches!(
                op.as_str(),
                "Put" | "ChangeBootOrder" | "SetBootConfigRole" | "RequestPowerStateChange"
            )
        {
            return self.fault(&req.msg_id, "b:AccessDenied", "user consent required");
        }
        match (op.as_str(), class.as_str()) {
            ("Get", "IPS_OptInService") => {
                let (req_v, state) = match self.state.lock().unwrap().consent {
                    Some((_, s)) => (u32::MAX, s),
                    None => (0, 0),
                };
                (
                    200,
                    fill(
                        fixture!("reply_opt_in_service.xml"),
                        &[
                            ("RELATES_TO", &esc(&req.msg_id)),
                            ("OPT_IN_REQUIRED", &req_v.to_string()),
                            ("OPT_IN_STATE", &state.to_string()),
                        ],
                    ),
                )
            }
            ("StartOptIn" | "SendOptInCode", "IPS_OptInService") => {
                let mut st = self.state.lock().unwrap();
                let rv = match (&mut st.consent, op.as_str()) {
                    (Some((_, s)), "StartOptIn") => {
                        *s = 2; // displayed
                        0
                    }
                    (Some((code, s)), _) => {
                        let sent: Option<u32> = req
                            .body
                            .and_then(|b| child(b, "OptInCode"))
                            .and_then(|c| c.text())
                            .and_then(|t| t.parse().ok());
                        if *s == 2 && sent == Some(*code) {
                            *s = 3; // received
                            0
                        } else {
                            2066 // the code is wrong or no code is displayed
                        }
                    }
                    (None, _) => 1,
                };
                (
                    200,
                    fill(
                        fixture!("reply_opt_in_method.xml"),
                        &[
                            ("RELATES_TO", &esc(&req.msg_id)),
                            ("METHOD", &op),
                            ("RETURN_VALUE", &rv.to_string()),
                        ],
                    ),
                )
            }
            ("Enumerate", "CIM_AssociatedPowerManagementService" | "CIM_BootSourceSetting") => {
                let mut st = self.state.lock().unwrap();
                st.counter += 1;
                let ctx = format!("{:08X}-0000-0000-0000-000000000000", st.counter);
                st.contexts.insert(ctx.clone(), class.clone());
                (
                    200,
                    fill(
                        fixture!("reply_enumerate.xml"),
                        &[("RELATES_TO", &esc(&req.msg_id)), ("CONTEXT", &ctx)],
                    ),
                )
            }
            ("Pull", _) => {
                let ctx = req
                    .body
                    .and_then(|b| child(b, "EnumerationContext"))
                    .and_then(|c| c.text())
                    .unwrap_or("")
                    .to_string();
                let mut st = self.state.lock().unwrap();
                match st.contexts.remove(&ctx) {
                    Some(c) if c == class => {}
                    _ => {
                        drop(st);
                        return self.fault(
                            &req.msg_id,
                            "h:InvalidEnumerationContext",
                            "unknown enumeration context",
                        );
                    }
                }
                if class == "CIM_BootSourceSetting" {
                    return (
                        200,
                        fill(
                            fixture!("reply_pull_boot_sources.xml"),
                            &[("RELATES_TO", &esc(&req.msg_id))],
                        ),
                    );
                }
                let on = st.machine.is_on();
                let available: &[u16] = if on { &[5, 8, 10] } else { &[2] };
                let av: String = available
                    .iter()
                    .map(|s| format!("<g:AvailableRequestedPowerStates>{s}</g:AvailableRequestedPowerStates>"))
                    .collect();
                (
                    200,
                    fill(
                        fixture!("reply_pull_power.xml"),
                        &[
                            ("RELATES_TO", &esc(&req.msg_id)),
                            ("AVAILABLE", &av),
                            ("POWER_STATE", if on { "2" } else { "8" }),
                        ],
                    ),
                )
            }
            ("Get", "AMT_BootCapabilities") => {
                let pxe = self.state.lock().unwrap().force_pxe;
                (
                    200,
                    fill(
                        fixture!("reply_boot_capabilities.xml"),
                        &[
                            ("RELATES_TO", &esc(&req.msg_id)),
                            ("FORCE_PXE_BOOT", if pxe { "true" } else { "false" }),
                        ],
                    ),
                )
            }
            ("Get", "AMT_BootSettingData") => self.boot_settings(&req, "GetResponse"),
            ("Put", "AMT_BootSettingData") => {
                if req.selectors != sel(&[("InstanceID", "Intel(r) AMT:BootSettingData 0")]) {
                    return self.fault(
                        &req.msg_id,
                        "c:InvalidSelectors",
                        "AMT_BootSettingData needs InstanceID",
                    );
                }
                let Some(b) = req
                    .body
                    .filter(|b| b.tag_name().name() == "AMT_BootSettingData")
                else {
                    return self.fault(
                        &req.msg_id,
                        "c:InvalidRepresentation",
                        "no AMT_BootSettingData in the body",
                    );
                };
                let fields: Vec<(String, String)> = b
                    .children()
                    .filter(|c| c.is_element())
                    .map(|c| {
                        (
                            c.tag_name().name().to_string(),
                            c.text().unwrap_or("").to_string(),
                        )
                    })
                    .collect();
                if let Some((n, _)) = fields.iter().find(|(n, _)| READ_ONLY.contains(&n.as_str())) {
                    return self.fault(
                        &req.msg_id,
                        "c:InvalidRepresentation",
                        &format!("{n} is read-only"),
                    );
                }
                if !fields
                    .iter()
                    .any(|(n, v)| n == "InstanceID" && v == "Intel(r) AMT:BootSettingData 0")
                {
                    return self.fault(
                        &req.msg_id,
                        "c:InvalidRepresentation",
                        "InstanceID missing",
                    );
                }
                {
                    let mut st = self.state.lock().unwrap();
                    for (n, v) in fields {
                        if let Some(s) = st.settings.iter_mut().find(|(k, _)| *k == n) {
                            s.1 = v;
                        }
                    }
                }
                self.boot_settings(&req, "PutResponse")
            }
            ("ChangeBootOrder", "CIM_BootConfigSetting") => {
                if req.selectors != sel(&[("InstanceID", BOOT_CONFIG_ID)]) {
                    return self.fault(
                        &req.msg_id,
                        "c:InvalidSelectors",
                        "unknown CIM_BootConfigSetting",
                    );
                }
                let source = req
                    .body
                    .filter(|b| b.tag_name().name() == "ChangeBootOrder_INPUT")
                    .and_then(|b| child(b, "Source"))
                    .and_then(reference);
                let ok = match &source {
                    Some((uri, s)) if *uri == format!("{CIM}CIM_BootSourceSetting") => s
                        .get("InstanceID")
                        .filter(|id| SOURCES.contains(&id.as_str()))
                        .cloned(),
                    _ => None,
                };
                // No Source at all empties the forced boot order (MeshCommander clears a
                // one-time boot this way: index.html `powerActionResponse1` calls
                // CIM_BootConfigSetting_ChangeBootOrder(null) before every power action, "needed
                // for some AMT versions that don't clear this automatically"; a null Source is
                // left out of the envelope by amt-wsman-0.2.0.js `ExecMethod`).
                let no_source = req
                    .body
                    .filter(|b| b.tag_name().name() == "ChangeBootOrder_INPUT")
                    .is_some_and(|b| child(b, "Source").is_none());
                let mut rv = if ok.is_some() || no_source { 0 } else { 5 };
                let mut st = self.state.lock().unwrap();
                if let Some((m, v)) = st.refuse.take() {
                    if m == "ChangeBootOrder" {
                        rv = v;
                    } else {
                        st.refuse = Some((m, v));
                    }
                }
                if rv == 0 {
                    st.boot_source = ok;
                    if no_source {
                        st.pxe_next = false;
                    }
                }
                (
                    200,
                    self.rv(fixture!("reply_change_boot_order.xml"), &req, rv),
                )
            }
            ("SetBootConfigRole", "CIM_BootService") => {
                if req.selectors.get("Name").map(String::as_str)
                    != Some("Intel(r) AMT Boot Service")
                {
                    return self.fault(
                        &req.msg_id,
                        "c:InvalidSelectors",
                        "unknown CIM_BootService",
                    );
                }
                let b = req
                    .body
                    .filter(|b| b.tag_name().name() == "SetBootConfigRole_INPUT");
                let r = b
                    .and_then(|b| child(b, "BootConfigSetting"))
                    .and_then(reference);
                let role = b
                    .and_then(|b| child(b, "Role"))
                    .and_then(|r| r.text())
                    .unwrap_or("")
                    .to_string();
                let good_ref = matches!(&r, Some((uri, s)) if *uri == format!("{CIM}CIM_BootConfigSetting") && *s == sel(&[("InstanceID", BOOT_CONFIG_ID)]));
                let mut rv = if good_ref && (role == "1" || role == "32768") {
                    0
                } else {
                    5
                };
                let mut st = self.state.lock().unwrap();
                if let Some((m, v)) = st.refuse.take() {
                    if m == "SetBootConfigRole" {
                        rv = v;
                    } else {
                        st.refuse = Some((m, v));
                    }
                }
                if rv == 0 && role == "1" {
                    st.pxe_next = st.boot_source.as_deref() == Some("Intel(r) AMT: Force PXE Boot");
                }
                (
                    200,
                    self.rv(fixture!("reply_set_boot_config_role.xml"), &req, rv),
                )
            }
            ("RequestPowerStateChange", "CIM_PowerManagementService") => {
                if req.selectors.get("Name").map(String::as_str)
                    != Some("Intel(r) AMT Power Management Service")
                {
                    return self.fault(
                        &req.msg_id,
                        "c:InvalidSelectors",
                        "unknown CIM_PowerManagementService",
                    );
                }
                let b = req
                    .body
                    .filter(|b| b.tag_name().name() == "RequestPowerStateChange_INPUT");
                let state: Option<u16> = b
                    .and_then(|b| child(b, "PowerState"))
                    .and_then(|p| p.text())
                    .and_then(|t| t.parse().ok());
                let r = b
                    .and_then(|b| child(b, "ManagedElement"))
                    .and_then(reference);
                let good_ref = matches!(&r, Some((uri, s)) if *uri == format!("{CIM}CIM_ComputerSystem") && *s == sel(&[("CreationClassName", "CIM_ComputerSystem"), ("Name", "ManagedSystem")]));
                if !good_ref {
                    return self.fault(
                        &req.msg_id,
                        "c:InvalidParameter",
                        "ManagedElement must reference CIM_ComputerSystem ManagedSystem",
                    );
                }
                let mut st = self.state.lock().unwrap();
                let on = st.machine.is_on();
                let pxe = st.pxe_next;
                let mut rv = match (state, on) {
                    (Some(2), false) | (Some(8 | 10 | 5), true) => 0,
                    _ => 2, // not an available transition: AMT answers an error
                };
                if let Some((m, v)) = st.refuse.take() {
                    if m == "RequestPowerStateChange" {
                        rv = v;
                    } else {
                        st.refuse = Some((m, v));
                    }
                }
                if rv == 0 {
                    st.log.push(format!("PowerState {}", state.unwrap()));
                    match state.unwrap() {
                        2 => st.machine.power_on(pxe),
                        8 => st.machine.power_off(),
                        10 => st.machine.reset(pxe),
                        _ => {
                            st.machine.power_off();
                            st.machine.power_on(pxe);
                        }
                    }
                    if state != Some(8) {
                        st.pxe_next = false; // the one-time boot is used by this boot
                    }
                    if std::mem::take(&mut st.drop_power_reply) {
                        return (0, String::new());
                    }
                }
                (
                    200,
                    self.rv(fixture!("reply_request_power_state_change.xml"), &req, rv),
                )
            }
            _ => self.fault(
                &req.msg_id,
                "b:ActionNotSupported",
                &format!("{} on {}", req.action, req.uri),
            ),
        }
    }

    fn rv(&self, template: &str, req: &Req<'_>, rv: u32) -> String {
        fill(
            template,
            &[
                ("RELATES_TO", &esc(&req.msg_id)),
                ("RETURN_VALUE", &rv.to_string()),
            ],
        )
    }

    fn boot_settings(&self, req: &Req<'_>, action: &str) -> (u16, String) {
        let g = |n: &str| self.setting(n).unwrap_or_default();
        (
            200,
            fill(
                fixture!("reply_boot_setting_data.xml"),
                &[
                    ("RELATES_TO", &esc(&req.msg_id)),
                    (
                        "ACTION",
                        &format!("http://schemas.xmlsoap.org/ws/2004/09/transfer/{action}"),
                    ),
                    ("BIOS_PAUSE", &g("BIOSPause")),
                    ("BIOS_SETUP", &g("BIOSSetup")),
                    ("USE_IDER", &g("UseIDER")),
                    ("USE_SOL", &g("UseSOL")),
                    ("BOOT_MEDIA_INDEX", &g("BootMediaIndex")),
                    ("CONFIGURATION_DATA_RESET", &g("ConfigurationDataReset")),
                    ("FIRMWARE_VERBOSITY", &g("FirmwareVerbosity")),
                    ("IDER_BOOT_DEVICE", &g("IDERBootDevice")),
                    ("LOCK_KEYBOARD", &g("LockKeyboard")),
                    ("LOCK_POWER_BUTTON", &g("LockPowerButton")),
                    ("REFLASH_BIOS", &g("ReflashBIOS")),
                    ("SECURE_ERASE", &g("SecureErase")),
                    ("USE_SAFE_MODE", &g("UseSafeMode")),
                ],
            ),
        )
    }
}

/// Apache httpd (Debian `apache2`) with mod_auth_digest in front of a backend on loopback, a
/// private config in a temp dir, one process (`-X`), killed on drop.
pub struct Apache {
    /// `127.0.0.1:PORT` (HTTP, digest).
    pub http: String,
    /// `127.0.0.1:PORT` (TLS with a self-signed certificate, digest), when asked.
    pub https: Option<String>,
    /// SHA-256 fingerprint of the TLS certificate (from `openssl x509 -fingerprint`).
    pub fingerprint: Option<String>,
    /// Digest realm.
    pub realm: String,
    child: Child,
    /// The temp dir (logs).
    pub dir: tempfile::TempDir,
}

fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `addr` answers an unauthenticated `POST /wsman` with 401 (Apache's digest challenge).
fn wsman_challenges(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok();
    if s.write_all(
        b"POST /wsman HTTP/1.1\r\nHost: amt-test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/1.1 401"
}

impl Apache {
    /// Starts Apache proxying `/wsman` to `backend` with Digest (MD5, qop=auth) for
    /// `user`/`password` (htdigest file line computed with coreutils' md5sum).
    pub fn start(backend: &str, user: &str, password: &str, tls: bool) -> Apache {
        Self::start_on("127.0.0.1", backend, user, password, tls)
    }

    /// Like [`Apache::start`], listening on `ip`.
    pub fn start_on(ip: &str, backend: &str, user: &str, password: &str, tls: bool) -> Apache {
        crate::common::require("apache2", "apache2");
        crate::common::require("md5sum", "coreutils");
        if tls {
            crate::common::require("openssl", "openssl");
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Apache's worker runs as nobody: it must read the htdigest file.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        // AMT's realm is `Digest:` + hex; an htdigest file cannot hold a colon in a realm.
        let realm = "Digest 0A5E0000000000000000000000000000".to_string();
        let ha1 = crate::common::run_ok(
            Command::new("sh")
                .arg("-c")
                .arg("printf %s \"$1\" | md5sum")
                .arg("sh")
                .arg(format!("{user}:{realm}:{password}")),
        );
        let ha1 = ha1.split_whitespace().next().unwrap().to_string();
        std::fs::write(d.join("htdigest"), format!("{user}:{realm}:{ha1}\n")).unwrap();
        // A port chosen by binding port 0 can be taken by another process before Apache binds
        // it (and a connect would then reach that process): Apache counts as started only when
        // its own pid is in its pid file, it is still running and /wsman answers 401 through it.
        // A lost port race (Apache exits: "could not bind") is retried on fresh ports.
        let mut last_logs = String::new();
        for _attempt in 0..5 {
            let _ = std::fs::remove_file(d.join("httpd.pid"));
            let http_port = free_port(ip);
            let mut https = None;
            let mut fingerprint = None;
            let mut tls_conf = String::new();
            if tls {
                let port = free_port(ip);
                if !d.join("cert.pem").exists() {
                    crate::common::run_ok(
                        Command::new("openssl")
                            .args([
                                "req",
                                "-x509",
                                "-newkey",
                                "rsa:2048",
                                "-nodes",
                                "-days",
                                "2",
                                "-subj",
                                "/CN=amt-test",
                                "-keyout",
                            ])
                            .arg(d.join("key.pem"))
                            .arg("-out")
                            .arg(d.join("cert.pem"))
                            .stderr(Stdio::null()),
                    );
                }
                let fp = crate::common::run_ok(
                    Command::new("openssl")
                        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
                        .arg(d.join("cert.pem")),
                );
                fingerprint = Some(fp.trim().split_once('=').unwrap().1.to_string());
                tls_conf = format!(
                    "LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n\
                     LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so\n\
                     Listen {ip}:{port}\n\
                     <VirtualHost {ip}:{port}>\n\
                     SSLEngine on\nSSLCertificateFile {d}/cert.pem\nSSLCertificateKeyFile {d}/key.pem\n\
                     </VirtualHost>\n",
                    d = d.display()
                );
                https = Some(format!("{ip}:{port}"));
            }
            // AMT answers the unauthenticated first request of a Digest exchange with 401 and
            // `Connection: close`, and closes the socket; clients of real AMT reconnect to send
            // the authenticated request. MeshCentral's amt/amt-wsman-comm.js (and MeshCommander's
            // amt-wsman-node-0.2.0.js), `xxProcessHttpResponse`: on a 401 it keeps the challenge
            // ("after this, the socket will close and we will auto-retry") and ends the socket;
            // `xxOnSocketClosed` sends the pending request again on a new socket. Their reply
            // parser also special-cases `Connection: close` without chunking ("The body ends
            // with a close, in this case, we will only process the header"), the 401's framing.
            // So every 401 here says `Connection: close` and Apache closes after it (the access
            // log's `%X` shows `-` for a closed connection).
            let close_401 =
                "Header always set Connection close \"expr=%{REQUEST_STATUS} == 401\"\n";
            let conf = format!(
                "ServerRoot {d}\nServerName amt-test\nPidFile {d}/httpd.pid\nDefaultRuntimeDir {d}\n\
                 Mutex file:{d} default\nErrorLog {d}/error.log\nLogLevel warn\n\
                 LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so\n\
                 LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so\n\
                 LoadModule authn_file_module /usr/lib/apache2/modules/mod_authn_file.so\n\
                 LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n\
                 LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so\n\
                 LoadModule auth_digest_module /usr/lib/apache2/modules/mod_auth_digest.so\n\
                 LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so\n\
                 LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so\n\
                 LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so\n\
                 {tls_conf}\
                 LogFormat \"%s %{{remote}}p %X %k\" amt\nCustomLog {d}/access.log amt\n\
                 User nobody\nGroup nogroup\nListen {ip}:{http_port}\nKeepAlive On\n\
                 <Location /wsman>\n\
                 AuthType Digest\nAuthName \"{realm}\"\nAuthDigestDomain /wsman\n\
                 AuthDigestProvider file\nAuthUserFile {d}/htdigest\nRequire valid-user\n\
                 {close_401}\
                 ProxyPass http://{backend}/wsman\n\
                 </Location>\n",
                d = d.display()
            );
            std::fs::write(d.join("httpd.conf"), conf).unwrap();
            let mut child = Command::new("/usr/sbin/apache2")
                .arg("-f")
                .arg(d.join("httpd.conf"))
                .args(["-X", "-DFOREGROUND"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
                .spawn()
                .unwrap();
            let http = format!("{ip}:{http_port}");
            let mut started = false;
            for _ in 0..100 {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                let ours = std::fs::read_to_string(d.join("httpd.pid"))
                    .map(|p| p.trim() == child.id().to_string())
                    .unwrap_or(false);
                if ours && wsman_challenges(&http) {
                    started = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if started {
                return Apache {
                    http,
                    https,
                    fingerprint,
                    realm,
                    child,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_logs = format!(
                "{}{}",
                std::fs::read_to_string(d.join("stderr.log")).unwrap_or_default(),
                std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
            );
        }
        panic!("apache did not start in 5 attempts: {last_logs}");
    }

    /// Apache's access log, one line per request: `STATUS CLIENT_PORT CONN KEEPALIVES`, where
    /// CONN is `-` when Apache closed the connection after the reply and `+` when kept alive.
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Apache's error log.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Points a scratch copy of the profiles' `alice` at `addr` (`127.0.0.1:PORT`), with TLS
/// pinned to `fingerprint` when given, and the site's jump host when given.
pub fn point_alice_at(profiles: &Path, addr: &str, fingerprint: Option<&str>, jump: Option<&str>) {
    let (ip, port) = addr.rsplit_once(':').unwrap();
    let mut v = format!("[vpro]\naddress = \"{ip}\"\nport = {port}\n");
    if let Some(f) = fingerprint {
        v.push_str(&format!("tls-sha256 = \"{f}\"\n"));
    }
    crate::common::edit(
        &profiles.join("hosts/alice.toml"),
        "[vpro]\naddress = \"192.168.128.151\"\n",
        &v,
    );
    if let Some(j) = jump {
        let site = profiles.join("site.toml");
        let mut s = std::fs::read_to_string(&site).unwrap();
        s.push_str(&format!("\n[vpro]\njump-host = \"{j}\"\n"));
        std::fs::write(site, s).unwrap();
    }
}

/// Runs picaboot with the AMT credentials in the environment (never on the command line).
pub fn picaboot_amt(cwd: &Path, args: &[&str], user: &str, password: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_picaboot"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PICABOOT_PROFILES")
        .env_remove("PICABOOT_AMT_CREDENTIALS")
        .env("PICABOOT_AMT_USERNAME", user)
        .env("PICABOOT_AMT_PASSWORD", password)
        .output()
        .expect("run picaboot")
}
