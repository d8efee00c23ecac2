//! What a new workspace looks like, said once: who it starts with, and the
//! preview `validate_only` answers. Storage writes the same members the
//! preview shows.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    CreateWorkspace, OrganizationSummary, WorkspaceMember, WorkspaceRole, WorkspaceView,
    workspace::{UPLOAD_METHOD_MANUAL, WORKSPACE_TYPE_CUSTOM},
};

impl CreateWorkspace {
    /// Who the workspace starts with: its creator as OWNER, and the first
    /// member, when that is someone else, as MEMBER.
    pub fn initial_members(&self, creator: Uuid) -> Vec<(Uuid, WorkspaceRole)> {
        let mut members = vec![(creator, WorkspaceRole::Owner)];
        if let Some(first) = self.first_member_id.filter(|id| *id != creator) {
            members.push((first, WorkspaceRole::Member));
        }
        members
    }

    /// The first members (`initial_members`) as of `now`, each with the id
    /// `id` gives it (none for a preview).
    pub fn initial_member_views(
        &self,
        creator: Uuid,
        now: DateTime<Utc>,
        mut id: impl FnMut() -> Option<Uuid>,
    ) -> Vec<WorkspaceMember> {
        self.initial_members(creator)
            .into_iter()
            .map(|(user_id, role)| WorkspaceMember {
                id: id(),
                user_id,
                role,
                created_at: now,
                updated_at: now,
                access_tokens: Vec::new(),
            })
            .collect()
    }

    /// The workspace this request would create, as `creator` would see it,
    /// without ids: `validate_only`'s answer.
    pub fn preview(
        &self,
        creator: Uuid,
        organization: OrganizationSummary,
        now: DateTime<Utc>,
    ) -> WorkspaceView {
        let members = self.initial_member_views(creator, now, || None);
        WorkspaceView {
            id: None,
            name: self.name.clone(),
            description: self.description.clone(),
            organization,
            workspace_type: WORKSPACE_TYPE_CUSTOM.to_owned(),
            document_upload_method: UPLOAD_METHOD_MANUAL.to_owned(),
            user_role: Some(WorkspaceRole::Owner),
            members,
            billing_account_email: self.billing_account_email.clone(),
            document_store: self.document_store,
            file_store: self.file_store,
            used_storage: 0.0,
            files_count: 0,
            created_at: now,
            updated_at: now,
            revision: 0,
            number: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(first_member_id: Option<Uuid>) -> CreateWorkspace {
        CreateWorkspace {
            organization_id: None,
            name: "Team".into(),
            normalized_name: "team".into(),
            description: String::new(),
            billing_account_email: String::new(),
            first_member_id,
            document_store: None,
            file_store: None,
            request_id: None,
            validate_only: true,
        }
    }

    #[test]
    fn the_creator_owns_and_the_first_member_joins_once() {
        let creator = Uuid::now_v7();
        let other = Uuid::now_v7();
        assert_eq!(
            request(None).initial_members(creator),
            [(creator, WorkspaceRole::Owner)]
        );
        assert_eq!(
            request(Some(creator)).initial_members(creator),
            [(creator, WorkspaceRole::Owner)]
        );
        assert_eq!(
            request(Some(other)).initial_members(creator),
            [
                (creator, WorkspaceRole::Owner),
                (other, WorkspaceRole::Member)
            ]
        );
    }

    #[test]
    fn the_preview_shows_the_members_storage_writes() {
        let creator = Uuid::now_v7();
        let other = Uuid::now_v7();
        let organization = OrganizationSummary {
            id: Uuid::now_v7(),
            name: "Org".into(),
            slug: "org".into(),
        };
        let view = request(Some(other)).preview(creator, organization, Utc::now());
        assert_eq!(view.id, None);
        assert_eq!(view.user_role, Some(WorkspaceRole::Owner));
        let members: Vec<_> = view.members.iter().map(|m| (m.user_id, m.role)).collect();
        assert_eq!(
            members,
            [
                (creator, WorkspaceRole::Owner),
                (other, WorkspaceRole::Member)
            ]
        );
    }
}
