//! What a caller presents: an `authorization` header (Bearer or Basic) or
//! a `session` cookie, read but not yet checked.

use base64::{Engine, engine::general_purpose::STANDARD};

/// What a caller presented, before it is checked.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `authorization: Bearer <JWT or API token>`.
    Bearer(String),
    /// `authorization: Basic base64(user:password)`, carrying an API token.
    Basic { username: String, password: String },
    /// The `session` cookie (seed 004).
    Session(String),
}

impl std::fmt::Debug for Credentials {
    /// Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Bearer(_) => "Bearer",
            Self::Basic { .. } => "Basic",
            Self::Session(_) => "Session",
        };
        write!(f, "Credentials::{kind}(***)")
    }
}

impl Credentials {
    /// Reads the credentials from an `authorization` header value and the
    /// `cookie` header values; `authorization` wins when both are there.
    /// Anything malformed is `None`, which authenticates nobody.
    pub fn from_headers<'a>(
        authorization: Option<&str>,
        cookies: impl IntoIterator<Item = &'a str>,
    ) -> Option<Self> {
        if let Some(value) = authorization {
            let (scheme, rest) = value.trim().split_once(' ')?;
            let rest = rest.trim();
            if rest.is_empty() {
                return None;
            }
            return if scheme.eq_ignore_ascii_case("bearer") {
                Some(Self::Bearer(rest.to_owned()))
            } else if scheme.eq_ignore_ascii_case("basic") {
                let decoded = String::from_utf8(STANDARD.decode(rest).ok()?).ok()?;
                let (username, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
                Some(Self::Basic {
                    username: username.to_owned(),
                    password: password.to_owned(),
                })
            } else {
                None
            };
        }
        cookies
            .into_iter()
            .flat_map(|header| header.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == "session")
            .map(|(_, value)| value.trim_matches('"'))
            .filter(|value| !value.is_empty())
            .map(|value| Self::Session(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_basic_and_cookie_are_read() {
        assert_eq!(
            Credentials::from_headers(Some("Bearer abc"), []),
            Some(Credentials::Bearer("abc".into()))
        );
        assert_eq!(
            Credentials::from_headers(Some("bearer  abc "), []),
            Some(Credentials::Bearer("abc".into()))
        );
        let basic = format!("Basic {}", STANDARD.encode("user:tok"));
        assert_eq!(
            Credentials::from_headers(Some(&basic), []),
            Some(Credentials::Basic {
                username: "user".into(),
                password: "tok".into()
            })
        );
        assert_eq!(
            Credentials::from_headers(None, ["theme=dark; session=s3cret"]),
            Some(Credentials::Session("s3cret".into()))
        );
    }

    #[test]
    fn malformed_headers_are_no_credentials() {
        for header in ["Bearer", "Bearer ", "Token abc", "Basic !!!", "abc"] {
            assert_eq!(
                Credentials::from_headers(Some(header), ["session=s"]),
                None,
                "{header}"
            );
        }
        assert_eq!(
            Credentials::from_headers(None, ["sessionid=x", "session="]),
            None
        );
    }
}
