//! The flooding peer of the fairness scenarios on real sockets: an OS thread with blocking
//! std sockets (a real client is another process), writing pipelined lines as fast as the
//! server takes them while a second thread reads the echoes, so that the server under test
//! sees a socket that stays ready both ways however its own executor is doing.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use concurrence_core::Address;
use concurrence_socket::SocketError;

use crate::backend::LocalFuture;

/// A connected std stream of either kind.
enum StdStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl StdStream {
    fn connect(address: &Address) -> std::io::Result<StdStream> {
        Ok(match address {
            Address::Tcp(a) => StdStream::Tcp(TcpStream::connect(a)?),
            Address::Unix(p) => StdStream::Unix(UnixStream::connect(p)?),
        })
    }

    fn try_clone(&self) -> std::io::Result<StdStream> {
        Ok(match self {
            StdStream::Tcp(s) => StdStream::Tcp(s.try_clone()?),
            StdStream::Unix(s) => StdStream::Unix(s.try_clone()?),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            StdStream::Tcp(s) => s.write(bytes),
            StdStream::Unix(s) => s.write(bytes),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            StdStream::Tcp(s) => s.read(buf),
            StdStream::Unix(s) => s.read(buf),
        }
    }

    fn shutdown_write(&self) {
        let _ = match self {
            StdStream::Tcp(s) => s.shutdown(Shutdown::Write),
            StdStream::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

/// Connects to `address` and floods it from two OS threads until `stop` is set, then
/// half-closes; the future gives the bytes echoed back (read until end of stream).
pub(crate) fn flood_from_threads(
    address: &Address,
    stop: Arc<AtomicBool>,
) -> LocalFuture<'static, Result<usize, SocketError>> {
    let fail = {
        let address = address.clone();
        move |e| SocketError::io("flood", &address, e)
    };
    let (done_tx, done_rx) = async_channel::bounded(1);
    let started = StdStream::connect(address).and_then(|writer| {
        let reader = writer.try_clone()?;
        Ok((writer, reader))
    });
    match started {
        Err(e) => {
            let error = fail(e);
            return Box::pin(async move { Err(error) });
        }
        Ok((mut writer, mut reader)) => {
            std::thread::spawn(move || {
                let lines = b"flood\n".repeat(8 * 1024);
                while !stop.load(Ordering::SeqCst) {
                    if writer.write(&lines).is_err() {
                        break;
                    }
                }
                writer.shutdown_write();
            });
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                let mut echoed = 0usize;
                let outcome = loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break Ok(echoed),
                        Ok(n) => echoed += n,
                        Err(e) => break Err(e),
                    }
                };
                let _ = done_tx.send_blocking(outcome);
            });
        }
    }
    Box::pin(async move {
        match done_rx.recv().await {
            Ok(outcome) => outcome.map_err(fail),
            Err(_) => Err(fail(std::io::Error::other(
                "the flood's reader thread died",
            ))),
        }
    })
}
