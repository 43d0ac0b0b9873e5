//! The HTTP token: read from `http.token_file` (`serve --token-file`), or made there with a
//! random value on first start and printed once; required for every endpoint except
//! `/healthz` whenever one is set, and a listener off loopback refuses to start without one.
//!
//! Accepted as `Authorization: Bearer TOKEN` (scripts) or as the password of HTTP Basic
//! (browsers ask for it themselves, and then send it with every request of the status page,
//! its live view included). Compared in constant time (`subtle`).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::bounded_read;

/// Fewer characters than this in a token file is refused as guessable.
pub const MIN_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the HTTP token {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the HTTP token {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the HTTP token in {} is shorter than {MIN_LEN} characters", path.display())]
    Short { path: PathBuf },
    #[error(
        "{listen} can be reached from the network, so it needs a token: set http.token_file \
         (maskgate serve: --token-file), e.g. /etc/maskgate/http-token (a random token is \
         written there on first start), or listen on 127.0.0.1"
    )]
    Unprotected { listen: SocketAddr },
}

/// A secret the clients must show.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn new(secret: &str) -> Self {
        Self(secret.trim().as_bytes().to_vec())
    }

    /// The token in `path`; a missing file is created (mode 0600, never overwriting) with 32
    /// random bytes in hex, and that token is printed once on stderr.
    pub fn load_or_create(path: &Path) -> Result<Self, AuthError> {
        match bounded_read::read_to_string(path, bounded_read::TEXT_LIMIT) {
            Ok(text) => {
                let t = Self::new(&text);
                if t.0.len() < MIN_LEN {
                    return Err(AuthError::Short {
                        path: path.to_path_buf(),
                    });
                }
                Ok(t)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(source) => Err(AuthError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn create(path: &Path) -> Result<Self, AuthError> {
        let err = |source| AuthError::Create {
            path: path.to_path_buf(),
            source,
        };
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw).map_err(|e| err(io::Error::other(e)))?;
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(err)?
        };
        f.write_all(format!("{hex}\n").as_bytes()).map_err(err)?;
        eprintln!(
            "maskgate: generated the HTTP token in {} (shown once): {hex}",
            path.display()
        );
        tracing::info!(file = %path.display(), "generated a new HTTP token");
        Ok(Self::new(&hex))
    }

    /// Whether an `Authorization` header value carries this token (Bearer, or Basic with any
    /// user name).
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(h) = authorization.and_then(|h| std::str::from_utf8(h).ok()) else {
            return false;
        };
        let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h, ""));
        let shown: Vec<u8> = if scheme.eq_ignore_ascii_case("bearer") {
            rest.trim().as_bytes().to_vec()
        } else if scheme.eq_ignore_ascii_case("basic") {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
                return false;
            };
            match raw.iter().position(|&b| b == b':') {
                Some(i) => raw[i + 1..].to_vec(),
                None => return false,
            }
        } else {
            return false;
        };
        // the length is not secret (the generated one is always 64); the bytes are
        bool::from(shown.ct_eq(&self.0))
    }
}

/// The token the listener on `listen` uses: the one in `token_file` when set; none on
/// loopback without one; refused off loopback without one.
pub fn for_listener(listen: SocketAddr, token_file: &str) -> Result<Option<Token>, AuthError> {
    if !token_file.is_empty() {
        return Token::load_or_create(Path::new(token_file)).map(Some);
    }
    if listen.ip().is_loopback() {
        Ok(None)
    } else {
        Err(AuthError::Unprotected { listen })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> String {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {b}")
    }

    #[test]
    fn bearer_and_basic_are_accepted_only_with_the_token() {
        let t = Token::new("0123456789abcdef0123\n");
        assert!(t.accepts(Some(b"Bearer 0123456789abcdef0123")));
        assert!(t.accepts(Some(b"bearer  0123456789abcdef0123 ")));
        assert!(t.accepts(Some(basic("installer", "0123456789abcdef0123").as_bytes())));
        assert!(t.accepts(Some(basic("", "0123456789abcdef0123").as_bytes())));
        for bad in [
            "Bearer 0123456789abcdef012",
            "Bearer 0123456789abcdef01234",
            "Bearer ",
            "Token 0123456789abcdef0123",
            "0123456789abcdef0123",
            "Basic !!!",
        ] {
            assert!(!t.accepts(Some(bad.as_bytes())), "{bad}");
        }
        assert!(!t.accepts(Some(basic("0123456789abcdef0123", "x").as_bytes())));
        assert!(!t.accepts(None));
        assert!(!t.accepts(Some(b"\xff\xfe")));
    }

    #[test]
    fn off_loopback_needs_a_token_and_a_missing_file_is_made_once() {
        let open: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let e = for_listener(open, "").unwrap_err();
        assert!(matches!(e, AuthError::Unprotected { .. }));
        assert!(e.to_string().contains("http.token_file"), "{e}");
        assert!(for_listener(lo, "").unwrap().is_none());

        let dir = std::env::temp_dir().join(format!("maskgate-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        let _ = std::fs::remove_file(&f);
        let made = for_listener(open, f.to_str().unwrap()).unwrap().unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert!(made.accepts(Some(format!("Bearer {}", text.trim()).as_bytes())));
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // the second start reads it back, unchanged
        let again = Token::load_or_create(&f).unwrap();
        assert_eq!(again.0, made.0);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), text);
        std::fs::write(&f, "short\n").unwrap();
        assert!(matches!(
            Token::load_or_create(&f),
            Err(AuthError::Short { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
