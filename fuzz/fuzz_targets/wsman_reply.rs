//! The AMT client's parsers of what a box (or anything answering on its port) sends back: the
//! first line is a `WWW-Authenticate` value for the Digest challenge parser, the rest a WS-Man
//! SOAP reply for every reply parser. None may panic; a challenge it accepts has a realm and a
//! nonce, and a fault is never taken for a success.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picaboot::amt::{digest::Challenge, reply};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (header, xml) = text.split_once('\n').unwrap_or((text, ""));
    if let Some(c) = Challenge::parse(header) {
        let _ = format!("{c:?}");
    }
    let fault = reply::check_fault(xml).is_err();
    let results = [
        reply::enumeration_context(xml).is_ok(),
        reply::pull_items(xml).is_ok(),
        reply::get_instance(xml, "CIM_ComputerSystem").is_ok(),
        reply::return_value(xml, "RequestPowerStateChange").is_ok(),
    ];
    if fault {
        assert!(
            results.iter().all(|ok| !ok),
            "a SOAP fault was parsed as a success"
        );
    }
});
