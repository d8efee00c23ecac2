//! Schema migrations, run at start and by `workspace-service migrate`.

use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261129_000001_name_keys_and_list_index;
mod m20261129_000002_lifecycle;
mod m20261129_000003_events;
mod m20261129_000004_call_deadline;
mod m20261203_000001_event_traceparent;
mod m20261203_000002_name_keys_across_scripts;
mod m20261203_000003_event_parking;
mod m20261203_000004_bound_credentials;
mod m20261203_000005_lists_by_creation_time;
mod m20261203_000006_workspace_numbers;
mod m20261204_000001_list_by_the_page;
mod m20261204_000002_deletes_by_index;
mod m20261204_000003_outbox_by_the_batch;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261129_000001_name_keys_and_list_index::Migration),
            Box::new(m20261129_000002_lifecycle::Migration),
            Box::new(m20261129_000003_events::Migration),
            Box::new(m20261129_000004_call_deadline::Migration),
            Box::new(m20261203_000001_event_traceparent::Migration),
            Box::new(m20261203_000002_name_keys_across_scripts::Migration),
            Box::new(m20261203_000003_event_parking::Migration),
            Box::new(m20261203_000004_bound_credentials::Migration),
            Box::new(m20261203_000005_lists_by_creation_time::Migration),
            Box::new(m20261203_000006_workspace_numbers::Migration),
            Box::new(m20261204_000001_list_by_the_page::Migration),
            Box::new(m20261204_000002_deletes_by_index::Migration),
            Box::new(m20261204_000003_outbox_by_the_batch::Migration),
        ]
    }
}
