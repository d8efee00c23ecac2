//! The opaque cursor of every List.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::DateTime;
use uuid::Uuid;

use crate::domain::{Cursor, DomainError, Reason};

/// The opaque cursor of every List, bound to what the list was of
/// (ListWorkspaces' organization filter, the workspace of
/// ListWorkspaceMembers and ListWorkspaceAccessTokens): "v1", the last id
/// of a page in id order (access tokens, whose ids are UUIDv7); "v2", the
/// last `Cursor` of a page in (created_at, id) order (workspaces and
/// memberships, whose ids are random UUIDv4).
pub(crate) struct PageToken;

impl PageToken {
    const BY_ID: &'static str = "v1";
    const BY_TIME: &'static str = "v2";

    pub(crate) fn encode(last: Uuid, scope: Option<Uuid>) -> String {
        Self::encode_parts(Self::BY_ID, scope, &last.to_string())
    }

    pub(crate) fn encode_at(last: Cursor, scope: Option<Uuid>) -> String {
        let at = last.created_at.timestamp_micros();
        Self::encode_parts(Self::BY_TIME, scope, &format!("{at}|{}", last.id))
    }

    fn encode_parts(version: &str, scope: Option<Uuid>, last: &str) -> String {
        let scope = scope.map(|id| id.to_string()).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(format!("{version}|{scope}|{last}"))
    }

    pub(crate) fn decode(token: &str, scope: Option<Uuid>) -> Result<Option<Uuid>, DomainError> {
        let Some(last) = Self::decode_parts(token, Self::BY_ID, scope)? else {
            return Ok(None);
        };
        Uuid::try_parse(&last).map(Some).map_err(|_| invalid())
    }

    pub(crate) fn decode_at(
        token: &str,
        scope: Option<Uuid>,
    ) -> Result<Option<Cursor>, DomainError> {
        let Some(last) = Self::decode_parts(token, Self::BY_TIME, scope)? else {
            return Ok(None);
        };
        let (at, id) = last.split_once('|').ok_or_else(invalid)?;
        let created_at = at
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(invalid)?;
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        Ok(Some(Cursor { created_at, id }))
    }

    /// What follows the scope in a token of `version` made for `scope`.
    fn decode_parts(
        token: &str,
        version: &str,
        scope: Option<Uuid>,
    ) -> Result<Option<String>, DomainError> {
        if token.is_empty() {
            return Ok(None);
        }
        let text = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(invalid)?;
        let mut parts = text.splitn(3, '|');
        let (Some(found), Some(found_scope), Some(last)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let expected = scope.map(|id| id.to_string()).unwrap_or_default();
        if found != version || found_scope != expected {
            return Err(invalid());
        }
        Ok(Some(last.to_owned()))
    }
}

fn invalid() -> DomainError {
    DomainError::invalid(
        "page_token",
        Reason::InvalidPageToken,
        "page_token is not one this service returned for this list.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_are_bound_to_their_filter() {
        let last = Uuid::now_v7();
        let organization = Some(Uuid::now_v7());
        let token = PageToken::encode(last, organization);
        assert_eq!(PageToken::decode(&token, organization).unwrap(), Some(last));
        assert!(PageToken::decode(&token, None).is_err());
        assert!(PageToken::decode("garbage", None).is_err());
        assert_eq!(PageToken::decode("", None).unwrap(), None);
    }

    #[test]
    fn time_ordered_page_tokens_round_trip_and_are_bound_to_their_filter() {
        let last = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_770_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        let organization = Some(Uuid::new_v4());
        let token = PageToken::encode_at(last, organization);
        assert_eq!(
            PageToken::decode_at(&token, organization).unwrap(),
            Some(last)
        );
        assert!(PageToken::decode_at(&token, None).is_err());
        // One list's token is not another's.
        assert!(PageToken::decode(&token, organization).is_err());
        let by_id = PageToken::encode(last.id, organization);
        assert!(PageToken::decode_at(&by_id, organization).is_err());
        assert_eq!(PageToken::decode_at("", None).unwrap(), None);
    }
}
