//! The demo organization, owner and API token seeded at start (SQLite by
//! default), so a new user's first grpcurl call works.

use super::{
    BootstrapFile, BootstrapMembership, BootstrapOrganization, BootstrapPlan, BootstrapUser,
    apply_bootstrap, resolve::resolve_user,
};
use crate::{auth::issue::create_api_token, storage::Storage};

/// Slug of the demo organization.
pub const DEMO_SLUG: &str = "demo";
/// Email of the demo organization's owner.
pub const DEMO_OWNER: &str = "owner@demo.example";
const DEMO_TOKEN_NAME: &str = "demo";

/// Seeds the demo organization, owner and API token when missing, and
/// replaces the demo token on every start (only its hash is stored, so a
/// new one is the only way to print a working command). Returns the token.
pub async fn seed_demo(storage: &Storage) -> anyhow::Result<String> {
    let file = BootstrapFile {
        plans: vec![BootstrapPlan {
            name: "demo".into(),
            creation_allowed: true,
            workspace_limit: Some(100),
        }],
        organizations: vec![BootstrapOrganization {
            name: "Demo Organization".into(),
            slug: DEMO_SLUG.into(),
            plan: "demo".into(),
            workspace_creation: None,
        }],
        users: vec![BootstrapUser {
            email: DEMO_OWNER.into(),
            name: "Demo Owner".into(),
            validated: true,
        }],
        memberships: vec![BootstrapMembership {
            organization: DEMO_SLUG.into(),
            user: DEMO_OWNER.into(),
            role: "OWNER".into(),
        }],
        ..BootstrapFile::default()
    };
    if storage.organization_id_by_slug(DEMO_SLUG).await?.is_none() {
        apply_bootstrap(storage, &file).await?;
    }
    let owner = resolve_user(storage, DEMO_OWNER).await?;
    storage
        .delete_api_tokens_named(owner, DEMO_TOKEN_NAME)
        .await?;
    Ok(
        create_api_token(storage, owner, DEMO_TOKEN_NAME, None, None)
            .await?
            .token,
    )
}
