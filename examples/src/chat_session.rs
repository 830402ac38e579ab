//! The seed's chat as a `Session`: every line a member says goes to every other member
//! through the member's [`Mailbox`] (an application event, not input from its own peer);
//! `quit` leaves. One session, served by polling, smol or the simulator (`chat --backend`).
//!
//! A member that does not read loses messages instead of stalling the room: a message that
//! finds its writer over the high-water mark (or its mailbox full) is dropped and counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use concurrence_core::{
    EndReason, Mailbox, MailboxSender, Next, Notify, Session, SessionError, StreamReader,
    StreamWriter, Timestamp,
};

/// The longest line a member may send.
pub const MAX_LINE: usize = 4096;
/// Messages queued for a member between two of its turns; past it, messages to that member
/// are dropped (and counted in [`ChatRoom::dropped`]).
pub const MAILBOX: usize = 256;

#[derive(Debug, Default)]
struct Members {
    last_id: u64,
    /// In join order (a `BTreeMap` by id): broadcasts go out in a defined order.
    list: BTreeMap<u64, MailboxSender<Arc<[u8]>>>,
}

/// Who is in the room; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct ChatRoom {
    members: Arc<Mutex<Members>>,
    dropped: Arc<AtomicU64>,
}

impl ChatRoom {
    /// An empty room.
    #[must_use]
    pub fn new() -> Self {
        ChatRoom::default()
    }

    /// A new member's session (it joins the room now; it leaves when dropped).
    #[must_use]
    pub fn member(&self) -> ChatMember {
        let mailbox = Mailbox::new(MAILBOX);
        let mut members = self.lock();
        members.last_id += 1;
        let id = members.last_id;
        members.list.insert(id, mailbox.sender());
        ChatMember {
            id,
            room: self.clone(),
            mailbox,
        }
    }

    /// Members in the room now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().list.len()
    }

    /// True when nobody is in the room.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages dropped because their member did not keep up.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sends `message` to every member but `from` (from any thread: an application event).
    pub fn broadcast(&self, from: u64, message: &Arc<[u8]>) {
        let members = self.lock();
        for (id, mailbox) in &members.list {
            if *id != from && mailbox.send(Arc::clone(message)).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn leave(&self, id: u64) {
        self.lock().list.remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One member's connection, as a session: greets it (`welcome userN`), relays each of its
/// lines to the others as `userN: line`, and writes what the others say.
#[derive(Debug)]
pub struct ChatMember {
    id: u64,
    room: ChatRoom,
    mailbox: Mailbox<Arc<[u8]>>,
}

impl ChatMember {
    /// This member's number (`userN`).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for ChatMember {
    fn drop(&mut self) {
        self.room.leave(self.id);
    }
}

impl Session for ChatMember {
    fn handle_start(
        &mut self,
        _: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        writer.write_bytes(format!("welcome user{}\n", self.id).as_bytes())?;
        Ok(Next::Continue)
    }

    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while let Some(line) = reader.read_line(false)? {
            if line == b"quit" {
                return Ok(Next::Close);
            }
            let message: Arc<[u8]> = [format!("user{}: ", self.id).as_bytes(), line, b"\n"]
                .concat()
                .into();
            self.room.broadcast(self.id, &message);
        }
        Ok(Next::Continue)
    }

    fn handle_event(
        &mut self,
        _: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while let Some(message) = self.mailbox.try_recv() {
            if writer.is_backpressured() {
                // This member does not read: it misses the message, the room goes on.
                self.room.dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                writer.write_bytes(&message)?;
            }
        }
        Ok(Next::Continue)
    }

    fn handle_end(&mut self, _: Timestamp, _: &EndReason) {
        self.room.leave(self.id);
    }

    fn notify_handle(&self) -> Option<&Notify> {
        Some(self.mailbox.notify_handle())
    }
}

/// What a simulated session chat heard: lines per client, and the run's trace hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChatReport {
    /// Lines each client should hear: three from every other client.
    pub expected: usize,
    /// Lines each client heard (0 for a client whose connection failed).
    pub heard: Vec<usize>,
    /// The run's trace hash.
    pub trace_hash: u64,
}

/// The session chat under the simulator (short reads and writes), with the same checking
/// clients as the handler version (`chat::run_checking_clients`). Delivery of the room's
/// events is ordered by the seed.
///
/// # Errors
/// The simulation did not settle.
pub fn simulate(seed: u64, clients: usize) -> Result<SessionChatReport, concurrence_sim::SimError> {
    let mut sim = concurrence_sim::SimNetwork::new(seed, concurrence_sim::Faults::short_io());
    let server = sim.host("server");
    let address = concurrence_core::Address::Tcp(([10, 0, 0, 1], 7001).into());
    let room = ChatRoom::new();
    let config = concurrence_core::ConnectionConfig::default().with_buffers(
        concurrence_core::ReaderConfig::default().with_max_line(MAX_LINE),
        concurrence_core::WriterConfig::default(),
    );
    sim.serve_session(server, address.clone(), config, move |_| room.member());
    let heard = crate::chat::run_checking_clients(&mut sim, &address, clients)?;
    Ok(SessionChatReport {
        expected: 3 * clients.saturating_sub(1),
        heard,
        trace_hash: sim.trace().hash(),
    })
}
