//! A plain model of `Buffer` (a `Vec<u8>` plus indices) and a harness that runs the same
//! operation on the real buffers and on the model, then compares every byte, position and limit.
//!
//! Shared by the proptest state-machine test and the `buffer_ops` fuzz target, so both check
//! against one model.

use concurrence_core::{Buffer, BufferError};

/// The most buffers (originals, duplicates, clones) a harness keeps alive at once.
pub const MAX_BUFFERS: usize = 8;
/// The largest capacity a harness creates.
pub const MAX_CAPACITY: usize = 96;

/// One operation on one of the harness's buffers. Buffer indices are taken modulo the number
/// of live buffers, so any value is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BufferOp {
    New {
        capacity: usize,
    },
    Duplicate {
        buf: usize,
    },
    Clone {
        buf: usize,
    },
    Drop {
        buf: usize,
    },
    SetPosition {
        buf: usize,
        position: usize,
    },
    SetLimit {
        buf: usize,
        limit: usize,
    },
    Clear {
        buf: usize,
    },
    Flip {
        buf: usize,
    },
    Rewind {
        buf: usize,
    },
    Compact {
        buf: usize,
    },
    CopyFrom {
        dst: usize,
        src: usize,
        src_start: usize,
        dst_start: usize,
        len: usize,
    },
    Skip {
        buf: usize,
        n: usize,
    },
    ReadByte {
        buf: usize,
    },
    ReadBytes {
        buf: usize,
        n: usize,
    },
    ReadRemaining {
        buf: usize,
    },
    ReadBytesUntil {
        buf: usize,
        byte: u8,
    },
    ReadLine {
        buf: usize,
        include_separator: bool,
    },
    ReadShort {
        buf: usize,
    },
    ReadInt {
        buf: usize,
    },
    ReadU64 {
        buf: usize,
    },
    ReadU16Be {
        buf: usize,
    },
    ReadU32Be {
        buf: usize,
    },
    ReadU64Be {
        buf: usize,
    },
    WriteByte {
        buf: usize,
        byte: u8,
    },
    WriteBytes {
        buf: usize,
        bytes: Vec<u8>,
    },
    WriteShort {
        buf: usize,
        value: u16,
    },
    WriteInt {
        buf: usize,
        value: u32,
    },
    WriteU64 {
        buf: usize,
        value: u64,
    },
    WriteU16Be {
        buf: usize,
        value: u16,
    },
    WriteU32Be {
        buf: usize,
        value: u32,
    },
    WriteU64Be {
        buf: usize,
        value: u64,
    },
    WriteBuffer {
        dst: usize,
        src: usize,
    },
    Get {
        buf: usize,
        index: usize,
    },
    Set {
        buf: usize,
        index: usize,
        byte: u8,
    },
    GetRange {
        buf: usize,
        start: usize,
        end: usize,
    },
    SetRange {
        buf: usize,
        start: usize,
        bytes: Vec<u8>,
        end: usize,
    },
}

/// What an operation returned, with errors reduced to their kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Outcome {
    Done,
    Byte(u8),
    Bytes(Vec<u8>),
    Int(u64),
    Overflow,
    Underflow,
    InvalidArgument,
}

/// One buffer of the model: which byte array it sees, and its indices.
#[derive(Debug, Clone)]
struct ModelBuffer {
    bytes: usize,
    position: usize,
    limit: usize,
    capacity: usize,
}

/// The model: byte arrays (one per family of duplicates) and the buffers over them.
#[derive(Debug, Default)]
pub struct BufferModel {
    arrays: Vec<Vec<u8>>,
    buffers: Vec<ModelBuffer>,
}

impl BufferModel {
    fn add(&mut self, capacity: usize) {
        self.arrays.push(vec![0; capacity]);
        self.buffers.push(ModelBuffer {
            bytes: self.arrays.len() - 1,
            position: 0,
            limit: capacity,
            capacity,
        });
    }

    fn read(&mut self, i: usize, n: usize) -> Result<Vec<u8>, Outcome> {
        let b = &mut self.buffers[i];
        if b.limit - b.position < n {
            return Err(Outcome::Underflow);
        }
        let out = self.arrays[b.bytes][b.position..b.position + n].to_vec();
        b.position += n;
        Ok(out)
    }

    fn read_int(&mut self, i: usize, n: usize, big_endian: bool) -> Outcome {
        match self.read(i, n) {
            Ok(mut bytes) => {
                if !big_endian {
                    bytes.reverse();
                }
                Outcome::Int(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
            }
            Err(e) => e,
        }
    }

    fn write(&mut self, i: usize, data: &[u8]) -> Outcome {
        let b = &mut self.buffers[i];
        if b.limit - b.position < data.len() {
            return Outcome::Overflow;
        }
        for (k, &byte) in data.iter().enumerate() {
            self.arrays[b.bytes][b.position + k] = byte;
        }
        b.position += data.len();
        Outcome::Done
    }

    fn write_int(&mut self, i: usize, value: u64, n: usize, big_endian: bool) -> Outcome {
        let mut bytes: Vec<u8> = (0..n).map(|k| value.to_le_bytes()[k]).collect();
        if big_endian {
            bytes.reverse();
        }
        self.write(i, &bytes)
    }

    fn until(&mut self, i: usize, delimiter: u8) -> Option<(usize, usize)> {
        let b = &self.buffers[i];
        (b.position..b.limit)
            .find(|&k| self.arrays[b.bytes][k] == delimiter)
            .map(|k| (b.position, k))
    }

    /// Applies `op` (indices already reduced) and says what it returned.
    fn apply(&mut self, op: &BufferOp) -> Outcome {
        use BufferOp as O;
        match *op {
            O::New { capacity } => {
                self.add(capacity);
                Outcome::Done
            }
            O::Duplicate { buf } => {
                let copy = self.buffers[buf].clone();
                self.buffers.push(copy);
                Outcome::Done
            }
            O::Clone { buf } => {
                let mut copy = self.buffers[buf].clone();
                self.arrays.push(self.arrays[copy.bytes].clone());
                copy.bytes = self.arrays.len() - 1;
                self.buffers.push(copy);
                Outcome::Done
            }
            O::Drop { buf } => {
                self.buffers.remove(buf);
                Outcome::Done
            }
            O::SetPosition { buf, position } => {
                let b = &mut self.buffers[buf];
                if position > b.limit {
                    return Outcome::InvalidArgument;
                }
                b.position = position;
                Outcome::Done
            }
            O::SetLimit { buf, limit } => {
                let b = &mut self.buffers[buf];
                if limit > b.capacity || limit < b.position {
                    return Outcome::InvalidArgument;
                }
                b.limit = limit;
                Outcome::Done
            }
            O::Clear { buf } => {
                let b = &mut self.buffers[buf];
                b.position = 0;
                b.limit = b.capacity;
                Outcome::Done
            }
            O::Flip { buf } => {
                let b = &mut self.buffers[buf];
                b.limit = b.position;
                b.position = 0;
                Outcome::Done
            }
            O::Rewind { buf } => {
                self.buffers[buf].position = 0;
                Outcome::Done
            }
            O::Compact { buf } => {
                let b = &mut self.buffers[buf];
                let unread = self.arrays[b.bytes][b.position..b.limit].to_vec();
                for (k, &byte) in unread.iter().enumerate() {
                    self.arrays[b.bytes][k] = byte;
                }
                b.position = unread.len();
                b.limit = b.capacity;
                Outcome::Done
            }
            O::CopyFrom {
                dst,
                src,
                src_start,
                dst_start,
                len,
            } => {
                let (s, d) = (&self.buffers[src], &self.buffers[dst]);
                if src_start as u128 + len as u128 > s.capacity as u128
                    || dst_start as u128 + len as u128 > d.capacity as u128
                {
                    return Outcome::InvalidArgument;
                }
                let copied = self.arrays[s.bytes][src_start..src_start + len].to_vec();
                let target = d.bytes;
                for (k, &byte) in copied.iter().enumerate() {
                    self.arrays[target][dst_start + k] = byte;
                }
                Outcome::Done
            }
            O::Skip { buf, n } => match self.read(buf, n) {
                Ok(_) => Outcome::Done,
                Err(e) => e,
            },
            O::ReadByte { buf } => match self.read(buf, 1) {
                Ok(bytes) => Outcome::Byte(bytes[0]),
                Err(e) => e,
            },
            O::ReadBytes { buf, n } => match self.read(buf, n) {
                Ok(bytes) => Outcome::Bytes(bytes),
                Err(e) => e,
            },
            O::ReadRemaining { buf } => {
                let n = self.buffers[buf].limit - self.buffers[buf].position;
                match self.read(buf, n) {
                    Ok(bytes) => Outcome::Bytes(bytes),
                    Err(e) => e,
                }
            }
            O::ReadBytesUntil { buf, byte } => match self.until(buf, byte) {
                None => Outcome::Underflow,
                Some((start, found)) => {
                    let b = &mut self.buffers[buf];
                    b.position = found + 1;
                    Outcome::Bytes(self.arrays[b.bytes][start..found].to_vec())
                }
            },
            O::ReadLine {
                buf,
                include_separator,
            } => match self.until(buf, b'\n') {
                None => Outcome::Underflow,
                Some((start, lf)) => {
                    let b = &mut self.buffers[buf];
                    b.position = lf + 1;
                    let mut line = self.arrays[b.bytes][start..=lf].to_vec();
                    if !include_separator {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    Outcome::Bytes(line)
                }
            },
            O::ReadShort { buf } => self.read_int(buf, 2, false),
            O::ReadInt { buf } => self.read_int(buf, 4, false),
            O::ReadU64 { buf } => self.read_int(buf, 8, false),
            O::ReadU16Be { buf } => self.read_int(buf, 2, true),
            O::ReadU32Be { buf } => self.read_int(buf, 4, true),
            O::ReadU64Be { buf } => self.read_int(buf, 8, true),
            O::WriteByte { buf, byte } => self.write(buf, &[byte]),
            O::WriteBytes { buf, ref bytes } => self.write(buf, bytes),
            O::WriteShort { buf, value } => self.write_int(buf, value.into(), 2, false),
            O::WriteInt { buf, value } => self.write_int(buf, value.into(), 4, false),
            O::WriteU64 { buf, value } => self.write_int(buf, value, 8, false),
            O::WriteU16Be { buf, value } => self.write_int(buf, value.into(), 2, true),
            O::WriteU32Be { buf, value } => self.write_int(buf, value.into(), 4, true),
            O::WriteU64Be { buf, value } => self.write_int(buf, value, 8, true),
            O::WriteBuffer { dst, src } => {
                let n = self.buffers[src].limit - self.buffers[src].position;
                let d = &self.buffers[dst];
                if n > d.limit - d.position {
                    return Outcome::Overflow;
                }
                let Ok(bytes) = self.read(src, n) else {
                    return Outcome::Underflow;
                };
                self.write(dst, &bytes)
            }
            O::Get { buf, index } => {
                let b = &self.buffers[buf];
                if index >= b.limit {
                    return Outcome::InvalidArgument;
                }
                Outcome::Byte(self.arrays[b.bytes][index])
            }
            O::Set { buf, index, byte } => {
                let b = &self.buffers[buf];
                if index >= b.limit {
                    return Outcome::InvalidArgument;
                }
                self.arrays[b.bytes][index] = byte;
                Outcome::Done
            }
            O::GetRange { buf, start, end } => {
                let b = &self.buffers[buf];
                if start > end || end > b.limit {
                    return Outcome::InvalidArgument;
                }
                Outcome::Bytes(self.arrays[b.bytes][start..end].to_vec())
            }
            O::SetRange {
                buf,
                start,
                ref bytes,
                end,
            } => {
                let b = &self.buffers[buf];
                if start > end || end > b.limit || end - start != bytes.len() {
                    return Outcome::InvalidArgument;
                }
                for (k, &byte) in bytes.iter().enumerate() {
                    self.arrays[b.bytes][start + k] = byte;
                }
                Outcome::Done
            }
        }
    }
}

fn kind<T>(result: Result<T, BufferError>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match result {
        Ok(value) => ok(value),
        Err(BufferError::Overflow { .. }) => Outcome::Overflow,
        Err(BufferError::Underflow { .. }) => Outcome::Underflow,
        Err(BufferError::InvalidArgument { .. }) => Outcome::InvalidArgument,
        // A kind of error the model does not know (a newer core): never equal to the model.
        Err(other) => Outcome::Bytes(format!("unmodelled error: {other}").into_bytes()),
    }
}

fn done(_: ()) -> Outcome {
    Outcome::Done
}

fn bytes(b: concurrence_core::BufferBytes<'_>) -> Outcome {
    Outcome::Bytes(b.into_owned())
}

fn int<T: Into<u64>>(value: T) -> Outcome {
    Outcome::Int(value.into())
}

/// Real buffers and the model, driven in lockstep.
#[derive(Debug)]
pub struct BufferHarness {
    real: Vec<Buffer>,
    model: BufferModel,
}

impl BufferHarness {
    /// One buffer of `capacity` (capped at [`MAX_CAPACITY`]) on both sides.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity % (MAX_CAPACITY + 1);
        let mut model = BufferModel::default();
        model.add(capacity);
        BufferHarness {
            real: vec![Buffer::new(capacity)],
            model,
        }
    }

    /// Brings the buffer indices of `op` into range; `None` for an operation that cannot run
    /// now (too many buffers, dropping the last, a buffer written into itself).
    fn reduce(&self, op: &BufferOp) -> Option<BufferOp> {
        use BufferOp as O;
        let n = self.real.len();
        let mut op = op.clone();
        match &mut op {
            O::New { capacity } => {
                *capacity %= MAX_CAPACITY + 1;
                if n >= MAX_BUFFERS {
                    return None;
                }
            }
            O::Duplicate { buf } | O::Clone { buf } => {
                *buf %= n;
                if n >= MAX_BUFFERS {
                    return None;
                }
            }
            O::Drop { buf } => {
                *buf %= n;
                if n == 1 {
                    return None;
                }
            }
            O::CopyFrom { dst, src, .. } | O::WriteBuffer { dst, src } => {
                *dst %= n;
                *src %= n;
                if dst == src {
                    return None;
                }
            }
            O::SetPosition { buf, .. }
            | O::SetLimit { buf, .. }
            | O::Clear { buf }
            | O::Flip { buf }
            | O::Rewind { buf }
            | O::Compact { buf }
            | O::Skip { buf, .. }
            | O::ReadByte { buf }
            | O::ReadBytes { buf, .. }
            | O::ReadRemaining { buf }
            | O::ReadBytesUntil { buf, .. }
            | O::ReadLine { buf, .. }
            | O::ReadShort { buf }
            | O::ReadInt { buf }
            | O::ReadU64 { buf }
            | O::ReadU16Be { buf }
            | O::ReadU32Be { buf }
            | O::ReadU64Be { buf }
            | O::WriteByte { buf, .. }
            | O::WriteBytes { buf, .. }
            | O::WriteShort { buf, .. }
            | O::WriteInt { buf, .. }
            | O::WriteU64 { buf, .. }
            | O::WriteU16Be { buf, .. }
            | O::WriteU32Be { buf, .. }
            | O::WriteU64Be { buf, .. }
            | O::Get { buf, .. }
            | O::Set { buf, .. }
            | O::GetRange { buf, .. }
            | O::SetRange { buf, .. } => *buf %= n,
        }
        Some(op)
    }

    fn apply_real(&mut self, op: &BufferOp) -> Outcome {
        use BufferOp as O;
        let real = &mut self.real;
        match *op {
            O::New { capacity } => {
                real.push(Buffer::new(capacity));
                Outcome::Done
            }
            O::Duplicate { buf } => {
                let copy = real[buf].duplicate();
                real.push(copy);
                Outcome::Done
            }
            O::Clone { buf } => {
                let copy = real[buf].clone();
                real.push(copy);
                Outcome::Done
            }
            O::Drop { buf } => {
                real.remove(buf);
                Outcome::Done
            }
            O::SetPosition { buf, position } => kind(real[buf].set_position(position), done),
            O::SetLimit { buf, limit } => kind(real[buf].set_limit(limit), done),
            O::Clear { buf } => {
                real[buf].clear();
                Outcome::Done
            }
            O::Flip { buf } => {
                real[buf].flip();
                Outcome::Done
            }
            O::Rewind { buf } => {
                real[buf].rewind();
                Outcome::Done
            }
            O::Compact { buf } => {
                real[buf].compact();
                Outcome::Done
            }
            O::CopyFrom {
                dst,
                src,
                src_start,
                dst_start,
                len,
            } => {
                let (d, s) = pair_mut(real, dst, src);
                kind(d.copy_from(s, src_start, dst_start, len), done)
            }
            O::Skip { buf, n } => kind(real[buf].skip(n), done),
            O::ReadByte { buf } => kind(real[buf].read_byte(), Outcome::Byte),
            O::ReadBytes { buf, n } => kind(real[buf].read_bytes(n), bytes),
            O::ReadRemaining { buf } => bytes(real[buf].read_remaining()),
            O::ReadBytesUntil { buf, byte } => kind(real[buf].read_bytes_until(byte), bytes),
            O::ReadLine {
                buf,
                include_separator,
            } => kind(real[buf].read_line(include_separator), bytes),
            O::ReadShort { buf } => kind(real[buf].read_short(), int),
            O::ReadInt { buf } => kind(real[buf].read_int(), int),
            O::ReadU64 { buf } => kind(real[buf].read_u64(), int),
            O::ReadU16Be { buf } => kind(real[buf].read_u16_be(), int),
            O::ReadU32Be { buf } => kind(real[buf].read_u32_be(), int),
            O::ReadU64Be { buf } => kind(real[buf].read_u64_be(), int),
            O::WriteByte { buf, byte } => kind(real[buf].write_byte(byte), done),
            O::WriteBytes { buf, ref bytes } => kind(real[buf].write_bytes(bytes), done),
            O::WriteShort { buf, value } => kind(real[buf].write_short(value), done),
            O::WriteInt { buf, value } => kind(real[buf].write_int(value), done),
            O::WriteU64 { buf, value } => kind(real[buf].write_u64(value), done),
            O::WriteU16Be { buf, value } => kind(real[buf].write_u16_be(value), done),
            O::WriteU32Be { buf, value } => kind(real[buf].write_u32_be(value), done),
            O::WriteU64Be { buf, value } => kind(real[buf].write_u64_be(value), done),
            O::WriteBuffer { dst, src } => {
                let (d, s) = pair_mut(real, dst, src);
                kind(d.write_buffer(s), done)
            }
            O::Get { buf, index } => kind(real[buf].get(index), Outcome::Byte),
            O::Set { buf, index, byte } => kind(real[buf].set(index, byte), done),
            O::GetRange { buf, start, end } =>
            {
                #[allow(clippy::reversed_empty_ranges)]
                kind(real[buf].get_range(start..end), bytes)
            }
            O::SetRange {
                buf,
                start,
                ref bytes,
                end,
            } => kind(real[buf].set_range(start..end, bytes), done),
        }
    }

    /// Runs `op` on both sides and compares the results, then every buffer's capacity,
    /// position, limit and bytes.
    ///
    /// # Errors
    /// A description of the first difference found.
    pub fn apply(&mut self, op: &BufferOp) -> Result<(), String> {
        let Some(op) = self.reduce(op) else {
            return Ok(());
        };
        let want = self.model.apply(&op);
        let got = self.apply_real(&op);
        if want != got {
            return Err(format!("{op:?}: model gave {want:?}, Buffer gave {got:?}"));
        }
        self.check().map_err(|e| format!("after {op:?}: {e}"))
    }

    /// Compares every buffer with its model.
    ///
    /// # Errors
    /// A description of the first difference found.
    pub fn check(&self) -> Result<(), String> {
        if self.real.len() != self.model.buffers.len() {
            return Err("buffer counts differ".into());
        }
        for (i, (real, model)) in self.real.iter().zip(&self.model.buffers).enumerate() {
            let got = (real.capacity(), real.position(), real.limit());
            let want = (model.capacity, model.position, model.limit);
            if got != want {
                return Err(format!(
                    "buffer {i}: (capacity, position, limit) is {got:?}, model says {want:?}"
                ));
            }
            let mut all = real.clone();
            all.clear();
            let bytes = all
                .get_range(0..all.capacity())
                .map_err(|e| format!("buffer {i}: reading all bytes failed: {e}"))?;
            if *bytes != *self.model.arrays[model.bytes] {
                return Err(format!(
                    "buffer {i}: bytes are {:?}, model says {:?}",
                    &*bytes, self.model.arrays[model.bytes]
                ));
            }
        }
        Ok(())
    }
}

fn pair_mut(v: &mut [Buffer], a: usize, b: usize) -> (&mut Buffer, &mut Buffer) {
    if a < b {
        let (left, right) = v.split_at_mut(b);
        (&mut left[a], &mut right[0])
    } else {
        let (left, right) = v.split_at_mut(a);
        (&mut right[0], &mut left[b])
    }
}
