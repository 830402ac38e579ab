//! The memcached text protocol's command lines, parsed without allocating.
//!
//! [`parse_command`] turns one line (without its CRLF) into a [`Command`] or a
//! [`CommandError`] whose [`reply`](CommandError::reply) is the exact text memcached 1.6 sends.

use super::meta::{MetaCommand, parse_meta};
use super::number::{safe_strtol, safe_strtoul, safe_strtoull};

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
#[allow(clippy::large_enum_variant)] // one per line, on the stack; a meta key is inline
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
    /// `verbosity <level> [noreply]`: memcached's logging level, reported by `stats
    /// settings` (this server logs through `tracing` instead).
    Verbosity {
        /// The level asked for.
        level: u64,
        /// No reply wanted.
        noreply: bool,
    },
    /// `stats [group]`.
    Stats(StatsGroup),
    /// `cache_memlimit <megabytes> [noreply]`: a new memory limit.
    CacheMemlimit {
        /// The new limit, in MiB.
        megabytes: u32,
        /// No reply wanted.
        noreply: bool,
    },
    /// `mn`: the meta protocol's no-op, answered `MN` (clients use it to mark the end of a
    /// pipeline of quiet meta commands).
    MetaNoop,
    /// `shutdown [graceful]`: stops the server when enabled (memcached's `-A`), else
    /// `ERROR: shutdown not enabled`.
    Shutdown(ShutdownMode),
    /// `quit` (or a line ending in an HTTP version): close the connection.
    Quit,
    /// `mg`, `ms`, `md`, `ma`, `me`: the meta protocol.
    Meta(MetaCommand<'a>),
}

/// What a `shutdown` line asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// `shutdown`: stop now.
    Now,
    /// `shutdown graceful`: stop accepting, let connections finish.
    Graceful,
    /// Any other word: `CLIENT_ERROR invalid shutdown mode` (when enabled).
    Invalid,
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
    /// `stats items`: items and counters per slab class.
    Items,
    /// `stats slabs`: memory per slab class.
    Slabs,
    /// `stats conns`: the open connections.
    Conns,
    /// `stats detail dump`: per-prefix detail, which this server does not keep (as memcached
    /// with detail off): an empty list (`END`).
    Empty,
    /// `stats cachedump <class> <limit>`: the keys of a slab class, newest first.
    CacheDump {
        /// The slab class.
        class: u32,
        /// At most this many (0: all).
        limit: u32,
    },
    /// A `stats` line memcached answers with this error.
    Refused(&'static [u8]),
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
    /// A meta command gave one flag twice (or a flag byte past ASCII).
    #[error("duplicate meta flag")]
    MetaDuplicateFlag,
    /// A meta command gave a flag memcached does not know.
    #[error("invalid meta flag")]
    MetaInvalidFlag,
    /// `md`/`ma` with an invalid or duplicate flag (memcached's one message for both).
    #[error("invalid or duplicate meta flag")]
    MetaInvalidOrDuplicate,
    /// The `b` flag with a key that is not base64.
    #[error("the key is not base64")]
    MetaKeyDecode,
    /// A meta flag's number (`N`, `T`, `R`, `C`) is not a number.
    #[error("bad meta flag token")]
    MetaBadToken,
    /// `M` with other than one mode character.
    #[error("the M flag takes one character")]
    MetaModeLength,
    /// `J` is not an unsigned 64-bit number.
    #[error("invalid initial value")]
    MetaInitial,
    /// `D` is not an unsigned 64-bit number.
    #[error("invalid delta value")]
    MetaDelta,
    /// `mg` with too many flags.
    #[error("too many meta flags")]
    MetaGetOptionsTooLong,
    /// `ms`/`md`/`ma` with too many flags.
    #[error("too many meta flags")]
    MetaOptionsTooLong,
    /// `ms` with a mode other than `E`, `A`, `P`, `R`, `S`.
    #[error("invalid ms mode")]
    MetaSetMode,
    /// `ma` with a mode other than `I`, `+`, `D`, `-`.
    #[error("invalid ma mode")]
    MetaArithmeticMode,
    /// An opaque token longer than 32 bytes.
    #[error("opaque token too long")]
    MetaOpaqueTooLong,
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
            CommandError::MetaDuplicateFlag => b"CLIENT_ERROR duplicate flag\r\n",
            CommandError::MetaInvalidFlag => b"CLIENT_ERROR invalid flag\r\n",
            CommandError::MetaInvalidOrDuplicate => b"CLIENT_ERROR invalid or duplicate flag\r\n",
            CommandError::MetaKeyDecode => b"CLIENT_ERROR error decoding key\r\n",
            CommandError::MetaBadToken => b"CLIENT_ERROR bad token in command line format\r\n",
            CommandError::MetaModeLength => b"CLIENT_ERROR incorrect length for M token\r\n",
            CommandError::MetaInitial => b"CLIENT_ERROR invalid numeric initial value\r\n",
            CommandError::MetaDelta => b"CLIENT_ERROR invalid numeric delta value\r\n",
            CommandError::MetaGetOptionsTooLong => b"CLIENT_ERROR options flags are too long\r\n",
            CommandError::MetaOptionsTooLong => b"CLIENT_ERROR options flags too long\r\n",
            CommandError::MetaSetMode => b"CLIENT_ERROR invalid mode for ms M token\r\n",
            CommandError::MetaArithmeticMode => b"CLIENT_ERROR invalid mode for ma M token\r\n",
            CommandError::MetaOpaqueTooLong => b"CLIENT_ERROR opaque token too long\r\n",
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
    /// Bytes of data block to discard after the error (an `ms` refused after its length was
    /// read: memcached swallows the block it announced).
    pub swallow: usize,
}

/// At most this many words are looked at; `get` takes its keys from the rest of the line.
const MAX_WORDS: usize = 8;

/// Parses one command line, without its line ending.
///
/// # Errors
/// A [`ParseFailure`] carrying the reply memcached sends for such a line.
pub fn parse_command(line: &[u8]) -> Result<Command<'_>, ParseFailure> {
    // memcached reads the line as a C string: a NUL byte ends it.
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
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
    let fail = |error| ParseFailure {
        error,
        noreply,
        swallow: 0,
    };
    let args = &words[..count.min(MAX_WORDS)];
    match (args.first().copied().unwrap_or_default(), count) {
        (b"get" | b"gets" | b"bget", 2..) => {
            let keys = Keys(rest_after(line, 1));
            check_keys(keys).map_err(fail)?;
            Ok(Command::Get {
                keys,
                with_cas: args[0] == b"gets",
                touch: None,
            })
        }
        (b"gat" | b"gats", 3..) => {
            let exptime = exptime_word(args[1]).ok_or(fail(CommandError::InvalidExptime))?;
            let keys = Keys(rest_after(line, 2));
            check_keys(keys).map_err(fail)?;
            Ok(Command::Get {
                keys,
                with_cas: args[0] == b"gats",
                touch: Some(exptime),
            })
        }
        // `gat <key>`: memcached reads the key as the expiry first.
        (b"gat" | b"gats", 2) if exptime_word(args[1]).is_none() => {
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
            let unique = safe_strtoull(args[5]).ok_or(fail(CommandError::BadFormat))?;
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
            let delta = safe_strtoull(args[2]).ok_or(fail(CommandError::InvalidDelta))?;
            Ok(Command::Arithmetic {
                incr: args[0] == b"incr",
                key,
                delta,
                noreply,
            })
        }
        (b"touch", 3 | 4) => {
            let key = key(args[1]).map_err(fail)?;
            let exptime = exptime_word(args[2]).ok_or(fail(CommandError::InvalidExptime))?;
            Ok(Command::Touch {
                key,
                exptime,
                noreply,
            })
        }
        (b"flush_all", 1..=3) => {
            let delay = match args.get(1) {
                Some(&word) if !(count == 2 && noreply) => {
                    exptime_word(word).ok_or(fail(CommandError::InvalidExptime))?
                }
                _ => 0,
            };
            Ok(Command::FlushAll { delay, noreply })
        }
        // memcached ignores whatever follows `version`, `quit` and `mn` (client test tools
        // send `version foo bar` to resynchronise after a `noreply` command).
        (b"version", _) => Ok(Command::Version),
        (b"mn", _) => Ok(Command::MetaNoop),
        (b"shutdown", 1) => Ok(Command::Shutdown(ShutdownMode::Now)),
        (b"shutdown", 2) if args[1] == b"graceful" => Ok(Command::Shutdown(ShutdownMode::Graceful)),
        (b"shutdown", _) => Ok(Command::Shutdown(ShutdownMode::Invalid)),
        (b"verbosity", 2 | 3) => Ok(Command::Verbosity {
            // memcached reads it with a bare strtoul: a leading number, else 0.
            level: leading_number(args[1]),
            noreply,
        }),
        (b"cache_memlimit", 2 | 3) => match safe_strtoul(args[1]) {
            Some(megabytes) => Ok(Command::CacheMemlimit { megabytes, noreply }),
            None => Err(fail(CommandError::Unknown)),
        },
        (b"stats", _) => stats_group(args).map(Command::Stats).ok_or(
            // `stats noreply` and unknown groups: memcached answers ERROR, noreply or not.
            ParseFailure {
                error: CommandError::Unknown,
                noreply: false,
                swallow: 0,
            },
        ),
        (b"quit", _) => Ok(Command::Quit),
        // An unknown command, or a known one with the wrong number of words: memcached answers
        // ERROR whatever the last word is (it reads `noreply` only in the commands that take it).
        (b"mg" | b"ms" | b"md" | b"ma" | b"me", _) => parse_meta(line).map(Command::Meta),
        // A browser's request line: memcached closes without a word.
        _ if closes_as_http(line) => Ok(Command::Quit),
        _ => Err(ParseFailure {
            error: CommandError::Unknown,
            noreply: false,
            swallow: 0,
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
        [b"items", ..] => Some(StatsGroup::Items),
        [b"slabs", ..] => Some(StatsGroup::Slabs),
        [b"conns", ..] => Some(StatsGroup::Conns),
        [b"sizes"] => Some(StatsGroup::Sizes),
        [b"detail"] => Some(StatsGroup::DetailUsage),
        [b"detail", b"on" | b"off"] => Some(StatsGroup::DetailSwitch),
        [b"detail", b"dump"] => Some(StatsGroup::Empty),
        [b"cachedump"] | [b"cachedump", _] => {
            Some(StatsGroup::Refused(b"CLIENT_ERROR bad command line\r\n"))
        }
        [b"cachedump", class, limit, ..] => match (safe_strtoul(class), safe_strtoul(limit)) {
            (Some(class), Some(_)) if class >= 64 => {
                Some(StatsGroup::Refused(b"CLIENT_ERROR Illegal slab id\r\n"))
            }
            (Some(class), Some(limit)) => Some(StatsGroup::CacheDump { class, limit }),
            _ => Some(StatsGroup::Refused(
                b"CLIENT_ERROR bad command line format\r\n",
            )),
        },
        _ => None,
    }
}

fn store_header<'a>(
    mode: StoreMode,
    args: &[&'a [u8]],
    noreply: bool,
) -> Result<Command<'a>, CommandError> {
    let key = key(args[1])?;
    // As memcached 1.6.18 reads them (C's strtoul/strtol): flags kept to their low 32 bits
    // (4294967296 stores 0), exptime and length to theirs (a length past 2^31 wraps).
    let flags = safe_strtoul(args[2]).ok_or(CommandError::BadFormat)?;
    let exptime = exptime_word(args[3]).ok_or(CommandError::BadFormat)?;
    let bytes = safe_strtol(args[4])
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= i32::MAX as usize - 2)
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

/// A key as memcached 1.6.18's server reads it: a word of at most 250 bytes. (It checks no
/// characters: control bytes are part of the key; only spaces end it.)
fn key(word: &[u8]) -> Result<&[u8], CommandError> {
    if is_accepted_key(word) {
        Ok(word)
    } else {
        Err(CommandError::BadFormat)
    }
}

/// True for a key a server accepts, as memcached does: 1 to 250 bytes (control bytes
/// included).
#[must_use]
pub fn is_accepted_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LENGTH
}

/// True for a key the protocol's text allows a client to send: 1 to 250 bytes, none a space
/// or a control character (what the client checks before sending).
#[must_use]
pub fn is_valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LENGTH && key.iter().all(|&b| b > b' ' && b != 0x7f)
}

fn check_keys(keys: Keys<'_>) -> Result<(), CommandError> {
    if keys.iter().all(is_accepted_key) {
        Ok(())
    } else {
        Err(CommandError::BadFormat)
    }
}

/// True for a line memcached closes the connection on without a reply: an unknown command
/// (one its dispatch does not reach by its first letter or name) whose last word (of the
/// first 23, as it tokenizes no more) starts with `HTTP/`, as a web browser's request does.
fn closes_as_http(line: &[u8]) -> bool {
    let mut words = line
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .take(23);
    let Some(command) = words.next() else {
        return false;
    };
    let dispatched = command.len() < 2
        || b"gsacidt".contains(&command[0])
        || (command.len() == 2 && command[0] == b'm')
        || matches!(
            command,
            b"replace"
                | b"prepend"
                | b"bget"
                | b"flush_all"
                | b"version"
                | b"quit"
                | b"lru_crawler"
                | b"watch"
                | b"verbosity"
                | b"lru"
        );
    !dispatched && words.last().unwrap_or(command).starts_with(b"HTTP/")
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

/// An expiry time as memcached reads it (`safe_strtol`: a 32-bit int).
fn exptime_word(word: &[u8]) -> Option<i64> {
    safe_strtol(word).map(i64::from)
}

/// The decimal number at the start of `word` (C's `strtoul` without checks), 0 if none.
fn leading_number(word: &[u8]) -> u64 {
    word.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, &d| {
            n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        })
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
        // memcached splits words on spaces only: a tab is part of the key.
        assert!(parse_command(b"get a\tb").is_ok());
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
