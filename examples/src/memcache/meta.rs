//! The meta protocol's command lines (`mg`, `ms`, `md`, `ma`, `me`), parsed as memcached
//! 1.6.18 parses them: a key, then single-character flags, some with a token (`T30`, `Oabc`).
//!
//! [`parse_meta`] checks what memcached checks before touching the store, in its order, and
//! returns the error it would send; the flags that return data stay in request order
//! ([`MetaRequest::tokens`]) because replies echo them in that order.

use super::command::{CommandError, MAX_KEY_LENGTH, ParseFailure};
use super::number::{safe_strtol, safe_strtoul, safe_strtoull};

/// memcached tokenizes at most this many words of a line; the rest is ignored.
const MAX_TOKENS: usize = 23;

/// More words than this (command and key included, plus memcached's terminal token) and the
/// line is refused as having too many flags.
const MAX_OPTION_TOKENS: usize = 20;

/// The longest opaque token (`O...`, the `O` included) memcached copies back.
pub const MAX_OPAQUE_LENGTH: usize = 32;

/// A key as the command gave it, base64-decoded when the `b` flag asked.
#[derive(Clone, Copy)]
pub struct MetaKey {
    bytes: [u8; MAX_KEY_LENGTH],
    len: usize,
    /// The key came base64-encoded (`b`): replies encode it again.
    pub binary: bool,
}

impl MetaKey {
    fn new(raw: &[u8]) -> Self {
        let mut bytes = [0; MAX_KEY_LENGTH];
        let len = raw.len().min(MAX_KEY_LENGTH);
        bytes[..len].copy_from_slice(&raw[..len]);
        MetaKey {
            bytes,
            len,
            binary: false,
        }
    }

    /// The key's bytes (decoded).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Decodes the key in place, as memcached does for `b`; false if it is not base64.
    fn decode(&mut self) -> bool {
        let raw = self.bytes;
        match base64_decode(&raw[..self.len]) {
            Some((decoded, len)) => {
                self.bytes[..len].copy_from_slice(&decoded[..len]);
                self.len = len;
                self.binary = true;
                true
            }
            None => {
                self.len = 0;
                false
            }
        }
    }
}

impl std::fmt::Debug for MetaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl PartialEq for MetaKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes() && self.binary == other.binary
    }
}

impl Eq for MetaKey {}

/// What the flags of a meta command ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // one bool per protocol flag
pub struct MetaFlags {
    /// `q`: no reply for the nominal outcome (`HD`, and `EN` for `mg`).
    pub quiet: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `u`: do not bump the item in the LRU.
    pub no_update: bool,
    /// `I`: invalidate (mark stale) instead of the usual effect.
    pub invalidate: bool,
    /// `N`, `T`, `R`, `l` or `h` was given: memcached bumps the item after the reply.
    pub locked: bool,
    /// `T`: the new time to live.
    pub ttl: Option<i64>,
    /// `N`: create on a miss, with this time to live.
    pub vivify: Option<i64>,
    /// `R`: win the right to recache when the remaining TTL is below this.
    pub recache: Option<i64>,
    /// `F`: client flags to store.
    pub client_flags: u32,
    /// `C`: the CAS value to compare.
    pub compare_cas: Option<u64>,
    /// `M`: the mode character.
    pub mode: Option<u8>,
    /// `J`: initial value of a counter created on a miss.
    pub initial: u64,
    /// `D`: the delta (1 unless given).
    pub delta: u64,
}

impl Default for MetaFlags {
    fn default() -> Self {
        MetaFlags {
            quiet: false,
            value: false,
            no_update: false,
            invalidate: false,
            locked: false,
            ttl: None,
            vivify: None,
            recache: None,
            client_flags: 0,
            compare_cas: None,
            mode: None,
            initial: 0,
            delta: 1,
        }
    }
}

/// The words after the command, in request order (for `ms` the data length is the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagTokens<'a> {
    words: [&'a [u8]; MAX_TOKENS],
    len: usize,
}

impl<'a> FlagTokens<'a> {
    /// The words in order; each is a flag character and its token.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.words[..self.len].iter().copied()
    }
}

/// A parsed `mg`, `ms`, `md` or `ma`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaRequest<'a> {
    /// The key.
    pub key: MetaKey,
    /// What the flags ask for.
    pub flags: MetaFlags,
    /// The words after the key, in order.
    pub tokens: FlagTokens<'a>,
}

/// `ms`'s storage modes (`M` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaSetMode {
    /// `S` (the default).
    Set,
    /// `E`.
    Add,
    /// `R`.
    Replace,
    /// `A`.
    Append,
    /// `P`.
    Prepend,
}

/// One parsed meta command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCommand<'a> {
    /// `mg <key> <flags>*`.
    Get(MetaRequest<'a>),
    /// `ms <key> <datalen> <flags>*`: a data block of `bytes` and CRLF follows.
    Set {
        /// Key and flags.
        request: MetaRequest<'a>,
        /// The data block's length, CRLF not included.
        bytes: usize,
        /// The storage mode (with `C`, `Set` and `Replace` compare the CAS value).
        mode: MetaSetMode,
    },
    /// `md <key> <flags>*`.
    Delete(MetaRequest<'a>),
    /// `ma <key> <flags>*`.
    Arithmetic {
        /// Key and flags.
        request: MetaRequest<'a>,
        /// Increment (`MI`, `M+`, the default) or decrement (`MD`, `M-`).
        incr: bool,
    },
    /// `me <key> [b]`: the item's metadata.
    Debug(MetaKey),
}

/// Parses a line whose command is `mg`, `ms`, `md`, `ma` or `me` (`mn` is handled with the
/// classic commands).
///
/// # Errors
/// The reply memcached sends for the line; for `ms`, also how many bytes of data block to
/// discard after it.
pub fn parse_meta(line: &[u8]) -> Result<MetaCommand<'_>, ParseFailure> {
    let mut words: [&[u8]; MAX_TOKENS] = [&[]; MAX_TOKENS];
    let mut count = 0;
    for word in line.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        if count == MAX_TOKENS {
            break;
        }
        words[count] = word;
        count += 1;
    }
    // memcached counts a terminal token after the words.
    let ntokens = count + 1;
    let fail = |error| ParseFailure {
        error,
        noreply: false,
        swallow: 0,
    };
    let command = words[0];
    if count < 2 {
        return Err(fail(CommandError::Unknown));
    }
    let raw_key = words[1];
    let mut key = MetaKey::new(raw_key);
    if command == b"me" {
        if raw_key.len() > MAX_KEY_LENGTH {
            return Err(fail(CommandError::BadFormat));
        }
        if count >= 3 && words[2] == b"b" && !key.decode() {
            return Err(fail(CommandError::BadFormat));
        }
        return Ok(MetaCommand::Debug(key));
    }
    if raw_key.len() > MAX_KEY_LENGTH {
        return Err(fail(CommandError::BadFormat));
    }
    let too_long = if command == b"mg" {
        CommandError::MetaGetOptionsTooLong
    } else {
        CommandError::MetaOptionsTooLong
    };
    match command {
        b"ms" => {
            if count == 2 {
                return Err(fail(CommandError::BadFormat));
            }
            if ntokens > MAX_OPTION_TOKENS {
                return Err(fail(too_long));
            }
            let bytes = safe_strtol(words[2])
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= i32::MAX as usize - 2)
                .ok_or(fail(CommandError::BadFormat))?;
            let swallow = |error| ParseFailure {
                error,
                noreply: false,
                swallow: bytes + 2,
            };
            let flags = preparse(&words[3..count], &mut key).map_err(swallow)?;
            let mut opaque_too_long = false;
            for word in &words[2..count] {
                if word[0] == b'O' && word.len() > MAX_OPAQUE_LENGTH {
                    opaque_too_long = true;
                }
            }
            let mode = match flags.mode {
                None | Some(b'S') => MetaSetMode::Set,
                Some(b'E') => MetaSetMode::Add,
                Some(b'A') => MetaSetMode::Append,
                Some(b'P') => MetaSetMode::Prepend,
                Some(b'R') => MetaSetMode::Replace,
                Some(_) => return Err(swallow(CommandError::MetaSetMode)),
            };
            if opaque_too_long {
                return Err(swallow(CommandError::MetaOpaqueTooLong));
            }
            Ok(MetaCommand::Set {
                request: request(key, flags, &words[2..count]),
                bytes,
                mode,
            })
        }
        _ => {
            if ntokens > MAX_OPTION_TOKENS {
                return Err(fail(too_long));
            }
            let flags = &words[2..count];
            let parsed = preparse(flags, &mut key);
            match command {
                b"mg" => Ok(MetaCommand::Get(request(key, parsed.map_err(fail)?, flags))),
                b"md" => {
                    let parsed = parsed.map_err(|_| fail(CommandError::MetaInvalidOrDuplicate))?;
                    if flags
                        .iter()
                        .any(|w| w[0] == b'O' && w.len() > MAX_OPAQUE_LENGTH)
                    {
                        return Err(fail(CommandError::MetaOpaqueTooLong));
                    }
                    Ok(MetaCommand::Delete(request(key, parsed, flags)))
                }
                b"ma" => {
                    let parsed = parsed.map_err(|_| fail(CommandError::MetaInvalidOrDuplicate))?;
                    let incr = match parsed.mode {
                        None | Some(b'I' | b'+') => true,
                        Some(b'D' | b'-') => false,
                        Some(_) => return Err(fail(CommandError::MetaArithmeticMode)),
                    };
                    Ok(MetaCommand::Arithmetic {
                        request: request(key, parsed, flags),
                        incr,
                    })
                }
                _ => Err(fail(CommandError::Unknown)),
            }
        }
    }
}

fn request<'a>(key: MetaKey, flags: MetaFlags, words: &[&'a [u8]]) -> MetaRequest<'a> {
    let mut tokens = FlagTokens {
        words: [&[]; MAX_TOKENS],
        len: words.len(),
    };
    tokens.words[..words.len()].copy_from_slice(words);
    MetaRequest { key, flags, tokens }
}

/// memcached's `_meta_flag_preparse`: a duplicate or unknown flag stops at once; other errors
/// are remembered (the last one wins) and parsing goes on.
fn preparse(words: &[&[u8]], key: &mut MetaKey) -> Result<MetaFlags, CommandError> {
    let mut flags = MetaFlags::default();
    let mut seen = [false; 128];
    let mut error: Option<CommandError> = None;
    for word in words {
        let flag = word[0];
        let token = &word[1..];
        if flag >= 127 || seen[usize::from(flag)] {
            return Err(CommandError::MetaDuplicateFlag);
        }
        seen[usize::from(flag)] = true;
        let mut bad = |e: CommandError| error = Some(e);
        match flag {
            b'b' => {
                if !key.decode() {
                    bad(CommandError::MetaKeyDecode);
                }
            }
            b'N' | b'T' | b'R' => {
                flags.locked = true;
                match safe_strtol(token) {
                    None => bad(CommandError::MetaBadToken),
                    Some(seconds) => {
                        let seconds = Some(i64::from(seconds));
                        match flag {
                            b'N' => flags.vivify = seconds,
                            b'T' => flags.ttl = seconds,
                            _ => flags.recache = seconds,
                        }
                    }
                }
            }
            b'l' | b'h' => flags.locked = true,
            b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' => {}
            b'v' => flags.value = true,
            b'u' => flags.no_update = true,
            b'q' => flags.quiet = true,
            b'F' => match safe_strtoul(token) {
                Some(value) => flags.client_flags = value,
                // memcached sets no message of its own here: the last one, or the default.
                None => error = Some(error.unwrap_or(CommandError::BadFormat)),
            },
            b'C' => match safe_strtoull(token) {
                Some(cas) => flags.compare_cas = Some(cas),
                None => bad(CommandError::MetaBadToken),
            },
            b'M' => {
                if word.len() == 2 {
                    flags.mode = Some(word[1]);
                } else {
                    bad(CommandError::MetaModeLength);
                }
            }
            b'J' => match safe_strtoull(token) {
                Some(initial) => flags.initial = initial,
                None => bad(CommandError::MetaInitial),
            },
            b'D' => match safe_strtoull(token) {
                Some(delta) => flags.delta = delta,
                None => bad(CommandError::MetaDelta),
            },
            b'I' => flags.invalidate = true,
            _ => return Err(CommandError::MetaInvalidFlag),
        }
    }
    match error {
        Some(error) => Err(error),
        None => Ok(flags),
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_value(byte: u8) -> Option<u8> {
    match byte {
        b'=' => Some(0),
        _ => BASE64
            .iter()
            .position(|&b| b == byte)
            .and_then(|p| u8::try_from(p).ok()),
    }
}

/// memcached's `base64_decode` of a key into at most `input.len()` bytes: characters outside
/// the alphabet are skipped, the rest must come in whole groups of four, decoding stops after
/// the first padded group. `None` where memcached returns 0.
fn base64_decode(input: &[u8]) -> Option<([u8; MAX_KEY_LENGTH], usize)> {
    let count = input.iter().filter(|&&b| base64_value(b).is_some()).count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut out = [0u8; MAX_KEY_LENGTH];
    let mut len = 0;
    let mut block = [0u8; 4];
    let mut filled = 0;
    let mut pad = 0;
    for &byte in input {
        let Some(value) = base64_value(byte) else {
            continue;
        };
        if byte == b'=' {
            pad += 1;
        }
        block[filled] = value;
        filled += 1;
        if filled == 4 {
            out[len] = (block[0] << 2) | (block[1] >> 4);
            out[len + 1] = (block[1] << 4) | (block[2] >> 2);
            out[len + 2] = (block[2] << 6) | block[3];
            len += 3;
            filled = 0;
            if pad > 0 {
                match pad {
                    1 => len -= 1,
                    2 => len -= 2,
                    _ => return None,
                }
                break;
            }
        }
    }
    (len > 0).then_some((out, len))
}

/// memcached's `base64_encode` (with `=` padding), appended to `out`.
pub fn base64_encode(input: &[u8], out: &mut Vec<u8>) {
    let table = |index: u8| BASE64[usize::from(index & 0x3f)];
    let mut chunks = input.chunks_exact(3);
    for chunk in &mut chunks {
        out.push(table(chunk[0] >> 2));
        out.push(table(((chunk[0] & 0x03) << 4) | (chunk[1] >> 4)));
        out.push(table(((chunk[1] & 0x0f) << 2) | (chunk[2] >> 6)));
        out.push(table(chunk[2]));
    }
    match *chunks.remainder() {
        [a] => {
            out.push(table(a >> 2));
            out.push(table((a & 0x03) << 4));
            out.extend_from_slice(b"==");
        }
        [a, b] => {
            out.push(table(a >> 2));
            out.push(table(((a & 0x03) << 4) | (b >> 4)));
            out.push(table((b & 0x0f) << 2));
            out.push(b'=');
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: &[u8]) -> CommandError {
        parse_meta(line).expect_err("refused").error
    }

    #[test]
    fn flags_parse_in_order() {
        let Ok(MetaCommand::Get(request)) = parse_meta(b"mg foo v t T30 Oabc q") else {
            panic!("mg parses");
        };
        assert_eq!(request.key.as_bytes(), b"foo");
        assert!(request.flags.value && request.flags.quiet && request.flags.locked);
        assert_eq!(request.flags.ttl, Some(30));
        assert_eq!(
            request.tokens.iter().collect::<Vec<_>>(),
            [&b"v"[..], b"t", b"T30", b"Oabc", b"q"]
        );
        assert!(matches!(
            parse_meta(b"ms foo 3 T0 F5 MA"),
            Ok(MetaCommand::Set {
                bytes: 3,
                mode: MetaSetMode::Append,
                ..
            })
        ));
    }

    #[test]
    fn errors_are_memcacheds() {
        assert_eq!(error(b"mg"), CommandError::Unknown);
        assert_eq!(error(b"mg foo v v"), CommandError::MetaDuplicateFlag);
        assert_eq!(error(b"mg foo !"), CommandError::MetaInvalidFlag);
        assert_eq!(error(b"mg foo Tx"), CommandError::MetaBadToken);
        assert_eq!(error(b"md foo Tx"), CommandError::MetaInvalidOrDuplicate);
        assert_eq!(error(b"ma foo Mx"), CommandError::MetaArithmeticMode);
        assert_eq!(error(b"ms foo"), CommandError::BadFormat);
        let failure = parse_meta(b"ms foo 5 Mx").expect_err("bad mode");
        assert_eq!(
            (failure.error, failure.swallow),
            (CommandError::MetaSetMode, 7)
        );
        assert_eq!(
            error(b"mg foo a b c d e f g h i j k l m n o p q r"),
            CommandError::MetaGetOptionsTooLong
        );
    }

    #[test]
    fn base64_keys_round_trip() {
        let Ok(MetaCommand::Get(request)) = parse_meta(b"mg Zm9vYg== b") else {
            panic!("mg parses");
        };
        assert_eq!(request.key.as_bytes(), b"foob");
        assert!(request.key.binary);
        let mut encoded = Vec::new();
        base64_encode(b"foob", &mut encoded);
        assert_eq!(encoded, b"Zm9vYg==");
        assert_eq!(error(b"mg Zm9 b"), CommandError::MetaKeyDecode);
    }
}
