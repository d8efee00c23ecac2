//! The opaque cursor of every List.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::domain::{DomainError, Reason};

/// The opaque cursor of every List: the last id of a page, bound to what
/// the list was of (ListWorkspaces' organization filter, the workspace of
/// ListWorkspaceMembers and ListWorkspaceAccessTokens).
pub(crate) struct PageToken;

impl PageToken {
    const VERSION: &'static str = "v1";

    pub(crate) fn encode(last: Uuid, organization_id: Option<Uuid>) -> String {
        let organization = organization_id.map(|id| id.to_string()).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(format!("{}|{organization}|{last}", Self::VERSION))
    }

    pub(crate) fn decode(
        token: &str,
        organization_id: Option<Uuid>,
    ) -> Result<Option<Uuid>, DomainError> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || {
            DomainError::invalid(
                "page_token",
                Reason::InvalidPageToken,
                "page_token is not one this service returned for this list.",
            )
        };
        let text = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(invalid)?;
        let mut parts = text.split('|');
        let (Some(Self::VERSION), Some(organization), Some(last), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let expected = organization_id.map(|id| id.to_string()).unwrap_or_default();
        if organization != expected {
            return Err(invalid());
        }
        Uuid::try_parse(last).map(Some).map_err(|_| invalid())
    }
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
}
