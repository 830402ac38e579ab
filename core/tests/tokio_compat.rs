//! `AsyncBufferedStream` under tokio, through tokio-util's compat layer: one framing
//! implementation serves tokio users too.

use concurrence_core::{AsyncBufferedStream, ReaderConfig, WriterConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::compat::TokioAsyncReadCompatExt;

#[tokio::test]
async fn lines_and_blocks_over_a_tokio_duplex() {
    let (ours, mut theirs) = tokio::io::duplex(64);
    let peer = tokio::spawn(async move {
        theirs.write_all(b"GET /a\r\nGET /b\n").await.unwrap();
        theirs.write_all(&[5, 0]).await.unwrap();
        theirs.write_all(b"hello").await.unwrap();
        let mut reply = [0u8; 9];
        theirs.read_exact(&mut reply).await.unwrap();
        reply
    });
    let config = ReaderConfig::default().with_buffer_size(8);
    let mut stream =
        AsyncBufferedStream::with_config(ours.compat(), config, WriterConfig::default());
    assert_eq!(stream.read_line().await.unwrap(), Some(&b"GET /a"[..]));
    assert_eq!(stream.read_line().await.unwrap(), Some(&b"GET /b"[..]));
    let n = stream.read_short().await.unwrap().unwrap();
    assert_eq!(
        stream.read_bytes(usize::from(n)).await.unwrap(),
        Some(&b"hello"[..])
    );
    stream.write_bytes(b"200 OK\r\n\n").await.unwrap();
    stream.flush().await.unwrap();
    assert_eq!(&peer.await.unwrap(), b"200 OK\r\n\n");
}
