//! The async memcache client, with the same test code against Debian's memcached and against
//! our server on both backends; and how it reports a connection that dies under it.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use common::Server;
use concurrence_core::{Address, EndKind};
use concurrence_examples::memcache::client::CasOutcome;
use concurrence_examples::memcache::command::StoreMode;
use concurrence_examples::memcache::{
    ClientError, MemcacheClient, MetaCode, MetaVerb, Reply, Request,
};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

async fn connect(server: &Server) -> MemcacheClient<concurrence_smol::Socket> {
    MemcacheClient::connect(&Address::Tcp(server.address()), TIMEOUT)
        .await
        .expect("connect")
}

/// Everything the client offers, against one server.
async fn exercise(server: &Server) -> Result<(), ClientError> {
    let name = server.name();
    let mut client = connect(server).await;
    client.flush_all().await?;
    assert!(client.version().await?.starts_with("1.6"), "{name}");
    assert_eq!(client.get(b"missing").await?, None, "{name}");

    client.set(b"k", b"value\r\nwith CRLF", 42, 0).await?;
    let value = client.get(b"k").await?.expect("stored");
    assert_eq!(value.data, b"value\r\nwith CRLF", "{name}");
    assert_eq!(value.flags, 42, "{name}");
    let unique = value.cas.expect("gets returns a unique");

    assert!(
        !client.add(b"k", b"x", 0, 0).await?,
        "{name}: add over an item"
    );
    assert!(client.add(b"fresh", b"x", 0, 0).await?, "{name}");
    assert!(client.replace(b"fresh", b"y", 0, 0).await?, "{name}");
    assert!(!client.replace(b"nothing", b"y", 0, 0).await?, "{name}");

    assert_eq!(
        client.cas(b"k", b"new", 1, 0, unique).await?,
        CasOutcome::Stored,
        "{name}"
    );
    assert_eq!(
        client.cas(b"k", b"newer", 1, 0, unique).await?,
        CasOutcome::Exists,
        "{name}"
    );
    assert_eq!(
        client.cas(b"gone", b"x", 0, 0, 1).await?,
        CasOutcome::NotFound,
        "{name}"
    );

    client.set(b"n", b"10", 0, 0).await?;
    assert_eq!(client.incr(b"n", 5).await?, Some(15), "{name}");
    assert_eq!(client.decr(b"n", 100).await?, Some(0), "{name}");
    assert_eq!(client.incr(b"nothing", 1).await?, None, "{name}");
    assert!(
        matches!(client.incr(b"k", 1).await, Err(ClientError::Server(line)) if line.starts_with("CLIENT_ERROR")),
        "{name}"
    );

    assert!(client.touch(b"n", 100).await?, "{name}");
    assert!(!client.touch(b"nothing", 100).await?, "{name}");
    assert!(client.delete(b"n").await?, "{name}");
    assert!(!client.delete(b"n").await?, "{name}");

    let many = client.get_many(&[b"k", b"nothing", b"fresh"]).await?;
    let keys: Vec<&[u8]> = many.iter().map(|v| v.key.as_slice()).collect();
    assert_eq!(keys, [b"k".as_slice(), b"fresh"], "{name}");

    // The meta protocol: set with flags and TTL, get with return flags, arithmetic,
    // delete, a quiet batch, the no-op and the debug line.
    let set = client
        .meta(
            MetaVerb::Set,
            b"m",
            &[b"F9", b"T100", b"c"],
            b"meta\r\nvalue",
        )
        .await?;
    assert_eq!(set.code, MetaCode::Done, "{name}");
    let cas = set.number(b'c').expect("ms c returns the CAS");
    let got = client
        .meta(
            MetaVerb::Get,
            b"m",
            &[b"v", b"f", b"t", b"c", b"k", b"Oxyz"],
            b"",
        )
        .await?;
    assert_eq!(got.code, MetaCode::Value, "{name}");
    assert_eq!(got.value.as_deref(), Some(&b"meta\r\nvalue"[..]), "{name}");
    assert_eq!(got.number(b'f'), Some(9), "{name}");
    assert!(
        matches!(got.number(b't'), Some(99 | 100)),
        "{name}: {got:?}"
    );
    assert_eq!(got.number(b'c'), Some(cas), "{name}");
    assert_eq!(got.flag(b'k'), Some(&b"m"[..]), "{name}");
    assert_eq!(got.flag(b'O'), Some(&b"xyz"[..]), "{name}");
    let wrong = format!("C{}", cas + 1).into_bytes();
    let stale = client
        .meta(MetaVerb::Set, b"m", &[&wrong], b"other")
        .await?;
    assert_eq!(stale.code, MetaCode::Exists, "{name}: a wrong CAS");
    let counter = client
        .meta(
            MetaVerb::Arithmetic,
            b"mc",
            &[b"N0", b"J10", b"D5", b"v"],
            b"",
        )
        .await?;
    assert_eq!(
        counter.value.as_deref(),
        Some(&b"10"[..]),
        "{name}: created at J"
    );
    let counter = client
        .meta(MetaVerb::Arithmetic, b"mc", &[b"D5", b"v"], b"")
        .await?;
    assert_eq!(counter.value.as_deref(), Some(&b"15"[..]), "{name}");
    let hits = client.meta_get_many(&[b"m", b"nothing", b"mc"]).await?;
    let keys: Vec<&[u8]> = hits.iter().filter_map(|h| h.flag(b'k')).collect();
    assert_eq!(keys, [b"m".as_slice(), b"mc"], "{name}: only the hits");
    let debug = client.meta(MetaVerb::Debug, b"m", &[], b"").await?;
    assert_eq!(debug.code, MetaCode::Debug, "{name}");
    assert!(
        debug.flags.iter().any(|(_, w)| w == b"fetch=yes"),
        "{name}: {debug:?}"
    );
    assert_eq!(
        client.meta(MetaVerb::Delete, b"m", &[], b"").await?.code,
        MetaCode::Done,
        "{name}"
    );
    assert_eq!(
        client.meta(MetaVerb::Get, b"m", &[b"v"], b"").await?.code,
        MetaCode::Miss,
        "{name}"
    );
    assert_eq!(
        client.meta(MetaVerb::Noop, b"", &[], b"").await?.code,
        MetaCode::Noop,
        "{name}"
    );
    assert!(
        matches!(
            client.meta(MetaVerb::Get, b"m", &[b"q"], b"").await,
            Err(ClientError::Protocol(_))
        ),
        "{name}: quiet needs a batch"
    );

    // Pipelining: 100 requests in one write, replies in order.
    let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("p{i}").into_bytes()).collect();
    let mut requests = Vec::new();
    for key in &keys {
        requests.push(Request::Store {
            mode: StoreMode::Set,
            key,
            flags: 0,
            exptime: 0,
            data: key,
        });
    }
    let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let singles: Vec<[&[u8]; 1]> = key_refs.iter().map(|k| [*k]).collect();
    for single in &singles {
        requests.push(Request::Get {
            keys: single,
            with_cas: false,
        });
    }
    let replies = client.pipeline(&requests).await?;
    assert_eq!(replies.len(), 100);
    assert!(replies[..50].iter().all(|r| *r == Reply::Stored), "{name}");
    for (reply, key) in replies[50..].iter().zip(&keys) {
        let Reply::Values(values) = reply else {
            panic!("{name}: {reply:?}");
        };
        assert_eq!(values.len(), 1);
        assert_eq!(&values[0].data, key, "{name}");
    }

    // A value over the server's item limit is the server's typed refusal, and the
    // connection stays usable.
    let huge = vec![b'z'; 2 * 1024 * 1024];
    assert!(
        matches!(client.set(b"huge", &huge, 0, 0).await, Err(ClientError::Server(line)) if line.starts_with("SERVER_ERROR")),
        "{name}"
    );
    assert_eq!(
        client.get(b"fresh").await?.map(|v| v.data),
        Some(b"y".to_vec()),
        "{name}"
    );

    // Keys the protocol cannot carry are refused before anything is sent.
    assert!(matches!(
        client.get(b"has space").await,
        Err(ClientError::Protocol(_))
    ));
    assert!(matches!(
        client.set(&[b'k'; 251], b"x", 0, 0).await,
        Err(ClientError::Protocol(_))
    ));
    assert_eq!(client.in_flight(), 0);
    Ok(())
}

#[test]
fn the_client_works_against_memcached_and_our_server_alike() {
    for server in common::all_servers() {
        smol::block_on(exercise(&server)).unwrap_or_else(|e| panic!("{}: {e}", server.name()));
    }
}

/// A listener that accepts one connection, reads the requests, and ends it as told.
fn dying_server(reset: bool) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = [0u8; 64];
        let _ = stream.read(&mut request).expect("read a request");
        if reset {
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .expect("linger 0");
        }
        drop(stream);
    });
    (address, thread)
}

#[test]
fn a_connection_closed_with_requests_in_flight_is_a_typed_error() {
    for (reset, kind) in [(false, EndKind::PeerClosed), (true, EndKind::Reset)] {
        let (address, server) = dying_server(reset);
        smol::block_on(async {
            let mut client = MemcacheClient::connect(&Address::Tcp(address), TIMEOUT)
                .await
                .expect("connect");
            client.send(&Request::Version).expect("queue");
            client.send(&Request::Version).expect("queue");
            client.send(&Request::FlushAll).expect("queue");
            match client.receive().await {
                Err(ClientError::ConnectionLost {
                    kind: got,
                    in_flight,
                }) => {
                    assert_eq!(got, kind);
                    assert_eq!(in_flight, 3);
                }
                other => panic!("expected a lost connection, got {other:?}"),
            }
            // The client stays failed: a later call says so at once.
            assert!(matches!(
                client.version().await,
                Err(ClientError::ConnectionLost { kind: got, .. }) if got == kind
            ));
        });
        server.join().expect("server thread");
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    smol::block_on(async {
        let mut client =
            MemcacheClient::connect(&Address::Tcp(address), Some(Duration::from_millis(200)))
                .await
                .expect("connect (the backlog accepts it)");
        match client.get(b"k").await {
            Err(ClientError::TimedOut { in_flight: 1 }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
    });
    drop(listener);
}

#[test]
fn connecting_to_nobody_is_refused() {
    let address = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address")
    };
    let result = smol::block_on(MemcacheClient::connect(&Address::Tcp(address), TIMEOUT));
    assert!(matches!(
        result,
        Err(ClientError::ConnectionLost {
            kind: EndKind::ConnectRefused,
            in_flight: 0
        })
    ));
}
