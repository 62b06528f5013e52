//! WS-Management request envelopes for the handful of Intel AMT operations picaboot uses.
//!
//! Every builder is a pure function of its inputs (the message id included), so the XML can be
//! compared with the expected envelopes in the unit tests.

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
    if class.starts_with("IPS_") {
        format!("{IPS}{class}")
    } else if class.starts_with("AMT_") {
        format!("{AMT}{class}")
    } else {
        format!("{CIM}{class}")
    }
}

/// Escapes text for XML content and attribute values ([`crate::xml::escape`]).
pub fn escape(s: &str) -> String {
    crate::xml::escape(s)
}

fn selector_set(selectors: &[(&str, &str)]) -> String {
    if selectors.is_empty() {
        return String::new();
    }
    let mut s = String::from("<wsman:SelectorSet>");
    for (name, value) in selectors {
        s.push_str(&format!(
            "<wsman:Selector Name=\"{}\">{}</wsman:Selector>",
            escape(name),
            escape(value)
        ));
    }
    s.push_str("</wsman:SelectorSet>");
    s
}

/// An endpoint reference to an instance of `class` with these selectors.
pub fn reference(class: &str, selectors: &[(&str, &str)]) -> String {
    format!(
        "<wsa:Address>{NS_WSA}</wsa:Address><wsa:ReferenceParameters><wsman:ResourceURI>{}</wsman:ResourceURI>{}</wsa:ReferenceParameters>",
        resource_uri(class),
        selector_set(selectors)
    )
}

/// A whole envelope: header with action, resource URI, message id and selectors; then `body`.
pub fn envelope(
    action: &str,
    class: &str,
    message_id: &str,
    selectors: &[(&str, &str)],
    body: &str,
) -> String {
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
            "<s:Envelope xmlns:s=\"{soap}\" xmlns:wsa=\"{wsa}\" xmlns:wsman=\"{wsman}\">",
            "<s:Header>",
            "<wsa:Action s:mustUnderstand=\"true\">{action}</wsa:Action>",
            "<wsa:To s:mustUnderstand=\"true\">/wsman</wsa:To>",
            "<wsman:ResourceURI s:mustUnderstand=\"true\">{uri}</wsman:ResourceURI>",
            "<wsa:MessageID s:mustUnderstand=\"true\">uuid:{id}</wsa:MessageID>",
            "<wsa:ReplyTo><wsa:Address>{anon}</wsa:Address></wsa:ReplyTo>",
            "<wsman:OperationTimeout>PT60S</wsman:OperationTimeout>",
            "{selectors}",
            "</s:Header>",
            "<s:Body>{body}</s:Body>",
            "</s:Envelope>"
        ),
        soap = NS_SOAP,
        wsa = NS_WSA,
        wsman = NS_WSMAN,
        action = escape(action),
        uri = resource_uri(class),
        id = escape(message_id),
        anon = ANONYMOUS,
        selectors = selector_set(selectors),
        body = body
    )
}

/// `Get` of a class instance.
pub fn get(class: &str, message_id: &str, selectors: &[(&str, &str)]) -> String {
    envelope(ACTION_GET, class, message_id, selectors, "")
}

/// `Enumerate` of a class.
pub fn enumerate(class: &str, message_id: &str) -> String {
    envelope(
        ACTION_ENUMERATE,
        class,
        message_id,
        &[],
        &format!("<wsen:Enumerate xmlns:wsen=\"{NS_WSEN}\"/>"),
    )
}

/// `Pull` of an enumeration context.
pub fn pull(class: &str, message_id: &str, context: &str) -> String {
    envelope(
        ACTION_PULL,
        class,
        message_id,
        &[],
        &format!(
            "<wsen:Pull xmlns:wsen=\"{NS_WSEN}\"><wsen:EnumerationContext>{}</wsen:EnumerationContext><wsen:MaxElements>999</wsen:MaxElements><wsen:MaxCharacters>99999</wsen:MaxCharacters></wsen:Pull>",
            escape(context)
        ),
    )
}

/// `CIM_PowerManagementService.RequestPowerStateChange(PowerState, ManagedElement)` for the
/// managed system (`CIM_ComputerSystem` named `ManagedSystem`).
pub fn request_power_state_change(message_id: &str, power_state: u16) -> String {
    let uri = resource_uri(POWER_SERVICE);
    envelope(
        &format!("{uri}/RequestPowerStateChange"),
        POWER_SERVICE,
        message_id,
        &[
            ("CreationClassName", POWER_SERVICE),
            ("Name", POWER_SERVICE_NAME),
            ("SystemCreationClassName", COMPUTER_SYSTEM),
            ("SystemName", "Intel(r) AMT"),
        ],
        &format!(
            "<h:RequestPowerStateChange_INPUT xmlns:h=\"{uri}\"><h:PowerState>{power_state}</h:PowerState><h:ManagedElement>{}</h:ManagedElement></h:RequestPowerStateChange_INPUT>",
            reference(
                COMPUTER_SYSTEM,
                &[("CreationClassName", COMPUTER_SYSTEM), ("Name", "ManagedSystem")]
            )
        ),
    )
}

/// `Put` of `AMT_BootSettingData` with these fields, in this order (`name`, text value).
pub fn put_boot_setting_data(message_id: &str, fields: &[(String, String)]) -> String {
    let uri = resource_uri(BOOT_SETTING_DATA);
    let mut body = format!("<h:{BOOT_SETTING_DATA} xmlns:h=\"{uri}\">");
    for (name, value) in fields {
        body.push_str(&format!("<h:{name}>{}</h:{name}>", escape(value)));
    }
    body.push_str(&format!("</h:{BOOT_SETTING_DATA}>"));
    envelope(
        ACTION_PUT,
        BOOT_SETTING_DATA,
        message_id,
        &[("InstanceID", "Intel(r) AMT:BootSettingData 0")],
        &body,
    )
}

/// `CIM_BootConfigSetting.ChangeBootOrder(Source)` on AMT's boot configuration, with the
/// boot source whose InstanceID is `source_id` first.
pub fn change_boot_order(message_id: &str, source_id: &str) -> String {
    let uri = resource_uri(BOOT_CONFIG);
    envelope(
        &format!("{uri}/ChangeBootOrder"),
        BOOT_CONFIG,
        message_id,
        &[("InstanceID", BOOT_CONFIG_ID)],
        &format!(
            "<h:ChangeBootOrder_INPUT xmlns:h=\"{uri}\"><h:Source>{}</h:Source></h:ChangeBootOrder_INPUT>",
            reference(BOOT_SOURCE, &[("InstanceID", source_id)])
        ),
    )
}

/// `CIM_BootConfigSetting.ChangeBootOrder()` with no Source: AMT empties the boot order it
/// forces (the next boot follows the BIOS order). MeshCommander sends this before a plain
/// power action to clear what an earlier one-time boot left.
pub fn clear_boot_order(message_id: &str) -> String {
    let uri = resource_uri(BOOT_CONFIG);
    envelope(
        &format!("{uri}/ChangeBootOrder"),
        BOOT_CONFIG,
        message_id,
        &[("InstanceID", BOOT_CONFIG_ID)],
        &format!("<h:ChangeBootOrder_INPUT xmlns:h=\"{uri}\"></h:ChangeBootOrder_INPUT>"),
    )
}

/// `IPS_OptInService.StartOptIn()`: AMT shows a 6-digit code on the box's screen.
pub fn start_opt_in(message_id: &str) -> String {
    let uri = resource_uri(OPT_IN_SERVICE);
    envelope(
        &format!("{uri}/StartOptIn"),
        OPT_IN_SERVICE,
        message_id,
        &[],
        &format!("<h:StartOptIn_INPUT xmlns:h=\"{uri}\"></h:StartOptIn_INPUT>"),
    )
}

/// `IPS_OptInService.SendOptInCode(OptInCode)`.
pub fn send_opt_in_code(message_id: &str, code: u32) -> String {
    let uri = resource_uri(OPT_IN_SERVICE);
    envelope(
        &format!("{uri}/SendOptInCode"),
        OPT_IN_SERVICE,
        message_id,
        &[],
        &format!("<h:SendOptInCode_INPUT xmlns:h=\"{uri}\"><h:OptInCode>{code}</h:OptInCode></h:SendOptInCode_INPUT>"),
    )
}

/// `CIM_BootService.SetBootConfigRole(BootConfigSetting, Role)`: role 1 is "is next"
/// (used for the next boot only).
pub fn set_boot_config_role(message_id: &str, role: u32) -> String {
    let uri = resource_uri(BOOT_SERVICE);
    envelope(
        &format!("{uri}/SetBootConfigRole"),
        BOOT_SERVICE,
        message_id,
        &[
            ("CreationClassName", BOOT_SERVICE),
            ("Name", BOOT_SERVICE_NAME),
            ("SystemCreationClassName", COMPUTER_SYSTEM),
            ("SystemName", "Intel(r) AMT"),
        ],
        &format!(
            "<h:SetBootConfigRole_INPUT xmlns:h=\"{uri}\"><h:BootConfigSetting>{}</h:BootConfigSetting><h:Role>{role}</h:Role></h:SetBootConfigRole_INPUT>",
            reference(BOOT_CONFIG, &[("InstanceID", BOOT_CONFIG_ID)])
        ),
    )
}
