//! The server's protocol tests: exact request/reply transcripts, taken from Debian's
//! memcached 1.6, run over loopback against our server on both backends and against the real
//! memcached (when installed; CI installs it), with the same expectations.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Server;

/// (what the client sends, what the server must answer).
fn transcripts() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let long_key = "k".repeat(251);
    let key_250 = "k".repeat(250);
    let mut big = b"set big 0 0 2000000\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'0', 2_000_000));
    big.extend_from_slice(b"\r\nget big\r\n");
    let text = |s: &str| s.as_bytes().to_vec();
    let mut at_limit = b"set big2 0 0 1\r\nx\r\nset big2 0 0 1100000\r\n".to_vec();
    at_limit.extend(std::iter::repeat_n(b'z', 1_100_000));
    at_limit.extend_from_slice(b"\r\nget big2\r\nset ap 0 0 1048000\r\n");
    at_limit.extend(std::iter::repeat_n(b'a', 1_048_000));
    at_limit.extend_from_slice(b"\r\nappend ap 0 0 1000\r\n");
    at_limit.extend(std::iter::repeat_n(b'b', 1000));
    at_limit.extend_from_slice(b"\r\nmg ap s\r\n");
    vec![
        (
            "found by the differential tester: a set too large removes the old value; an append past the item limit is NOT_STORED",
            at_limit,
            text("STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\nSTORED\r\nNOT_STORED\r\nHD s1048000\r\n"),
        ),
        (
            "set and get",
            text("set a 0 0 1\r\nx\r\nget a\r\n"),
            text("STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"),
        ),
        (
            "incr and decr, padding, wrap-around, bad delta, non-numeric value",
            text("set b 0 0 3\r\n100\r\ndecr b 1\r\nget b\r\nincr b 5\r\nget b\r\nincr b 18446744073709551615\r\nincr b x\r\nincr a 1\r\nincr nokey 1\r\n"),
            text("STORED\r\n99\r\nVALUE b 0 3\r\n99 \r\nEND\r\n104\r\nVALUE b 0 3\r\n104\r\nEND\r\n103\r\nCLIENT_ERROR invalid numeric delta argument\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nNOT_FOUND\r\n"),
        ),
        (
            "incr grows a value, decr stops at zero",
            text("set g 0 0 2\r\n99\r\nincr g 1\r\nget g\r\ndecr g 1000\r\nget g\r\n"),
            text("STORED\r\n100\r\nVALUE g 0 3\r\n100\r\nEND\r\n0\r\nVALUE g 0 3\r\n0  \r\nEND\r\n"),
        ),
        (
            "unknown commands and malformed storage lines",
            text("\r\nfoo\r\nset\r\nset k 0 0\r\nset k 0 0 -1\r\nset k x 0 1\r\n"),
            text("ERROR\r\nERROR\r\nERROR\r\nERROR\r\nCLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n"),
        ),
        (
            "a data block without its CRLF",
            text("set k 0 0 1\r\nx\r\nset k 0 0 2\r\nabc\r\nget k\r\n"),
            text("STORED\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nVALUE k 0 1\r\nx\r\nEND\r\n"),
        ),
        (
            "commands ended by a bare LF",
            text("set lf 0 0 1\nx\r\nget lf\nget  lf   nokey\r\n"),
            text("STORED\r\nVALUE lf 0 1\r\nx\r\nEND\r\nVALUE lf 0 1\r\nx\r\nEND\r\n"),
        ),
        (
            "delete and its legacy zero",
            text("set d 0 0 1\r\nx\r\ndelete d 0\r\ndelete d 1\r\ndelete d noreply\r\nget d\r\ndelete d\r\n"),
            text("STORED\r\nDELETED\r\nCLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nEND\r\nNOT_FOUND\r\n"),
        ),
        (
            "touch, verbosity, a bad flush delay",
            text("set t 0 0 1\r\nx\r\ntouch t 10\r\ntouch zz 1\r\nverbosity 1\r\nverbosity\r\nflush_all x\r\n"),
            text("STORED\r\nTOUCHED\r\nNOT_FOUND\r\nOK\r\nERROR\r\nCLIENT_ERROR invalid exptime argument\r\n"),
        ),
        (
            "key length limit",
            format!("get {long_key}\r\nset {long_key} 0 0 1\r\nx\r\nset {key_250} 0 0 1\r\ny\r\nget {key_250}\r\n").into_bytes(),
            format!("CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\nERROR\r\nSTORED\r\nVALUE {key_250} 0 1\r\ny\r\nEND\r\n").into_bytes(),
        ),
        (
            "cas refusals",
            text("set c 0 0 1\r\na\r\ncas c 0 0 1 999999\r\nz\r\ncas nokey 0 0 1 1\r\nz\r\ncas c 0 0 1\r\nz\r\nget c\r\n"),
            text("STORED\r\nEXISTS\r\nNOT_FOUND\r\nERROR\r\nERROR\r\nVALUE c 0 1\r\na\r\nEND\r\n"),
        ),
        (
            "expiry in the past, add, replace, append, prepend, gat",
            text("set e 0 -1 1\r\nx\r\nget e\r\nadd e 0 0 1\r\ny\r\nget e\r\nadd e 0 0 1\r\nz\r\nreplace q 0 0 1\r\nz\r\nappend q 0 0 1\r\nz\r\nappend e 5 5 2\r\nzz\r\nprepend e 0 0 1\r\na\r\nget e\r\ngat 100 e\r\ngat e\r\n"),
            text("STORED\r\nEND\r\nSTORED\r\nVALUE e 0 1\r\ny\r\nEND\r\nNOT_STORED\r\nNOT_STORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\nVALUE e 0 4\r\nayzz\r\nEND\r\nVALUE e 0 4\r\nayzz\r\nEND\r\nCLIENT_ERROR invalid exptime argument\r\n"),
        ),
        (
            "relative and absolute expiry times",
            text("set tn 0 0 1\r\nx\r\ntouch tn -1\r\nget tn\r\nset ab 0 1000000000 1\r\nx\r\nget ab\r\nset af 0 2000000000 1\r\nx\r\nget af\r\nset ag 0 2592000 1\r\nx\r\nget ag\r\nset ah 0 2592001 1\r\nx\r\nget ah\r\nset tl 0 0 1\r\nx\r\ngat -1 tl\r\nget tl\r\n"),
            text("STORED\r\nTOUCHED\r\nEND\r\nSTORED\r\nEND\r\nSTORED\r\nVALUE af 0 1\r\nx\r\nEND\r\nSTORED\r\nVALUE ag 0 1\r\nx\r\nEND\r\nSTORED\r\nEND\r\nSTORED\r\nVALUE tl 0 1\r\nx\r\nEND\r\nEND\r\n"),
        ),
        (
            "noreply silences replies and errors",
            text("set n 0 0 2 noreply\r\n10\r\nincr n 1 noreply\r\nget n\r\nset n 0 0 1 noreply\r\nabc\r\nset n x 0 1 noreply\r\nx\r\n"),
            text("VALUE n 0 2\r\n11\r\nEND\r\nERROR\r\nERROR\r\n"),
        ),
        (
            "an item over the size limit is refused and its data discarded",
            big,
            text("SERVER_ERROR object too large for cache\r\nEND\r\n"),
        ),
        (
            "stats groups",
            text("stats foo\r\nstats reset\r\n"),
            text("ERROR\r\nRESET\r\n"),
        ),
        (
            "flush_all",
            text("set f 0 0 1\r\nx\r\nflush_all\r\nget f\r\nflush_all noreply\r\n"),
            text("STORED\r\nOK\r\nEND\r\n"),
        ),
        (
            "the meta no-op, stats noreply and unknown groups, cache_memlimit, stats detail, stats sizes, shutdown",
            text("mn\r\nmn foo\r\nstats noreply\r\nstats foo\r\ncache_memlimit 100\r\ncache_memlimit 100 noreply\r\ncache_memlimit\r\nstats detail on\r\nstats detail dump\r\nstats detail off\r\nstats detail\r\nstats sizes\r\nshutdown\r\nshutdown graceful\r\n"),
            text("MN\r\nMN\r\nERROR\r\nERROR\r\nOK\r\nERROR\r\nOK\r\nEND\r\nOK\r\nCLIENT_ERROR usage: stats detail on|off|dump\r\nSTAT sizes_status disabled\r\nEND\r\nERROR: shutdown not enabled\r\nERROR: shutdown not enabled\r\n"),
        ),
        (
            "meta get, set, delete and arithmetic with their return flags, in request order",
            text("ms m1 2 T100 F5 k Oxx\r\nhi\r\nmg m1 v t f s k h Oabc\r\nmg m1 h l\r\nmg nope k O1\r\nmg nope q\r\nmn\r\nma cnt N0 J5 v\r\nma cnt v D10 MD\r\nma cnt q\r\nma cnt v\r\nmd m1 q\r\nmg m1\r\nmd m1\r\nme nope\r\n"),
            text("HD km1 Oxx\r\nVA 2 t100 f5 s2 km1 h0 Oabc\r\nhi\r\nHD h1 l0\r\nEN knope O1\r\nMN\r\nVA 1\r\n5\r\nVA 1\r\n0\r\nVA 1\r\n2\r\nEN\r\nNF\r\nEN\r\n"),
        ),
        (
            "meta stale items and the recache win (md I, ms I with an older CAS, mg N and R)",
            text("ms st 1 T100\r\nx\r\nmd st I T30\r\nmg st v t\r\nmg st v\r\nms st 1 I C1\r\ny\r\nmg st v t\r\nmg new N30 v t\r\nmg new v t\r\nmg new s R100\r\n"),
            text("HD\r\nHD\r\nVA 1 t30 X W\r\nx\r\nVA 1 Z X\r\nx\r\nHD\r\nVA 1 t30 Z X\r\ny\r\nVA 0 t30 W\r\n\r\nVA 0 t30 Z\r\n\r\nHD s0 Z\r\n"),
        ),
        (
            "meta errors: duplicate, unknown and malformed flags, modes, opaque length, too many flags; a refused ms swallows its block",
            text("mg\r\nmg k v v\r\nmg k !\r\nmg k Tx\r\nmd k Tx\r\nma k Mx\r\nms k\r\nms k 1 Mx\r\nx\r\nmg k O123456789012345678901234567890123\r\nms k x\r\nms k 1 MR q\r\nx\r\nms k 1 ME q\r\nx\r\nms k 1 ME\r\nx\r\nmg a b c d e f g h i j k l m n o p q r s\r\n"),
            text("ERROR\r\nCLIENT_ERROR duplicate flag\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR bad token in command line format\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid mode for ma M token\r\nCLIENT_ERROR bad command line format\r\nCLIENT_ERROR invalid mode for ms M token\r\nCLIENT_ERROR opaque token too long\r\nCLIENT_ERROR bad command line format\r\nNS\r\nNS\r\nCLIENT_ERROR options flags are too long\r\n"),
        ),
        (
            "found by the differential tester: control bytes in keys, numbers read as C reads them, a NUL ends the line, bget, cache_memlimit's answers, a base64 key",
            b"set d\tk 0 0 1\r\nx\r\nget d\tk\r\nset n 4294967296 +5 4294967297\r\ny\r\nget n\r\ndecr n -0\r\nget a\0b\r\nbget d\tk\r\ncache_memlimit 100\r\ncache_memlimit 7\r\ncache_memlimit x\r\nmg ZFx0aw== b v k\r\n".to_vec(),
            text("STORED\r\nVALUE d\tk 0 1\r\nx\r\nEND\r\nSTORED\r\nVALUE n 0 1\r\ny\r\nEND\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nEND\r\nVALUE d\tk 0 1\r\nx\r\nEND\r\nOK\r\nMEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\nERROR\r\nEN kZFx0aw== b\r\n"),
        ),
        (
            "found by the differential tester: a value grown by ma and ms appended with a base64 key show their keys plainly; a quiet ma still reports a bad opaque",
            text("ms YjE= 1 b\r\n1\r\nmg b1 k\r\nma b1 D99\r\nmg b1 k v\r\nms YjI= 1 b\r\nx\r\nms YjI= 1 b MA k\r\ny\r\nmg b2 k v\r\nma b1 q O123456789012345678901234567890123\r\n"),
            text("HD\r\nHD kYjE= b\r\nHD\r\nVA 3 kb1\r\n100\r\nHD\r\nHD kYjI= b\r\nVA 2 kb2\r\nxy\r\nCLIENT_ERROR opaque token too long\r\n"),
        ),
    ]
}

/// Sends `request`, then `version` as a marker; the reply is everything before the marker's
/// answer, so extra bytes would show.
fn exchange(server: &Server, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.address()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    stream.write_all(b"version\r\n").expect("send the marker");
    let mut received = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(at) = find_version_line(&received) {
            received.truncate(at);
            return received;
        }
        let n = stream.read(&mut chunk).expect("a reply before the timeout");
        assert!(
            n > 0,
            "{}: connection closed early; got {:?}",
            server.name(),
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&chunk[..n]);
    }
}

fn find_version_line(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < bytes.len() {
        let end = bytes[at..].windows(2).position(|w| w == b"\r\n")? + at;
        if bytes[at..end].starts_with(b"VERSION ") {
            return Some(at);
        }
        at = end + 2;
    }
    None
}

fn run_transcripts(server: &Server) {
    for (name, request, expected) in transcripts() {
        let got = exchange(server, &request);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{}: transcript {name:?}",
            server.name()
        );
    }
}

#[test]
fn transcripts_match_memcached_on_every_server() {
    for server in common::all_servers() {
        run_transcripts(&server);
    }
}

#[test]
fn version_and_quit_ignore_extra_tokens_as_memcached_does() {
    // Client test tools send `version foo bar` to resynchronise after a `noreply` command.
    for server in common::all_servers() {
        let mut stream = TcpStream::connect(server.address()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
            .write_all(
                b"set v 0 0 1 noreply\r\nx\r\nversion foo bar\r\nquit now please\r\nget v\r\n",
            )
            .expect("send");
        let mut all = Vec::new();
        stream.read_to_end(&mut all).expect("read to the close");
        let text = String::from_utf8_lossy(&all);
        assert!(
            text.starts_with("VERSION ") && text.ends_with("\r\n") && text.lines().count() == 1,
            "{}: {text:?}",
            server.name()
        );
    }
}

#[test]
fn quit_answers_what_came_before_then_closes() {
    for server in common::all_servers() {
        let mut stream = TcpStream::connect(server.address()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
            .write_all(b"set q 0 0 1\r\nx\r\nquit\r\nget q\r\n")
            .expect("send");
        let mut all = Vec::new();
        stream.read_to_end(&mut all).expect("read to the close");
        assert_eq!(all, b"STORED\r\n", "{}", server.name());
    }
}

#[test]
fn replies_are_the_same_whatever_the_split() {
    // One byte at a time, with the peer reading as it goes: every split point of a
    // pipelined transcript gives the same replies.
    let server = common::polling();
    let request =
        b"set s 1 0 5\r\nhello\r\nget s\r\nappend s 0 0 1\r\n!\r\ngets s nokey\r\ndelete s\r\n";
    let mut stream = TcpStream::connect(server.address()).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for byte in request {
        stream.write_all(&[*byte]).expect("send a byte");
    }
    stream.write_all(b"version\r\n").expect("marker");
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while find_version_line(&received).is_none() {
        let n = stream.read(&mut chunk).expect("reply");
        assert!(n > 0, "closed early");
        received.extend_from_slice(&chunk[..n]);
    }
    let at = find_version_line(&received).expect("marker");
    let text = String::from_utf8_lossy(&received[..at]).into_owned();
    let expected_prefix = "STORED\r\nVALUE s 1 5\r\nhello\r\nEND\r\nSTORED\r\nVALUE s 1 6 ";
    assert!(text.starts_with(expected_prefix), "got {text:?}");
    assert!(
        text.ends_with("\r\nhello!\r\nEND\r\nDELETED\r\n"),
        "got {text:?}"
    );
}

#[test]
fn stats_reports_what_monitoring_tools_read() {
    for server in [common::polling(), common::smol()] {
        let reply = exchange(
            &server,
            b"set s1 0 0 3\r\nabc\r\nget s1\r\nget nokey\r\nstats\r\n",
        );
        let text = String::from_utf8_lossy(&reply);
        for stat in [
            "STAT curr_items 1\r\n",
            "STAT total_items 1\r\n",
            "STAT get_hits 1\r\n",
            "STAT get_misses 1\r\n",
            "STAT cmd_get 2\r\n",
            "STAT cmd_set 1\r\n",
            "STAT curr_connections 1\r\n",
            "STAT evictions 0\r\n",
            "STAT limit_maxbytes 67108864\r\n",
            // memcached 1.6.18 counts 64 bytes for this item (its header, key, value, CAS).
            "STAT bytes 64\r\n",
            "STAT uptime ",
            "STAT time ",
            "STAT version 1.6.18-concurrence\r\n",
        ] {
            assert!(
                text.contains(stat),
                "{}: no {stat:?} in {text}",
                server.name()
            );
        }
        assert!(text.ends_with("END\r\n"));
    }
}
