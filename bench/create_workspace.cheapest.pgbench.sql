-- The cheapest form of one CreateWorkspace's database work, for pgbench:
-- the ceiling the service is measured against. One statement, so one
-- round trip and one implicit transaction, that does everything checks 1
-- to 11 need from the database, on the service's schema:
--   1  the API token by its hash, unexpired, with its user;
--   3  the caller's only organization membership, with the organization
--      and its plan (a second membership would need organization_id);
--   4  the user is validated;
--   5  the role is allowed by the organization's creation policy;
--   6  the plan allows creating workspaces;
--   9  the counter below the plan's limit, raised in the same UPDATE that
--      takes the organization's next event number (locks its row);
--   10 the unique index on (organization_id, normalized_name);
--   11 the workspace, the creator's OWNER membership and the outbox
--      event (a 420-byte payload, the size of the service's), written as
--      sent: the payload is no WorkspaceEvent, and the service's relay,
--      which may be running on this database, never reads a sent event
--      (the retention purge deletes it). That spares the two partial
--      indexes of unsent events an entry: the ceiling is a little higher
--      than the service's own work, never lower.
-- Checks 7 and 8 (credentials, a first member) are only needed by requests
-- that name them; the benchmark's requests do not, nor do the service's.
-- workspace-bench fills bench_callers (n, token hash, user, organization,
-- plan) and runs:
--   pgbench -n -M prepared -c 10 -j 2 -T 5 -D callers=64 -D offset=256 \
--     -D clients=10 -D spread=6 -f this-file URL
-- (10 clients: the connections the service's pool may open, by default;
-- `--ceiling-connections`)
-- as one case's callers (rows offset+1 to offset+callers of bench_callers),
-- picked as the service's load picks them (load.rs, `pick`): with at least
-- as many callers as clients, each client its own (client_id,
-- client_id + clients, …; spread = callers / clients of them), so no two
-- transactions in flight share a caller; with fewer, client c always
-- calls as caller c mod callers.
\set n 1 + :offset + (:client_id + :clients * random(0, :spread - 1)) % :callers
WITH caller AS (
    SELECT u.id AS user_id, m.organization_id
      FROM api_tokens t
      JOIN users u ON u.id = t.user_id
      JOIN organization_memberships m ON m.user_id = u.id
      JOIN organizations o ON o.id = m.organization_id
      JOIN plans p ON p.id = o.plan_id
     WHERE t.token_hash = (SELECT token_hash FROM bench_callers WHERE n = :n)
       AND (t.expires_at IS NULL OR t.expires_at > now())
       AND u.validated
       AND (m.role IN ('OWNER', 'ADMIN') OR o.workspace_creation = 'ALL_MEMBERS'
            OR (o.workspace_creation = 'ROLE_BASED' AND m.role = 'WORKSPACE_CREATOR'))
       AND p.creation_allowed
     LIMIT 1
), counted AS (
    UPDATE organizations o
       SET workspace_count = o.workspace_count + 1, event_sequence = o.event_sequence + 1, updated_at = now()
      FROM caller c
     WHERE o.id = c.organization_id
       AND o.workspace_count < COALESCE((SELECT p.workspace_limit FROM plans p WHERE p.id = o.plan_id), 2147483647)
 RETURNING o.id AS organization_id, o.event_sequence, c.user_id
), created AS (
    INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type,
                            document_upload_method, billing_account_email, used_storage, files_count,
                            created_by, created_at, updated_at, revision)
    SELECT g.id, c.organization_id, 'cheapest ' || g.id, 'cheapest ' || g.id, '', 'CUSTOM', 'MANUAL', '',
           0, 0, c.user_id, now(), now(), 1
      FROM counted c, (SELECT gen_random_uuid() AS id) g
 RETURNING id, created_by, organization_id, created_at
), members AS (
    INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at,
                                       organization_id, workspace_created_at)
    SELECT gen_random_uuid(), w.id, w.created_by, 'OWNER', now(), now(), w.organization_id, w.created_at
      FROM created w
), recorded AS (
    INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, sent_at)
    SELECT gen_random_uuid(), c.organization_id, c.event_sequence, w.id, 'workspace.created',
           decode(repeat('2a', 420), 'hex'), now(), now()
      FROM counted c, created w
)
SELECT organization_id, event_sequence FROM counted;
