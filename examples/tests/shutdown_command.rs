//! `memcache-server -A`: the `shutdown` command stops the program (as memcached's `-A`);
//! `shutdown <other>` is refused with memcached's message and the server goes on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn shutdown_stops_the_server_when_enabled() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_memcache-server"))
        .args(["-A", "-t", "2", "-p", &port.to_string()])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start memcache-server");
    // Its log says when it listens: the event to wait for.
    let mut log = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert!(
            log.read_line(&mut line).expect("read the log") > 0,
            "exited early"
        );
    }
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));

    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client
        .write_all(b"shutdown now\r\nstats settings\r\n")
        .expect("send");
    let mut reply = Vec::new();
    let mut chunk = [0u8; 8192];
    while !reply.ends_with(b"END\r\n") {
        let n = client.read(&mut chunk).expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.starts_with("CLIENT_ERROR invalid shutdown mode\r\n"),
        "{text}"
    );
    assert!(text.contains("STAT shutdown_command yes\r\n"), "{text}");

    client.write_all(b"shutdown\r\n").expect("send shutdown");
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    assert!(rest.is_empty(), "shutdown answers nothing: {rest:?}");
    // Our side closes too, so the server's lingering close of this connection ends now.
    drop(client);
    let (done, exited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = exited
        .recv_timeout(Duration::from_secs(30))
        .expect("the server exits after shutdown")
        .expect("wait");
    assert!(status.success(), "{status}");
}
