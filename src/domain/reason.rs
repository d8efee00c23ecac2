//! The catalogue of error reasons: `google.rpc.ErrorInfo.reason` and
//! `BadRequest.FieldViolation.reason` of every error this service answers,
//! said once. The gRPC and HTTP status tables, the OpenAPI document and the
//! tests name reasons through this type, never as loose strings.

use std::{fmt, str::FromStr};

macro_rules! catalogue {
    ($($(#[doc = $doc:literal])* $variant:ident = $text:literal,)*) => {
        /// A stable, machine-readable reason for an error.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Reason {
            /// Every reason, in the catalogue's order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The reason as clients see it, such as `NAME_TOO_SHORT`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $text,)*
                }
            }
        }

        impl FromStr for Reason {
            type Err = UnknownReason;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok(Reason::$variant),)*
                    _ => Err(UnknownReason),
                }
            }
        }
    };
}

catalogue! {
    // Check 1.
    /// Missing or invalid credentials.
    Unauthenticated = "UNAUTHENTICATED",

    // Check 2: field violations.
    /// A request that breaks a rule without a more precise reason.
    InvalidArgument = "INVALID_ARGUMENT",
    /// The name is empty after trimming.
    NameRequired = "NAME_REQUIRED",
    /// The name has characters the rules refuse (control characters).
    NameInvalidCharacters = "NAME_INVALID_CHARACTERS",
    /// The name is shorter than the rules allow.
    NameTooShort = "NAME_TOO_SHORT",
    /// The name is longer than the rules allow.
    NameTooLong = "NAME_TOO_LONG",
    /// The description has control characters (NUL among them).
    DescriptionInvalidCharacters = "DESCRIPTION_INVALID_CHARACTERS",
    /// The description is longer than allowed.
    DescriptionTooLong = "DESCRIPTION_TOO_LONG",
    /// The billing account email is required by the settings.
    BillingAccountEmailRequired = "BILLING_ACCOUNT_EMAIL_REQUIRED",
    /// Not an email address.
    InvalidEmail = "INVALID_EMAIL",
    /// Not a UUID.
    InvalidUuid = "INVALID_UUID",
    /// A required field is missing.
    FieldRequired = "FIELD_REQUIRED",
    /// A field's value does not have the field's type.
    InvalidFieldValue = "INVALID_FIELD_VALUE",
    /// A field the request message does not have.
    UnsupportedField = "UNSUPPORTED_FIELD",
    /// A form field given more than once for a field that takes one value.
    FieldRepeated = "FIELD_REPEATED",
    /// The request id is not a UUID.
    InvalidRequestId = "INVALID_REQUEST_ID",
    /// The request id was used before with a different request.
    RequestIdReused = "REQUEST_ID_REUSED",
    /// The organization must be named (a user in several organizations).
    OrganizationRequired = "ORGANIZATION_REQUIRED",
    /// The page size is out of range.
    InvalidPageSize = "INVALID_PAGE_SIZE",
    /// The page token is not one this service issued for this query.
    InvalidPageToken = "INVALID_PAGE_TOKEN",
    /// A `grpc-timeout` header that does not parse.
    InvalidTimeout = "INVALID_TIMEOUT",
    /// A body that is not JSON, or not an object, or not a form.
    MalformedBody = "MALFORMED_BODY",

    // Checks 3 to 10.
    /// Not a member of the organization, or no such organization.
    NotOrganizationMember = "NOT_ORGANIZATION_MEMBER",
    /// The caller's account is not validated.
    AccountNotValidated = "ACCOUNT_NOT_VALIDATED",
    /// The caller's organization role may not do this.
    InsufficientRole = "INSUFFICIENT_ROLE",
    /// The organization lets only its OWNERs and ADMINs create workspaces.
    WorkspaceCreationDisabled = "WORKSPACE_CREATION_DISABLED",
    /// The organization's plan does not include workspaces.
    PlanNotSupported = "PLAN_NOT_SUPPORTED",
    /// Document or file store credentials that do not exist.
    CredentialsNotFound = "CREDENTIALS_NOT_FOUND",
    /// The first member is not a member of the organization.
    FirstMemberNotFound = "FIRST_MEMBER_NOT_FOUND",
    /// The plan's workspace limit is reached.
    WorkspaceLimitReached = "WORKSPACE_LIMIT_REACHED",
    /// The organization has a workspace of that name.
    WorkspaceAlreadyExists = "WORKSPACE_ALREADY_EXISTS",
    /// No such workspace, or not one the caller may see.
    WorkspaceNotFound = "WORKSPACE_NOT_FOUND",

    // The workspace's life after its creation.
    /// The update mask names a field that cannot be updated, or nothing.
    InvalidUpdateMask = "INVALID_UPDATE_MASK",
    /// An etag this service did not issue.
    InvalidEtag = "INVALID_ETAG",
    /// The workspace changed since the caller read its etag.
    EtagMismatch = "ETAG_MISMATCH",
    /// A role that is not a workspace role.
    InvalidRole = "INVALID_ROLE",
    /// The change would leave the workspace without an OWNER.
    LastOwner = "LAST_OWNER",
    /// The user is a member of the workspace already.
    AlreadyMember = "ALREADY_MEMBER",
    /// The user is not a member of the workspace.
    MemberNotFound = "MEMBER_NOT_FOUND",
    /// The user is not a member of the workspace's organization.
    UserNotInOrganization = "USER_NOT_IN_ORGANIZATION",
    /// An access token's name is empty or too long.
    AccessTokenNameInvalid = "ACCESS_TOKEN_NAME_INVALID",
    /// An access token's expiry is not in the future.
    ExpireTimeInPast = "EXPIRE_TIME_IN_PAST",
    /// An expiry past 9999-12-31, which RFC 3339 (and so JSON) cannot write.
    ExpireTimeOutOfRange = "EXPIRE_TIME_OUT_OF_RANGE",
    /// No such access token in this workspace.
    AccessTokenNotFound = "ACCESS_TOKEN_NOT_FOUND",
    /// A workspace access token may not do this (create tokens, or act
    /// outside its workspace).
    AccessTokenNotAllowed = "ACCESS_TOKEN_NOT_ALLOWED",

    // The service and its transports.
    /// The database did not answer; retry.
    Unavailable = "UNAVAILABLE",
    /// Anything else; the cause is in the logs.
    Internal = "INTERNAL",
    /// Too many calls in flight; retry shortly.
    Overloaded = "OVERLOADED",
    /// The memory budget for request bodies is used up; retry shortly.
    MemoryBudgetExhausted = "MEMORY_BUDGET_EXHAUSTED",
    /// The request body did not arrive within the body timeout.
    BodyTimeout = "BODY_TIMEOUT",
    /// Too many calls of one organization in flight; retry shortly.
    OrganizationOverloaded = "ORGANIZATION_OVERLOADED",
    /// The call's deadline passed before it finished, and it wrote
    /// nothing.
    DeadlineExceeded = "DEADLINE_EXCEEDED",
    /// The call's deadline passed while its change was being committed: it
    /// may have been written.
    OutcomeUnknown = "OUTCOME_UNKNOWN",
    /// An HTTP body larger than the largest message.
    BodyTooLarge = "BODY_TOO_LARGE",
    /// An HTTP body in a content type the mapping does not read.
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE",
    /// No HTTP route for this path and method.
    RouteNotFound = "ROUTE_NOT_FOUND",
    /// An HTTP route that exists, called with a method it does not take.
    MethodNotAllowed = "METHOD_NOT_ALLOWED",
}

impl Reason {
    /// Whether the reason says the request does not match its schema (the
    /// REST APIs' schema validation, as opposed to a business rule).
    pub const fn is_schema_error(self) -> bool {
        matches!(
            self,
            Reason::MalformedBody
                | Reason::InvalidFieldValue
                | Reason::FieldRequired
                | Reason::InvalidEmail
                | Reason::InvalidUuid
                | Reason::BillingAccountEmailRequired
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Reason> for &str {
    fn eq(&self, other: &Reason) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Reason> for String {
    fn eq(&self, other: &Reason) -> bool {
        self == other.as_str()
    }
}

/// A reason string that is not in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a reason of this service")]
pub struct UnknownReason;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert_eq!(reason.as_str().parse::<Reason>(), Ok(*reason));
            assert!(seen.insert(reason.as_str()), "{reason} twice");
            assert!(
                reason
                    .as_str()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{reason}"
            );
        }
        assert_eq!("NOPE".parse::<Reason>(), Err(UnknownReason));
    }
}
