//! The adapter from the async seed `Socket` (smol's and the simulator's are one type,
//! `concurrence_socket::AsyncSocket`, on two transports) to the suite's `Stream` and
//! `Listener` traits, and the echo handler both serve through `SocketServer::serve`.

use std::any::Any;
use std::time::Duration;

use concurrence_core::{Address, Buffer, SocketState};
use concurrence_socket::{AsyncSocket, SocketError, Transport};

use crate::backend::{Listener, LocalFuture, Stream};

/// A connected async socket, as the suite's `Stream`, with the receive buffer its reads
/// reuse.
pub(crate) struct AsyncStream<T: Transport>(pub(crate) AsyncSocket<T>, Buffer);

impl<T: Transport> AsyncStream<T> {
    pub(crate) fn new(socket: AsyncSocket<T>) -> Self {
        AsyncStream(socket, Buffer::new(0))
    }
}

impl<T: Transport> Stream for AsyncStream<T> {
    fn read(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Vec<u8>, SocketError>> {
        Box::pin(async move {
            let AsyncStream(socket, buffer) = self;
            if buffer.capacity() < max {
                *buffer = Buffer::new(max);
            }
            buffer.clear();
            buffer.set_limit(max)?;
            socket.read(buffer, timeout).await?;
            buffer.flip();
            Ok(buffer.read_remaining().into_owned())
        })
    }

    fn write(
        &mut self,
        bytes: Vec<u8>,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<usize, SocketError>> {
        Box::pin(async move {
            let mut buffer = Buffer::new(bytes.len());
            buffer.write_bytes(&bytes)?;
            buffer.flip();
            self.0.write(&mut buffer, timeout).await
        })
    }

    fn shutdown_write(&mut self) -> Result<(), SocketError> {
        self.0.shutdown_write()
    }

    fn close(&mut self) -> Result<(), SocketError> {
        self.0.close()
    }

    fn abort(&mut self) -> Result<(), SocketError> {
        self.0.abort()
    }

    fn state(&self) -> SocketState {
        self.0.state()
    }

    fn send_stream<'a>(
        &'a mut self,
        other: &'a dyn Stream,
        timeout: Option<Duration>,
    ) -> LocalFuture<'a, Result<(), SocketError>> {
        Box::pin(async move {
            match other.as_any().downcast_ref::<AsyncStream<T>>() {
                Some(other) => self.0.write_socket(&other.0, timeout).await,
                None => Err(SocketError::WrongKind {
                    op: "write_socket",
                    needs: "this backend's",
                    address: "the stream to pass".to_owned(),
                }),
            }
        })
    }

    fn recv_stream(
        &mut self,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Box<dyn Stream>, SocketError>> {
        Box::pin(async move {
            let socket = self.0.read_socket(timeout).await?;
            Ok(Box::new(AsyncStream::new(socket)) as Box<dyn Stream>)
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A not-connected async socket, as the suite's `Listener`.
pub(crate) struct AsyncListener<T: Transport>(pub(crate) AsyncSocket<T>);

impl<T: Transport> Listener for AsyncListener<T> {
    fn bind(&mut self) -> Result<(), SocketError> {
        self.0.bind()
    }

    fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.0.listen(backlog)
    }

    fn local_address(&self) -> Result<Address, SocketError> {
        self.0.local_address()
    }

    fn accept(
        &mut self,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Box<dyn Stream>, SocketError>> {
        Box::pin(async move {
            let socket = self.0.accept(timeout).await?;
            Ok(Box::new(AsyncStream::new(socket)) as Box<dyn Stream>)
        })
    }

    fn close(&mut self) -> Result<(), SocketError> {
        self.0.close()
    }
}

/// The handler the fairness scenario serves with `SocketServer::serve`: the seed's line echo
/// as a user writes it (an `AsyncBufferedStream`, one flush per line: the shape of the smol
/// backend's `async-echo-server` example), with no yields of its own: fairness is the
/// socket's job.
pub(crate) async fn echo_handler<T: Transport>(
    socket: AsyncSocket<T>,
) -> Result<(), concurrence_core::StreamError> {
    let mut stream = concurrence_core::AsyncBufferedStream::new(socket);
    while let Some(line) = stream.next_line().await? {
        stream.write_bytes(&line).await?;
        stream.write_bytes(b"\n").await?;
        stream.flush().await?;
    }
    Ok(())
}

/// Defines `$server`, a running session server of a backend whose `SocketServer` hands out a
/// `$handle` (`close`, `connections`), as the suite's `SessionServer`.
macro_rules! close_handle_server {
    ($server:ident, $handle:ty) => {
        /// A running session server of this backend, as the suite's `SessionServer`.
        pub(crate) struct $server {
            local: concurrence_core::Address,
            handle: $handle,
        }

        impl $crate::backend::SessionServer for $server {
            fn local_address(&self) -> concurrence_core::Address {
                self.local.clone()
            }

            fn connections(&self) -> usize {
                self.handle.connections()
            }

            fn close(&mut self) {
                self.handle.close();
            }
        }
    };
}
pub(crate) use close_handle_server;
