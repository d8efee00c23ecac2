//! The admin's lookups of what its commands and the bootstrap file name:
//! a plan by id or name, an organization by id or slug, a user by id or
//! email; and the check of a workspace limit.

use anyhow::{Context, bail};
use uuid::Uuid;

use crate::storage::Storage;

pub(super) fn check_limit(limit: Option<i32>) -> anyhow::Result<Option<i32>> {
    match limit {
        Some(n) if n < 0 => bail!("a workspace limit cannot be negative"),
        other => Ok(other),
    }
}

pub(super) async fn resolve_plan(storage: &Storage, plan: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::try_parse(plan) {
        return Ok(id);
    }
    let found = storage.plan_id_by_name(plan).await?;
    found.with_context(|| format!("no plan named {plan:?}"))
}

pub(super) async fn resolve_organization(storage: &Storage, org: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::try_parse(org) {
        return Ok(id);
    }
    let found = storage.organization_id_by_slug(org).await?;
    found.with_context(|| format!("no organization with slug {org:?}"))
}

pub(super) async fn resolve_user(storage: &Storage, user: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::try_parse(user) {
        return Ok(id);
    }
    let found = storage.user_id_by_email(user).await?;
    found.with_context(|| format!("no user with email {user:?}"))
}

/// The organization (by id or slug) a credential is to be bound to.
pub(super) async fn bound_to(
    storage: &Storage,
    organization: Option<&str>,
) -> anyhow::Result<Option<Uuid>> {
    match organization {
        Some(org) => Ok(Some(resolve_organization(storage, org).await?)),
        None => Ok(None),
    }
}
