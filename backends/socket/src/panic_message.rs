//! The text of a caught panic, for the one log line every backend writes when user code
//! (a session, its factory, a handler) panics and only its connection is dropped.

use std::any::Any;

/// The text of a panic payload (`&str` or `String`), or a placeholder.
#[must_use]
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
}
