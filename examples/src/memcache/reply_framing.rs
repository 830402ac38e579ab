//! A check that a byte stream from a server is a sequence of well-formed memcached replies:
//! what the fuzz target asserts of every transcript, whatever garbage the client sent.

/// Checks that `stream` is whole replies, each line ending in CRLF and each `VALUE` followed
/// by exactly its data block; returns how many reply lines it read.
///
/// # Errors
/// A description of the first thing that is not a reply, with its offset.
pub fn check_replies(stream: &[u8]) -> Result<usize, String> {
    let mut at = 0;
    let mut lines = 0;
    while at < stream.len() {
        let Some(len) = stream[at..].windows(2).position(|w| w == b"\r\n") else {
            return Err(format!("offset {at}: a reply without its CRLF"));
        };
        let line = &stream[at..at + len];
        at += len + 2;
        lines += 1;
        let number = |w: &[u8]| {
            (!w.is_empty() && w.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(w).ok()?.parse::<usize>().ok())
                .flatten()
        };
        let block = if let Some(rest) = line.strip_prefix(b"VALUE ") {
            // `VALUE <key> <flags> <bytes> [<cas>]`; keys hold no spaces.
            let words: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
            let bytes = match words.as_slice() {
                [key, flags, bytes] if !key.is_empty() => number(flags).and(number(bytes)),
                [key, flags, bytes, cas] if !key.is_empty() && number(cas).is_some() => {
                    number(flags).and(number(bytes))
                }
                _ => None,
            };
            Some(bytes)
        } else {
            // Meta: `VA <size> <flags>*`.
            line.strip_prefix(b"VA ")
                .map(|rest| number(rest.split(|&b| b == b' ').next().unwrap_or_default()))
        };
        if let Some(bytes) = block {
            let bytes = bytes.ok_or_else(|| {
                format!("offset {at}: malformed {:?}", String::from_utf8_lossy(line))
            })?;
            let end = at
                .checked_add(bytes)
                .filter(|&end| end + 2 <= stream.len() && &stream[end..end + 2] == b"\r\n")
                .ok_or_else(|| {
                    format!("offset {at}: a data block of {bytes} bytes is cut or unterminated")
                })?;
            at = end + 2;
            continue;
        }
        let meta = [&b"HD"[..], b"EN", b"NS", b"EX", b"NF"]
            .iter()
            .any(|code| line == *code || line.starts_with(&[*code, b" "].concat()));
        let known = meta
            || line.starts_with(b"ME ")
            || line.starts_with(b"ITEM ")
            || line.starts_with(b"MEMLIMIT_")
            || matches!(
                line,
                b"END"
                    | b"STORED"
                    | b"NOT_STORED"
                    | b"EXISTS"
                    | b"NOT_FOUND"
                    | b"DELETED"
                    | b"TOUCHED"
                    | b"OK"
                    | b"RESET"
                    | b"ERROR"
                    | b"MN"
                    | b"ERROR: shutdown not enabled"
            )
            || line.starts_with(b"CLIENT_ERROR ")
            || line.starts_with(b"SERVER_ERROR ")
            || line.starts_with(b"VERSION ")
            || line.starts_with(b"STAT ")
            || (!line.is_empty() && line.iter().all(u8::is_ascii_digit));
        if !known {
            return Err(format!(
                "offset {at}: not a reply: {:?}",
                String::from_utf8_lossy(line)
            ));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::check_replies;

    #[test]
    fn accepts_replies_and_refuses_broken_framing() {
        assert_eq!(
            check_replies(b"STORED\r\nVALUE a 0 3 9\r\na\r\n\r\nEND\r\n12\r\n"),
            Ok(4)
        );
        assert!(check_replies(b"VALUE a 0 3\r\nab\r\nEND\r\n").is_err());
        assert!(check_replies(b"STORED\r\nSTOR").is_err());
        assert!(check_replies(b"HELLO\r\n").is_err());
        assert_eq!(
            check_replies(b"VA 2 t10 Oabc\r\nhi\r\nHD k1\r\nEN\r\nNS\r\nMN\r\n"),
            Ok(5)
        );
        assert!(check_replies(b"VA 3\r\nhi\r\n").is_err());
    }
}
