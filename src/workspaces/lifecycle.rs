//! The workspace's life after CreateWorkspace: update, delete, members,
//! access tokens. Who may do what:
//! - seeing a workspace (Get, ListWorkspaceMembers): its members, and the
//!   OWNERs and ADMINs of its organization;
//! - updating it and managing its members and access tokens: its OWNERs
//!   and ADMINs, and the organization's OWNERs and ADMINs; only OWNERs
//!   make OWNERs or change or remove one;
//! - deleting it: its OWNERs, and the organization's OWNERs and ADMINs;
//! - leaving it: any member, for themselves.
//!
//! Anyone else gets the NOT_FOUND of a workspace they cannot see: whether
//! it exists is not told. A workspace access token acts as its user, on its
//! own workspace only, and cannot create tokens.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rights::{Right, allows};
use super::{PageToken, Workspaces, gate::Slot, page_size_of};
use crate::{
    auth::issue::{WORKSPACE_TOKEN_PREFIX, hash_secret, new_secret},
    domain::{
        AccessTokenView, Caller, Cursor, DomainError, NameRules, UpdateWorkspaceInput,
        WorkspaceMember, WorkspaceRole, WorkspaceView, hide_token_hashes, parse_etag, parse_id,
        validate_access_token, validate_update,
    },
    storage::{Changed, MemberChange, OwnersProtected, WorkspaceAccess},
};

/// A page of members or tokens, and the token of the next.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

impl<T> Page<T> {
    /// A page of at most `limit` of `items`, read with one more than that:
    /// a next page only when there is more (its token, from the last here).
    fn cut(mut items: Vec<T>, limit: u64, token: impl Fn(&T) -> String) -> Self {
        let more = items.len() as u64 > limit;
        items.truncate(limit as usize);
        let next_page_token = match items.last() {
            Some(last) if more => token(last),
            _ => String::new(),
        };
        Self {
            items,
            next_page_token,
        }
    }
}

impl Workspaces {
    /// Workspace `id` (the request's `field`) if `caller` has `right` on it;
    /// the NOT_FOUND of an invisible workspace otherwise.
    async fn access(
        &self,
        caller: Caller,
        field: &str,
        id: &str,
        right: Right,
    ) -> Result<WorkspaceAccess, DomainError> {
        let uuid = parse_id(field, id)?;
        let not_found = || DomainError::WorkspaceNotFound { id: id.to_owned() };
        if caller.workspace_scope.is_some_and(|scope| scope != uuid) {
            return Err(not_found());
        }
        let access = self
            .storage
            .workspace_access(uuid, caller.user_id)
            .await?
            .ok_or_else(not_found)?;
        // A bound credential sees its organization's workspaces only.
        let bound_elsewhere = caller
            .organization_scope
            .is_some_and(|bound| bound != access.organization_id);
        if bound_elsewhere || !allows(&access, right) {
            return Err(not_found());
        }
        Ok(access)
    }

    /// A change needs a validated account (check 4), then a place in its
    /// organization's gate, kept until the change ends.
    async fn may_change(&self, caller: Caller, org: Uuid) -> Result<Slot, DomainError> {
        if !caller.validated {
            return Err(DomainError::AccountNotValidated);
        }
        self.gate.enter(org).await
    }

    /// UpdateWorkspace.
    pub async fn update(
        &self,
        caller: Caller,
        id: &str,
        input: &UpdateWorkspaceInput,
        rules: Option<NameRules>,
    ) -> Result<WorkspaceView, DomainError> {
        let update = validate_update(input, &rules.unwrap_or(self.rules))?;
        let access = self.access(caller, "id", id, Right::Manage).await?;
        let _slot = self.may_change(caller, access.organization_id).await?;
        match self
            .storage
            .update_workspace(access.id, access.organization_id, &update, caller.user_id)
            .await?
        {
            // The workspace as the change's transaction left it, with the
            // caller's own role in it.
            Changed::Done(Some(mut view)) => {
                view.user_role = access.workspace_role;
                Ok(view)
            }
            Changed::Stale => Err(DomainError::EtagMismatch { id: access.id }),
            Changed::Done(None) | Changed::Missing => {
                Err(DomainError::WorkspaceNotFound { id: id.to_owned() })
            }
            Changed::NameTaken => {
                let name = update.name.map(|(name, _)| name).unwrap_or_default();
                Err(DomainError::WorkspaceAlreadyExists { name })
            }
        }
    }

    /// DeleteWorkspace.
    pub async fn delete(
        &self,
        caller: Caller,
        id: &str,
        etag: &str,
        allow_missing: bool,
    ) -> Result<(), DomainError> {
        let expected_revision =
            parse_etag(etag).map_err(|v| DomainError::InvalidArgument(vec![v]))?;
        let access = match self.access(caller, "id", id, Right::Delete).await {
            Ok(access) => access,
            // allow_missing answers a workspace that is not there (or not
            // visible) as deleted; one the caller sees but may not delete
            // is not deleted, and the answer says so.
            Err(DomainError::WorkspaceNotFound { .. })
                if allow_missing && self.access(caller, "id", id, Right::See).await.is_err() =>
            {
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        let _slot = self.may_change(caller, access.organization_id).await?;
        match self
            .storage
            .delete_workspace(
                access.id,
                access.organization_id,
                expected_revision,
                caller.user_id,
            )
            .await?
        {
            Changed::Done(()) => Ok(()),
            Changed::Missing if allow_missing => Ok(()),
            Changed::Stale => Err(DomainError::EtagMismatch { id: access.id }),
            Changed::Missing | Changed::NameTaken => {
                Err(DomainError::WorkspaceNotFound { id: id.to_owned() })
            }
        }
    }

    /// AddWorkspaceMember: a member of the organization joins with `role`
    /// (MEMBER when unspecified).
    pub async fn add_member(
        &self,
        caller: Caller,
        workspace_id: &str,
        user_id: &str,
        role: Option<WorkspaceRole>,
    ) -> Result<WorkspaceMember, DomainError> {
        let user = parse_id("user_id", user_id)?;
        let access = self
            .access(caller, "workspace_id", workspace_id, Right::Manage)
            .await?;
        let _slot = self.may_change(caller, access.organization_id).await?;
        let role = role.unwrap_or(WorkspaceRole::Member);
        self.may_grant(&access, role)?;
        match self
            .storage
            .add_member(
                access.id,
                access.organization_id,
                user,
                role,
                caller.user_id,
            )
            .await?
        {
            MemberChange::Done(Some(member)) => Ok(member),
            MemberChange::AlreadyMember => Err(DomainError::AlreadyMember { user_id: user }),
            MemberChange::NotInOrganization => {
                Err(DomainError::UserNotInOrganization { user_id: user })
            }
            _ => Err(DomainError::WorkspaceNotFound {
                id: workspace_id.to_owned(),
            }),
        }
    }

    /// Only OWNERs (of the workspace, or running the organization) make
    /// OWNERs.
    fn may_grant(&self, access: &WorkspaceAccess, role: WorkspaceRole) -> Result<(), DomainError> {
        let owner = access.organization_role.sees_all_workspaces()
            || access.workspace_role == Some(WorkspaceRole::Owner);
        if role == WorkspaceRole::Owner && !owner {
            return Err(DomainError::InsufficientRole {
                role: access
                    .workspace_role
                    .map_or_else(String::new, |r| r.as_str().to_owned()),
            });
        }
        Ok(())
    }

    /// UpdateWorkspaceMember (role `Some`) or RemoveWorkspaceMember.
    pub async fn change_member(
        &self,
        caller: Caller,
        workspace_id: &str,
        user_id: &str,
        role: Option<WorkspaceRole>,
    ) -> Result<Option<WorkspaceMember>, DomainError> {
        let user = parse_id("user_id", user_id)?;
        // Leaving needs only to be a member.
        let leaving = role.is_none() && user == caller.user_id;
        let right = if leaving { Right::See } else { Right::Manage };
        let access = self
            .access(caller, "workspace_id", workspace_id, right)
            .await?;
        let _slot = self.may_change(caller, access.organization_id).await?;
        if let Some(role) = role {
            self.may_grant(&access, role)?;
        }
        // Only OWNERs take an OWNER's role away (leaving is one's own):
        // the target's role is read under the workspace's lock, in the
        // change's transaction, so a promotion racing this call is seen.
        // `refusal`: what a caller without OWNER rights is told when the
        // target turns out to be an OWNER.
        let refusal = match self.may_grant(&access, WorkspaceRole::Owner) {
            Err(refusal) if !leaving => Some(refusal),
            _ => None,
        };
        let owners = match refusal {
            Some(_) => OwnersProtected::Yes,
            None => OwnersProtected::No,
        };
        match self
            .storage
            .change_member(
                access.id,
                access.organization_id,
                user,
                role,
                owners,
                caller.user_id,
            )
            .await?
        {
            MemberChange::Done(member) => Ok(member),
            MemberChange::OwnerProtected => Err(refusal.unwrap_or(DomainError::Internal(
                anyhow::anyhow!("an OWNER was protected from a caller with OWNER rights"),
            ))),
            MemberChange::LastOwner => Err(DomainError::LastOwner),
            MemberChange::NotMember => Err(DomainError::MemberNotFound { user_id: user }),
            _ => Err(DomainError::WorkspaceNotFound {
                id: workspace_id.to_owned(),
            }),
        }
    }

    /// ListWorkspaceMembers.
    pub async fn members(
        &self,
        caller: Caller,
        workspace_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<WorkspaceMember>, DomainError> {
        let size = page_size_of(page_size)?;
        let access = self
            .access(caller, "workspace_id", workspace_id, Right::See)
            .await?;
        // Members in (created_at, id) order: their ids are random.
        let after = PageToken::decode_at(page_token.trim(), Some(access.id))?;
        let limit = size as u64;
        let mut items = self.storage.members(access.id, after, limit + 1).await?;
        if !allows(&access, Right::Manage) {
            hide_token_hashes(&mut items, caller.user_id);
        }
        Ok(Page::cut(items, limit, |m| {
            let (created_at, id) = (m.created_at, m.id.unwrap_or_default());
            PageToken::encode_at(Cursor { created_at, id }, Some(access.id))
        }))
    }

    /// CreateWorkspaceAccessToken: the token and its secret, shown once.
    pub async fn create_access_token(
        &self,
        caller: Caller,
        workspace_id: &str,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(AccessTokenView, String), DomainError> {
        if caller.workspace_scope.is_some() {
            return Err(DomainError::AccessTokenNotAllowed {
                action: "create access tokens",
            });
        }
        let name = validate_access_token(name, expires_at, Utc::now())?;
        let access = self
            .access(caller, "workspace_id", workspace_id, Right::Manage)
            .await?;
        let _slot = self.may_change(caller, access.organization_id).await?;
        let secret = new_secret(WORKSPACE_TOKEN_PREFIX);
        let token = self
            .storage
            .create_access_token(
                access.id,
                access.organization_id,
                caller.user_id,
                &name,
                &hash_secret(&secret),
                expires_at,
            )
            .await?;
        Ok((token, secret))
    }

    /// ListWorkspaceAccessTokens.
    pub async fn access_tokens(
        &self,
        caller: Caller,
        workspace_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<AccessTokenView>, DomainError> {
        let size = page_size_of(page_size)?;
        let access = self
            .access(caller, "workspace_id", workspace_id, Right::Manage)
            .await?;
        let after = PageToken::decode(page_token.trim(), Some(access.id))?;
        let limit = size as u64;
        let items = self
            .storage
            .access_tokens(access.id, after, limit + 1)
            .await?;
        Ok(Page::cut(items, limit, |t| {
            PageToken::encode(t.id, Some(access.id))
        }))
    }

    /// RevokeWorkspaceAccessToken.
    pub async fn revoke_access_token(
        &self,
        caller: Caller,
        workspace_id: &str,
        token_id: &str,
    ) -> Result<(), DomainError> {
        let token = parse_id("token_id", token_id)?;
        let access = self
            .access(caller, "workspace_id", workspace_id, Right::Manage)
            .await?;
        let _slot = self.may_change(caller, access.organization_id).await?;
        if self
            .storage
            .revoke_access_token(access.id, access.organization_id, token, caller.user_id)
            .await?
        {
            Ok(())
        } else {
            Err(DomainError::AccessTokenNotFound {
                id: token_id.to_owned(),
            })
        }
    }
}
