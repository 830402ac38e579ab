//! Numbers read as memcached 1.6 reads the meta protocol's tokens: C's `strtol`/`strtoull`
//! wrapped in its `safe_strto*` checks (leading white space and a sign allowed, trailing white
//! space allowed, results truncated to the target width the way C assigns them).

/// C's `isspace` in the "C" locale (`xisspace` in memcached).
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What `strtoull`/`strtol` read from `word`: its sign and magnitude, or `None` when no digit
/// was read, the magnitude overflows 64 bits, or the digits are followed by something other
/// than the end or white space (memcached's `safe_strto*` refuse those).
fn read(word: &[u8]) -> Option<(bool, u64)> {
    let start = word.iter().position(|&b| !is_c_space(b))?;
    let rest = &word[start..];
    let (negative, digits) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 {
        return None;
    }
    if digits.get(count).is_some_and(|&b| !is_c_space(b)) {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in &digits[..count] {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some((negative, value))
}

/// `safe_strtol` into an `int32_t`: a C `long` (64 bits, out of range refused), then kept to
/// its low 32 bits as C's assignment does (`4294967396` reads as 100).
#[must_use]
pub fn safe_strtol(word: &[u8]) -> Option<i32> {
    let (negative, magnitude) = read(word)?;
    let value: i64 = if negative {
        if magnitude > 1 << 63 {
            return None;
        }
        0i64.wrapping_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()?
    };
    #[allow(clippy::cast_possible_truncation)] // C's assignment to int32_t, on purpose
    Some(value as i32)
}

/// `safe_strtoull`: `strtoull` (a minus sign negates modulo 2^64), refused when the result
/// looks negative as a signed number and the word has a minus sign.
#[must_use]
pub fn safe_strtoull(word: &[u8]) -> Option<u64> {
    let (negative, magnitude) = read(word)?;
    let value = if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    if value > i64::MAX as u64 && word.contains(&b'-') {
        return None;
    }
    Some(value)
}

/// `safe_strtoul` into a `uint32_t`: [`safe_strtoull`]'s rules on a 64-bit `unsigned long`,
/// then kept to the low 32 bits (`4294967296` reads as 0).
#[must_use]
pub fn safe_strtoul(word: &[u8]) -> Option<u32> {
    #[allow(clippy::cast_possible_truncation)] // C's assignment to uint32_t, on purpose
    safe_strtoull(word).map(|value| value as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_c() {
        assert_eq!(safe_strtol(b"100"), Some(100));
        assert_eq!(safe_strtol(b"+7"), Some(7));
        assert_eq!(safe_strtol(b"\t-3"), Some(-3));
        assert_eq!(safe_strtol(b"4294967396"), Some(100));
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"5x"), None);
        assert_eq!(safe_strtol(b"5\r"), Some(5));
        assert_eq!(safe_strtol(b""), None);
        assert_eq!(safe_strtol(b"-"), None);
        assert_eq!(safe_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b"-1"), None);
        assert_eq!(safe_strtoull(b"-0"), Some(0));
        assert_eq!(safe_strtoull(b"-18446744073709551615"), Some(1));
        assert_eq!(safe_strtoul(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul(b"4294967295"), Some(u32::MAX));
    }
}
