//! The admin command line (`workspace-service admin …`), the bootstrap
//! file and the demo seed: this service's copy of organizations, users,
//! memberships, plans, policy, credentials, API tokens and sessions.
//!
//! - `cli.rs`: the command tree; `run` here carries it out, one
//!   subcommand at a time in `commands.rs` and `workspace.rs`.
//! - `bootstrap.rs`: the idempotent bootstrap file.
//! - `demo.rs`: the demo organization seeded at start on SQLite.
//! - `events.rs`: parked events, retried or dropped.
//!
//! Every `create` prints the new id (or the secret) as the last line of its
//! stdout, so scripts can capture it; logs go to stderr.

mod bootstrap;
mod cli;
mod commands;
mod demo;
mod events;
mod resolve;
mod workspace;

use std::fs;

use anyhow::Context;

pub use bootstrap::{
    BootstrapApiToken, BootstrapCredentials, BootstrapFile, BootstrapMembership,
    BootstrapOrganization, BootstrapPlan, BootstrapSession, BootstrapUser, apply_bootstrap,
};
pub use cli::{
    AdminArgs, AdminCommand, CredentialsCommand, EventsCommand, MemberCommand, OrgCommand,
    PlanCommand, SessionCommand, TokenCommand, UserCommand, WorkspaceCommand,
};
pub use demo::{DEMO_OWNER, DEMO_SLUG, seed_demo};

use crate::storage::Storage;

/// Runs `workspace-service admin …`.
pub async fn run(storage: &Storage, args: AdminArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.bootstrap {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: BootstrapFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid bootstrap file", path.display()))?;
        for line in apply_bootstrap(storage, &file).await? {
            println!("{line}");
        }
    }
    let Some(command) = args.command else {
        return Ok(());
    };
    let answer = match command {
        AdminCommand::Plan(command) => commands::plan(storage, command).await?,
        AdminCommand::Org(command) => commands::org(storage, command).await?,
        AdminCommand::User(command) => commands::user(storage, command).await?,
        AdminCommand::Member(command) => commands::member(storage, command).await?,
        AdminCommand::Workspace(command) => workspace::run(storage, command).await?,
        AdminCommand::Credentials(command) => commands::credentials(storage, command).await?,
        AdminCommand::Token(command) => commands::token(storage, command).await?,
        AdminCommand::Session(command) => commands::session(storage, command).await?,
        AdminCommand::Events(command) => events::run(storage, command).await?,
    };
    println!("{answer}");
    Ok(())
}
