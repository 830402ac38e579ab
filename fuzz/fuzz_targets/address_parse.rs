//! Arbitrary text as an `Address`: never a panic, and whatever parses prints back to text that
//! parses to the same address.

#![no_main]

use concurrence_core::Address;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<Address>() {
        Ok(address) => {
            let printed = address.to_string();
            let again: Address = printed
                .parse()
                .unwrap_or_else(|e| panic!("{address:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(again, address, "round trip through {printed:?}");
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
