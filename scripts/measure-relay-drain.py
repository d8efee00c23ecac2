#!/usr/bin/env python3
"""How fast the outbox relay drains a backlog: events/s, by measurement.

Starts a private `nats-server -js` (its own port and store), migrates a
fresh database with BINARY, writes EVENTS unsent events spread over ORGS
organizations straight into the outbox (SQL, a 403-byte payload each),
starts BINARY with NATS_URL and times the drain: from the first event
marked sent to the last, polling the outbox every 50 ms. Everything it
starts it stops.

    scripts/measure-relay-drain.py BINARY [--database sqlite|postgres]
        [--postgres-url postgres://postgres@127.0.0.1:5432/postgres]
        [--events 50000] [--orgs 100] [--give-up 600] [--name-prefix drain_]
        [--poll 0.05]

It also prints the rate over each tenth of the backlog (from the sample
where the tenth began to the one where it ended): a drain whose cost grows
with what is left, or with what was sent, shows it as a falling rate.

Give two binaries (before and after a change) in one run by calling it
twice; the numbers are only comparable on the same machine and build.
"""

import argparse
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timezone

from ports import free_port
from private_nats import start_nats

# A WorkspaceEvent: field 1 (id), a 400-character string.
PAYLOAD = b"\x0a\x90\x03" + b"x" * 400



def run_until_done(binary, env, args):
    subprocess.run([binary, *args], env=env, check=True, stdout=subprocess.DEVNULL)


class Sqlite:
    def __init__(self, directory):
        self.path = os.path.join(directory, "drain.db")
        self.url = f"sqlite://{self.path}"

    def fill(self, events, orgs):
        db = sqlite3.connect(self.path)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        per_org = events // orgs
        rows = []
        for _ in range(orgs):
            org = uuid.uuid4().bytes
            for sequence in range(1, per_org + 1):
                rows.append((uuid.uuid4().bytes, org, sequence, org, PAYLOAD, now))
        db.executemany(
            "INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, "
            "payload, occurred_at) VALUES (?, ?, ?, ?, 'workspace.updated', ?, ?)",
            rows,
        )
        db.commit()
        db.close()
        return len(rows)

    def unsent(self):
        db = sqlite3.connect(self.path, timeout=30)
        try:
            return db.execute("SELECT count(*) FROM events WHERE sent_at IS NULL").fetchone()[0]
        finally:
            db.close()


class Postgres:
    def __init__(self, admin_url, prefix):
        self.admin_url = admin_url
        self.name = prefix + uuid.uuid4().hex[:12]
        subprocess.run(["psql", "-qX", admin_url, "-c", f"CREATE DATABASE {self.name}"], check=True)
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name

    def psql(self, sql):
        out = subprocess.run(
            ["psql", "-qXAt", self.url, "-c", sql], check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def fill(self, events, orgs):
        per_org = events // orgs
        self.psql(
            "INSERT INTO events (id, organization_id, sequence, workspace_id, event_type, payload, "
            "occurred_at) SELECT gen_random_uuid(), o.id, s, o.id, 'workspace.updated', "
            f"'\\x{PAYLOAD.hex()}'::bytea, now() FROM (SELECT gen_random_uuid() AS id "
            f"FROM generate_series(1, {orgs})) o, generate_series(1, {per_org}) s"
        )
        self.psql("ANALYZE events")
        return per_org * orgs

    def unsent(self):
        return int(self.psql("SELECT count(*) FROM events WHERE sent_at IS NULL"))

    def drop(self):
        subprocess.run(
            ["psql", "-qX", self.admin_url, "-c", f"DROP DATABASE {self.name} WITH (FORCE)"],
            check=True,
        )


def print_tenths(samples, written):
    """The rate over each tenth of the backlog, from (time, unsent) samples."""
    rates = []
    for tenth in range(10):
        high, low = written - written * tenth // 10, written - written * (tenth + 1) // 10
        # The last sample at or above the tenth's start, the first at or below its end.
        start = [s for s in samples if s[1] >= high][-1:]
        end = [s for s in samples if s[1] <= low][:1]
        if not start or not end or end[0][0] <= start[0][0]:
            rates.append("-")
            continue
        (t0, n0), (t1, n1) = start[0], end[0]
        rates.append(f"{(n0 - n1) / (t1 - t0):.0f}")
    print("events/s by tenth of the backlog: " + " ".join(rates))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--name-prefix", default="drain_", help="of the PostgreSQL database made")
    parser.add_argument("--give-up", type=float, default=600, help="seconds; the rate so far")
    parser.add_argument("--poll", type=float, default=0.05,
                        help="seconds between counts of the unsent (a count reads them all)")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="relay-drain-")
    nats, nats_port = start_nats(directory)
    db = Sqlite(directory) if args.database == "sqlite" else Postgres(args.postgres_url, args.name_prefix)
    service = None
    try:
        env = dict(os.environ, DATABASE_URL=db.url, RUST_LOG="warn",
                   LISTEN_ADDR=f"127.0.0.1:{free_port()}", HTTP_LISTEN_ADDR="off")
        env.pop("NATS_URL", None)
        run_until_done(args.binary, env, ["migrate"])
        written = db.fill(args.events, args.orgs)
        env["NATS_URL"] = f"nats://127.0.0.1:{nats_port}"
        started = time.monotonic()
        service = subprocess.Popen([args.binary, "serve"], env=env, stdout=subprocess.DEVNULL)
        first = None
        samples = []
        while True:
            left = db.unsent()
            now = time.monotonic()
            samples.append((now, left))
            if first is None and left < written:
                first = now
            if left == 0:
                break
            if now - started > args.give_up:
                break
            time.sleep(args.poll)
        print_tenths(samples, written)
        drained = time.monotonic()
        span = drained - first
        if left:
            print(
                f"{os.path.basename(args.binary)} {args.database}: NOT DRAINED after "
                f"{drained - started:.0f} s: {written - left} of {written} events of "
                f"{args.orgs} organizations sent in {span:.2f} s after the first "
                f"({(written - left) / span:.0f} events/s)"
            )
            return
        print(
            f"{os.path.basename(args.binary)} {args.database}: {written} events of "
            f"{args.orgs} organizations ({len(PAYLOAD)} B payloads) drained in {span:.2f} s "
            f"after the first was marked sent ({written / span:.0f} events/s; "
            f"{drained - started:.2f} s from the service's start)"
        )
    finally:
        if service is not None:
            service.terminate()
            service.wait()
        nats.terminate()
        nats.wait()
        if isinstance(db, Postgres):
            db.drop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
