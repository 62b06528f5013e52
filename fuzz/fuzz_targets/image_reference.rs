//! The image reference parser (`image push --to REF`): parse, print, parse again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picaboot::registry::reference::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = s.parse::<Reference>() {
        let _ = (r.api_host(), r.manifest_ref());
        let again: Reference = r.to_string().parse().expect("a printed reference parses");
        assert_eq!(again.to_string(), r.to_string());
    }
});
