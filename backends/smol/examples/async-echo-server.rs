//! A line echo server on the smol backend (the complete example from docs/backends.md).

use concurrence_core::{AsyncBufferedStream, StreamError};
use concurrence_smol::{Socket, SocketServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        let mut server = SocketServer::new("127.0.0.1:7000".parse()?); // or "/tmp/echo.sock"
        server.listen(255)?;
        eprintln!("listening on {}", server.local_addr());
        server
            .serve(|socket: Socket| async move {
                let mut stream = AsyncBufferedStream::new(socket);
                while let Some(line) = stream.next_line().await? {
                    stream.write_bytes(&line).await?;
                    stream.write_bytes(b"\r\n").await?;
                    stream.flush().await?;
                }
                Ok::<(), StreamError>(())
            })
            .await?;
        Ok(())
    })
}
