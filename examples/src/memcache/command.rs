//! The memcached text protocol's command lines, parsed without allocating.
//!
//! [`parse_command`] turns one line (without its CRLF) into a [`Command`] or a
//! [`CommandError`] whose [`reply`](CommandError::reply) is the exact text memcached 1.6 sends.

/// The longest key memcached accepts, in bytes.
pub const MAX_KEY_LENGTH: usize = 250;

/// Relative expiry times go up to 30 days; larger values are absolute Unix times.
pub const MAX_RELATIVE_EXPTIME: i64 = 60 * 60 * 24 * 30;

/// Which storage command a [`Command::Store`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `set`: store unconditionally.
    Set,
    /// `add`: store only if the key holds nothing.
    Add,
    /// `replace`: store only if the key holds something.
    Replace,
    /// `append`: add the data after the existing value.
    Append,
    /// `prepend`: add the data before the existing value.
    Prepend,
    /// `cas`: store only if the item's unique is still the given one.
    Cas(u64),
}

/// The header line of a storage command; the data block of `bytes` bytes and a CRLF follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreHeader<'a> {
    /// Which command.
    pub mode: StoreMode,
    /// The key (1 to 250 bytes, no control characters).
    pub key: &'a [u8],
    /// Opaque client flags stored with the item.
    pub flags: u32,
    /// Expiry as sent: 0 never, negative already expired, up to 30 days relative, else absolute.
    pub exptime: i64,
    /// Length of the data block.
    pub bytes: usize,
    /// No reply wanted.
    pub noreply: bool,
}

/// The keys of a retrieval command, as the space-separated rest of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys<'a>(&'a [u8]);

impl<'a> Keys<'a> {
    /// The keys in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.split(|&b| b == b' ').filter(|k| !k.is_empty())
    }

    /// The raw rest of the line.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// One parsed command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `set`/`add`/`replace`/`append`/`prepend`/`cas`: a data block follows.
    Store(StoreHeader<'a>),
    /// `get`/`gets`/`gat`/`gats`.
    Get {
        /// The keys, at least one.
        keys: Keys<'a>,
        /// `gets`/`gats`: include each item's CAS unique.
        with_cas: bool,
        /// `gat`/`gats`: the new expiry to set on each hit.
        touch: Option<i64>,
    },
    /// `delete <key> [0] [noreply]`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// No reply wanted.
        noreply: bool,
    },
    /// `incr`/`decr <key> <delta> [noreply]`.
    Arithmetic {
        /// True for `incr`.
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiry.
        exptime: i64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll {
        /// Seconds (or an absolute time) until everything stored so far is invalid.
        delay: i64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `version`.
    Version,
    /// `verbosity <level> [noreply]` (accepted and ignored, as memcached's logging level).
    Verbosity {
        /// No reply wanted.
        noreply: bool,
    },
    /// `stats [group]`.
    Stats(StatsGroup),
    /// `cache_memlimit <megabytes> [noreply]`: accepted (`OK`), as memcached answers it.
    CacheMemlimit {
        /// No reply wanted.
        noreply: bool,
    },
    /// `mn`: the meta protocol's no-op, answered `MN` (clients use it to mark the end of a
    /// pipeline of quiet meta commands).
    MetaNoop,
    /// `shutdown [graceful]`: refused as memcached refuses it without `-A`
    /// (`ERROR: shutdown not enabled`).
    Shutdown,
    /// `quit`: close the connection.
    Quit,
}

/// Which `stats` group was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsGroup {
    /// `stats`: the general counters.
    General,
    /// `stats settings`.
    Settings,
    /// `stats reset`: zero the counters that can be reset.
    Reset,
    /// `stats items`, `stats slabs`, `stats sizes`, `stats cachedump <class> <limit>`,
    /// `stats detail dump`: groups of a slab allocator (or of per-prefix detail) this server
    /// does not keep; answered with an empty list (`END`).
    Empty,
    /// `stats detail on|off`: accepted (`OK`); this server keeps no per-prefix detail.
    DetailSwitch,
    /// `stats detail` without its word: memcached's usage line.
    DetailUsage,
    /// `stats sizes`: the size histogram is off, as in memcached by default.
    Sizes,
}

/// A command line memcached would refuse, with the reply it would send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// An unknown command or the wrong number of arguments: `ERROR`.
    #[error("unknown command or wrong number of arguments")]
    Unknown,
    /// A malformed number, a key too long or with control characters, a negative length.
    #[error("bad command line format")]
    BadFormat,
    /// `delete` with arguments other than `0` and `noreply`.
    #[error("bad delete arguments")]
    BadDelete,
    /// An expiry that is not a number.
    #[error("invalid exptime argument")]
    InvalidExptime,
    /// An `incr`/`decr` delta that is not an unsigned 64-bit number.
    #[error("invalid numeric delta argument")]
    InvalidDelta,
}

impl CommandError {
    /// The exact reply line memcached 1.6 sends, CRLF included.
    #[must_use]
    pub fn reply(self) -> &'static [u8] {
        match self {
            CommandError::Unknown => b"ERROR\r\n",
            CommandError::BadFormat => b"CLIENT_ERROR bad command line format\r\n",
            CommandError::BadDelete => {
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            }
            CommandError::InvalidExptime => b"CLIENT_ERROR invalid exptime argument\r\n",
            CommandError::InvalidDelta => b"CLIENT_ERROR invalid numeric delta argument\r\n",
        }
    }
}

/// A refused line: the error, and whether its last word was `noreply` (memcached then sends
/// nothing, not even the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseFailure {
    /// What was wrong.
    pub error: CommandError,
    /// The line asked for no reply.
    pub noreply: bool,
}

/// At most this many words are looked at; `get` takes its keys from the rest of the line.
const MAX_WORDS: usize = 8;

/// Parses one command line, without its line ending.
///
/// # Errors
/// A [`ParseFailure`] carrying the reply memcached sends for such a line.
pub fn parse_command(line: &[u8]) -> Result<Command<'_>, ParseFailure> {
    let mut words: [&[u8]; MAX_WORDS] = [&[]; MAX_WORDS];
    let mut count = 0;
    for word in line.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        if count == MAX_WORDS {
            count += 1;
            break;
        }
        words[count] = word;
        count += 1;
    }
    let noreply = count > 1 && count <= MAX_WORDS && words[count - 1] == b"noreply";
    let fail = |error| ParseFailure { error, noreply };
    let args = &words[..count.min(MAX_WORDS)];
    match (args.first().copied().unwrap_or_default(), count) {
        (b"get" | b"gets", 2..) => {
            let keys = Keys(rest_after(line, 1));
            check_keys(keys).map_err(fail)?;
            Ok(Command::Get {
                keys,
                with_cas: args[0] == b"gets",
                touch: None,
            })
        }
        (b"gat" | b"gats", 3..) => {
            let exptime = number::<i64>(args[1]).ok_or(fail(CommandError::InvalidExptime))?;
            let keys = Keys(rest_after(line, 2));
            check_keys(keys).map_err(fail)?;
            Ok(Command::Get {
                keys,
                with_cas: args[0] == b"gats",
                touch: Some(exptime),
            })
        }
        // `gat <key>`: memcached reads the key as the expiry first.
        (b"gat" | b"gats", 2) if number::<i64>(args[1]).is_none() => {
            Err(fail(CommandError::InvalidExptime))
        }
        (b"set" | b"add" | b"replace" | b"append" | b"prepend", 5 | 6) => {
            let mode = match args[0] {
                b"set" => StoreMode::Set,
                b"add" => StoreMode::Add,
                b"replace" => StoreMode::Replace,
                b"append" => StoreMode::Append,
                _ => StoreMode::Prepend,
            };
            store_header(mode, args, noreply).map_err(fail)
        }
        (b"cas", 6 | 7) => {
            let unique = number::<u64>(args[5]).ok_or(fail(CommandError::BadFormat))?;
            store_header(StoreMode::Cas(unique), args, noreply).map_err(fail)
        }
        (b"delete", 2..=4) => {
            // memcached checks the arguments' form before the key.
            let hold_is_zero = count > 2 && args[2] == b"0";
            let valid = match count {
                2 => true,
                3 => hold_is_zero || noreply,
                _ => hold_is_zero && noreply,
            };
            if !valid {
                return Err(fail(CommandError::BadDelete));
            }
            let key = key(args[1]).map_err(fail)?;
            Ok(Command::Delete { key, noreply })
        }
        (b"incr" | b"decr", 3 | 4) => {
            let key = key(args[1]).map_err(fail)?;
            let delta = number::<u64>(args[2]).ok_or(fail(CommandError::InvalidDelta))?;
            Ok(Command::Arithmetic {
                incr: args[0] == b"incr",
                key,
                delta,
                noreply,
            })
        }
        (b"touch", 3 | 4) => {
            let key = key(args[1]).map_err(fail)?;
            let exptime = number::<i64>(args[2]).ok_or(fail(CommandError::InvalidExptime))?;
            Ok(Command::Touch {
                key,
                exptime,
                noreply,
            })
        }
        (b"flush_all", 1..=3) => {
            let delay = match args.get(1) {
                Some(&word) if !(count == 2 && noreply) => {
                    number::<i64>(word).ok_or(fail(CommandError::InvalidExptime))?
                }
                _ => 0,
            };
            Ok(Command::FlushAll { delay, noreply })
        }
        // memcached ignores whatever follows `version`, `quit` and `mn` (client test tools
        // send `version foo bar` to resynchronise after a `noreply` command).
        (b"version", _) => Ok(Command::Version),
        (b"mn", _) => Ok(Command::MetaNoop),
        (b"shutdown", _) => Ok(Command::Shutdown),
        (b"verbosity", 2 | 3) => Ok(Command::Verbosity { noreply }),
        (b"cache_memlimit", 2 | 3) => match number::<u64>(args[1]) {
            Some(_) => Ok(Command::CacheMemlimit { noreply }),
            None => Err(fail(CommandError::Unknown)),
        },
        (b"stats", _) => stats_group(args).map(Command::Stats).ok_or(
            // `stats noreply` and unknown groups: memcached answers ERROR, noreply or not.
            ParseFailure {
                error: CommandError::Unknown,
                noreply: false,
            },
        ),
        (b"quit", _) => Ok(Command::Quit),
        // An unknown command, or a known one with the wrong number of words: memcached answers
        // ERROR whatever the last word is (it reads `noreply` only in the commands that take it).
        _ => Err(ParseFailure {
            error: CommandError::Unknown,
            noreply: false,
        }),
    }
}

/// The `stats` group asked for, as memcached 1.6 knows them; `None` for anything else.
fn stats_group(args: &[&[u8]]) -> Option<StatsGroup> {
    match args.get(1..).unwrap_or_default() {
        [] => Some(StatsGroup::General),
        // memcached reads only the group's first word (`stats settings foo` is `settings`).
        [b"settings", ..] => Some(StatsGroup::Settings),
        [b"reset"] => Some(StatsGroup::Reset),
        [b"items" | b"slabs"] => Some(StatsGroup::Empty),
        [b"sizes"] => Some(StatsGroup::Sizes),
        [b"detail"] => Some(StatsGroup::DetailUsage),
        [b"detail", b"on" | b"off"] => Some(StatsGroup::DetailSwitch),
        [b"detail", b"dump"] => Some(StatsGroup::Empty),
        [b"cachedump", class, limit]
            if number::<u32>(class).is_some() && number::<u32>(limit).is_some() =>
        {
            Some(StatsGroup::Empty)
        }
        _ => None,
    }
}

fn store_header<'a>(
    mode: StoreMode,
    args: &[&'a [u8]],
    noreply: bool,
) -> Result<Command<'a>, CommandError> {
    let key = key(args[1])?;
    // As memcached 1.6.18: flags are read as a 64-bit number and kept to their low 32 bits
    // (4294967296 stores 0); past 64 bits, negative or not a number is a bad line.
    let flags = number::<u64>(args[2]).ok_or(CommandError::BadFormat)?;
    let flags = u32::try_from(flags & u64::from(u32::MAX)).unwrap_or(u32::MAX);
    let exptime = number::<i64>(args[3]).ok_or(CommandError::BadFormat)?;
    let bytes = number::<i32>(args[4])
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(CommandError::BadFormat)?;
    Ok(Command::Store(StoreHeader {
        mode,
        key,
        flags,
        exptime,
        bytes,
        noreply,
    }))
}

/// A key as memcached's protocol defines it: 1 to 250 bytes, no control characters.
fn key(word: &[u8]) -> Result<&[u8], CommandError> {
    if is_valid_key(word) {
        Ok(word)
    } else {
        Err(CommandError::BadFormat)
    }
}

/// True for a key the protocol allows: 1 to 250 bytes, none a space or a control character.
#[must_use]
pub fn is_valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LENGTH && key.iter().all(|&b| b > b' ' && b != 0x7f)
}

fn check_keys(keys: Keys<'_>) -> Result<(), CommandError> {
    if keys.iter().all(is_valid_key) {
        Ok(())
    } else {
        Err(CommandError::BadFormat)
    }
}

/// The line after its first `skip` words.
fn rest_after(line: &[u8], skip: usize) -> &[u8] {
    let mut rest = line;
    for _ in 0..skip {
        rest = trim_start(rest);
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        rest = &rest[end..];
    }
    trim_start(rest)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

fn number<T: std::str::FromStr>(word: &[u8]) -> Option<T> {
    // memcached's strtol-based parsing refuses a leading '+', as we do; Rust's parse accepts it.
    if word.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &[u8]) -> CommandError {
        parse_command(line).expect_err("refused").error
    }

    #[test]
    fn storage_commands_parse_every_field() {
        assert_eq!(
            parse_command(b"set k 5 10 3 noreply"),
            Ok(Command::Store(StoreHeader {
                mode: StoreMode::Set,
                key: b"k",
                flags: 5,
                exptime: 10,
                bytes: 3,
                noreply: true,
            }))
        );
        assert!(matches!(
            parse_command(b"cas k 0 -1 1 99"),
            Ok(Command::Store(StoreHeader {
                mode: StoreMode::Cas(99),
                exptime: -1,
                noreply: false,
                ..
            }))
        ));
        assert_eq!(err(b"set k 0 0"), CommandError::Unknown);
        assert_eq!(err(b"set k 0 0 -1"), CommandError::BadFormat);
        assert_eq!(err(b"set k x 0 1"), CommandError::BadFormat);
        assert_eq!(err(b"cas k 0 0 1"), CommandError::Unknown);
    }

    #[test]
    fn keys_are_checked_like_memcached() {
        let long = [b'k'; 251];
        let mut line = b"get ".to_vec();
        line.extend_from_slice(&long);
        assert_eq!(err(&line), CommandError::BadFormat);
        assert_eq!(err(b"get"), CommandError::Unknown);
        assert_eq!(err(b"get a\tb"), CommandError::BadFormat);
        let Ok(Command::Get { keys, .. }) = parse_command(b"gets  a   b c") else {
            panic!("gets parses");
        };
        assert_eq!(keys.iter().collect::<Vec<_>>(), [b"a", b"b", b"c"]);
    }

    #[test]
    fn delete_accepts_only_zero_and_noreply() {
        assert!(parse_command(b"delete a 0").is_ok());
        assert!(parse_command(b"delete a 0 noreply").is_ok());
        assert!(parse_command(b"delete a noreply").is_ok());
        assert_eq!(err(b"delete a 1"), CommandError::BadDelete);
        assert_eq!(err(b"delete a 1 noreply"), CommandError::BadDelete);
    }

    #[test]
    fn numbers_and_noreply_errors() {
        assert_eq!(err(b"incr a x"), CommandError::InvalidDelta);
        assert_eq!(err(b"incr a -1"), CommandError::InvalidDelta);
        assert_eq!(err(b"flush_all x"), CommandError::InvalidExptime);
        assert_eq!(err(b"gat a"), CommandError::InvalidExptime);
        assert_eq!(err(b"gat 10"), CommandError::Unknown);
        assert_eq!(err(b"gat x a"), CommandError::InvalidExptime);
        assert!(parse_command(b"set n x 0 1 noreply").unwrap_err().noreply);
        assert_eq!(
            parse_command(b"flush_all noreply"),
            Ok(Command::FlushAll {
                delay: 0,
                noreply: true
            })
        );
        assert_eq!(err(b""), CommandError::Unknown);
        assert_eq!(err(b"verbosity"), CommandError::Unknown);
        assert_eq!(err(b"stats foo"), CommandError::Unknown);
    }
}
