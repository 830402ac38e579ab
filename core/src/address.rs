//! `Address`: where a socket connects or listens, TCP or Unix, parsed from text.
//!
//! Mirrors the seed's `Socket.from_address` rule (a `(host, port)` tuple is TCP, a string is a
//! Unix path): `host:port` and `[v6]:port` are TCP; text starting with `/`, `./`, `../` or
//! `unix:` is a Unix socket path, and so is text without a colon that is not an IP address, a
//! bare number or `localhost` (`echo.sock`). No name resolution happens here (that would be I/O); the
//! one name accepted is `localhost`, as `127.0.0.1`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A TCP or Unix-domain socket address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Address {
    /// A TCP endpoint.
    Tcp(SocketAddr),
    /// A Unix-domain socket path.
    Unix(PathBuf),
}

/// Why a text is not an [`Address`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text is empty.
    #[error(
        "empty address: expected host:port (e.g. 127.0.0.1:11211) or a Unix path (e.g. /tmp/app.sock)"
    )]
    Empty,
    /// `unix:` with nothing after it.
    #[error("address {input:?} names no Unix socket path after 'unix:'")]
    EmptyUnixPath {
        /// The text given.
        input: String,
    },
    /// Not a path, and not `ip:port`.
    #[error(
        "address {input:?} is neither ip:port (e.g. 127.0.0.1:80, [::1]:80) nor a Unix socket path (e.g. /tmp/app.sock, app.sock){hint}"
    )]
    Invalid {
        /// The text given.
        input: String,
        /// Extra advice, e.g. about host names.
        hint: &'static str,
    },
}

impl Address {
    /// The TCP address, if this is one.
    #[must_use]
    pub fn as_tcp(&self) -> Option<SocketAddr> {
        match self {
            Address::Tcp(addr) => Some(*addr),
            Address::Unix(_) => None,
        }
    }

    /// The Unix path, if this is one.
    #[must_use]
    pub fn as_unix(&self) -> Option<&Path> {
        match self {
            Address::Unix(path) => Some(path),
            Address::Tcp(_) => None,
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, AddressError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(AddressError::EmptyUnixPath {
                    input: input.to_owned(),
                });
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if text.starts_with('/') || text.starts_with("./") || text.starts_with("../") {
            return Ok(Address::Unix(PathBuf::from(text)));
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Address::Tcp(addr));
        }
        // No colon: a relative Unix path (`echo.sock`), unless it is clearly a host without
        // its port (an IP address, a bare number, `localhost`).
        if !text.contains(':')
            && text.parse::<IpAddr>().is_err()
            && !text.bytes().all(|b| b.is_ascii_digit())
            && text != "localhost"
        {
            return Ok(Address::Unix(PathBuf::from(text)));
        }
        if let Some(port) = text.strip_prefix("localhost:") {
            if let Ok(port) = port.parse::<u16>() {
                return Ok(Address::Tcp(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port,
                )));
            }
        }
        let hint = match text.rsplit_once(':') {
            None => ": the port is missing",
            Some((host, _)) if host.contains(':') && !host.starts_with('[') => {
                ": write IPv6 addresses in brackets, e.g. [::1]:80"
            }
            Some((_, port)) if port.parse::<u16>().is_err() => {
                ": the port must be a number from 0 to 65535"
            }
            Some(_) => ": host names are not resolved here; use an IP address",
        };
        Err(AddressError::Invalid {
            input: input.to_owned(),
            hint,
        })
    }
}

impl fmt::Display for Address {
    /// Text that parses back to the same address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Unix(path) => {
                let text = path.display().to_string();
                if text.starts_with('/') || text.starts_with("./") || text.starts_with("../") {
                    f.write_str(&text)
                } else {
                    write!(f, "unix:{text}")
                }
            }
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address::Tcp(addr)
    }
}

impl From<PathBuf> for Address {
    fn from(path: PathBuf) -> Self {
        Address::Unix(path)
    }
}

impl From<&Path> for Address {
    fn from(path: &Path) -> Self {
        Address::Unix(path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_unix_forms() {
        let tcp: Address = "127.0.0.1:11211".parse().unwrap();
        assert_eq!(tcp.as_tcp(), Some("127.0.0.1:11211".parse().unwrap()));
        let v6: Address = "[::1]:80".parse().unwrap();
        assert_eq!(v6.to_string(), "[::1]:80");
        let local: Address = "localhost:7000".parse().unwrap();
        assert_eq!(local.to_string(), "127.0.0.1:7000");
        for path in ["/tmp/a.sock", "./a.sock", "../a.sock"] {
            let addr: Address = path.parse().unwrap();
            assert_eq!(addr.as_unix(), Some(Path::new(path)));
            assert_eq!(addr.to_string(), path);
        }
        let relative: Address = "echo.sock".parse().unwrap();
        assert_eq!(relative.as_unix(), Some(Path::new("echo.sock")));
        assert_eq!(relative.to_string().parse::<Address>().unwrap(), relative);
        let prefixed: Address = "unix:rel.sock".parse().unwrap();
        assert_eq!(prefixed.as_unix(), Some(Path::new("rel.sock")));
        assert_eq!(prefixed.to_string(), "unix:rel.sock");
        assert_eq!(prefixed.to_string().parse::<Address>().unwrap(), prefixed);
    }

    #[test]
    fn bad_text_is_a_typed_error_naming_the_input() {
        assert_eq!("".parse::<Address>(), Err(AddressError::Empty));
        assert!(matches!(
            "unix:".parse::<Address>(),
            Err(AddressError::EmptyUnixPath { .. })
        ));
        for (text, hint) in [
            ("example.com:80", "not resolved"),
            ("127.0.0.1", "port is missing"),
            ("7000", "port is missing"),
            ("localhost", "port is missing"),
            ("127.0.0.1:99999", "0 to 65535"),
            ("::1:80", "brackets"),
        ] {
            let err = text.parse::<Address>().unwrap_err();
            let message = err.to_string();
            assert!(message.contains(text), "{message}");
            assert!(message.contains(hint), "{message}");
        }
    }
}
