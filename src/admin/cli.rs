//! The command tree of `workspace-service admin …`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::domain::{CredentialsKind, OrganizationRole, WorkspaceCreationPolicy, WorkspaceRole};

#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
pub struct AdminArgs {
    /// Apply a JSON bootstrap file (plans, organizations, users,
    /// memberships, credentials, API tokens, sessions) idempotently.
    #[arg(long, value_name = "FILE")]
    pub bootstrap: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<AdminCommand>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Plans: whether workspaces may be created, and how many.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Organizations and their workspace creation policy.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Organization memberships and roles.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Document store and file store credentials of an organization.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// API tokens (Bearer or Basic auth).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Sessions (the `session` cookie).
    #[command(subcommand)]
    Session(SessionCommand),
    /// Workspaces: what an operator may need to repair (the API does the
    /// rest).
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Events the relay parked because NATS refuses them (too large):
    /// their organization's later events wait until each is retried or
    /// dropped.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List the parked events, one a line: id, organization, sequence,
    /// type, size, when and why they were parked.
    Parked,
    /// Give a parked event back to the relay: its next round publishes it
    /// (parked again if NATS still refuses it), then the organization's
    /// later events.
    Retry {
        #[arg(long)]
        id: String,
    },
    /// Delete a parked event, never published: the organization's later
    /// events go on, and consumers see a gap in its `sequence`.
    Drop {
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Delete a workspace, its memberships and access tokens, and give its
    /// place under the organization's limit back.
    Delete {
        #[arg(long)]
        id: String,
    },
    /// Add a member of the workspace's organization to it, or give a member
    /// another role (an OWNER to a workspace that lost its owners' users);
    /// never takes the last OWNER away.
    SetMember {
        #[arg(long)]
        workspace: String,
        /// The user's id or email.
        #[arg(long)]
        user: String,
        /// OWNER, ADMIN or MEMBER.
        #[arg(long)]
        role: WorkspaceRole,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Create a plan; prints its id.
    Create {
        #[arg(long)]
        name: String,
        /// Most workspaces an organization on this plan may have; none: no limit.
        #[arg(long)]
        workspace_limit: Option<i32>,
        /// The plan does not allow creating workspaces (seed 000's 402).
        #[arg(long)]
        no_workspace_creation: bool,
    },
    /// Change a plan (by id or name).
    Update {
        #[arg(long)]
        plan: String,
        #[arg(long)]
        workspace_limit: Option<i32>,
        #[arg(long)]
        no_workspace_creation: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization; prints its id.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: String,
        /// The plan, by id or name.
        #[arg(long)]
        plan: String,
        /// ROLE_BASED (default), ALL_MEMBERS or ADMINS_ONLY.
        #[arg(long, default_value = "ROLE_BASED")]
        workspace_creation: WorkspaceCreationPolicy,
    },
    /// Set who may create workspaces in an organization (by id or slug).
    SetPolicy {
        #[arg(long)]
        org: String,
        #[arg(long)]
        workspace_creation: WorkspaceCreationPolicy,
    },
    /// Move an organization (by id or slug) to a plan (by id or name).
    SetPlan {
        #[arg(long)]
        org: String,
        #[arg(long)]
        plan: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints its id.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// The account is not validated yet (seed 003's 400).
        #[arg(long)]
        unvalidated: bool,
    },
    /// Mark a user (by id or email) validated, or not with `--no`.
    Validate {
        #[arg(long)]
        user: String,
        #[arg(long)]
        no: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a user to an organization with a role, or change its role;
    /// prints the membership's id.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        user: String,
        /// OWNER, ADMIN, WORKSPACE_CREATOR or MEMBER.
        #[arg(long)]
        role: OrganizationRole,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Register credentials of an organization; prints their id.
    Create {
        #[arg(long)]
        org: String,
        /// DOCUMENT_STORE or FILE_STORE.
        #[arg(long)]
        kind: CredentialsKind,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; prints the token (shown only once).
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until the token stops working; none: never.
        #[arg(long)]
        expires_in_days: Option<i64>,
        /// Bind the token to this organization (id or slug), which the
        /// user must belong to: calls naming no organization use it, and
        /// the token acts in it only.
        #[arg(long)]
        organization: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Create a session for a user; prints the `session` cookie value.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 24)]
        ttl_hours: i64,
        /// Bind the session to this organization (id or slug), which the
        /// user must belong to.
        #[arg(long)]
        organization: Option<String>,
    },
}
