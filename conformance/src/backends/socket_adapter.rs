//! The adapter from a backend's async `Socket` (the smol backend's and the simulator's share
//! one shape: same names, same signatures) to the suite's `Stream` and `Listener` traits,
//! written once as a macro over the socket type.

/// Defines `$stream` and `$listener` over the async socket type `$socket`.
macro_rules! async_socket_adapter {
    ($stream:ident, $listener:ident, $socket:ty) => {
        /// A connected socket of this backend, as the suite's `Stream`, with the receive
        /// buffer its reads reuse.
        pub(crate) struct $stream(pub(crate) $socket, concurrence_core::Buffer);

        impl $stream {
            fn new(socket: $socket) -> Self {
                $stream(socket, concurrence_core::Buffer::new(0))
            }
        }

        impl $crate::backend::Stream for $stream {
            fn read(
                &mut self,
                max: usize,
                timeout: Option<std::time::Duration>,
            ) -> $crate::backend::LocalFuture<'_, Result<Vec<u8>, concurrence_socket::SocketError>>
            {
                Box::pin(async move {
                    let $stream(socket, buffer) = self;
                    if buffer.capacity() < max {
                        *buffer = concurrence_core::Buffer::new(max);
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
                timeout: Option<std::time::Duration>,
            ) -> $crate::backend::LocalFuture<'_, Result<usize, concurrence_socket::SocketError>>
            {
                Box::pin(async move {
                    let mut buffer = concurrence_core::Buffer::new(bytes.len());
                    buffer.write_bytes(&bytes)?;
                    buffer.flip();
                    self.0.write(&mut buffer, timeout).await
                })
            }

            fn shutdown_write(&mut self) -> Result<(), concurrence_socket::SocketError> {
                self.0.shutdown_write()
            }

            fn close(&mut self) -> Result<(), concurrence_socket::SocketError> {
                self.0.close()
            }

            fn abort(&mut self) -> Result<(), concurrence_socket::SocketError> {
                self.0.abort()
            }

            fn state(&self) -> concurrence_core::SocketState {
                self.0.state()
            }

            fn send_stream<'a>(
                &'a mut self,
                other: &'a dyn $crate::backend::Stream,
                timeout: Option<std::time::Duration>,
            ) -> $crate::backend::LocalFuture<'a, Result<(), concurrence_socket::SocketError>> {
                Box::pin(async move {
                    match other.as_any().downcast_ref::<$stream>() {
                        Some(other) => self.0.write_socket(&other.0, timeout).await,
                        None => Err(concurrence_socket::SocketError::WrongKind {
                            op: "write_socket",
                            needs: "this backend's",
                            address: "the stream to pass".to_owned(),
                        }),
                    }
                })
            }

            fn recv_stream(
                &mut self,
                timeout: Option<std::time::Duration>,
            ) -> $crate::backend::LocalFuture<
                '_,
                Result<Box<dyn $crate::backend::Stream>, concurrence_socket::SocketError>,
            > {
                Box::pin(async move {
                    let socket = self.0.read_socket(timeout).await?;
                    Ok(Box::new($stream::new(socket)) as Box<dyn $crate::backend::Stream>)
                })
            }

            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
        }

        /// A not-connected socket of this backend, as the suite's `Listener`.
        pub(crate) struct $listener(pub(crate) $socket);

        impl $crate::backend::Listener for $listener {
            fn bind(&mut self) -> Result<(), concurrence_socket::SocketError> {
                self.0.bind()
            }

            fn listen(&mut self, backlog: i32) -> Result<(), concurrence_socket::SocketError> {
                self.0.listen(backlog)
            }

            fn local_address(
                &self,
            ) -> Result<concurrence_core::Address, concurrence_socket::SocketError> {
                self.0.local_address()
            }

            fn accept(
                &mut self,
                timeout: Option<std::time::Duration>,
            ) -> $crate::backend::LocalFuture<
                '_,
                Result<Box<dyn $crate::backend::Stream>, concurrence_socket::SocketError>,
            > {
                Box::pin(async move {
                    let socket = self.0.accept(timeout).await?;
                    Ok(Box::new($stream::new(socket)) as Box<dyn $crate::backend::Stream>)
                })
            }

            fn close(&mut self) -> Result<(), concurrence_socket::SocketError> {
                self.0.close()
            }
        }
    };
}
pub(crate) use async_socket_adapter;

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
