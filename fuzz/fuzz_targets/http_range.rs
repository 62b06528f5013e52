//! `serve`'s Range header parser: the first 8 bytes are the file length, the rest the header.
#![no_main]
use libfuzzer_sys::fuzz_target;
use picaboot::serve::range::{parse_range, RangeRequest};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let len = u64::from_le_bytes(data[..8].try_into().unwrap()) % (1 << 40);
    let Ok(header) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    if let RangeRequest::Partial { start, end } = parse_range(Some(header), len) {
        assert!(
            start <= end && end < len,
            "range {start}-{end} outside 0..{len}"
        );
    }
});
