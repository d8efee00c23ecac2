//! PostgreSQL only: `workspace_call_in_time(until)`, which a create's one
//! statement calls once it holds its organization's row lock. Past `until`
//! (the call's deadline, on the database's clock) it raises SQLSTATE
//! `WS504` (this service's own; not class 57, which says the server is going
//! away), which undoes the whole statement: a call answered
//! DEADLINE_EXCEEDED has written nothing, however long it waited for the
//! lock and whether the transaction it waited for committed or not.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                r#"CREATE OR REPLACE FUNCTION workspace_call_in_time(until timestamptz) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF clock_timestamp() >= until THEN
        RAISE EXCEPTION 'the call''s deadline passed while it waited' USING ERRCODE = 'WS504';
    END IF;
    RETURN true;
END
$$"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("DROP FUNCTION IF EXISTS workspace_call_in_time(timestamptz)")
            .await?;
        Ok(())
    }
}
