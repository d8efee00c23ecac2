//! `workspace-service admin events …`: the events the relay parked
//! because NATS refuses them (see `crate::events`), listed, retried or
//! dropped.

use anyhow::{Context, bail};
use uuid::Uuid;

use super::cli::EventsCommand;
use crate::storage::Storage;

/// Carries out `command`; what to print.
pub(super) async fn run(storage: &Storage, command: EventsCommand) -> anyhow::Result<String> {
    match command {
        EventsCommand::Parked => {
            let parked = storage.parked_events().await?;
            if parked.is_empty() {
                return Ok("no parked events".to_owned());
            }
            let lines: Vec<String> = parked
                .iter()
                .map(|event| {
                    format!(
                        "{}\torganization={}\tsequence={}\ttype={}\tbytes={}\tparked_at={}\treason={}",
                        event.id,
                        event.organization_id,
                        event.sequence,
                        event.event_type,
                        event.size,
                        event.parked_at.to_rfc3339(),
                        event.reason,
                    )
                })
                .collect();
            Ok(lines.join("\n"))
        }
        EventsCommand::Retry { id } => {
            let id = event_id(&id)?;
            if !storage.retry_parked_event(id).await? {
                bail!("no parked event {id}");
            }
            Ok(id.to_string())
        }
        EventsCommand::Drop { id } => {
            let id = event_id(&id)?;
            if !storage.drop_parked_event(id).await? {
                bail!("no parked event {id}");
            }
            Ok(id.to_string())
        }
    }
}

fn event_id(id: &str) -> anyhow::Result<Uuid> {
    Uuid::try_parse(id).with_context(|| format!("{id:?} is not an event id"))
}
