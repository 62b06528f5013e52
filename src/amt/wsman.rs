//! WS-Management request envelopes for the handful of Intel AMT operations picaboot uses.
//!
//! Every builder is a pure function of its inputs (the message id included), so the XML can be
//! compared with the expected envelopes in the unit tests. The XML is built with
//! [`crate::xml::Element`], the one writer (and escaper) of picaboot.

use crate::xml::Element;

/// SOAP 1.2 envelope namespace.
pub const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing (2004/08) namespace.
pub const NS_WSA: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// WS-Management namespace.
pub const NS_WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// WS-Enumeration namespace.
pub const NS_WSEN: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
/// The anonymous reply address.
pub const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// Base of the DMTF CIM resource URIs.
pub const CIM: &str = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/";
/// Base of the Intel AMT resource URIs.
pub const AMT: &str = "http://intel.com/wbem/wscim/1/amt-schema/1/";

/// WS-Transfer Get.
pub const ACTION_GET: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get";
/// WS-Transfer Put.
pub const ACTION_PUT: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Put";
/// WS-Enumeration Enumerate.
pub const ACTION_ENUMERATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate";
/// WS-Enumeration Pull.
pub const ACTION_PULL: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull";

/// `CIM_AssociatedPowerManagementService`.
pub const ASSOCIATED_POWER: &str = "CIM_AssociatedPowerManagementService";
/// `CIM_PowerManagementService`.
pub const POWER_SERVICE: &str = "CIM_PowerManagementService";
/// `CIM_ComputerSystem`.
pub const COMPUTER_SYSTEM: &str = "CIM_ComputerSystem";
/// `CIM_BootConfigSetting`.
pub const BOOT_CONFIG: &str = "CIM_BootConfigSetting";
/// `CIM_BootSourceSetting`.
pub const BOOT_SOURCE: &str = "CIM_BootSourceSetting";
/// `CIM_BootService`.
pub const BOOT_SERVICE: &str = "CIM_BootService";
/// `AMT_BootCapabilities`: what the firmware can force at boot (ForcePXEBoot…).
pub const BOOT_CAPABILITIES: &str = "AMT_BootCapabilities";
/// `AMT_BootSettingData`.
pub const BOOT_SETTING_DATA: &str = "AMT_BootSettingData";

/// The boot configuration AMT exposes (the only one).
pub const BOOT_CONFIG_ID: &str = "Intel(r) AMT: Boot Configuration 0";
/// The power management service's name.
pub const POWER_SERVICE_NAME: &str = "Intel(r) AMT Power Management Service";
/// The boot service's name.
pub const BOOT_SERVICE_NAME: &str = "Intel(r) AMT Boot Service";

/// Intel's IPS schema base URI.
pub const IPS: &str = "http://intel.com/wbem/wscim/1/ips-schema/1/";
/// `IPS_OptInService`: user consent.
pub const OPT_IN_SERVICE: &str = "IPS_OptInService";

/// The resource URI of a class (CIM classes under the DMTF base, AMT and IPS ones under Intel's).
pub fn resource_uri(class: &str) -> String {
    let base = if class.starts_with("IPS_") {
        IPS
    } else if class.starts_with("AMT_") {
        AMT
    } else {
        CIM
    };
    [base, class].concat()
}

/// `<wsman:SelectorSet>` of these `(Name, value)` selectors, none when there are none.
fn selector_set(selectors: &[(&str, &str)]) -> Option<Element> {
    (!selectors.is_empty()).then(|| {
        Element::new("wsman:SelectorSet").children(selectors.iter().map(|(name, value)| {
            Element::new("wsman:Selector")
                .attr("Name", name)
                .text(value)
        }))
    })
}

/// The element `name` holding an endpoint reference to an instance of `class` with these
/// selectors (a method's reference argument).
pub fn reference(name: &str, class: &str, selectors: &[(&str, &str)]) -> Element {
    Element::new(name)
        .child(Element::new("wsa:Address").text(NS_WSA))
        .child(
            Element::new("wsa:ReferenceParameters")
                .child(Element::new("wsman:ResourceURI").text(resource_uri(class)))
                .children(selector_set(selectors)),
        )
}

/// A header element AMT must understand.
fn must(name: &str, text: impl std::fmt::Display) -> Element {
    Element::new(name)
        .attr("s:mustUnderstand", "true")
        .text(text)
}

/// A whole envelope: header with action, resource URI, message id and selectors; then `body`
/// (none: an empty `s:Body`).
pub fn envelope(
    action: &str,
    class: &str,
    message_id: &str,
    selectors: &[(&str, &str)],
    body: Option<Element>,
) -> String {
    let header = Element::new("s:Header")
        .child(must("wsa:Action", action))
        .child(must("wsa:To", "/wsman"))
        .child(must("wsman:ResourceURI", resource_uri(class)))
        .child(must("wsa:MessageID", format_args!("uuid:{message_id}")))
        .child(Element::new("wsa:ReplyTo").child(Element::new("wsa:Address").text(ANONYMOUS)))
        .child(Element::new("wsman:OperationTimeout").text("PT60S"))
        .children(selector_set(selectors));
    Element::new("s:Envelope")
        .attr("xmlns:s", NS_SOAP)
        .attr("xmlns:wsa", NS_WSA)
        .attr("xmlns:wsman", NS_WSMAN)
        .child(header)
        .child(Element::new("s:Body").expanded().children(body))
        .document("utf-8")
}

/// `class.method(arguments)`: the action is the method's URI, the body its `h:method_INPUT`
/// (written with an end tag even without arguments, as MeshCommander sends it).
fn invoke(
    class: &str,
    method: &str,
    message_id: &str,
    selectors: &[(&str, &str)],
    arguments: Vec<Element>,
) -> String {
    let uri = resource_uri(class);
    let input = Element::new(format!("h:{method}_INPUT"))
        .attr("xmlns:h", &uri)
        .expanded()
        .children(arguments);
    envelope(
        &format!("{uri}/{method}"),
        class,
        message_id,
        selectors,
        Some(input),
    )
}

/// `Get` of a class instance.
pub fn get(class: &str, message_id: &str, selectors: &[(&str, &str)]) -> String {
    envelope(ACTION_GET, class, message_id, selectors, None)
}

/// `Enumerate` of a class.
pub fn enumerate(class: &str, message_id: &str) -> String {
    let body = Element::new("wsen:Enumerate").attr("xmlns:wsen", NS_WSEN);
    envelope(ACTION_ENUMERATE, class, message_id, &[], Some(body))
}

/// `Pull` of an enumeration context.
pub fn pull(class: &str, message_id: &str, context: &str) -> String {
    let body = Element::new("wsen:Pull")
        .attr("xmlns:wsen", NS_WSEN)
        .child(Element::new("wsen:EnumerationContext").text(context))
        .child(Element::new("wsen:MaxElements").text(999))
        .child(Element::new("wsen:MaxCharacters").text(99999));
    envelope(ACTION_PULL, class, message_id, &[], Some(body))
}

/// The selectors of a service of the managed system (`CIM_ComputerSystem` "Intel(r) AMT").
fn service_selectors<'a>(class: &'a str, name: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("CreationClassName", class),
        ("Name", name),
        ("SystemCreationClassName", COMPUTER_SYSTEM),
        ("SystemName", "Intel(r) AMT"),
    ]
}

/// `CIM_PowerManagementService.RequestPowerStateChange(PowerState, ManagedElement)` for the
/// managed system (`CIM_ComputerSystem` named `ManagedSystem`).
pub fn request_power_state_change(message_id: &str, power_state: u16) -> String {
    let managed = [
        ("CreationClassName", COMPUTER_SYSTEM),
        ("Name", "ManagedSystem"),
    ];
    invoke(
        POWER_SERVICE,
        "RequestPowerStateChange",
        message_id,
        &service_selectors(POWER_SERVICE, POWER_SERVICE_NAME),
        vec![
            Element::new("h:PowerState").text(power_state),
            reference("h:ManagedElement", COMPUTER_SYSTEM, &managed),
        ],
    )
}

/// `Put` of `AMT_BootSettingData` with these fields, in this order (`name`, text value).
pub fn put_boot_setting_data(message_id: &str, fields: &[(String, String)]) -> String {
    let body = Element::new(format!("h:{BOOT_SETTING_DATA}"))
        .attr("xmlns:h", resource_uri(BOOT_SETTING_DATA))
        .expanded()
        .children(
            fields
                .iter()
                .map(|(name, value)| Element::new(format!("h:{name}")).text(value)),
        );
    envelope(
        ACTION_PUT,
        BOOT_SETTING_DATA,
        message_id,
        &[("InstanceID", "Intel(r) AMT:BootSettingData 0")],
        Some(body),
    )
}

/// `CIM_BootConfigSetting.ChangeBootOrder(Source)` on AMT's boot configuration, with the
/// boot source whose InstanceID is `source_id` first.
pub fn change_boot_order(message_id: &str, source_id: &str) -> String {
    invoke(
        BOOT_CONFIG,
        "ChangeBootOrder",
        message_id,
        &[("InstanceID", BOOT_CONFIG_ID)],
        vec![reference(
            "h:Source",
            BOOT_SOURCE,
            &[("InstanceID", source_id)],
        )],
    )
}

/// `CIM_BootConfigSetting.ChangeBootOrder()` with no Source: AMT empties the boot order it
/// forces (the next boot follows the BIOS order). MeshCommander sends this before a plain
/// power action to clear what an earlier one-time boot left.
pub fn clear_boot_order(message_id: &str) -> String {
    let selectors = [("InstanceID", BOOT_CONFIG_ID)];
    invoke(
        BOOT_CONFIG,
        "ChangeBootOrder",
        message_id,
        &selectors,
        vec![],
    )
}

/// `IPS_OptInService.StartOptIn()`: AMT shows a 6-digit code on the box's screen.
pub fn start_opt_in(message_id: &str) -> String {
    invoke(OPT_IN_SERVICE, "StartOptIn", message_id, &[], vec![])
}

/// `IPS_OptInService.SendOptInCode(OptInCode)`.
pub fn send_opt_in_code(message_id: &str, code: u32) -> String {
    let code = Element::new("h:OptInCode").text(code);
    invoke(OPT_IN_SERVICE, "SendOptInCode", message_id, &[], vec![code])
}

/// `CIM_BootService.SetBootConfigRole(BootConfigSetting, Role)`: role 1 is "is next"
/// (used for the next boot only).
pub fn set_boot_config_role(message_id: &str, role: u32) -> String {
    invoke(
        BOOT_SERVICE,
        "SetBootConfigRole",
        message_id,
        &service_selectors(BOOT_SERVICE, BOOT_SERVICE_NAME),
        vec![
            reference(
                "h:BootConfigSetting",
                BOOT_CONFIG,
                &[("InstanceID", BOOT_CONFIG_ID)],
            ),
            Element::new("h:Role").text(role),
        ],
    )
}
