//! `ClientCodec`: the client half of the memcached text protocol, sans-IO.
//!
//! [`encode`](ClientCodec::encode) appends a request to an output buffer and remembers what
//! reply it awaits; [`decode`](ClientCodec::decode) takes replies, in order, from a core
//! `StreamReader`. Any number of requests may be in flight (pipelining). Used by the async
//! [`MemcacheClient`](super::MemcacheClient), by the simulator's load clients and by the fuzz
//! target that checks the server never breaks framing.

use std::collections::VecDeque;

use concurrence_core::{FramingError, StreamReader};

use super::command::{StoreMode, is_valid_key};

/// One request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get`/`gets` of one or more keys.
    Get {
        /// The keys.
        keys: &'a [&'a [u8]],
        /// Ask for CAS uniques (`gets`).
        with_cas: bool,
    },
    /// `set`/`add`/`replace`/`append`/`prepend`/`cas`.
    Store {
        /// Which command (with the unique for `cas`).
        mode: StoreMode,
        /// The key.
        key: &'a [u8],
        /// Flags stored with the value.
        flags: u32,
        /// Expiry (0 never; up to 30 days relative; else absolute Unix time).
        exptime: i64,
        /// The value.
        data: &'a [u8],
    },
    /// `delete`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
    /// `incr`/`decr`.
    Arithmetic {
        /// True for `incr`.
        incr: bool,
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
    },
    /// `touch`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new expiry.
        exptime: i64,
    },
    /// `flush_all`.
    FlushAll,
    /// `version`.
    Version,
    /// A meta command (`mg`, `ms`, `md`, `ma`, `me`, `mn`) with its flags as the protocol
    /// writes them (`b"v"`, `b"T30"`, `b"Oabc"`). The quiet flag `q` is refused here (a quiet
    /// command may get no reply, so the replies could not be matched to requests): quiet
    /// retrieval is [`Request::MetaGetMany`].
    Meta {
        /// Which command.
        command: MetaVerb,
        /// The key (ignored by `mn`).
        key: &'a [u8],
        /// The flags, in order.
        flags: &'a [&'a [u8]],
        /// `ms`'s value.
        data: &'a [u8],
    },
    /// Many keys read with quiet meta gets (`mg <key> v f c k q` each, then `mn`): one reply,
    /// [`Reply::MetaBatch`], with the hits only.
    MetaGetMany {
        /// The keys.
        keys: &'a [&'a [u8]],
    },
}

/// The meta commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaVerb {
    /// `mg`.
    Get,
    /// `ms`.
    Set,
    /// `md`.
    Delete,
    /// `ma`.
    Arithmetic,
    /// `me`.
    Debug,
    /// `mn`.
    Noop,
}

/// A meta reply's return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCode {
    /// `HD`: success without a value.
    Done,
    /// `VA`: success with a value.
    Value,
    /// `EN`: a miss.
    Miss,
    /// `NS`: not stored.
    NotStored,
    /// `EX`: the CAS value did not match.
    Exists,
    /// `NF`: not found.
    NotFound,
    /// `MN`: the no-op's answer.
    Noop,
    /// `ME`: `me`'s metadata line (in `flags`, as `key=value` words).
    Debug,
}

/// A meta reply: its code, the flags it returned (in request order), its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaReply {
    /// The return code.
    pub code: MetaCode,
    /// The returned flags: each a flag character and its token (`t` and `30`).
    pub flags: Vec<(u8, Vec<u8>)>,
    /// The value (`VA` only).
    pub value: Option<Vec<u8>>,
}

impl MetaReply {
    /// The token of returned flag `flag`, if returned.
    #[must_use]
    pub fn flag(&self, flag: u8) -> Option<&[u8]> {
        self.flags
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, token)| token.as_slice())
    }

    /// A returned flag's token as a number (`c`, `f`, `s`, `t`).
    #[must_use]
    pub fn number(&self, flag: u8) -> Option<i64> {
        std::str::from_utf8(self.flag(flag)?).ok()?.parse().ok()
    }
}

/// One item of a `get` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The key.
    pub key: Vec<u8>,
    /// Its flags.
    pub flags: u32,
    /// Its CAS unique (`gets` only).
    pub cas: Option<u64>,
    /// The data.
    pub data: Vec<u8>,
}

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// The items a `get` found (possibly none).
    Values(Vec<Value>),
    /// `STORED`.
    Stored,
    /// `NOT_STORED`.
    NotStored,
    /// `EXISTS`.
    Exists,
    /// `NOT_FOUND`.
    NotFound,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// `OK`.
    Ok,
    /// An `incr`/`decr` result.
    Number(u64),
    /// `VERSION <text>`.
    Version(String),
    /// A meta command's reply.
    Meta(MetaReply),
    /// A [`Request::MetaGetMany`]'s hits.
    MetaBatch(Vec<MetaReply>),
    /// `ERROR`, `CLIENT_ERROR <message>` or `SERVER_ERROR <message>`: the whole line.
    Error(String),
}

/// A request the client refuses to send, or a reply that breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A key that is empty, longer than 250 bytes, or has spaces or control characters.
    #[error("invalid key {0:?}: keys are 1 to 250 bytes without spaces or control characters")]
    InvalidKey(String),
    /// A `get` with no keys.
    #[error("a get needs at least one key")]
    NoKeys,
    /// A meta flag that is empty, has a space or control character, or is `q`.
    #[error(
        "invalid meta flag {0:?}: flags are one character and a token without spaces; quiet (q) only through MetaGetMany"
    )]
    InvalidFlag(String),
    /// The server sent something that is not a reply to the request in flight.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server sent a reply with no request in flight.
    #[error("a reply arrived with no request in flight: {0:?}")]
    Unsolicited(String),
    /// A reply line or value broke the reader's bounds.
    #[error(transparent)]
    Framing(#[from] FramingError),
}

/// What the next reply in flight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Values,
    Line,
    Meta,
    MetaBatch,
}

/// The client's protocol state: requests in flight, a `get` reply in progress.
#[derive(Debug, Default)]
pub struct ClientCodec {
    in_flight: VecDeque<Awaiting>,
    values: Vec<Value>,
    /// A `VALUE` line was read; its data block is awaited.
    value_header: Option<Value>,
    value_len: usize,
    /// A `VA` line was read; its data block is awaited.
    meta_header: Option<MetaReply>,
    /// The hits of a batch in progress.
    batch: Vec<MetaReply>,
}

impl ClientCodec {
    /// A codec with nothing in flight.
    #[must_use]
    pub fn new() -> Self {
        ClientCodec::default()
    }

    /// Requests sent whose replies have not been decoded yet.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Appends `request` to `out` and awaits its reply.
    ///
    /// # Errors
    /// [`ReplyError::InvalidKey`] or [`ReplyError::NoKeys`]; nothing is appended then.
    pub fn encode(&mut self, request: &Request<'_>, out: &mut Vec<u8>) -> Result<(), ReplyError> {
        let mut digits = itoa::Buffer::new();
        let awaiting = match *request {
            Request::Get { keys, with_cas } => {
                if keys.is_empty() {
                    return Err(ReplyError::NoKeys);
                }
                for key in keys {
                    check_key(key)?;
                }
                out.extend_from_slice(if with_cas { b"gets" } else { b"get" });
                for key in keys {
                    out.push(b' ');
                    out.extend_from_slice(key);
                }
                Awaiting::Values
            }
            Request::Store {
                mode,
                key,
                flags,
                exptime,
                data,
            } => {
                check_key(key)?;
                out.extend_from_slice(match mode {
                    StoreMode::Set => b"set ",
                    StoreMode::Add => b"add ",
                    StoreMode::Replace => b"replace ",
                    StoreMode::Append => b"append ",
                    StoreMode::Prepend => b"prepend ",
                    StoreMode::Cas(_) => b"cas ",
                });
                out.extend_from_slice(key);
                out.push(b' ');
                out.extend_from_slice(digits.format(flags).as_bytes());
                out.push(b' ');
                out.extend_from_slice(digits.format(exptime).as_bytes());
                out.push(b' ');
                out.extend_from_slice(digits.format(data.len()).as_bytes());
                if let StoreMode::Cas(unique) = mode {
                    out.push(b' ');
                    out.extend_from_slice(digits.format(unique).as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(data);
                Awaiting::Line
            }
            Request::Delete { key } => {
                check_key(key)?;
                out.extend_from_slice(b"delete ");
                out.extend_from_slice(key);
                Awaiting::Line
            }
            Request::Arithmetic { incr, key, delta } => {
                check_key(key)?;
                out.extend_from_slice(if incr { b"incr " } else { b"decr " });
                out.extend_from_slice(key);
                out.push(b' ');
                out.extend_from_slice(digits.format(delta).as_bytes());
                Awaiting::Line
            }
            Request::Touch { key, exptime } => {
                check_key(key)?;
                out.extend_from_slice(b"touch ");
                out.extend_from_slice(key);
                out.push(b' ');
                out.extend_from_slice(digits.format(exptime).as_bytes());
                Awaiting::Line
            }
            Request::FlushAll => {
                out.extend_from_slice(b"flush_all");
                Awaiting::Line
            }
            Request::Version => {
                out.extend_from_slice(b"version");
                Awaiting::Line
            }
            Request::Meta {
                command,
                key,
                flags,
                data,
            } => {
                for flag in flags {
                    if flag.is_empty() || *flag == b"q" || flag.iter().any(|&b| b <= b' ') {
                        return Err(ReplyError::InvalidFlag(lossy(flag)));
                    }
                }
                if command == MetaVerb::Noop {
                    out.extend_from_slice(b"mn");
                } else {
                    check_key(key)?;
                    out.extend_from_slice(match command {
                        MetaVerb::Get => b"mg ",
                        MetaVerb::Set => b"ms ",
                        MetaVerb::Delete => b"md ",
                        MetaVerb::Arithmetic => b"ma ",
                        MetaVerb::Debug | MetaVerb::Noop => b"me ",
                    });
                    out.extend_from_slice(key);
                    if command == MetaVerb::Set {
                        out.push(b' ');
                        out.extend_from_slice(digits.format(data.len()).as_bytes());
                    }
                    for flag in flags {
                        out.push(b' ');
                        out.extend_from_slice(flag);
                    }
                }
                if command == MetaVerb::Set {
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(data);
                }
                Awaiting::Meta
            }
            Request::MetaGetMany { keys } => {
                for key in keys {
                    check_key(key)?;
                }
                for key in keys {
                    out.extend_from_slice(b"mg ");
                    out.extend_from_slice(key);
                    out.extend_from_slice(b" v f c k q\r\n");
                }
                out.extend_from_slice(b"mn");
                Awaiting::MetaBatch
            }
        };
        out.extend_from_slice(b"\r\n");
        self.in_flight.push_back(awaiting);
        Ok(())
    }

    /// The next complete reply in `reader`, if one is there.
    ///
    /// # Errors
    /// [`ReplyError::Protocol`] or [`ReplyError::Unsolicited`] when the bytes are not the
    /// awaited reply (the connection cannot be trusted after that), or a framing bound.
    pub fn decode(&mut self, reader: &mut StreamReader) -> Result<Option<Reply>, ReplyError> {
        loop {
            if let Some(header) = &self.meta_header {
                let len = header.value.as_ref().map_or(0, Vec::len);
                let Some(block) = reader.read_bytes(len + 2)? else {
                    return Ok(None);
                };
                let Some(data) = block.strip_suffix(b"\r\n") else {
                    return Err(ReplyError::Protocol(
                        "a meta value's data block does not end in CRLF".into(),
                    ));
                };
                let Some(mut reply) = self.meta_header.take() else {
                    continue;
                };
                reply.value = Some(data.to_vec());
                if self.in_flight.front() == Some(&Awaiting::MetaBatch) {
                    self.batch.push(reply);
                    continue;
                }
                self.finish();
                return Ok(Some(Reply::Meta(reply)));
            }
            if self.value_header.is_some() {
                let Some(block) = reader.read_bytes(self.value_len + 2)? else {
                    return Ok(None);
                };
                let Some(data) = block.strip_suffix(b"\r\n") else {
                    return Err(ReplyError::Protocol(
                        "a value's data block does not end in CRLF".into(),
                    ));
                };
                if let Some(mut value) = self.value_header.take() {
                    value.data = data.to_vec();
                    self.values.push(value);
                }
                continue;
            }
            let Some(line) = reader.read_line(false)? else {
                return Ok(None);
            };
            let Some(&awaiting) = self.in_flight.front() else {
                return Err(ReplyError::Unsolicited(lossy(line)));
            };
            if let Some(reply) = error_reply(line) {
                self.finish();
                return Ok(Some(reply));
            }
            match awaiting {
                Awaiting::Values => {
                    if line == b"END" {
                        let values = std::mem::take(&mut self.values);
                        self.finish();
                        return Ok(Some(Reply::Values(values)));
                    }
                    let (value, len) = value_line(line)?;
                    self.value_header = Some(value);
                    self.value_len = len;
                }
                Awaiting::Line => {
                    let reply = line_reply(line)?;
                    self.finish();
                    return Ok(Some(reply));
                }
                Awaiting::Meta | Awaiting::MetaBatch => {
                    let (reply, value_len) = meta_line(line)?;
                    if let Some(len) = value_len {
                        // The data block follows: `value` holds its length until read.
                        self.meta_header = Some(MetaReply {
                            value: Some(vec![0; len]),
                            ..reply
                        });
                        continue;
                    }
                    if awaiting == Awaiting::MetaBatch {
                        if reply.code == MetaCode::Noop {
                            let batch = std::mem::take(&mut self.batch);
                            self.finish();
                            return Ok(Some(Reply::MetaBatch(batch)));
                        }
                        self.batch.push(reply);
                        continue;
                    }
                    self.finish();
                    return Ok(Some(Reply::Meta(reply)));
                }
            }
        }
    }

    fn finish(&mut self) {
        self.in_flight.pop_front();
        self.values.clear();
        self.batch.clear();
    }
}

fn check_key(key: &[u8]) -> Result<(), ReplyError> {
    if is_valid_key(key) {
        Ok(())
    } else {
        Err(ReplyError::InvalidKey(lossy(key)))
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn error_reply(line: &[u8]) -> Option<Reply> {
    (line == b"ERROR" || line.starts_with(b"CLIENT_ERROR ") || line.starts_with(b"SERVER_ERROR "))
        .then(|| Reply::Error(lossy(line)))
}

fn line_reply(line: &[u8]) -> Result<Reply, ReplyError> {
    Ok(match line {
        b"STORED" => Reply::Stored,
        b"NOT_STORED" => Reply::NotStored,
        b"EXISTS" => Reply::Exists,
        b"NOT_FOUND" => Reply::NotFound,
        b"DELETED" => Reply::Deleted,
        b"TOUCHED" => Reply::Touched,
        b"OK" => Reply::Ok,
        _ => {
            if let Some(version) = line.strip_prefix(b"VERSION ") {
                Reply::Version(lossy(version))
            } else if let Some(number) = parse_number::<u64>(line) {
                Reply::Number(number)
            } else {
                return Err(ReplyError::Protocol(format!(
                    "unexpected reply line {:?}",
                    lossy(line)
                )));
            }
        }
    })
}

/// A meta reply line: its code and flags, and for `VA` the length of the block that follows.
fn meta_line(line: &[u8]) -> Result<(MetaReply, Option<usize>), ReplyError> {
    let bad = || ReplyError::Protocol(format!("malformed meta reply {:?}", lossy(line)));
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let code = match words.next().ok_or_else(bad)? {
        b"HD" => MetaCode::Done,
        b"VA" => MetaCode::Value,
        b"EN" => MetaCode::Miss,
        b"NS" => MetaCode::NotStored,
        b"EX" => MetaCode::Exists,
        b"NF" => MetaCode::NotFound,
        b"MN" => MetaCode::Noop,
        b"ME" => MetaCode::Debug,
        _ => return Err(bad()),
    };
    let value_len = if code == MetaCode::Value {
        Some(
            words
                .next()
                .and_then(parse_number::<usize>)
                .ok_or_else(bad)?,
        )
    } else {
        None
    };
    let flags = if code == MetaCode::Debug {
        // `ME <key> exp=.. la=..`: whole words, under flag 0.
        words.map(|word| (0, word.to_vec())).collect()
    } else {
        words.map(|word| (word[0], word[1..].to_vec())).collect()
    };
    Ok((
        MetaReply {
            code,
            flags,
            value: None,
        },
        value_len,
    ))
}

/// `VALUE <key> <flags> <bytes> [<cas>]`.
fn value_line(line: &[u8]) -> Result<(Value, usize), ReplyError> {
    let bad = || ReplyError::Protocol(format!("malformed VALUE line {:?}", lossy(line)));
    let mut words = line.split(|&b| b == b' ');
    if words.next() != Some(b"VALUE") {
        return Err(bad());
    }
    let key = words.next().filter(|k| is_valid_key(k)).ok_or_else(bad)?;
    let flags = words.next().and_then(parse_number::<u32>).ok_or_else(bad)?;
    let len = words
        .next()
        .and_then(parse_number::<usize>)
        .ok_or_else(bad)?;
    let cas = match words.next() {
        Some(word) => Some(parse_number::<u64>(word).ok_or_else(bad)?),
        None => None,
    };
    if words.next().is_some() {
        return Err(bad());
    }
    Ok((
        Value {
            key: key.to_vec(),
            flags,
            cas,
            data: Vec::new(),
        },
        len,
    ))
}

fn parse_number<T: std::str::FromStr>(word: &[u8]) -> Option<T> {
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}
