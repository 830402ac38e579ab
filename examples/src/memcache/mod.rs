//! A memcached-compatible server and client, written once over concurrence's core.
//!
//! The server is one [`MemcacheSession`] per connection over a shared [`Store`]; the polling
//! loop, the smol backend and the simulator all serve it unchanged (see `docs/memcache.md`).
//! The client speaks the same protocol through [`ClientCodec`], sans-IO, with an async
//! front-end ([`MemcacheClient`]) for any `AsyncRead + AsyncWrite` stream.

pub mod client;
mod client_codec;
pub mod command;
pub mod differential;
pub mod meta;
mod meta_reply;
pub mod number;
pub mod reply_framing;
mod server_session;
pub mod sim_history;
pub mod sim_load;
pub mod slabs;
pub mod stats;
pub mod store;
pub mod store_shards;

pub use client::{ClientError, MemcacheClient};
pub use client_codec::{
    ClientCodec, MetaCode, MetaReply, MetaVerb, Reply, ReplyError, Request, Value,
};
pub use server_session::{MAX_COMMAND_LINE, MemcacheSession, Shared, ShutdownHook};
pub use store::{Store, StoreConfig};
