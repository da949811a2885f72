//! Who may use the HTTP API: a bearer token and/or users with SHA-256 password hashes
//! (`[host] http_auth`), checked on every request in constant time.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use monitor_core::http::{Request, Response};

/// A SHA-256 digest.
type Digest = [u8; 32];

/// The credentials the HTTP API accepts (`[host] http_auth`); a request needs one of them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpAuth {
    // The token's digest, so comparisons take the same time whatever the lengths.
    bearer: Option<Digest>,
    basic: BTreeMap<String, Digest>,
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets.
        f.debug_struct("HttpAuth")
            .field("bearer", &self.bearer.is_some())
            .field("basic_users", &self.basic.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl HttpAuth {
    /// Accepts `Authorization: Bearer <token>`.
    #[must_use]
    pub fn with_bearer_token(mut self, token: &str) -> Self {
        self.bearer = Some(sha256(token.as_bytes()));
        self
    }

    /// Accepts `Authorization: Basic` for `user` with the password whose SHA-256 is `hash`
    /// (`sha256:<64 hex digits>`).
    ///
    /// # Errors
    ///
    /// `hash` is not of that form; the message says what is expected.
    pub fn with_basic_user(mut self, user: &str, hash: &str) -> Result<Self, String> {
        let digest = parse_sha256(hash).ok_or_else(|| {
            format!(
                "expected \"sha256:<64 hex digits>\", the SHA-256 of the password \
                 (`printf %s 'password' | sha256sum`), not `{}`",
                hash.chars().take(12).collect::<String>()
            )
        })?;
        self.basic.insert(user.to_owned(), digest);
        Ok(self)
    }

    /// Whether the request's `Authorization` header carries accepted credentials.
    pub fn allows(&self, request: &Request<'_>) -> bool {
        let Some(authorization) = request.header("authorization") else {
            return false;
        };
        let (scheme, credentials) = authorization
            .trim()
            .split_once(' ')
            .unwrap_or((authorization, ""));
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self
                .bearer
                .is_some_and(|d| same(&d, &sha256(credentials.as_bytes())));
        }
        if scheme.eq_ignore_ascii_case("basic") && !self.basic.is_empty() {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials) else {
                return false;
            };
            let decoded = String::from_utf8_lossy(&decoded);
            let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
            let given = sha256(password.as_bytes());
            // An unknown user costs the same comparison as a known one.
            let expected = self.basic.get(user).copied();
            let matches = same(&expected.unwrap_or([0; 32]), &given);
            return expected.is_some() && matches;
        }
        false
    }

    /// `401 Unauthorized` with the `WWW-Authenticate` challenges for what is accepted.
    pub fn challenge(&self) -> Response {
        let mut r = Response::new(
            401,
            "text/plain; charset=utf-8",
            "unauthorized: send the credentials of [host] http_auth in an Authorization header\n",
        );
        if !self.basic.is_empty() {
            r = r.with_header("WWW-Authenticate", "Basic realm=\"monitor-host\"");
        }
        if self.bearer.is_some() {
            r = r.with_header("WWW-Authenticate", "Bearer realm=\"monitor-host\"");
        }
        r
    }
}

fn sha256(bytes: &[u8]) -> Digest {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// Equality in time that does not depend on where the digests differ.
fn same(a: &Digest, b: &Digest) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn parse_sha256(hash: &str) -> Option<Digest> {
    let hex = hash.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(authorization: &str) -> Vec<(&str, &str)> {
        vec![("authorization", authorization)]
    }

    fn allows(auth: &HttpAuth, authorization: &str) -> bool {
        let headers = with(authorization);
        auth.allows(&Request {
            headers: &headers,
            ..Request::default()
        })
    }

    // `printf %s secret | sha256sum`
    const SECRET: &str = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

    #[test]
    fn a_bearer_token_must_match_exactly() {
        let auth = HttpAuth::default().with_bearer_token("s3cret");
        assert!(allows(&auth, "Bearer s3cret"));
        assert!(allows(&auth, "bearer  s3cret "));
        assert!(!allows(&auth, "Bearer s3cre"));
        assert!(!allows(&auth, "Bearer s3cret2"));
        assert!(!allows(&auth, "Basic czNjcmV0"));
        assert!(!auth.allows(&Request::default()));
    }

    #[test]
    fn basic_users_are_checked_against_their_hash() {
        let auth = HttpAuth::default()
            .with_basic_user("alice", SECRET)
            .unwrap();
        // alice:secret, alice:wrong, bob:secret
        assert!(allows(&auth, "Basic YWxpY2U6c2VjcmV0"));
        assert!(!allows(&auth, "Basic YWxpY2U6d3Jvbmc="));
        assert!(!allows(&auth, "Basic Ym9iOnNlY3JldA=="));
        assert!(!allows(&auth, "Basic !!!"));
        assert!(!allows(&auth, "Bearer secret"), "no token configured");
        let challenge = auth.challenge();
        assert_eq!(challenge.status, 401);
        assert_eq!(
            challenge.headers,
            vec![(
                "WWW-Authenticate",
                "Basic realm=\"monitor-host\"".to_owned()
            )]
        );
    }

    #[test]
    fn a_hash_that_is_not_sha256_hex_is_refused() {
        for bad in [
            "secret",
            "sha256:abc",
            &SECRET.replace('2', "z"),
            "$2b$12$abc",
        ] {
            assert!(
                HttpAuth::default().with_basic_user("a", bad).is_err(),
                "{bad}"
            );
        }
    }
}
