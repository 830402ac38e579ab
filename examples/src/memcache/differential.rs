//! Differential testing against the real memcached: seeded command streams from a grammar of
//! the whole text and meta protocol go to Debian's memcached and to our server, and the reply
//! streams must match after a documented normalisation ([`normalise`]).
//!
//! Used by `examples/tests/memcache_diff.rs` (2,000 streams per backend in `cargo test`) and
//! by the `memcache-diff` program (`--seed S --cases N --backend B`), which prints the first
//! divergence shrunk to a minimal transcript. What the grammar leaves out, and why, is listed
//! in `docs/memcache.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use concurrence_sim::SimRng;

use super::meta::base64_encode;
use super::store::{DEFAULT_ITEM_SIZE_MAX, ITEM_FLAGS_SIZE, ITEM_OVERHEAD};

/// How long one stream's replies may take before the exchange gives up on it.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// Debian's `memcached`, started on a free loopback port; killed when dropped.
#[derive(Debug)]
pub struct Memcached {
    child: Child,
    address: SocketAddr,
}

impl Memcached {
    /// Starts `program` (normally `memcached`) with two threads, no UDP, and `extra`
    /// arguments; returns once it listens.
    ///
    /// # Errors
    /// It is not installed, or exited before listening.
    pub fn start(program: &str, extra: &[&str]) -> io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // `-vv` makes memcached say "server listening" on stderr once it accepts: the event to
        // wait for. The rest of its (verbose) log is drained by a thread so it never blocks.
        let mut child = Command::new(program)
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-t",
                "2",
            ])
            .arg("-vv")
            .args(["-u", "root"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("memcached's stderr was not captured"))?;
        let mut log = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            if log.read_line(&mut line)? == 0 {
                let _ = child.wait();
                return Err(io::Error::other("memcached exited before listening"));
            }
            if line.contains("server listening") {
                break;
            }
        }
        std::thread::spawn(move || io::copy(&mut log, &mut io::sink()));
        Ok(Memcached {
            child,
            address: ([127, 0, 0, 1], port).into(),
        })
    }

    /// Where it listens.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One generated stream: its commands, each with its data block and line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The commands in order; their concatenation is what is sent.
    pub commands: Vec<Vec<u8>>,
    /// Where the bytes are cut into separate writes.
    pub splits: Vec<usize>,
}

impl Stream {
    /// The bytes sent.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        self.commands.concat()
    }
}

fn pick<'a, T>(rng: &mut SimRng, items: &'a [T]) -> &'a T {
    &items[usize::try_from(rng.below(items.len() as u64)).unwrap_or(0)]
}

fn below(rng: &mut SimRng, n: usize) -> usize {
    usize::try_from(rng.below(n as u64)).unwrap_or(0)
}

/// Numbers at and past the protocol's limits, and words that are not numbers.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "7",
    "100",
    "-1",
    "-0",
    "+5",
    "x",
    "5x",
    "0x10",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775808",
    "4294967295",
    "4294967296",
    "4294967396",
    "2147483647",
    "2147483648",
    "2592000",
    "2592001",
];

/// Expiry times: never, relative, absolute in the past, negative, malformed.
const EXPTIMES: &[&str] = &["0", "100", "-1", "2592000", "2592001", "1000000000", "x"];

/// The stream of case `case`: between 1 and 10 commands of the whole protocol. Keys carry the
/// case number, so streams never touch each other's items (only `flush_all` reaches across).
#[must_use]
pub fn stream(rng: &mut SimRng, case: u64) -> Stream {
    let case_len = case.to_string().len();
    let long = format!("{case}{}", "k".repeat(250 - case_len));
    let mut keys = vec![
        format!("a{case}").into_bytes(),
        format!("b{case}").into_bytes(),
        format!("c{case}").into_bytes(),
    ];
    let count = 1 + below(rng, 10);
    // Keys of 250 bytes, and of 251 (too long), only in streams of one command
    // (docs/memcache.md says why).
    if count == 1 && rng.chance(100_000) {
        keys = vec![long.clone().into_bytes()];
    } else if count == 1 && rng.chance(30_000) {
        keys = vec![format!("{long}k").into_bytes()];
    }
    // Control and high bytes inside keys: memcached splits words on spaces only.
    if rng.chance(50_000) {
        const ODD: [&[u8]; 5] = [b"\x01", b"\t", b"\x7f", b"\xff", b"\r"];
        let odd = *pick(rng, &ODD);
        let mut key = b"d".to_vec();
        key.extend_from_slice(odd);
        key.extend_from_slice(case.to_string().as_bytes());
        keys.push(key);
    }
    // A browser's request line, alone: memcached closes at once, dropping replies to earlier
    // commands of the pipeline not yet sent (docs/memcache.md: we send those).
    if count == 1 && rng.chance(5_000) {
        let words = pick(
            rng,
            &["GET / HTTP/1.1\r\n", "FOO HTTP/1.0\r\n", "set HTTP/1.1\r\n"],
        );
        return Stream {
            commands: vec![words.as_bytes().to_vec()],
            splits: Vec::new(),
        };
    }
    let mut commands = Vec::with_capacity(count);
    let mut read: Vec<Vec<u8>> = Vec::new();
    let mut flushed = false;
    for _ in 0..count {
        let key = pick(rng, &keys).clone();
        let mut next = command(rng, &key, &keys);
        // An incr/decr after a read of its key in the same pipeline: memcached pads the
        // shorter number in place only if the read's reply was already sent (its item is
        // referenced until then), which depends on timing; such streams cannot compare.
        if is_arithmetic(&next) && read.iter().any(|k| k == &key || k.is_empty()) {
            next = line(&[b"get", &key]);
        }
        // A delayed flush_all after an immediate one: memcached's flush is lazy, and the
        // later deadline replaces the earlier, so the items the first flush hid come back
        // (docs/memcache.md: ours stay flushed).
        if next.starts_with(b"flush_all 100000") && flushed {
            next = b"flush_all 0\r\n".to_vec();
        }
        flushed |= next.starts_with(b"flush_all") && !next.starts_with(b"flush_all 100000");
        read.extend(keys_read(&next));
        commands.push(next);
    }
    // A rare large value at the item limit's edge (memcached's default -I 1m), with a read
    // of its key; alone, so no earlier command can desynchronise it into a line.
    if rng.chance(2_000) {
        let key = keys[0].clone();
        commands = vec![large_value(rng, &key), line(&[b"mg", &key, b"s", b"f"])];
    }
    let total: usize = commands.iter().map(Vec::len).sum();
    let mut splits: Vec<usize> = (0..below(rng, 4))
        .map(|_| below(rng, total.max(1)))
        .collect();
    splits.sort_unstable();
    splits.dedup();
    Stream { commands, splits }
}

fn first_line(command: &[u8]) -> Vec<&[u8]> {
    let end = command
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(command.len());
    command[..end]
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .collect()
}

fn is_arithmetic(command: &[u8]) -> bool {
    matches!(
        first_line(command).first().copied(),
        Some(b"incr" | b"decr" | b"ma")
    )
}

/// The keys a retrieval command reads (an empty key: any, for a base64 `mg`).
fn keys_read(command: &[u8]) -> Vec<Vec<u8>> {
    let words = first_line(command);
    let trim = |w: &[u8]| w.strip_suffix(b"\r").unwrap_or(w).to_vec();
    match words.first().copied() {
        Some(b"get" | b"gets" | b"bget" | b"gat" | b"gats") => {
            words[1..].iter().map(|w| trim(w)).collect()
        }
        Some(b"mg") if words.iter().any(|w| trim(w) == b"b") => vec![Vec::new()],
        Some(b"mg") => words.get(1).map(|w| trim(w)).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn large_value(rng: &mut SimRng, key: &[u8]) -> Vec<u8> {
    let flags: u32 = if rng.chance(500_000) { 0 } else { 3 };
    let flags_size = if flags == 0 { 0 } else { ITEM_FLAGS_SIZE };
    let fits = DEFAULT_ITEM_SIZE_MAX - ITEM_OVERHEAD - flags_size - key.len();
    let len = match below(rng, 4) {
        0 => fits,
        1 => fits + 1,
        2 => fits - 1,
        _ => fits + 100,
    };
    let verb = pick(rng, &["set", "add", "ms"]);
    let mut out = if *verb == "ms" {
        let mut line = b"ms ".to_vec();
        line.extend_from_slice(key);
        line.extend_from_slice(format!(" {len} F{flags} T0\r\n").as_bytes());
        line
    } else {
        let mut line = format!("{verb} ").into_bytes();
        line.extend_from_slice(key);
        line.extend_from_slice(format!(" {flags} 0 {len}\r\n").as_bytes());
        line
    };
    out.extend(std::iter::repeat_n(b'v', len));
    out.extend_from_slice(b"\r\n");
    out
}

fn line(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = parts.join(&b' ');
    out.extend_from_slice(b"\r\n");
    out
}

fn data(rng: &mut SimRng) -> Vec<u8> {
    match below(rng, 8) {
        0 => pick(rng, &["18446744073709551615", "5", " 5", "12 34", "-3", ""])
            .as_bytes()
            .to_vec(),
        _ => (0..below(rng, 12))
            .map(|i| b'0' + u8::try_from(i % 10).unwrap_or(0))
            .collect(),
    }
}

/// A data block announced as `len` bytes, sometimes not as long as announced.
fn block(rng: &mut SimRng, data: &[u8]) -> (String, Vec<u8>) {
    let announced = match below(rng, 12) {
        0 => data.len() + 1,
        1 if !data.is_empty() => data.len() - 1,
        2 => data.len() + 3,
        _ => data.len(),
    };
    let mut body = data.to_vec();
    body.extend_from_slice(b"\r\n");
    (announced.to_string(), body)
}

#[allow(clippy::too_many_lines)] // one arm per command family of the grammar
fn command(rng: &mut SimRng, key: &[u8], keys: &[Vec<u8>]) -> Vec<u8> {
    let noreply: &[u8] = if rng.chance(200_000) { b"noreply" } else { b"" };
    let number = |rng: &mut SimRng| pick(rng, NUMBERS).as_bytes().to_vec();
    let exptime = |rng: &mut SimRng| {
        if rng.chance(700_000) {
            b"0".to_vec()
        } else {
            pick(rng, EXPTIMES).as_bytes().to_vec()
        }
    };
    let mut out = match below(rng, 24) {
        0..=3 => {
            let verb = pick(rng, &["set", "add", "replace", "append", "prepend", "cas"]);
            let flags = if rng.chance(800_000) {
                b"0".to_vec()
            } else {
                number(rng)
            };
            let exptime = exptime(rng);
            let value = data(rng);
            let (len, body) = block(rng, &value);
            let mut words: Vec<&[u8]> =
                vec![verb.as_bytes(), key, &flags, &exptime, len.as_bytes()];
            let unique = pick(rng, &["0", "1", "999999999", "x"]);
            if *verb == "cas" {
                words.push(unique.as_bytes());
            }
            if !noreply.is_empty() {
                words.push(noreply);
            }
            let mut out = line(&words);
            out.extend_from_slice(&body);
            out
        }
        4 | 5 => {
            let verb = pick(rng, &["get", "gets", "bget"]);
            let mut words: Vec<&[u8]> = vec![verb.as_bytes(), key];
            for _ in 0..below(rng, 3) {
                words.push(pick(rng, keys).as_slice());
            }
            line(&words)
        }
        6 => {
            let verb = pick(rng, &["gat", "gats"]);
            let time = exptime(rng);
            line(&[verb.as_bytes(), &time, key])
        }
        7 => {
            let verb = pick(rng, &["incr", "decr"]);
            let delta = number(rng);
            line(&[verb.as_bytes(), key, &delta, noreply])
        }
        8 => {
            let extra = pick(rng, &["", "0", "1", "0 noreply"]);
            line(&[b"delete", key, extra.as_bytes(), noreply])
        }
        9 => {
            let time = exptime(rng);
            line(&[b"touch", key, &time, noreply])
        }
        10 => pick(
            rng,
            &[
                "version\r\n",
                "version foo bar\r\n",
                "mn\r\n",
                "mn foo\r\n",
                "verbosity 1\r\n",
                "verbosity\r\n",
                "verbosity 1 noreply\r\n",
                "flush_all\r\n",
                "flush_all 0\r\n",
                "flush_all -1\r\n",
                "flush_all 100000\r\n",
                "flush_all noreply\r\n",
                "flush_all 0 noreply\r\n",
                "flush_all x\r\n",
                "cache_memlimit 100\r\n",
                "cache_memlimit 100 noreply\r\n",
                "cache_memlimit 7\r\n",
                "cache_memlimit 2000000000\r\n",
                "cache_memlimit x\r\n",
                "shutdown\r\n",
            ],
        )
        .as_bytes()
        .to_vec(),
        11 => pick(
            rng,
            &[
                "stats\r\n",
                "stats settings\r\n",
                "stats slabs\r\n",
                "stats sizes\r\n",
                "stats detail\r\n",
                "stats detail on\r\n",
                "stats detail off\r\n",
                "stats detail dump\r\n",
                "stats reset\r\n",
                "stats cachedump 1\r\n",
                "stats cachedump x 1\r\n",
                "stats cachedump 99 1\r\n",
                "stats noreply\r\n",
                "stats foo\r\n",
            ],
        )
        .as_bytes()
        .to_vec(),
        12 => pick(
            rng,
            &[
                "\r\n",
                "foo\r\n",
                "set\r\n",
                "get\r\n",
                "incr\r\n",
                "touch a\r\n",
                "delete\r\n",
                "set k 0 0\r\n",
                "GET a\r\n",
                "m\r\n",
                "mx a\r\n",
                "get a\0b\r\n",
            ],
        )
        .as_bytes()
        .to_vec(),
        13..=15 => meta_get(rng, key),
        16 | 17 => meta_set(rng, key),
        18 => meta_delete(rng, key),
        19 | 20 => meta_arithmetic(rng, key),
        21 => {
            let mut words: Vec<Vec<u8>> = vec![b"me".to_vec(), key.to_vec()];
            if rng.chance(300_000) {
                words = vec![b"me".to_vec(), encoded(key), b"b".to_vec()];
            }
            let refs: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
            line(&refs)
        }
        _ => line(&[b"get", key]),
    };
    // Now and then a bare LF ends the line instead of CRLF.
    if rng.chance(30_000) && out.ends_with(b"\r\n") && !out[..out.len() - 2].contains(&b'\n') {
        out.truncate(out.len() - 2);
        out.push(b'\n');
    }
    out
}

fn encoded(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    base64_encode(key, &mut out);
    out
}

/// Meta flags for `command`, each with its token, a few of them malformed or repeated.
fn meta_flags(rng: &mut SimRng, vocabulary: &[&str]) -> Vec<Vec<u8>> {
    let mut flags: Vec<Vec<u8>> = (0..below(rng, 6))
        .map(|_| pick(rng, vocabulary).as_bytes().to_vec())
        .collect();
    // Duplicates are kept sometimes (an error), else the first of each flag stays.
    if !rng.chance(100_000) {
        let mut seen = Vec::new();
        flags.retain(|f| {
            let new = !seen.contains(&f[0]);
            seen.push(f[0]);
            new
        });
    }
    if rng.chance(20_000) {
        flags.push(pick(rng, &["x", "!", "E", "\x01"]).as_bytes().to_vec());
    }
    if rng.chance(10_000) {
        flags.extend((0..20).map(|i| format!("O{i}").into_bytes()));
    }
    flags
}

const OPAQUES: &[&str] = &[
    "O1",
    "Oabc",
    "O1234567890123456789012345678901",
    "O12345678901234567890123456789012",
];

fn key_words(rng: &mut SimRng, key: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    match below(rng, 10) {
        0 => (encoded(key), Some(b"b".to_vec())),
        1 => (b"!!notbase64".to_vec(), Some(b"b".to_vec())),
        _ => (key.to_vec(), None),
    }
}

fn meta_line(command: &[u8], key: &[u8], middle: &[&[u8]], flags: &[Vec<u8>]) -> Vec<u8> {
    let mut words: Vec<&[u8]> = vec![command, key];
    words.extend_from_slice(middle);
    words.extend(flags.iter().map(Vec::as_slice));
    line(&words)
}

fn meta_get(rng: &mut SimRng, key: &[u8]) -> Vec<u8> {
    let mut vocabulary = vec![
        "c", "f", "h", "k", "l", "q", "s", "t", "u", "v", "v", "N0", "N100", "N-1", "R30", "R100",
        "R200", "T0", "T30", "T-1", "Tx", "P/path", "Lfoo",
    ];
    vocabulary.extend_from_slice(OPAQUES);
    let (key, binary) = key_words(rng, key);
    let mut flags = meta_flags(rng, &vocabulary);
    flags.extend(binary);
    meta_line(b"mg", &key, &[], &flags)
}

fn meta_set(rng: &mut SimRng, key: &[u8]) -> Vec<u8> {
    let mut vocabulary = vec![
        "c",
        "k",
        "q",
        "I",
        "T0",
        "T100",
        "T-1",
        "F0",
        "F7",
        "F4294967296",
        "Fx",
        "C0",
        "C1",
        "C999999999",
        "Cx",
        "MS",
        "ME",
        "MA",
        "MP",
        "MR",
        "Mx",
        "MSS",
        "M",
        "v",
    ];
    vocabulary.extend_from_slice(OPAQUES);
    let (key, binary) = key_words(rng, key);
    let mut flags = meta_flags(rng, &vocabulary);
    flags.extend(binary);
    let value = data(rng);
    let (len, body) = block(rng, &value);
    let len = match below(rng, 20) {
        0 => "x".to_owned(),
        1 => "-1".to_owned(),
        _ => len,
    };
    let mut out = if rng.chance(30_000) {
        line(&[b"ms", &key])
    } else {
        meta_line(b"ms", &key, &[len.as_bytes()], &flags)
    };
    out.extend_from_slice(&body);
    out
}

fn meta_delete(rng: &mut SimRng, key: &[u8]) -> Vec<u8> {
    let mut vocabulary = vec!["q", "k", "I", "T30", "C0", "C1", "Cx", "x"];
    vocabulary.extend_from_slice(OPAQUES);
    let (key, binary) = key_words(rng, key);
    let mut flags = meta_flags(rng, &vocabulary);
    flags.extend(binary);
    meta_line(b"md", &key, &[], &flags)
}

fn meta_arithmetic(rng: &mut SimRng, key: &[u8]) -> Vec<u8> {
    let mut vocabulary = vec![
        "q",
        "k",
        "t",
        "c",
        "v",
        "v",
        "N0",
        "N100",
        "J5",
        "J18446744073709551615",
        "Jx",
        "D1",
        "D10",
        "D18446744073709551615",
        "Dx",
        "T100",
        "MI",
        "M+",
        "MD",
        "M-",
        "Mx",
        "C0",
        "C1",
    ];
    vocabulary.extend_from_slice(OPAQUES);
    let (key, binary) = key_words(rng, key);
    let mut flags = meta_flags(rng, &vocabulary);
    flags.extend(binary);
    meta_line(b"ma", &key, &[], &flags)
}

/// What ends every exchange: a key no stream uses, stored and read back. Empty lines come
/// first (each answered `ERROR` by both servers): they complete a data block the stream
/// announced longer than it sent, so the marker is read as commands.
const MARKER: &[u8] =
    b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nset __end__ 0 0 3\r\nend\r\nget __end__\r\n";

/// The marker's reply, which nothing else in a reply stream can be.
const MARKER_REPLY: &[u8] = b"STORED\r\nVALUE __end__ 0 3\r\nend\r\nEND\r\n";

/// What the peer did after the stream: answered the marker, closed, or went quiet.
const CLOSED: &str = "<connection closed>";
const TIMED_OUT: &str = "<no complete reply in time>";

/// A connection to one server, kept across streams until it closes.
#[derive(Debug)]
pub struct Peer {
    address: SocketAddr,
    stream: Option<TcpStream>,
}

impl Peer {
    /// A peer of the server at `address` (connected at its first exchange).
    #[must_use]
    pub fn new(address: SocketAddr) -> Self {
        Peer {
            address,
            stream: None,
        }
    }

    /// Sends `stream` in its split writes, then the marker; returns everything the server
    /// sent back, followed by a note if it closed or stayed silent.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub fn exchange(&mut self, stream: &Stream) -> io::Result<Vec<u8>> {
        let connection = match self.stream.take() {
            Some(connection) => connection,
            None => {
                let connection = TcpStream::connect(self.address)?;
                connection.set_nodelay(true)?;
                connection
            }
        };
        let mut connection = connection;
        let bytes = stream.bytes();
        let mut from = 0;
        let mut written = Ok(());
        for &split in stream.splits.iter().chain(std::iter::once(&bytes.len())) {
            let split = split.clamp(from, bytes.len());
            written = written.and_then(|()| connection.write_all(&bytes[from..split]));
            from = split;
        }
        let _ = written.and_then(|()| connection.write_all(MARKER));
        let started = Instant::now();
        let mut received = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        connection.set_read_timeout(Some(Duration::from_millis(50)))?;
        loop {
            if received.ends_with(MARKER_REPLY) {
                received.truncate(received.len() - MARKER_REPLY.len());
                self.stream = Some(connection);
                return Ok(received);
            }
            if started.elapsed() > EXCHANGE_TIMEOUT {
                received.extend_from_slice(TIMED_OUT.as_bytes());
                return Ok(received);
            }
            match connection.read(&mut chunk) {
                Ok(0) => {
                    received.extend_from_slice(CLOSED.as_bytes());
                    return Ok(received);
                }
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => {
                    received.extend_from_slice(CLOSED.as_bytes());
                    return Ok(received);
                }
            }
        }
    }
}

/// A reply stream normalised for comparison, with the numbers that may differ by a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// The reply text with `VERSION *`, `STAT <name> *`, CAS values numbered by first
    /// appearance (`cas#N`), and times as `~`.
    pub text: String,
    /// The times taken out of `text`, in order: TTLs and idle seconds, which legitimately
    /// differ by one when a second boundary falls between the two servers' replies.
    pub times: Vec<i64>,
}

impl Normalised {
    /// Equal text, and times within a second of each other (times past 2^31 are wrapped
    /// arithmetic on memcached's clock, which differs by design, and only need to be large
    /// on both sides).
    #[must_use]
    pub fn matches(&self, other: &Normalised) -> bool {
        self.text == other.text
            && self.times.len() == other.times.len()
            && self
                .times
                .iter()
                .zip(&other.times)
                .all(|(&a, &b)| (a - b).abs() <= 1 || (a >= 1 << 31 && b >= 1 << 31))
    }
}

/// Normalises a reply stream: the version string, `stats` values (their names and order are
/// compared), CAS values (mapped by order of first appearance, in `VALUE` lines, meta `c`
/// flags and `ME` lines), and time-dependent fields (meta `t` and `l` flags, `ME`'s `exp` and
/// `la`), which are compared within a second.
#[must_use]
pub fn normalise(reply: &[u8]) -> Normalised {
    let mut uniques: BTreeMap<String, usize> = BTreeMap::new();
    let mut cas = |value: &str| {
        let next = uniques.len();
        format!("cas#{}", *uniques.entry(value.to_owned()).or_insert(next))
    };
    let mut times = Vec::new();
    let mut out = String::new();
    let text = String::from_utf8_lossy(reply);
    for line in text.split_inclusive("\r\n") {
        let (body, end) = line
            .strip_suffix("\r\n")
            .map_or((line, ""), |b| (b, "\r\n"));
        let words: Vec<&str> = body.split(' ').collect();
        match words.first().copied() {
            Some("VERSION") => out.push_str("VERSION *"),
            Some("STAT") if words.len() >= 3 => {
                let _ = write!(out, "STAT {} *", words[1]);
            }
            Some("VALUE") if words.len() == 5 => {
                let _ = write!(
                    out,
                    "VALUE {} {} {} {}",
                    words[1],
                    words[2],
                    words[3],
                    cas(words[4])
                );
            }
            Some("VA" | "HD" | "EN" | "NS" | "EX" | "NF") => {
                let mut parts = vec![words[0].to_owned()];
                for word in &words[1..] {
                    let (flag, value) = word.split_at(word.len().min(1));
                    match flag {
                        "c" => parts.push(format!("c{}", cas(value))),
                        "t" | "l" if value.parse::<i64>().is_ok() => {
                            times.push(value.parse().unwrap_or(0));
                            parts.push(format!("{flag}~"));
                        }
                        _ => parts.push((*word).to_owned()),
                    }
                }
                out.push_str(&parts.join(" "));
            }
            Some("ME") => {
                let mut parts = Vec::new();
                for word in &words {
                    match word.split_once('=') {
                        Some(("cas", value)) => parts.push(format!("cas={}", cas(value))),
                        Some((name @ ("exp" | "la"), value)) if value.parse::<i64>().is_ok() => {
                            times.push(value.parse().unwrap_or(0));
                            parts.push(format!("{name}=~"));
                        }
                        _ => parts.push((*word).to_owned()),
                    }
                }
                out.push_str(&parts.join(" "));
            }
            _ => out.push_str(body),
        }
        out.push_str(end);
    }
    Normalised { text: out, times }
}

/// Removes commands from a diverging stream while it still diverges (one at a time, until no
/// single removal keeps the divergence), and drops its split points.
pub fn minimise(stream: &Stream, mut diverges: impl FnMut(&Stream) -> bool) -> Stream {
    let mut best = stream.clone();
    let unsplit = Stream {
        commands: best.commands.clone(),
        splits: Vec::new(),
    };
    if diverges(&unsplit) {
        best = unsplit;
    }
    let mut index = 0;
    while index < best.commands.len() && best.commands.len() > 1 {
        let mut candidate = best.clone();
        candidate.commands.remove(index);
        candidate.splits.clear();
        if diverges(&candidate) {
            best = candidate;
        } else {
            index += 1;
        }
    }
    best
}

/// A transcript for people: each command as an escaped line, then each server's replies.
#[must_use]
pub fn transcript(stream: &Stream, replies: &[(&str, &[u8])]) -> String {
    let mut out = String::from("sent:\n");
    for command in &stream.commands {
        let _ = writeln!(out, "  {}", escape(command));
    }
    for (name, reply) in replies {
        let _ = writeln!(out, "{name}:");
        // The padding before the marker is answered ERROR eight times: not shown.
        let mut reply: &[u8] = reply;
        for _ in 0..8 {
            reply = reply.strip_suffix(b"ERROR\r\n").unwrap_or(reply);
        }
        for line in reply.split_inclusive(|&b| b == b'\n') {
            let _ = writeln!(out, "  {}", escape(line));
        }
    }
    out
}

fn escape(bytes: &[u8]) -> String {
    let shown: Vec<u8> = if bytes.len() > 300 {
        let mut cut = bytes[..200].to_vec();
        cut.extend_from_slice(format!("... ({} bytes)", bytes.len()).as_bytes());
        cut
    } else {
        bytes.to_vec()
    };
    shown.escape_ascii().to_string()
}

/// The generator's state for case `case` of seed `seed`.
#[must_use]
pub fn case_rng(seed: u64, case: u64) -> SimRng {
    SimRng::new(seed.wrapping_mul(1_000_003).wrapping_add(case))
}

/// A divergence: the case, and the stream minimised with both replies.
#[derive(Debug, Clone)]
pub struct Divergence {
    /// The case number.
    pub case: u64,
    /// The transcript of the minimal stream that still diverges.
    pub transcript: String,
}

/// Runs cases `0..cases` of `seed` against memcached and one of our servers, in order, on a
/// connection to each (reopened when a server closes); stops at the first divergence and
/// returns it minimised.
///
/// # Errors
/// A server cannot be reached.
pub fn run(
    seed: u64,
    cases: u64,
    reference: SocketAddr,
    ours: SocketAddr,
    name: &str,
) -> io::Result<Option<Divergence>> {
    let mut theirs = Peer::new(reference);
    let mut mine = Peer::new(ours);
    for case in 0..cases {
        let stream = stream(&mut case_rng(seed, case), case);
        let expected = theirs.exchange(&stream)?;
        let got = mine.exchange(&stream)?;
        if normalise(&expected).matches(&normalise(&got)) {
            continue;
        }
        let mut check = |candidate: &Stream| -> bool {
            let a = Peer::new(reference).exchange(candidate);
            let b = Peer::new(ours).exchange(candidate);
            match (a, b) {
                (Ok(a), Ok(b)) => !normalise(&a).matches(&normalise(&b)),
                _ => false,
            }
        };
        let minimal = minimise(&stream, &mut check);
        let again = (
            Peer::new(reference).exchange(&minimal)?,
            Peer::new(ours).exchange(&minimal)?,
        );
        let transcript = if normalise(&again.0).matches(&normalise(&again.1)) {
            // The divergence needs the streams before it: show the case as it ran.
            transcript(&stream, &[("memcached", &expected), (name, &got)])
        } else {
            transcript(&minimal, &[("memcached", &again.0), (name, &again.1)])
        };
        return Ok(Some(Divergence { case, transcript }));
    }
    Ok(None)
}

/// The backends our server runs on here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The polling event loops.
    Polling,
    /// The smol backend.
    Smol,
    /// The io_uring event loops.
    Uring,
}

impl Backend {
    /// The name shown in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Backend::Polling => "concurrence (polling)",
            Backend::Smol => "concurrence (smol)",
            Backend::Uring => "concurrence (uring)",
        }
    }
}

/// Our server, in this process, on a free loopback port, with memcached's defaults (`-m 64`,
/// `-I 1m`) and two threads; stopped when dropped.
pub struct OurServer {
    address: SocketAddr,
    stop: Box<dyn FnMut() + Send>,
}

impl std::fmt::Debug for OurServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OurServer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl OurServer {
    /// Starts it on `backend`.
    ///
    /// # Errors
    /// No port could be bound.
    pub fn start(backend: Backend) -> io::Result<Self> {
        use std::sync::Arc;
        use std::time::{SystemTime, UNIX_EPOCH};

        use concurrence_core::Address;
        use concurrence_os::clock;
        use concurrence_socket::ServerConfig;

        use super::stats::ServerInfo;
        use super::store::StoreConfig;
        use super::{MemcacheSession, Shared};

        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(io::Error::other)?;
        let info = ServerInfo {
            started: clock::now(),
            pid: std::process::id(),
            threads: 2,
            max_connections: 64,
            store: StoreConfig {
                unix_time_at_zero: unix.saturating_sub(clock::now().since_epoch()).as_secs(),
                ..StoreConfig::default()
            },
            ..ServerInfo::default()
        };
        let shared = Arc::new(Shared::new(info, std::hash::RandomState::new()));
        let (reader, writer) = shared.buffers();
        let config = ServerConfig::default()
            .with_threads(2)
            .with_max_connections(64)
            .with_buffers(reader, writer);
        let local = "127.0.0.1:0".parse().map_err(io::Error::other)?;
        let tcp = |address: &Address| match address {
            Address::Tcp(address) => Ok(*address),
            other => Err(io::Error::other(format!("not a TCP address: {other}"))),
        };
        match backend {
            Backend::Polling | Backend::Uring => {
                let factory =
                    move |peer: &Address| MemcacheSession::with_peer(Arc::clone(&shared), peer);
                let handle = if backend == Backend::Polling {
                    concurrence_polling::serve(&local, config, factory)
                } else {
                    concurrence_uring::serve(&local, config, factory)
                }
                .map_err(io::Error::other)?;
                let address = tcp(handle.local_address())?;
                let mut handle = Some(handle);
                Ok(OurServer {
                    address,
                    stop: Box::new(move || {
                        if let Some(handle) = handle.take() {
                            handle.shutdown();
                        }
                    }),
                })
            }
            Backend::Smol => {
                let mut server = concurrence_smol::SocketServer::with_config(local, config);
                server.listen(64).map_err(io::Error::other)?;
                let address = tcp(server.local_address())?;
                let close = server.close_handle();
                std::thread::spawn(move || {
                    smol::block_on(server.serve_session(move |peer| {
                        MemcacheSession::with_peer(Arc::clone(&shared), peer)
                    }))
                });
                Ok(OurServer {
                    address,
                    stop: Box::new(move || close.close()),
                })
            }
        }
    }

    /// Where it listens.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        (self.stop)();
    }
}
