//! The rows of one size, written by SQL in one transaction: no calls.
//!
//! `w` workspaces: the even ones in one big organization (BIG), where the
//! MEMBER has a membership of every `w / 2 / memberships`-th one (and is
//! ADMIN of 5 other organizations), the odd ones spread over the
//! `organizations` organizations of one OWNER; every workspace has an
//! OWNER membership of its creator, one idempotency record, one sent
//! event and one unsent one (so at 1M: 1M records, 1M sent and 1M unsent
//! events). Ids are sequential (`id`), so the indexes fill in order and a
//! million rows load in minutes. Times are recent enough that no purge
//! (idempotency, sent or unsent events) finds anything to delete.

use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use uuid::Uuid;
use workspace_service::storage::Storage;

pub const OWNER: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);
pub const MEMBER: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0002);
pub const CREATOR: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0003);
pub const GUEST: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0006);
const PLAN: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0004);
const BIG: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0005);

/// Row kinds, the second group of their ids.
const ORGANIZATION: u16 = 1;
const WORKSPACE: u16 = 2;
const MEMBERSHIP: u16 = 3;
const RECORD: u16 = 4;
const EVENT: u16 = 5;

/// The id of row `n` of `kind`: `00000000-000K-4000-8000-NNNNNNNNNNNN`.
pub fn id(kind: u16, n: u64) -> Uuid {
    Uuid::from_u128((u128::from(kind) << 80) | (0x4000 << 64) | (0x8000 << 48) | u128::from(n))
}

/// Workspace `n` (1-based): odd ones are in the OWNER's organizations.
pub fn workspace(n: u64) -> Uuid {
    id(WORKSPACE, n)
}

/// Organization `n` of the OWNER's (1-based), where odd workspace `x`
/// lives in `1 + (x / 2) % organizations`.
pub fn organization(n: u64) -> Uuid {
    id(ORGANIZATION, n)
}

/// What a size holds.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub workspaces: u64,
    pub organizations: u64,
    pub memberships: u64,
}

impl Shape {
    /// The MEMBER's memberships as loaded (fewer than asked when half the
    /// workspaces are fewer).
    pub fn member_of(&self) -> u64 {
        (self.workspaces / 2 / self.every()).min(self.memberships)
    }

    fn every(&self) -> u64 {
        (self.workspaces / 2 / self.memberships.max(1)).max(1)
    }
}

/// SQL that differs between the backends.
struct Dialect {
    backend: DbBackend,
}

impl Dialect {
    /// `SELECT n FROM` 1..=`to`.
    fn series(&self, to: u64) -> String {
        match self.backend {
            DbBackend::Postgres => format!("(SELECT n FROM generate_series(1, {to}::bigint) n)"),
            _ => format!(
                "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {to}) SELECT n FROM s)"
            ),
        }
    }

    /// The id of row `n` (an SQL expression) of `kind`, as `id` makes it.
    fn id_of(&self, kind: u16, n: &str) -> String {
        match self.backend {
            DbBackend::Postgres => {
                format!("('00000000-{kind:04x}-4000-8000-' || lpad(to_hex({n}), 12, '0'))::uuid")
            }
            _ => format!("unhex('00000000{kind:04x}40008000' || printf('%012x', {n}))"),
        }
    }

    fn uuid(&self, id: Uuid) -> String {
        match self.backend {
            DbBackend::Postgres => format!("'{id}'::uuid"),
            _ => format!("x'{}'", id.simple()),
        }
    }

    /// 2026-01-01 plus `n` milliseconds, as the service writes times.
    fn at_ms(&self, n: &str) -> String {
        match self.backend {
            DbBackend::Postgres => {
                format!("(timestamptz '2026-01-01 00:00:00+00' + {n} * interval '1 millisecond')")
            }
            _ => format!(
                "strftime('%Y-%m-%dT%H:%M:%f+00:00', '2026-01-01', '+' || ({n} / 1000.0) || ' seconds')"
            ),
        }
    }

    /// Now minus `seconds`.
    fn ago(&self, seconds: u64) -> String {
        match self.backend {
            DbBackend::Postgres => format!("(now() - interval '{seconds} seconds')"),
            _ => format!("strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-{seconds} seconds')"),
        }
    }

    /// The next workspace number given after the loaded ones.
    fn numbers_after_load(&self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => {
                "SELECT setval(pg_get_serial_sequence('workspaces', 'number'), max(number)) FROM workspaces"
            }
            _ => "UPDATE workspace_numbers SET last = (SELECT max(number) FROM workspaces)",
        }
    }

    fn empty_blob(&self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => "'\\x'::bytea",
            _ => "x''",
        }
    }
}

/// Writes the rows of `shape` into the migrated, empty database.
pub async fn load(storage: &Storage, shape: Shape) -> anyhow::Result<()> {
    let d = Dialect {
        backend: storage.connection().get_database_backend(),
    };
    let mut statements = people(&d, shape);
    statements.extend(workspaces(&d, shape));
    statements.extend(records_and_events(&d, shape));
    let txn = storage.connection().begin().await?;
    for statement in statements {
        txn.execute_unprepared(&statement).await?;
    }
    txn.commit().await?;
    let db = storage.connection();
    if d.backend == DbBackend::Postgres {
        // Autovacuum may be off (it is on the shared machine): fresh
        // statistics, as a database that grew would have.
        db.execute_unprepared("VACUUM ANALYZE").await?;
    } else {
        // What the service does at start and every hour.
        storage.keep_statistics().await?;
    }
    Ok(())
}

/// The plan, the users, the organizations and who is in them.
fn people(d: &Dialect, shape: Shape) -> Vec<String> {
    let (plan, big) = (d.uuid(PLAN), d.uuid(BIG));
    let (owner, member, creator, guest) = (
        d.uuid(OWNER),
        d.uuid(MEMBER),
        d.uuid(CREATOR),
        d.uuid(GUEST),
    );
    let (start, at) = (d.at_ms("0"), d.at_ms("n"));
    let orgs = d.series(shape.organizations);
    let org = d.id_of(ORGANIZATION, "n");
    let membership = |n: &str| d.id_of(MEMBERSHIP, n);
    // Organization memberships are numbered after the workspace ones.
    let base = 2 * shape.workspaces;
    vec![
        format!(
            "INSERT INTO plans (id, name, creation_allowed, workspace_limit, created_at) VALUES ({plan}, 'growth', true, NULL, {start})"
        ),
        format!(
            "INSERT INTO users (id, email, display_name, validated, created_at) SELECT u.id, u.email, u.email, true, {start} FROM (SELECT {owner} AS id, 'owner@growth' AS email UNION ALL SELECT {member}, 'member@growth' UNION ALL SELECT {creator}, 'creator@growth' UNION ALL SELECT {guest}, 'guest@growth') u"
        ),
        format!(
            "INSERT INTO organizations (id, name, slug, plan_id, workspace_creation, workspace_count, created_at, updated_at, event_sequence) SELECT {big}, 'big', 'big', {plan}, 'ROLE_BASED', 0, {start}, {start}, 0"
        ),
        format!(
            "INSERT INTO organizations (id, name, slug, plan_id, workspace_creation, workspace_count, created_at, updated_at, event_sequence) SELECT {org}, 'org ' || n, 'org-' || n, {plan}, 'ROLE_BASED', 0, {at}, {at}, 0 FROM {orgs} x"
        ),
        format!(
            "INSERT INTO organization_memberships (id, organization_id, user_id, role, created_at) SELECT {}, {org}, {owner}, 'OWNER', {at} FROM {orgs} x",
            membership(&format!("{base} + n"))
        ),
        format!(
            "INSERT INTO organization_memberships (id, organization_id, user_id, role, created_at) SELECT {}, {org}, {member}, 'ADMIN', {at} FROM {orgs} x WHERE n <= 5",
            membership(&format!("{} + n", base + shape.organizations))
        ),
        format!(
            "INSERT INTO organization_memberships (id, organization_id, user_id, role, created_at) SELECT {}, c.o, c.u, 'MEMBER', {start} FROM (SELECT 1 AS k, {big} AS o, {member} AS u UNION ALL SELECT 2, {big}, {creator} UNION ALL SELECT 3, {}, {guest}) c",
            membership(&format!("{} + c.k", base + shape.organizations + 5)),
            d.uuid(organization(1))
        ),
    ]
}

/// The workspaces, their creator's OWNER memberships and the MEMBER's,
/// and the organizations' counters.
fn workspaces(d: &Dialect, shape: Shape) -> Vec<String> {
    let (big, member, creator) = (d.uuid(BIG), d.uuid(MEMBER), d.uuid(CREATOR));
    let (w, k) = (shape.workspaces, shape.organizations);
    let series = d.series(w);
    let (ws, org, at) = (
        d.id_of(WORKSPACE, "n"),
        d.id_of(ORGANIZATION, &format!("1 + (n / 2) % {k}")),
        d.at_ms("n"),
    );
    vec![
        format!(
            "INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type, document_upload_method, billing_account_email, used_storage, files_count, created_by, created_at, updated_at, revision, number) SELECT {ws}, CASE WHEN n % 2 = 0 THEN {big} ELSE {org} END, 'w ' || n, 'w ' || n, '', 'CUSTOM', 'MANUAL', '', 0, 0, {creator}, {at}, {at}, 1, n FROM {series} x"
        ),
        format!(
            "INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at, organization_id, workspace_created_at) SELECT {}, w.id, {creator}, 'OWNER', w.created_at, w.created_at, w.organization_id, w.created_at FROM workspaces w",
            d.id_of(MEMBERSHIP, "w.number")
        ),
        format!(
            "INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at, organization_id, workspace_created_at) SELECT {}, w.id, {member}, 'MEMBER', w.created_at, w.created_at, w.organization_id, w.created_at FROM workspaces w WHERE w.number % 2 = 0 AND (w.number / 2) % {} = 0 AND w.number / 2 / {} <= {}",
            d.id_of(MEMBERSHIP, &format!("{w} + w.number")),
            shape.every(),
            shape.every(),
            shape.memberships
        ),
        // Every organization's events numbered below its counter.
        format!(
            "UPDATE organizations SET event_sequence = {}, workspace_count = (SELECT count(*) FROM workspaces w WHERE w.organization_id = organizations.id)",
            2 * w + 1
        ),
        d.numbers_after_load().to_owned(),
    ]
}

/// One idempotency record, one sent and one unsent event per workspace.
fn records_and_events(d: &Dialect, shape: Shape) -> Vec<String> {
    let (creator, w) = (d.uuid(CREATOR), shape.workspaces);
    let blob = d.empty_blob();
    let event = |n: &str| d.id_of(EVENT, n);
    vec![
        format!(
            "INSERT INTO idempotency_records (id, user_id, request_id, request_fingerprint, workspace_id, created_at) SELECT {}, {creator}, 'r' || w.number, 'f' || w.number, w.id, {} FROM workspaces w",
            d.id_of(RECORD, "w.number"),
            d.ago(60)
        ),
        format!(
            "INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, sent_at) SELECT {}, w.organization_id, w.number, w.id, 'workspace.created', {blob}, {}, {} FROM workspaces w",
            event("w.number"),
            d.ago(3600),
            d.ago(1800)
        ),
        format!(
            "INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, sent_at) SELECT {}, w.organization_id, {w} + w.number, w.id, 'workspace.updated', {blob}, {}, NULL FROM workspaces w",
            event(&format!("{w} + w.number")),
            d.ago(60)
        ),
    ]
}
