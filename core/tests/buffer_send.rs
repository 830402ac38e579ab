//! `Buffer` is `Send`, and a duplicate moved to another thread writes bytes the original reads.
//! (Kept out of `core/src`: the core itself never spawns threads.)

use concurrence_core::Buffer;

#[test]
fn buffer_is_send_and_duplicates_cross_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Buffer>();
    let mut a = Buffer::new(4);
    let mut b = a.duplicate();
    std::thread::spawn(move || b.write_int(0xdead_beef).unwrap())
        .join()
        .unwrap();
    a.set_limit(4).unwrap();
    assert_eq!(a.read_int().unwrap(), 0xdead_beef);
}
