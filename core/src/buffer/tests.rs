//! Unit tests: every `Buffer` method, every error path, and "a failure changes nothing".

use super::*;

fn filled(bytes: &[u8]) -> Buffer {
    let mut buf = Buffer::new(bytes.len());
    buf.write_bytes(bytes).unwrap();
    buf.flip();
    buf
}

fn state(buf: &Buffer) -> (usize, usize, Vec<u8>) {
    let mut all = buf.clone();
    all.clear();
    let bytes = all.get_range(0..all.capacity()).unwrap().into_owned();
    (buf.position(), buf.limit(), bytes)
}

/// Runs a failing `op` and checks it returned the expected kind and touched nothing.
fn fails_unchanged(
    buf: &mut Buffer,
    op: impl FnOnce(&mut Buffer) -> Result<(), BufferError>,
    expect: fn(&BufferError) -> bool,
) {
    let before = state(buf);
    let err = op(buf).expect_err("operation should fail");
    assert!(expect(&err), "unexpected error {err:?}");
    assert!(!err.to_string().is_empty());
    assert_eq!(state(buf), before, "a failing call changed the buffer");
}

fn is_overflow(e: &BufferError) -> bool {
    matches!(e, BufferError::Overflow { .. })
}
fn is_underflow(e: &BufferError) -> bool {
    matches!(e, BufferError::Underflow { .. })
}
fn is_invalid(e: &BufferError) -> bool {
    matches!(e, BufferError::InvalidArgument { .. })
}

#[test]
fn new_buffer_is_zeroed_and_ready_to_fill() {
    let buf = Buffer::new(16);
    assert_eq!((buf.capacity(), buf.position(), buf.limit()), (16, 0, 16));
    assert_eq!(buf.remaining(), 16);
    assert_eq!(state(&buf).2, vec![0; 16]);
    let empty = Buffer::new(0);
    assert_eq!((empty.capacity(), empty.remaining()), (0, 0));
}

#[test]
fn position_and_limit_setters_follow_nio() {
    let mut buf = Buffer::new(10);
    buf.set_position(4).unwrap();
    assert_eq!(buf.position(), 4);
    // As the seed: a limit below the position is refused and changes nothing.
    fails_unchanged(&mut buf, |b| b.set_limit(2), is_invalid);
    let err = buf.set_limit(2).unwrap_err();
    assert!(
        err.to_string().contains("limit must be >= position"),
        "{err}"
    );
    buf.set_limit(4).unwrap();
    fails_unchanged(&mut buf, |b| b.set_position(5), is_invalid);
    fails_unchanged(&mut buf, |b| b.set_limit(11), is_invalid);
    buf.set_limit(10).unwrap();
    buf.set_position(10).unwrap();
    assert_eq!(buf.remaining(), 0);
}

#[test]
fn clear_flip_rewind() {
    let mut buf = Buffer::new(8);
    buf.write_bytes(b"abc").unwrap();
    buf.flip();
    assert_eq!(
        (buf.position(), buf.limit()),
        (0, 3),
        "flip: ready to drain"
    );
    assert_eq!(buf.read_byte().unwrap(), b'a');
    buf.rewind();
    assert_eq!((buf.position(), buf.limit()), (0, 3));
    buf.clear();
    assert_eq!(
        (buf.position(), buf.limit()),
        (0, 8),
        "clear: ready to fill"
    );
    assert_eq!(&state(&buf).2[..3], b"abc", "clear keeps the bytes");
}

#[test]
fn compact_moves_unread_bytes_to_the_front() {
    let mut buf = filled(b"abcdef");
    buf.skip(2).unwrap();
    buf.set_limit(5).unwrap();
    buf.compact();
    assert_eq!((buf.position(), buf.limit()), (3, 6));
    assert_eq!(&state(&buf).2[..3], b"cde");
    // Nothing unread: position 0.
    let mut done = filled(b"xy");
    done.skip(2).unwrap();
    done.compact();
    assert_eq!((done.position(), done.limit()), (0, 2));
}

#[test]
fn duplicate_shares_bytes_not_indices() {
    let mut a = Buffer::new(8);
    a.write_bytes(b"hi").unwrap();
    let mut b = a.duplicate();
    assert!(a.shares_bytes_with(&b));
    assert_eq!((b.position(), b.limit()), (2, 8));
    b.write_bytes(b"!!").unwrap();
    assert_eq!(a.position(), 2, "indices are independent");
    a.flip();
    assert_eq!(a.get_range(0..2).unwrap().as_ref(), b"hi");
    a.set_limit(4).unwrap();
    assert_eq!(
        a.read_remaining().as_ref(),
        b"hi!!",
        "written through b, read through a"
    );
    // The bytes outlive the original.
    drop(a);
    b.flip();
    assert_eq!(b.read_remaining().as_ref(), b"hi!!");
    // A clone is a deep copy.
    let mut c = b.clone();
    assert!(!c.shares_bytes_with(&b));
    c.set(0, b'X').unwrap();
    assert_eq!(b.get(0).unwrap(), b'h');
}

#[test]
fn copy_from_is_absolute_and_checked() {
    let src = filled(b"0123456789");
    let mut dst = Buffer::new(6);
    dst.copy_from(&src, 2, 1, 4).unwrap();
    assert_eq!(state(&dst).2, b"\x002345\x00");
    assert_eq!(dst.position(), 0, "absolute: position unchanged");
    fails_unchanged(&mut dst, |d| d.copy_from(&src, 8, 0, 3), is_invalid);
    fails_unchanged(&mut dst, |d| d.copy_from(&src, 0, 4, 3), is_invalid);
    fails_unchanged(
        &mut dst,
        |d| d.copy_from(&src, usize::MAX, 0, 2),
        is_invalid,
    );
    // Overlapping copy between duplicates behaves like a copy through a temporary.
    let mut a = filled(b"abcdef");
    let b = a.duplicate();
    a.copy_from(&b, 0, 2, 4).unwrap();
    assert_eq!(state(&a).2, b"ababcd");
}

#[test]
fn skip_and_single_bytes() {
    let mut buf = filled(b"xyz");
    buf.skip(1).unwrap();
    assert_eq!(buf.read_byte().unwrap(), b'y');
    fails_unchanged(&mut buf, |b| b.skip(2), is_underflow);
    buf.skip(1).unwrap();
    fails_unchanged(&mut buf, |b| b.read_byte().map(drop), is_underflow);
    let mut w = Buffer::new(1);
    w.write_byte(9).unwrap();
    fails_unchanged(&mut w, |b| b.write_byte(1), is_overflow);
}

#[test]
fn read_bytes_and_remaining() {
    let mut buf = filled(b"abcdef");
    assert_eq!(buf.read_bytes(2).unwrap().as_ref(), b"ab");
    fails_unchanged(&mut buf, |b| b.read_bytes(5).map(drop), is_underflow);
    fails_unchanged(
        &mut buf,
        |b| b.read_bytes(usize::MAX).map(drop),
        is_underflow,
    );
    assert_eq!(buf.read_bytes(0).unwrap().as_ref(), b"");
    assert_eq!(buf.read_remaining().as_ref(), b"cdef");
    assert_eq!(buf.read_remaining().as_ref(), b"");
}

#[test]
fn read_bytes_until_consumes_the_delimiter() {
    let mut buf = filled(b"key=value;rest");
    assert_eq!(buf.read_bytes_until(b'=').unwrap().as_ref(), b"key");
    assert_eq!(buf.read_bytes_until(b';').unwrap().as_ref(), b"value");
    fails_unchanged(
        &mut buf,
        |b| b.read_bytes_until(b';').map(drop),
        is_underflow,
    );
    assert_eq!(buf.read_remaining().as_ref(), b"rest");
}

#[test]
fn read_line_lf_crlf_and_lone_cr() {
    let mut buf = filled(b"one\r\n\ntwo\nthr\ree\r\n\r\nlast");
    assert_eq!(buf.read_line(false).unwrap().as_ref(), b"one");
    assert_eq!(
        buf.read_line(false).unwrap().as_ref(),
        b"",
        "empty line after CRLF"
    );
    assert_eq!(buf.read_line(true).unwrap().as_ref(), b"two\n");
    assert_eq!(
        buf.read_line(false).unwrap().as_ref(),
        b"thr\ree",
        "lone CR is data"
    );
    assert_eq!(buf.read_line(true).unwrap().as_ref(), b"\r\n");
    fails_unchanged(&mut buf, |b| b.read_line(false).map(drop), is_underflow);
    assert_eq!(buf.read_remaining().as_ref(), b"last");
}

#[test]
fn read_line_does_not_look_before_the_position() {
    // The original looked one byte before the position for the CR: "\r" + "\n" across a
    // consumed boundary must not shorten the next (empty) line below zero or eat data.
    let mut buf = filled(b"a\r\nb\r\n");
    buf.skip(2).unwrap(); // position at the LF of the first line
    assert_eq!(buf.read_line(false).unwrap().as_ref(), b"");
    assert_eq!(buf.read_line(false).unwrap().as_ref(), b"b");
}

#[test]
fn integers_little_and_big_endian() {
    let mut buf = Buffer::new(64);
    buf.write_short(0x0102).unwrap();
    buf.write_int(0x0304_0506).unwrap();
    buf.write_u64(0x0708_090a_0b0c_0d0e).unwrap();
    buf.write_u16_be(0x0102).unwrap();
    buf.write_u32_be(0x0304_0506).unwrap();
    buf.write_u64_be(0x0708_090a_0b0c_0d0e).unwrap();
    buf.flip();
    assert_eq!(
        buf.get_range(0..2).unwrap().as_ref(),
        [2, 1],
        "little-endian"
    );
    assert_eq!(
        buf.get_range(14..16).unwrap().as_ref(),
        [1, 2],
        "big-endian"
    );
    assert_eq!(buf.read_short().unwrap(), 0x0102);
    assert_eq!(buf.read_int().unwrap(), 0x0304_0506);
    assert_eq!(buf.read_u64().unwrap(), 0x0708_090a_0b0c_0d0e);
    assert_eq!(buf.read_u16_be().unwrap(), 0x0102);
    assert_eq!(buf.read_u32_be().unwrap(), 0x0304_0506);
    assert_eq!(buf.read_u64_be().unwrap(), 0x0708_090a_0b0c_0d0e);

    let mut short = filled(b"abc");
    fails_unchanged(&mut short, |b| b.read_int().map(drop), is_underflow);
    fails_unchanged(&mut short, |b| b.read_u64().map(drop), is_underflow);
    fails_unchanged(&mut short, |b| b.read_u32_be().map(drop), is_underflow);
    fails_unchanged(&mut short, |b| b.read_u64_be().map(drop), is_underflow);
    short.skip(2).unwrap();
    fails_unchanged(&mut short, |b| b.read_short().map(drop), is_underflow);
    fails_unchanged(&mut short, |b| b.read_u16_be().map(drop), is_underflow);
    let mut room = Buffer::new(3);
    room.write_byte(0).unwrap();
    fails_unchanged(&mut room, |b| b.write_int(1), is_overflow);
    fails_unchanged(&mut room, |b| b.write_u64(1), is_overflow);
    fails_unchanged(&mut room, |b| b.write_u32_be(1), is_overflow);
    fails_unchanged(&mut room, |b| b.write_u64_be(1), is_overflow);
    room.write_short(7).unwrap();
    fails_unchanged(&mut room, |b| b.write_short(1), is_overflow);
    fails_unchanged(&mut room, |b| b.write_u16_be(1), is_overflow);
    fails_unchanged(&mut room, |b| b.write_bytes(b"x"), is_overflow);
}

#[test]
fn write_buffer_moves_both_positions() {
    let mut src = filled(b"hello");
    src.skip(1).unwrap();
    let mut dst = Buffer::new(8);
    dst.write_byte(b'>').unwrap();
    dst.write_buffer(&mut src).unwrap();
    assert_eq!((dst.position(), src.position()), (5, 5));
    dst.flip();
    assert_eq!(dst.read_remaining().as_ref(), b">ello");

    let mut big = filled(b"0123456789");
    let mut small = Buffer::new(4);
    let src_before = state(&big);
    fails_unchanged(&mut small, |s| s.write_buffer(&mut big), is_overflow);
    assert_eq!(state(&big), src_before, "the source is unchanged too");

    // Between duplicates, overlapping.
    let mut a = filled(b"abcdef");
    let mut b = a.duplicate();
    b.skip(1).unwrap();
    b.set_limit(4).unwrap();
    a.set_position(2).unwrap();
    a.write_buffer(&mut b).unwrap();
    assert_eq!(state(&a).2, b"abbcdf");
}

#[test]
fn absolute_get_set_and_ranges() {
    let mut buf = filled(b"abcd");
    assert_eq!(buf.get(3).unwrap(), b'd');
    buf.set(0, b'A').unwrap();
    assert_eq!(buf.position(), 0);
    buf.set_range(1..3, b"BC").unwrap();
    assert_eq!(buf.get_range(0..4).unwrap().as_ref(), b"ABCd");
    buf.set_limit(2).unwrap();
    fails_unchanged(&mut buf, |b| b.get(2).map(drop), is_invalid);
    fails_unchanged(&mut buf, |b| b.set(2, 0), is_invalid);
    fails_unchanged(&mut buf, |b| b.get_range(1..3).map(drop), is_invalid);
    #[allow(clippy::reversed_empty_ranges)]
    fails_unchanged(&mut buf, |b| b.get_range(2..1).map(drop), is_invalid);
    fails_unchanged(&mut buf, |b| b.set_range(0..2, b"x"), is_invalid);
    fails_unchanged(&mut buf, |b| b.set_range(0..3, b"xyz"), is_invalid);
}

#[test]
fn fill_and_drain_with_closures() {
    let mut buf = Buffer::new(8);
    let n = buf
        .fill_with(|room| {
            room[..3].copy_from_slice(b"abc");
            Ok::<_, ()>(3)
        })
        .unwrap();
    assert_eq!((n, buf.position()), (3, 3));
    assert_eq!(buf.fill_with(|_| Err::<usize, _>("boom")), Err("boom"));
    assert_eq!(buf.position(), 3, "a failed fill moves nothing");
    assert_eq!(buf.fill_with(|_| Ok::<_, ()>(100)).unwrap(), 5, "clamped");
    buf.flip();
    let mut out = Vec::new();
    buf.drain_with(|bytes| {
        out.extend_from_slice(&bytes[..2]);
        Ok::<_, ()>(2)
    })
    .unwrap();
    assert_eq!((out.as_slice(), buf.position()), (&b"ab"[..], 2));
}

#[test]
fn results_borrow_when_owned_and_copy_when_shared() {
    let mut owned = filled(b"line\n");
    assert!(matches!(owned.read_line(false).unwrap(), Cow::Borrowed(_)));
    let mut shared = filled(b"line\n");
    let _dup = shared.duplicate();
    assert!(matches!(shared.read_line(false).unwrap(), Cow::Owned(_)));
}

#[test]
fn debug_and_error_messages_name_the_operation() {
    let mut buf = Buffer::new(2);
    let err = buf.write_int(1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "buffer overflow: write_int needs 4 bytes but only 2 remain before the limit"
    );
    let err = buf.set_limit(3).unwrap_err();
    assert!(err.to_string().contains("set_limit"), "{err}");
    assert!(format!("{buf:?}").contains("capacity: 2"));
}

#[test]
fn read_bytes_until_any_and_the_scan_cache_see_every_write() {
    let mut buf = filled(b"a,b;c,d;");
    let (part, which) = buf.read_bytes_until_any(b",;").unwrap();
    assert_eq!((part.as_ref(), which), (&b"a"[..], b','));
    // A write after the cached scan: the next scan must see the new bytes, not the old mask.
    let here = buf.position();
    buf.set(here + 1, b'X').unwrap(); // "b;" -> "bX"
    let (part, which) = buf.read_bytes_until_any(b",;").unwrap();
    assert_eq!((part.as_ref(), which), (&b"bXc"[..], b','));
    assert_eq!(buf.read_bytes_until(b';').unwrap().as_ref(), b"d" as &[u8]);
    fails_unchanged(
        &mut buf,
        |b| b.read_bytes_until_any(b"").map(drop),
        is_invalid,
    );
    fails_unchanged(
        &mut buf,
        |b| b.read_bytes_until_any(b"abcd").map(drop),
        is_invalid,
    );
}
