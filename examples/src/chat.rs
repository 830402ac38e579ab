//! The seed framework's chat example, as async code over any `AsyncRead + AsyncWrite`: every
//! line a member sends goes to all other members; `quit` leaves. The same function serves
//! smol's sockets and the simulator's (`chat` binary).

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use std::time::Duration;

use concurrence_core::{Address, ReaderConfig, StreamReader};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

/// The longest line a member may send.
pub const MAX_LINE: usize = 4096;
/// Messages queued for a member that does not read; past it, that member misses messages
/// rather than stall the room.
pub const MAILBOX: usize = 256;

/// A member's mailbox: the lines others said, shared, not copied per member.
type Mailbox = async_channel::Sender<Arc<[u8]>>;

/// The last id given, and each member's id and mailbox.
#[derive(Debug, Default)]
struct Members {
    last_id: u64,
    list: Vec<(u64, Mailbox)>,
}

/// Who is in the room.
#[derive(Debug, Clone, Default)]
pub struct Room {
    members: Arc<Mutex<Members>>,
}

impl Room {
    fn join(&self) -> (u64, async_channel::Receiver<Arc<[u8]>>) {
        let (tx, rx) = async_channel::bounded(MAILBOX);
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members.last_id += 1;
        let id = members.last_id;
        members.list.push((id, tx));
        (id, rx)
    }

    fn leave(&self, id: u64) {
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        members.list.retain(|(member, _)| *member != id);
    }

    fn broadcast(&self, from: u64, message: &Arc<[u8]>) {
        let members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, mailbox) in &members.list {
            if *id != from {
                let _ = mailbox.try_send(Arc::clone(message));
            }
        }
    }
}

/// One member's connection: greets it (`welcome userN`, once it is in the room: lines said
/// from then on reach it), reads its lines and relays them, writes what others say.
///
/// # Errors
/// The connection failed, or a line was longer than [`MAX_LINE`].
pub async fn chat_member<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    room: Room,
) -> io::Result<()> {
    let (mut input, mut output) = futures_lite::io::split(stream);
    let (id, mailbox) = room.join();
    if let Err(e) = output
        .write_all(format!("welcome user{id}\n").as_bytes())
        .await
    {
        room.leave(id);
        return Err(e);
    }
    let speak = async {
        let mut reader = StreamReader::new(ReaderConfig::default().with_max_line(MAX_LINE));
        let result = loop {
            match reader.read_line(false) {
                Ok(Some(b"quit")) => break Ok(()),
                Ok(Some(line)) => {
                    let message: Arc<[u8]> = [format!("user{id}: ").as_bytes(), line, b"\n"]
                        .concat()
                        .into();
                    room.broadcast(id, &message);
                    continue;
                }
                Ok(None) => {}
                Err(e) => break Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            match input.read(reader.spare()).await {
                Ok(0) => break Ok(()),
                Ok(n) => reader.filled(n),
                Err(e) => break Err(e),
            }
        };
        room.leave(id); // the mailbox closes: the listening half ends too
        result
    };
    let listen = async {
        while let Ok(message) = mailbox.recv().await {
            output.write_all(&message).await?;
        }
        output.close().await
    };
    let (spoke, listened) = future::zip(speak, listen).await;
    spoke.and(listened)
}

/// What a simulated chat heard: how many lines each client got, and how many it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatReport {
    /// Lines each client should hear: three from every other client.
    pub expected: usize,
    /// Lines each client heard (0 for a client whose connection failed).
    pub heard: Vec<usize>,
    /// The run's trace hash.
    pub trace_hash: u64,
}

/// The chat under the simulator (short reads and writes): `clients` clients join, wait a
/// second of virtual time, say three lines each, wait, quit, and read what the others said.
///
/// # Errors
/// The simulation did not settle.
pub fn simulate(seed: u64, clients: usize) -> Result<ChatReport, concurrence_sim::SimError> {
    let mut sim = concurrence_sim::SimNetwork::new(seed, concurrence_sim::Faults::short_io());
    let server = sim.host("server");
    let address = Address::Tcp(([10, 0, 0, 1], 7001).into());
    let at = address.clone();
    sim.spawn(server, async move {
        let room = Room::default();
        let mut server = concurrence_sim::SocketServer::new(at);
        server
            .serve(move |socket| chat_member(socket, room.clone()))
            .await
    })
    .detach();
    let heard = run_checking_clients(&mut sim, &address, clients)?;
    Ok(ChatReport {
        expected: 3 * clients.saturating_sub(1),
        heard,
        trace_hash: sim.trace().hash(),
    })
}

/// The simulated chat's clients, against a server already set up at `address`: `clients`
/// clients join, wait a second of virtual time, say three lines each, wait, quit, and count
/// what the others said (0 for a client whose connection failed). Runs the simulation.
///
/// # Errors
/// The simulation did not settle.
pub fn run_checking_clients(
    sim: &mut concurrence_sim::SimNetwork,
    address: &Address,
    clients: usize,
) -> Result<Vec<usize>, concurrence_sim::SimError> {
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let host = sim.host(&format!("client{i}"));
            let address = address.clone();
            sim.spawn(host, async move {
                let mut socket = concurrence_sim::Socket::connect(&address, None)
                    .await
                    .ok()?;
                concurrence_sim::sleep(Duration::from_secs(1)).await;
                for n in 0..3 {
                    let line = format!("line {n} from client {i}\n");
                    socket.write_all(line.as_bytes()).await.ok()?;
                }
                concurrence_sim::sleep(Duration::from_secs(1)).await;
                socket.write_all(b"quit\n").await.ok()?;
                let mut heard = String::new();
                socket.read_to_string(&mut heard).await.ok()?;
                Some(heard.lines().filter(|l| !l.starts_with("welcome")).count())
            })
        })
        .collect();
    sim.run()?;
    Ok(tasks
        .into_iter()
        .map(|task| future::block_on(task).unwrap_or(0))
        .collect())
}
