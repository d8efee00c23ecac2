-- The statements one CreateWorkspace sends to PostgreSQL (captured with
-- log_statement = 'all'), for pgbench: the database's own ceiling for the
-- service's work. workspace-bench fills bench_callers (n, token hash, user,
-- organization, plan) and runs:
--   pgbench -n -M prepared -c 32 -j 2 -T 10 -D callers=64 -f this-file URL
-- Each id is looked up in bench_callers inside the statement that uses it,
-- so the round trips are the service's: four reads, then BEGIN, the
-- conditional counter UPDATE, two INSERTs and COMMIT.
\set n random(1, :callers)
SELECT "api_tokens"."id", "api_tokens"."user_id", "api_tokens"."name", "api_tokens"."token_hash", "api_tokens"."expires_at", "api_tokens"."created_at" FROM "api_tokens" WHERE "api_tokens"."token_hash" = (SELECT token_hash FROM bench_callers WHERE n = :n) LIMIT 1;
SELECT "organization_memberships"."id", "organization_memberships"."organization_id", "organization_memberships"."user_id", "organization_memberships"."role", "organization_memberships"."created_at" FROM "organization_memberships" WHERE "organization_memberships"."user_id" = (SELECT user_id FROM bench_callers WHERE n = :n) ORDER BY "organization_memberships"."organization_id" ASC;
SELECT "organizations"."id" AS "A_id", "organizations"."name" AS "A_name", "organizations"."slug" AS "A_slug", "organizations"."plan_id" AS "A_plan_id", "organizations"."workspace_creation" AS "A_workspace_creation", "organizations"."workspace_count" AS "A_workspace_count", "organizations"."created_at" AS "A_created_at", "organizations"."updated_at" AS "A_updated_at", "plans"."id" AS "B_id", "plans"."name" AS "B_name", "plans"."creation_allowed" AS "B_creation_allowed", "plans"."workspace_limit" AS "B_workspace_limit", "plans"."created_at" AS "B_created_at" FROM "organizations" LEFT JOIN "plans" ON "organizations"."plan_id" = "plans"."id" WHERE "organizations"."id" = (SELECT organization_id FROM bench_callers WHERE n = :n) LIMIT 1;
SELECT "users"."id", "users"."email", "users"."display_name", "users"."validated", "users"."created_at" FROM "users" WHERE "users"."id" = (SELECT user_id FROM bench_callers WHERE n = :n) LIMIT 1;
BEGIN;
UPDATE "organizations" SET "workspace_count" = "workspace_count" + 1, "updated_at" = now() WHERE "organizations"."id" = (SELECT organization_id FROM bench_callers WHERE n = :n) AND "workspace_count" < (COALESCE((SELECT plans.workspace_limit FROM plans WHERE plans.id = organizations.plan_id), 2147483647));
INSERT INTO "workspaces" ("id", "organization_id", "name", "normalized_name", "description", "workspace_type", "document_upload_method", "billing_account_email", "workspace_document_store_credentials_id", "pipeline_document_store_credentials_id", "file_store_credentials_id", "used_storage", "files_count", "created_by", "created_at", "updated_at") SELECT g.id, c.organization_id, 'pgbench ' || g.id, 'pgbench ' || g.id, '', 'CUSTOM', 'MANUAL', '', NULL, NULL, NULL, 0, 0, c.user_id, now(), now() FROM bench_callers c, (SELECT gen_random_uuid() AS id) g WHERE c.n = :n RETURNING id AS workspace_id \gset
INSERT INTO "workspace_memberships" ("id", "workspace_id", "user_id", "role", "created_at", "updated_at") VALUES (gen_random_uuid(), :workspace_id, (SELECT user_id FROM bench_callers WHERE n = :n), 'OWNER', now(), now());
COMMIT;
