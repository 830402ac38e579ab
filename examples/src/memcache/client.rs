//! `MemcacheClient`: an async memcached client over any `AsyncRead + AsyncWrite` stream, so
//! it runs under smol, tokio (through a compat layer) or any executor.
//!
//! Requests may be pipelined: [`send`](MemcacheClient::send) several, then
//! [`receive`](MemcacheClient::receive) their replies in order. When the connection dies with
//! requests in flight, every call says so with [`ClientError::ConnectionLost`], carrying how it
//! ended and how many requests were lost.

use std::io;
use std::time::Duration;

use concurrence_core::{Address, EndKind, ReaderConfig, StreamReader};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::client_codec::{ClientCodec, MetaReply, MetaVerb, Reply, ReplyError, Request, Value};
use super::command::StoreMode;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection ended; the requests in flight have no reply (they may or may not have
    /// been applied). The client cannot be used any more.
    #[error("the memcached connection ended ({kind:?}) with {in_flight} request(s) in flight")]
    ConnectionLost {
        /// How it ended: `PeerClosed`, `Reset`, `Io`.
        kind: EndKind,
        /// Requests sent and not answered.
        in_flight: usize,
    },
    /// No reply within the socket's timeout. The connection is abandoned: a late reply would
    /// otherwise be taken for the next request's.
    #[error("no reply from memcached in time; {in_flight} request(s) were in flight")]
    TimedOut {
        /// Requests sent and not answered.
        in_flight: usize,
    },
    /// The request was refused before sending, or the server broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ReplyError),
    /// The server answered `ERROR`, `CLIENT_ERROR ..` or `SERVER_ERROR ..`.
    #[error("memcached refused the request: {0}")]
    Server(String),
    /// A reply that does not answer this kind of request.
    #[error("unexpected reply {reply:?} to {request}")]
    Unexpected {
        /// The reply.
        reply: Reply,
        /// The request's command.
        request: &'static str,
    },
}

/// The outcome of a `cas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// Stored: the item had not changed.
    Stored,
    /// Not stored: the item changed since it was read.
    Exists,
    /// Not stored: the item is gone.
    NotFound,
}

/// A memcached client over `io`.
#[derive(Debug)]
pub struct MemcacheClient<T> {
    io: T,
    codec: ClientCodec,
    reader: StreamReader,
    out: Vec<u8>,
    lost: Option<EndKind>,
}

impl MemcacheClient<concurrence_smol::Socket> {
    /// Connects to a server at `address` (TCP or Unix) on the smol backend; `timeout` bounds
    /// the connect and every later read and write.
    ///
    /// # Errors
    /// The connect failed or timed out: [`ClientError::ConnectionLost`] with
    /// `ConnectRefused`, `ConnectTimedOut` or `Io`.
    pub async fn connect(
        address: &Address,
        timeout: Option<Duration>,
    ) -> Result<Self, ClientError> {
        let mut socket = concurrence_smol::Socket::connect(address, timeout)
            .await
            .map_err(|error| ClientError::ConnectionLost {
                kind: match error.io_kind() {
                    Some(io::ErrorKind::TimedOut) => EndKind::ConnectTimedOut,
                    Some(io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound) => {
                        EndKind::ConnectRefused
                    }
                    _ => EndKind::Io,
                },
                in_flight: 0,
            })?;
        socket.set_timeouts(timeout, timeout);
        Ok(MemcacheClient::new(socket))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> MemcacheClient<T> {
    /// A client over an open connection.
    pub fn new(io: T) -> Self {
        MemcacheClient {
            io,
            codec: ClientCodec::new(),
            // Replies hold values up to memcached's largest item (1 MiB by default, -I up to
            // 1 GiB); 128 MiB bounds a reply this client accepts.
            reader: StreamReader::new(ReaderConfig::default().with_max_block(128 * 1024 * 1024)),
            out: Vec::new(),
            lost: None,
        }
    }

    /// Requests sent (or queued) whose replies have not been received.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.codec.in_flight()
    }

    /// Queues `request`; it is sent with the next [`flush`](Self::flush) or
    /// [`receive`](Self::receive). Replies come back in order.
    ///
    /// # Errors
    /// An invalid key, or the connection is already lost.
    pub fn send(&mut self, request: &Request<'_>) -> Result<(), ClientError> {
        self.check_alive()?;
        self.codec.encode(request, &mut self.out)?;
        Ok(())
    }

    /// Sends every queued request.
    ///
    /// # Errors
    /// The connection was lost or timed out.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.check_alive()?;
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.io.write_all(&self.out).await;
        let flushed = match written {
            Ok(()) => self.io.flush().await,
            Err(error) => Err(error),
        };
        self.out.clear();
        flushed.map_err(|error| self.lose(&error))
    }

    /// The reply to the oldest request in flight (flushing queued requests first).
    ///
    /// # Errors
    /// The connection was lost or timed out, or the reply broke the protocol.
    pub async fn receive(&mut self) -> Result<Reply, ClientError> {
        self.flush().await?;
        loop {
            if let Some(reply) = self.codec.decode(&mut self.reader)? {
                return Ok(reply);
            }
            if self.reader.is_closed() {
                return Err(self.lost_with(EndKind::PeerClosed));
            }
            let spare = self.reader.spare();
            match self.io.read(spare).await {
                Ok(0) => self.reader.close(),
                Ok(n) => self.reader.filled(n),
                Err(error) => return Err(self.lose(&error)),
            }
        }
    }

    /// Sends all `requests` at once (one write) and returns their replies in order.
    ///
    /// # Errors
    /// As [`send`](Self::send) and [`receive`](Self::receive).
    pub async fn pipeline(&mut self, requests: &[Request<'_>]) -> Result<Vec<Reply>, ClientError> {
        for request in requests {
            self.send(request)?;
        }
        let mut replies = Vec::with_capacity(requests.len());
        for _ in requests {
            replies.push(self.receive().await?);
        }
        Ok(replies)
    }

    /// `get`: the value of `key`, if stored.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Value>, ClientError> {
        Ok(self.get_many(&[key]).await?.pop())
    }

    /// `gets` of many keys in one request: the values found (with CAS uniques), in key order.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn get_many(&mut self, keys: &[&[u8]]) -> Result<Vec<Value>, ClientError> {
        match self
            .call(&Request::Get {
                keys,
                with_cas: true,
            })
            .await?
        {
            Reply::Values(values) => Ok(values),
            reply => Err(unexpected(reply, "get")),
        }
    }

    /// `set`: stores `data` under `key`.
    ///
    /// # Errors
    /// See [`ClientError`] (a value over the server's item limit is a `Server` error).
    pub async fn set(
        &mut self,
        key: &[u8],
        data: &[u8],
        flags: u32,
        exptime: i64,
    ) -> Result<(), ClientError> {
        match self
            .store(StoreMode::Set, key, data, flags, exptime)
            .await?
        {
            Reply::Stored => Ok(()),
            reply => Err(unexpected(reply, "set")),
        }
    }

    /// `add`: stores only if `key` holds nothing; true if stored.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn add(
        &mut self,
        key: &[u8],
        data: &[u8],
        flags: u32,
        exptime: i64,
    ) -> Result<bool, ClientError> {
        stored(
            self.store(StoreMode::Add, key, data, flags, exptime)
                .await?,
            "add",
        )
    }

    /// `replace`: stores only if `key` holds something; true if stored.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn replace(
        &mut self,
        key: &[u8],
        data: &[u8],
        flags: u32,
        exptime: i64,
    ) -> Result<bool, ClientError> {
        stored(
            self.store(StoreMode::Replace, key, data, flags, exptime)
                .await?,
            "replace",
        )
    }

    /// `cas`: stores only if the item's unique is still `unique`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn cas(
        &mut self,
        key: &[u8],
        data: &[u8],
        flags: u32,
        exptime: i64,
        unique: u64,
    ) -> Result<CasOutcome, ClientError> {
        match self
            .store(StoreMode::Cas(unique), key, data, flags, exptime)
            .await?
        {
            Reply::Stored => Ok(CasOutcome::Stored),
            Reply::Exists => Ok(CasOutcome::Exists),
            Reply::NotFound => Ok(CasOutcome::NotFound),
            reply => Err(unexpected(reply, "cas")),
        }
    }

    /// `delete`: true if the key held an item.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn delete(&mut self, key: &[u8]) -> Result<bool, ClientError> {
        match self.call(&Request::Delete { key }).await? {
            Reply::Deleted => Ok(true),
            Reply::NotFound => Ok(false),
            reply => Err(unexpected(reply, "delete")),
        }
    }

    /// `incr`: the new value, or `None` if the key holds nothing.
    ///
    /// # Errors
    /// See [`ClientError`] (a non-numeric value is a `Server` error).
    pub async fn incr(&mut self, key: &[u8], delta: u64) -> Result<Option<u64>, ClientError> {
        self.arithmetic(true, key, delta).await
    }

    /// `decr` (stops at 0): the new value, or `None` if the key holds nothing.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn decr(&mut self, key: &[u8], delta: u64) -> Result<Option<u64>, ClientError> {
        self.arithmetic(false, key, delta).await
    }

    /// `touch`: sets a new expiry; true if the key held an item.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn touch(&mut self, key: &[u8], exptime: i64) -> Result<bool, ClientError> {
        match self.call(&Request::Touch { key, exptime }).await? {
            Reply::Touched => Ok(true),
            Reply::NotFound => Ok(false),
            reply => Err(unexpected(reply, "touch")),
        }
    }

    /// `version`: the server's version text.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn version(&mut self) -> Result<String, ClientError> {
        match self.call(&Request::Version).await? {
            Reply::Version(version) => Ok(version),
            reply => Err(unexpected(reply, "version")),
        }
    }

    /// `flush_all`: invalidates every item.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn flush_all(&mut self) -> Result<(), ClientError> {
        match self.call(&Request::FlushAll).await? {
            Reply::Ok => Ok(()),
            reply => Err(unexpected(reply, "flush_all")),
        }
    }

    /// A meta command (`mg`, `ms`, `md`, `ma`, `me`, `mn`) with its flags as the protocol
    /// writes them: `client.meta(MetaVerb::Get, b"k", &[b"v", b"t", b"c"], b"")` sends
    /// `mg k v t c` and returns the code, the returned flags and the value.
    ///
    /// # Errors
    /// See [`ClientError`]; a `q` flag is refused (use [`meta_get_many`](Self::meta_get_many)).
    pub async fn meta(
        &mut self,
        command: MetaVerb,
        key: &[u8],
        flags: &[&[u8]],
        data: &[u8],
    ) -> Result<MetaReply, ClientError> {
        match self
            .call(&Request::Meta {
                command,
                key,
                flags,
                data,
            })
            .await?
        {
            Reply::Meta(reply) => Ok(reply),
            reply => Err(unexpected(reply, "meta command")),
        }
    }

    /// Many keys read in one pipeline of quiet meta gets ended by `mn`: the hits, each with its
    /// key (`k`), flags (`f`), CAS (`c`) and value, in key order.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn meta_get_many(&mut self, keys: &[&[u8]]) -> Result<Vec<MetaReply>, ClientError> {
        match self.call(&Request::MetaGetMany { keys }).await? {
            Reply::MetaBatch(hits) => Ok(hits),
            reply => Err(unexpected(reply, "meta get batch")),
        }
    }

    async fn arithmetic(
        &mut self,
        incr: bool,
        key: &[u8],
        delta: u64,
    ) -> Result<Option<u64>, ClientError> {
        match self.call(&Request::Arithmetic { incr, key, delta }).await? {
            Reply::Number(value) => Ok(Some(value)),
            Reply::NotFound => Ok(None),
            reply => Err(unexpected(reply, if incr { "incr" } else { "decr" })),
        }
    }

    async fn store(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        data: &[u8],
        flags: u32,
        exptime: i64,
    ) -> Result<Reply, ClientError> {
        self.call(&Request::Store {
            mode,
            key,
            flags,
            exptime,
            data,
        })
        .await
    }

    /// One request and its reply; an error reply becomes [`ClientError::Server`].
    async fn call(&mut self, request: &Request<'_>) -> Result<Reply, ClientError> {
        self.send(request)?;
        match self.receive().await? {
            Reply::Error(line) => Err(ClientError::Server(line)),
            reply => Ok(reply),
        }
    }

    fn check_alive(&self) -> Result<(), ClientError> {
        match self.lost {
            Some(kind) => Err(ClientError::ConnectionLost {
                kind,
                in_flight: self.codec.in_flight(),
            }),
            None => Ok(()),
        }
    }

    fn lost_with(&mut self, kind: EndKind) -> ClientError {
        self.lost = Some(kind);
        ClientError::ConnectionLost {
            kind,
            in_flight: self.codec.in_flight(),
        }
    }

    fn lose(&mut self, error: &io::Error) -> ClientError {
        match error.kind() {
            io::ErrorKind::TimedOut => {
                self.lost = Some(EndKind::IdleTimeout);
                ClientError::TimedOut {
                    in_flight: self.codec.in_flight(),
                }
            }
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => self.lost_with(EndKind::Reset),
            io::ErrorKind::UnexpectedEof => self.lost_with(EndKind::PeerClosed),
            _ => self.lost_with(EndKind::Io),
        }
    }
}

fn unexpected(reply: Reply, request: &'static str) -> ClientError {
    match reply {
        Reply::Error(line) => ClientError::Server(line),
        reply => ClientError::Unexpected { reply, request },
    }
}

fn stored(reply: Reply, request: &'static str) -> Result<bool, ClientError> {
    match reply {
        Reply::Stored => Ok(true),
        Reply::NotStored => Ok(false),
        reply => Err(unexpected(reply, request)),
    }
}
