//! ORGANIZATION_REQUIRED on a route whose document has no organization
//! field: the caller cannot "say which one in organization_id", so the
//! answer says what does work, a credential bound to the organization.

use super::{
    model::{Dialect, Failure},
    schema,
};
use crate::domain::Reason;

/// What a caller of a route without an organization field is told when
/// its credential is not bound and its user belongs to several
/// organizations.
pub const USE_A_BOUND_CREDENTIAL: &str = "You belong to several organizations and this route \
    does not say which one: call it with an API token or session bound to one of them \
    (an operator makes one with `workspace-service admin token create --user <email> \
    --organization <slug>`, or `admin session create … --organization <slug>`).";

/// `failure`, reworded for `dialect` when it is ORGANIZATION_REQUIRED and
/// the dialect's document has no `organization_id` to send: the message
/// and the violation say how to fix it, and the violation names no field.
pub fn reword(dialect: Dialect, failure: &mut Failure) {
    let names_organization = schema::fields(dialect)
        .iter()
        .any(|field| field.proto == "organization_id");
    if !dialect.is_seed()
        || names_organization
        || failure.reason != Some(Reason::OrganizationRequired)
    {
        return;
    }
    USE_A_BOUND_CREDENTIAL.clone_into(&mut failure.message);
    for violation in &mut failure.violations {
        violation.loc.clear();
        USE_A_BOUND_CREDENTIAL.clone_into(&mut violation.description);
    }
}
