//! Runs parsed meta commands against the store and writes memcached 1.6.18's replies: the
//! return code, then the flags that return data in the order the request gave them.
//!
//! Each reply line is built whole before it is written: a flag late in the line can still turn
//! it into an error (an opaque token too long), as in memcached.

use std::hash::BuildHasher;

use concurrence_core::{FramingError, StreamWriter, Timestamp};

use super::command::{CommandError, StoreMode};
use super::meta::{MAX_OPAQUE_LENGTH, MetaKey, MetaRequest, MetaSetMode, base64_encode};
use super::slabs::slab_class;
use super::store::{ArithmeticOutcome, Slot, Store, StoreOutcome};

/// memcached's clock starts this many seconds before the process (`process_started`), so a
/// relative time of 0 never means "now".
const CLOCK_OFFSET: u64 = 62;

/// What a meta command needs besides its request: the time, and the server's start for
/// memcached's relative clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct MetaClock {
    pub now: Timestamp,
    pub started: Timestamp,
}

impl MetaClock {
    /// memcached's `current_time`: seconds since its clock's start.
    fn current_time(self) -> u64 {
        self.now.saturating_duration_since(self.started).as_secs() + CLOCK_OFFSET
    }
}

fn push_number(line: &mut Vec<u8>, number: impl itoa::Integer) {
    line.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
}

/// ` k<key>`, base64 again (and ` b`) when `binary` (the request's `b` on a miss, the item's
/// own mark on a hit, as memcached does).
fn push_key(line: &mut Vec<u8>, key: &MetaKey, binary: bool) {
    line.extend_from_slice(b" k");
    if binary {
        base64_encode(key.as_bytes(), line);
        line.extend_from_slice(b" b");
    } else {
        line.extend_from_slice(key.as_bytes());
    }
}

/// The opaque and key flags every reply returns, a miss's included.
fn push_opaque_and_key(
    line: &mut Vec<u8>,
    request: &MetaRequest<'_>,
    skip_first: bool,
) -> Result<(), CommandError> {
    for token in request.tokens.iter().skip(usize::from(skip_first)) {
        match token[0] {
            b'O' => {
                if token.len() > MAX_OPAQUE_LENGTH {
                    return Err(CommandError::MetaOpaqueTooLong);
                }
                line.push(b' ');
                line.extend_from_slice(token);
            }
            b'k' => push_key(line, &request.key, request.key.binary),
            _ => {}
        }
    }
    Ok(())
}

/// ` t<seconds>`: -1 for never; an expiry already past wraps as memcached's unsigned
/// subtraction does.
fn push_ttl<H: BuildHasher>(line: &mut Vec<u8>, store: &Store<H>, slot: Slot, clock: MetaClock) {
    line.extend_from_slice(b" t");
    match store.ttl_seconds(slot, clock.now) {
        None => line.extend_from_slice(b"-1"),
        Some(0) => {
            #[allow(clippy::cast_possible_truncation)] // memcached's 32-bit clock, on purpose
            let wrapped = 1u32.wrapping_sub(clock.current_time() as u32);
            push_number(line, wrapped);
        }
        Some(seconds) => push_number(line, seconds),
    }
}

fn finish(
    writer: &mut StreamWriter,
    line: &mut Vec<u8>,
    result: Result<(), CommandError>,
) -> Result<(), FramingError> {
    match result {
        Ok(()) => {
            line.extend_from_slice(b"\r\n");
            writer.write_bytes(line)
        }
        Err(error) => writer.write_bytes(error.reply()),
    }
}

/// `mg`.
pub(super) fn meta_get<H: BuildHasher>(
    store: &mut Store<H>,
    request: &MetaRequest<'_>,
    clock: MetaClock,
    writer: &mut StreamWriter,
) -> Result<(), FramingError> {
    let key = request.key.as_bytes();
    let flags = request.flags;
    let now = clock.now;
    let mut slot = store.find(key, now);
    if let Some(found) = slot {
        if !flags.locked && !flags.no_update {
            store.fetch_bump(found, now);
        }
    }
    let mut created = false;
    if slot.is_none() && flags.vivify.is_some() {
        slot = store.vivify(key, 0, now);
        created = slot.is_some();
    }
    let mut line = Vec::with_capacity(64);
    let Some(slot) = slot else {
        let stats = store.stats_mut();
        if flags.ttl.is_some() {
            stats.cmd_touch += 1;
            stats.touch_misses += 1;
        } else {
            stats.cmd_get += 1;
            stats.get_misses += 1;
        }
        line.extend_from_slice(b"EN");
        let result = push_opaque_and_key(&mut line, request, false);
        if result.is_ok() && flags.quiet {
            return Ok(());
        }
        return finish(writer, &mut line, result);
    };
    let result = meta_get_hit(store, request, slot, created, clock, &mut line);
    if result.is_err() {
        return finish(writer, &mut line, result);
    }
    line.extend_from_slice(b"\r\n");
    writer.write_bytes(&line)?;
    if flags.value {
        writer.write_bytes(&store.item(slot).value)?;
        writer.write_bytes(b"\r\n")?;
    }
    if flags.locked && !flags.no_update {
        store.fetch_bump(slot, now);
    }
    let stats = store.stats_mut();
    if flags.ttl.is_some() {
        stats.cmd_touch += 1;
        stats.touch_hits += 1;
    } else {
        stats.cmd_get += 1;
        stats.get_hits += 1;
    }
    Ok(())
}

/// The reply line of an `mg` that found (or created) its item, without the CRLF.
fn meta_get_hit<H: BuildHasher>(
    store: &mut Store<H>,
    request: &MetaRequest<'_>,
    slot: Slot,
    created: bool,
    clock: MetaClock,
    line: &mut Vec<u8>,
) -> Result<(), CommandError> {
    let flags = request.flags;
    let now = clock.now;
    if flags.value {
        line.extend_from_slice(b"VA ");
        push_number(line, store.item(slot).value.len());
    } else {
        line.extend_from_slice(b"HD");
    }
    let mut won = false;
    for token in request.tokens.iter() {
        let item = store.item(slot);
        match token[0] {
            b'T' => store.set_exptime(slot, flags.ttl.unwrap_or(0), now),
            b'N' if created => {
                store.set_exptime(slot, flags.vivify.unwrap_or(0), now);
                won = true;
            }
            b'R' => {
                let threshold = store.exptime_seconds(flags.recache.unwrap_or(0), now);
                let left = store.ttl_seconds(slot, now);
                if !item.token_sent && !created {
                    if let (Some(left), Some(threshold)) = (left, threshold) {
                        won |= left < threshold;
                    }
                }
            }
            b's' => {
                line.extend_from_slice(b" s");
                push_number(line, item.value.len());
            }
            b't' => push_ttl(line, store, slot, clock),
            b'c' => {
                line.extend_from_slice(b" c");
                push_number(line, item.cas);
            }
            b'f' => {
                line.extend_from_slice(b" f");
                push_number(line, item.flags);
            }
            b'l' => {
                line.extend_from_slice(b" l");
                push_number(
                    line,
                    now.saturating_duration_since(item.last_access).as_secs(),
                );
            }
            b'h' => line.extend_from_slice(if item.fetched { b" h1" } else { b" h0" }),
            b'O' => {
                if token.len() > MAX_OPAQUE_LENGTH {
                    return Err(CommandError::MetaOpaqueTooLong);
                }
                line.push(b' ');
                line.extend_from_slice(token);
            }
            b'k' => push_key(line, &request.key, item.key_binary),
            _ => {}
        }
    }
    let item = store.item(slot);
    if item.token_sent {
        line.extend_from_slice(b" Z");
    }
    if item.stale {
        line.extend_from_slice(b" X");
        won |= !item.token_sent;
    }
    if won {
        line.extend_from_slice(b" W");
        store.mark_token_sent(slot);
    }
    Ok(())
}

/// `ms`, once its data block (with its CRLF) is here.
pub(super) fn meta_set<H: BuildHasher>(
    store: &mut Store<H>,
    request: &MetaRequest<'_>,
    mode: MetaSetMode,
    block: &[u8],
    clock: MetaClock,
    writer: &mut StreamWriter,
) -> Result<(), FramingError> {
    let Some(data) = block.strip_suffix(b"\r\n") else {
        return writer.write_bytes(b"CLIENT_ERROR bad data chunk\r\n");
    };
    let flags = request.flags;
    let cas = flags.compare_cas.unwrap_or(0);
    let mode = match (mode, flags.compare_cas) {
        (MetaSetMode::Set | MetaSetMode::Replace, Some(cas)) => StoreMode::Cas(cas),
        (MetaSetMode::Set, None) => StoreMode::Set,
        (MetaSetMode::Replace, None) => StoreMode::Replace,
        (MetaSetMode::Add, _) => StoreMode::Add,
        (MetaSetMode::Append, _) => StoreMode::Append,
        (MetaSetMode::Prepend, _) => StoreMode::Prepend,
    };
    let set_stale = flags.invalidate && matches!(mode, StoreMode::Cas(_));
    let key = request.key.as_bytes();
    let (outcome, new_cas) = store.store_item(
        mode,
        key,
        flags.client_flags,
        flags.ttl.unwrap_or(0),
        data,
        cas,
        set_stale,
        clock.now,
    );
    // The item linked is the request's own, marked binary, except for append and prepend,
    // which link a new item joining the two (memcached does not carry the mark over).
    if outcome == StoreOutcome::Stored
        && request.key.binary
        && !matches!(mode, StoreMode::Append | StoreMode::Prepend)
    {
        store.mark_key_binary(key);
    }
    let code: &[u8] = match outcome {
        StoreOutcome::Stored if flags.quiet => return Ok(()),
        StoreOutcome::Stored => b"HD",
        StoreOutcome::Exists => b"EX",
        StoreOutcome::NotFound => b"NF",
        StoreOutcome::NotStored => b"NS",
        StoreOutcome::OutOfMemory => return writer.write_bytes(outcome.reply()),
    };
    let mut line = Vec::with_capacity(64);
    line.extend_from_slice(code);
    // The data length is the first word: it starts with a digit, never a flag.
    for token in request.tokens.iter().skip(1) {
        match token[0] {
            b'O' => {
                line.push(b' ');
                line.extend_from_slice(token);
            }
            b'k' => push_key(&mut line, &request.key, request.key.binary),
            b'c' => {
                line.extend_from_slice(b" c");
                push_number(&mut line, new_cas);
            }
            _ => {}
        }
    }
    finish(writer, &mut line, Ok(()))
}

/// `md`.
pub(super) fn meta_delete<H: BuildHasher>(
    store: &mut Store<H>,
    request: &MetaRequest<'_>,
    clock: MetaClock,
    writer: &mut StreamWriter,
) -> Result<(), FramingError> {
    let flags = request.flags;
    let code: &[u8] = match store.find(request.key.as_bytes(), clock.now) {
        Some(slot)
            if flags
                .compare_cas
                .is_some_and(|cas| cas != store.item(slot).cas) =>
        {
            store.stats_mut().delete_misses += 1;
            b"EX"
        }
        Some(slot) => {
            if flags.invalidate {
                if let Some(ttl) = flags.ttl {
                    store.set_exptime(slot, ttl, clock.now);
                }
                store.invalidate(slot);
            } else {
                store.remove_at(slot);
            }
            if flags.quiet {
                return Ok(());
            }
            b"HD"
        }
        None => {
            store.stats_mut().delete_misses += 1;
            b"NF"
        }
    };
    let mut line = Vec::with_capacity(32);
    line.extend_from_slice(code);
    let result = push_opaque_and_key(&mut line, request, false);
    finish(writer, &mut line, result)
}

/// `ma`.
pub(super) fn meta_arithmetic<H: BuildHasher>(
    store: &mut Store<H>,
    request: &MetaRequest<'_>,
    incr: bool,
    clock: MetaClock,
    writer: &mut StreamWriter,
) -> Result<(), FramingError> {
    let flags = request.flags;
    let key = request.key.as_bytes();
    let now = clock.now;
    let cas = flags.compare_cas.unwrap_or(0);
    let mut line = Vec::with_capacity(64);
    let mut created = false;
    // `q` hides a nominal reply, but not an error found while writing it.
    let mut quiet = false;
    let (slot, number) = match store.arithmetic_if(incr, key, flags.delta, cas, now) {
        ArithmeticOutcome::Value(value) => {
            quiet = flags.quiet;
            (store.find(key, now), value)
        }
        ArithmeticOutcome::NonNumeric => {
            return writer
                .write_bytes(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
        }
        ArithmeticOutcome::NotFound if flags.vivify.is_some() => {
            let digits = itoa::Buffer::new()
                .format(flags.initial)
                .as_bytes()
                .to_vec();
            let (outcome, _) = store.store_item(StoreMode::Add, key, 0, 0, &digits, 0, false, now);
            if outcome == StoreOutcome::Stored {
                created = true;
                (store.find(key, now), flags.initial)
            } else {
                line.extend_from_slice(b"NS");
                (None, 0)
            }
        }
        ArithmeticOutcome::NotFound => {
            line.extend_from_slice(b"NF");
            (None, 0)
        }
        ArithmeticOutcome::CasMismatch => {
            line.extend_from_slice(b"EX");
            (None, 0)
        }
    };
    let Some(slot) = slot else {
        let result = push_opaque_and_key(&mut line, request, false);
        return finish(writer, &mut line, result);
    };
    let digits = itoa::Buffer::new().format(number).as_bytes().to_vec();
    if flags.value {
        line.extend_from_slice(b"VA ");
        push_number(&mut line, digits.len());
    } else {
        line.extend_from_slice(b"HD");
    }
    for token in request.tokens.iter() {
        match token[0] {
            b'c' => {
                line.extend_from_slice(b" c");
                push_number(&mut line, store.item(slot).cas);
            }
            b't' => push_ttl(&mut line, store, slot, clock),
            b'T' => store.set_exptime(slot, flags.ttl.unwrap_or(0), now),
            b'N' if created => store.set_exptime(slot, flags.vivify.unwrap_or(0), now),
            b'O' => {
                if token.len() > MAX_OPAQUE_LENGTH {
                    return writer.write_bytes(CommandError::MetaOpaqueTooLong.reply());
                }
                line.push(b' ');
                line.extend_from_slice(token);
            }
            b'k' => push_key(&mut line, &request.key, request.key.binary),
            _ => {}
        }
    }
    if quiet {
        return Ok(());
    }
    if flags.value {
        line.extend_from_slice(b"\r\n");
        line.extend_from_slice(&digits);
    }
    finish(writer, &mut line, Ok(()))
}

/// `me`: the item's metadata, as memcached prints it.
pub(super) fn meta_debug<H: BuildHasher>(
    store: &mut Store<H>,
    key: &MetaKey,
    clock: MetaClock,
    writer: &mut StreamWriter,
) -> Result<(), FramingError> {
    store.stats_mut().cmd_meta += 1;
    let Some(slot) = store.find(key.as_bytes(), clock.now) else {
        return writer.write_bytes(b"EN\r\n");
    };
    let mut line = Vec::with_capacity(128);
    line.extend_from_slice(b"ME ");
    if store.item(slot).key_binary {
        base64_encode(key.as_bytes(), &mut line);
    } else {
        line.extend_from_slice(key.as_bytes());
    }
    line.extend_from_slice(b" exp=");
    match store.ttl_seconds(slot, clock.now) {
        None => line.extend_from_slice(b"-1"),
        Some(left) => {
            if left > 0 {
                line.push(b'-');
            }
            push_number(&mut line, left);
        }
    }
    let item = store.item(slot);
    line.extend_from_slice(b" la=");
    push_number(
        &mut line,
        clock
            .now
            .saturating_duration_since(item.last_access)
            .as_secs(),
    );
    line.extend_from_slice(b" cas=");
    push_number(&mut line, item.cas);
    line.extend_from_slice(if item.fetched {
        b" fetch=yes cls="
    } else {
        b" fetch=no cls="
    });
    let size = Store::<H>::item_size(key.as_bytes().len(), item.value.len(), item.flags);
    push_number(&mut line, slab_class(size));
    line.extend_from_slice(b" size=");
    push_number(&mut line, size);
    finish(writer, &mut line, Ok(()))
}
