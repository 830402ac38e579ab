//! Finding a delimiter byte: word-at-a-time for the first bytes, SIMD `memchr` beyond.
//!
//! Lines in protocols are mostly short. For them the call and dispatch cost of `memchr` exceeds
//! the scan itself, so the first [`SHORT_SCAN`] bytes are checked eight at a time with an exact
//! SWAR test, inlined into the caller; a longer haystack continues with `memchr`.

/// How many leading bytes are scanned inline before handing over to `memchr`.
const SHORT_SCAN: usize = 64;
const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The high bit of each byte of `word` that is zero, and nothing else (no false positives:
/// no carry crosses a byte).
#[inline(always)]
fn zero_bytes(word: u64) -> u64 {
    !(((word & LOW7) + LOW7) | word | LOW7)
}

/// The index of the first `needle` in `haystack`.
#[inline]
pub(crate) fn find_byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let head = haystack.len().min(SHORT_SCAN);
    let mut words = haystack[..head].chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut words {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(chunk);
        let found = zero_bytes(u64::from_le_bytes(bytes) ^ pattern);
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    if let Some(i) = words.remainder().iter().position(|&b| b == needle) {
        return Some(offset + i);
    }
    memchr::memchr(needle, &haystack[head..]).map(|i| head + i)
}

#[cfg(test)]
mod tests {
    use super::find_byte;

    #[test]
    fn agrees_with_a_plain_search_at_every_offset_and_length() {
        let mut hay: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(37) | 1).collect();
        for len in 0..hay.len() {
            for at in 0..=len {
                let saved = hay.get(at).copied();
                if at < len {
                    hay[at] = 0x80;
                }
                let want = hay[..len].iter().position(|&b| b == 0x80);
                assert_eq!(find_byte(0x80, &hay[..len]), want, "len {len} at {at}");
                if let Some(b) = saved {
                    hay[at] = b;
                }
            }
        }
        // Bytes next to the needle in value (borrow and carry cases).
        for needle in [0u8, 1, 0x0a, 0x7f, 0x80, 0xff] {
            for other in [0u8, 1, 0x0a, 0x7f, 0x80, 0xff] {
                let mut v = vec![other; 20];
                v[13] = needle;
                let want = v.iter().position(|&b| b == needle);
                assert_eq!(find_byte(needle, &v), want, "needle {needle} among {other}");
            }
        }
    }
}
