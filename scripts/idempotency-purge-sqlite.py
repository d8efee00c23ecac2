#!/usr/bin/env python3
"""Issue 29 on SQLite: what a purge batch of idempotency records costs, and
DeleteWorkspace's statement, at 1M records.

Makes a scratch database with the service's schema (`workspace-service
migrate`), loads 10,100 workspaces and 1M idempotency records by SQL
(8,000 workspaces with one record each, the rest on 100 others), then
prints: the delete's transaction with and without the index on
`idempotency_records (workspace_id)` (rolled back: the same rows each
time); and committed purge batches of 50, 100 and 200 records, each
batch's write transaction timed, as the service runs them (WAL,
synchronous=NORMAL, its DELETE statement). Usage:
scripts/idempotency-purge-sqlite.py [path/to/workspace-service]
"""
import datetime, os, shutil, sqlite3, statistics, subprocess, sys, tempfile, time, uuid

binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../target/debug/workspace-service")
path = os.path.join(tempfile.mkdtemp(), "growth.db")
subprocess.run([binary, "migrate"], env={**os.environ, "DATABASE_URL": f"sqlite://{path}"}, check=True, capture_output=True)
db = sqlite3.connect(path, isolation_level=None)
for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
    db.execute(f"PRAGMA {pragma}")
now = datetime.datetime.now(datetime.timezone.utc)
ts = lambda at: at.isoformat()
plan, org, user = (str(uuid.uuid4()) for _ in range(3))
workspaces = [str(uuid.uuid4()) for _ in range(10100)]
db.execute("BEGIN")
db.execute("INSERT INTO plans VALUES (?,?,?,?,?)", (plan, "growth", 1, None, ts(now)))
db.execute("INSERT INTO organizations (id,name,slug,plan_id,workspace_creation,workspace_count,created_at,updated_at,event_sequence) VALUES (?,?,?,?,?,?,?,?,0)",
           (org, "Growth", "growth", plan, "ADMINS_AND_OWNERS", 10100, ts(now), ts(now)))
db.execute("INSERT INTO users VALUES (?,?,?,?,?)", (user, "owner@growth.test", "Owner", 1, ts(now)))
db.executemany("INSERT INTO workspaces (id,organization_id,name,normalized_name,description,workspace_type,document_upload_method,billing_account_email,created_by,created_at,updated_at,number) VALUES (?,?,?,?,'','T','M','',?,?,?,?)",
               [(w, org, f"W {i}", f"w {i}", user, ts(now), ts(now), i + 1) for i, w in enumerate(workspaces)])
db.executemany("INSERT INTO workspace_memberships (id,workspace_id,user_id,role,created_at,updated_at,organization_id,workspace_created_at) VALUES (?,?,?,?,?,?,?,?)",
               [(str(uuid.uuid4()), w, user, "OWNER", ts(now), ts(now), org, ts(now)) for w in workspaces[:10000]])
db.execute("COMMIT")
for start in range(0, 1_000_000, 100_000):
    db.execute("BEGIN")
    db.executemany("INSERT INTO idempotency_records VALUES (?,?,?,?,?,?)",
                   [(str(uuid.uuid4()), user, f"r{g}", "f" * 64,
                     workspaces[g] if g < 8000 else workspaces[10000 + g % 100],
                     ts(now - datetime.timedelta(seconds=g))) for g in range(start, start + 100_000)])
    db.execute("COMMIT")
db.execute("ANALYZE")

def percentiles(label, times):
    times.sort()
    n = len(times)
    print(f"{label}: n={n} p50={statistics.median(times):.2f} ms p90={times[int(n * .9)]:.2f} ms max={times[-1]:.2f} ms")

def deletes(label, n):
    times = []
    for i in range(n):
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE organizations SET workspace_count = workspace_count - 1 WHERE id = ?", (org,))
        db.execute("DELETE FROM workspaces WHERE id = ? AND organization_id = ?", (workspaces[i * 37 % 8000], org))
        db.execute("ROLLBACK")
        times.append((time.perf_counter() - start) * 1e3)
    percentiles(label, times)

deletes("1M records, delete with the index", 200)
db.execute("DROP INDEX ix_idempotency_records_workspace_id")
deletes("1M records, delete without the index", 10)
db.execute("CREATE INDEX ix_idempotency_records_workspace_id ON idempotency_records (workspace_id)")
before = ts(now - datetime.timedelta(seconds=8000))
for batch in (50, 100, 200):
    times = []
    for _ in range(20_000 // batch):
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM idempotency_records WHERE id IN (SELECT id FROM idempotency_records "
                   "WHERE created_at < ? ORDER BY created_at LIMIT ?)", (before, batch))
        db.execute("COMMIT")
        times.append((time.perf_counter() - start) * 1e3)
    percentiles(f"purge batches of {batch} (committed; 20k records)", times)
db.close()
shutil.rmtree(os.path.dirname(path))
