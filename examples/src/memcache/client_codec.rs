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
}

/// The client's protocol state: requests in flight, a `get` reply in progress.
#[derive(Debug, Default)]
pub struct ClientCodec {
    in_flight: VecDeque<Awaiting>,
    values: Vec<Value>,
    /// A `VALUE` line was read; its data block is awaited.
    value_header: Option<Value>,
    value_len: usize,
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
            }
        }
    }

    fn finish(&mut self) {
        self.in_flight.pop_front();
        self.values.clear();
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
