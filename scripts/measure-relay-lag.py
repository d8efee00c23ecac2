#!/usr/bin/env python3
"""The outbox relay's lag under a full-speed create load, by measurement.

Starts a private `nats-server -js` (its own port and store) and runs
`workspace-bench --creates-only` (BENCH, which starts SERVER with
NATS_URL on a fresh database): gRPC CreateWorkspace at full speed for
SECONDS from CONCURRENCY workers, then it waits until the relay drained
the outbox. Each create writes one event; the relay marks it sent once
JetStream acknowledged it. Then reads the outbox and prints creates/s
(events written over the span of their occurred_at), events published/s
(events marked sent over the span of their sent_at) and the lag, sent_at
less occurred_at, p50/p99/max. Everything it starts it stops; the
PostgreSQL database it makes (relay29_lag_…) is dropped.

    scripts/measure-relay-lag.py BENCH SERVER [--database sqlite|postgres]
        [--postgres-url postgres://postgres@127.0.0.1:5432/postgres]
        [--seconds 20] [--organizations 256] [--users 1] [--concurrency 32]
"""

import argparse
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from datetime import datetime

from private_nats import start_nats


def postgres_rows(url):
    out = subprocess.run(
        ["psql", "-qXAt", "-F", " ", url, "-c",
         "SELECT extract(epoch FROM occurred_at), extract(epoch FROM sent_at) FROM events "
         "WHERE event_type = 'workspace.created'"],
        check=True, capture_output=True, text=True,
    )
    rows = []
    for line in out.stdout.split("\n"):
        if line.strip():
            occurred, _, sent = line.partition(" ")
            rows.append((float(occurred), float(sent) if sent else None))
    return rows


def sqlite_rows(path):
    def seconds(text):
        return datetime.fromisoformat(text).timestamp() if text else None

    db = sqlite3.connect(path, timeout=30)
    try:
        return [
            (seconds(occurred), seconds(sent))
            for occurred, sent in db.execute(
                "SELECT occurred_at, sent_at FROM events WHERE event_type = 'workspace.created'"
            )
        ]
    finally:
        db.close()


def percentile(values, p):
    return values[round((len(values) - 1) * p)]


def report(label, rows):
    sent = [(o, s) for o, s in rows if s is not None]
    if not sent:
        print(f"{label}: {len(rows)} events, none sent")
        return
    occurred = sorted(o for o, _ in rows)
    sent_at = sorted(s for _, s in sent)
    lags = sorted(s - o for o, s in sent)
    create_span = occurred[-1] - occurred[0]
    sent_span = sent_at[-1] - sent_at[0]
    print(
        f"{label}: {len(rows)} events written in {create_span:.1f} s "
        f"({len(rows) / create_span:.0f} creates/s); {len(sent)} sent in {sent_span:.1f} s "
        f"({len(sent) / sent_span:.0f} events/s), {len(rows) - len(sent)} unsent; lag "
        f"p50 {percentile(lags, 0.5) * 1e3:.0f} ms, p99 {percentile(lags, 0.99) * 1e3:.0f} ms, "
        f"max {lags[-1] * 1e3:.0f} ms"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bench")
    parser.add_argument("server")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--organizations", type=int, default=256)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="relay-lag-")
    nats, nats_port = start_nats(directory)
    name = None
    try:
        if args.database == "postgres":
            name = "relay29_lag_" + uuid.uuid4().hex[:10]
            subprocess.run(["psql", "-qX", args.postgres_url, "-c", f"CREATE DATABASE {name}"],
                           check=True)
            url = args.postgres_url.rsplit("/", 1)[0] + "/" + name
        else:
            path = os.path.join(directory, "lag.db")
            url = f"sqlite://{path}?mode=rwc"
        subprocess.run(
            [args.bench, "--server", args.server, "--database", url, "--creates-only",
             "--seconds", str(args.seconds), "--organizations", str(args.organizations),
             "--users-per-organization", str(args.users), "--concurrency",
             str(args.concurrency), "--server-log", "warn",
             "--server-env", f"NATS_URL=nats://127.0.0.1:{nats_port}"],
            check=True,
        )
        rows = postgres_rows(url) if name else sqlite_rows(path)
        report(f"{os.path.basename(args.server)} {args.database}", rows)
    finally:
        nats.terminate()
        nats.wait()
        if name:
            subprocess.run(
                ["psql", "-qX", args.postgres_url, "-c", f"DROP DATABASE {name} WITH (FORCE)"],
                check=True,
            )
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
