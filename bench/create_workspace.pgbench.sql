-- The statements one CreateWorkspace sends to PostgreSQL (captured with
-- log_statement = 'all'), replayed by pgbench beside the cheapest-form
-- ceiling (create_workspace.cheapest.pgbench.sql): what the service's own
-- statements cost without the service. workspace-bench fills
-- bench_callers (n, token hash, user, organization, plan) and runs:
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
-- Each id is looked up in bench_callers inside the statement that uses it,
-- so the round trips are the service's two: authentication, which reads
-- the token, its user and the user's first organizations with their plans
-- (checks 1 and 3 to 6 in Rust); then the one statement that counts under
-- the limit, inserts the workspace, its membership, the idempotency record
-- (none here) and the event (a 420-byte payload, the size of the
-- service's), and gives up past the call's deadline (30 s, the default cap).
-- The event is written as sent: its payload is no WorkspaceEvent, and the
-- service's relay, which may be running on this database, never reads a
-- sent event (the retention purge deletes it); the two partial indexes of
-- unsent events get no entry, so this is a little cheaper than the
-- service's statement, never dearer.
\set n 1 + :offset + (:client_id + :clients * random(0, :spread - 1)) % :callers
SELECT t.expires_at, u.id AS user_id, u.validated, m.role, o.id AS organization_id, o.name AS organization_name, o.slug, o.workspace_creation, o.workspace_count, p.name AS plan_name, p.creation_allowed, p.workspace_limit FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN organization_memberships m ON m.user_id = u.id LEFT JOIN organizations o ON o.id = m.organization_id LEFT JOIN plans p ON p.id = o.plan_id WHERE t.token_hash = (SELECT token_hash FROM bench_callers WHERE n = :n) ORDER BY m.organization_id LIMIT 9;
WITH counted AS (UPDATE organizations SET workspace_count = workspace_count + 1, event_sequence = event_sequence + 1, updated_at = now() WHERE id = (SELECT organization_id FROM bench_callers WHERE n = :n) AND workspace_count < COALESCE((SELECT plans.workspace_limit FROM plans WHERE plans.id = organizations.plan_id), 2147483647) RETURNING event_sequence), created AS (INSERT INTO workspaces (id, organization_id, name, normalized_name, description, workspace_type, document_upload_method, billing_account_email, workspace_document_store_credentials_id, pipeline_document_store_credentials_id, file_store_credentials_id, used_storage, files_count, created_by, created_at, updated_at, revision) SELECT g.id, c.organization_id, 'pgbench ' || g.id, 'pgbench ' || g.id, '', 'CUSTOM', 'MANUAL', '', NULL, NULL, NULL, 0, 0, c.user_id, now(), now(), 1 FROM counted, bench_callers c, (SELECT gen_random_uuid() AS id) g WHERE c.n = :n AND (30000000::bigint IS NULL OR workspace_call_in_time(statement_timestamp() + 30000000 * interval '1 microsecond')) RETURNING id), members AS (INSERT INTO workspace_memberships (id, workspace_id, user_id, role, created_at, updated_at, organization_id, workspace_created_at) SELECT m.id, created.id, m.user_id, m.role, now(), now(), (SELECT organization_id FROM bench_callers WHERE n = :n), now() FROM created, (VALUES (gen_random_uuid(), (SELECT user_id FROM bench_callers WHERE n = :n), 'OWNER'::text), (NULL::uuid, NULL::uuid, NULL::text)) AS m (id, user_id, role) WHERE m.id IS NOT NULL), remembered AS (INSERT INTO idempotency_records (id, user_id, request_id, request_fingerprint, workspace_id, created_at) SELECT NULL::uuid, NULL::uuid, NULL::text, NULL::text, created.id, now() FROM created WHERE NULL::uuid IS NOT NULL), recorded AS (INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, occurred_at, sent_at) SELECT gen_random_uuid(), (SELECT organization_id FROM bench_callers WHERE n = :n), counted.event_sequence, created.id, 'workspace.created', decode(repeat('2a', 420), 'hex'), now(), now() FROM counted, created) SELECT event_sequence FROM counted;
