#!/usr/bin/env python3
"""Every metric a dashboard panel or an alert uses is one the service exports.

    scripts/check-dashboard-metrics.py [path/to/workspace-service]

Starts the binary on a fresh SQLite file (ephemeral ports on 127.0.0.1),
sends a short load (gRPC health checks, a create and gets with the demo
token through scripts/grpc-load.py, one JSON/HTTP create), scrapes
/metrics, then reads the PromQL of deploy/observability/grafana-dashboard.json
(panel targets and template variables) and deploy/observability/alerts.yaml
loosely: string literals, label matchers, ranges, grouping clauses,
Grafana variables and function names removed, what is left that looks like
a name is a metric name. Exits 1 naming each one /metrics does not have.
`up`, which Prometheus makes for every target, is the one name allowed
without being exported.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml
from ports import free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy/observability/grafana-dashboard.json"
ALERTS = ROOT / "deploy/observability/alerts.yaml"
# Made by Prometheus, not by the target.
NOT_EXPORTED = {"up"}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan", "atan2",
}


def metric_names(expr):
    """The metric names in a PromQL expression, read loosely."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)
    text = re.sub(r"'(?:[^'\\]|\\.)*'", " ", text)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or name.lower() in KEYWORDS:
            continue
        # A number's exponent or a duration's unit (1e3, 5m) starts with a digit before it.
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue
        names.add(name)
    return names


def dashboard_queries(node, where="dashboard"):
    """(where, expr) for every panel target and template variable query."""
    if isinstance(node, dict):
        title = node.get("title") or node.get("name") or ""
        here = f"{where} / {title}" if title else where
        if isinstance(node.get("expr"), str):
            yield here, node["expr"]
        query = node.get("query")
        if node.get("type") == "query" and isinstance(query, (dict, str)):
            text = query.get("query", "") if isinstance(query, dict) else query
            # label_values(selector, label): the selector is the metric.
            match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", text)
            if match:
                yield f"{here} (variable)", match.group(1)
            elif text and not text.strip().startswith("label_values("):
                yield f"{here} (variable)", re.sub(r"^\s*query_result\((.*)\)\s*$", r"\1", text)
        for key, value in node.items():
            if key not in ("expr", "query"):
                yield from dashboard_queries(value, here)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_queries(item, where)


def alert_queries():
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alerts.yaml / {rule.get('alert') or rule.get('record')}", rule["expr"]



def scrape(binary):
    """/metrics of the binary after a short load."""
    work = tempfile.mkdtemp()
    grpc_addr = f"127.0.0.1:{free_port()}"
    http_addr = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, DATABASE_URL=f"sqlite://{work}/metrics.db", LISTEN_ADDR=grpc_addr,
               HTTP_LISTEN_ADDR=http_addr, RUST_LOG="warn")
    with open(f"{work}/stdout", "w") as out, open(f"{work}/stderr", "w") as err:
        service = subprocess.Popen([binary, "serve"], env=env, stdout=out, stderr=err)
    try:
        token = None
        for _ in range(200):
            found = re.search(r"wst_[A-Za-z0-9_-]+", pathlib.Path(f"{work}/stdout").read_text())
            if found:
                token = found.group(0)
                break
            if service.poll() is not None:
                break
            time.sleep(0.1)
        if not token:
            sys.exit("check-dashboard-metrics: the service printed no demo token:\n"
                     + pathlib.Path(f"{work}/stderr").read_text())
        subprocess.run([sys.executable, str(ROOT / "scripts/grpc-load.py"), grpc_addr, "--calls", "60",
                        "--concurrency", "6", "--channels", "2", "--token", token], check=True)
        request = urllib.request.Request(
            f"http://{http_addr}/api/v1/workspaces", method="POST",
            data=json.dumps({"name": "metrics check"}).encode(),
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201, answer.status
        # Observable instruments (pool, process, outbox) are read at scrape time.
        with urllib.request.urlopen(f"http://{http_addr}/metrics", timeout=10) as answer:
            return answer.read().decode()
    finally:
        service.terminate()
        service.wait(timeout=30)
        subprocess.run(["rm", "-rf", work], check=False)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/release/workspace-service")
    if not os.access(binary, os.X_OK):
        sys.exit(f"check-dashboard-metrics: {binary} is missing; run cargo build --release")
    text = scrape(binary)
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                if line and not line.startswith("#")}
    used = {}
    queries = list(dashboard_queries(json.loads(DASHBOARD.read_text()))) + list(alert_queries())
    for where, expr in queries:
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    missing = {name: wheres for name, wheres in used.items()
               if name not in exported and name not in NOT_EXPORTED}
    print(f"{len(queries)} queries use {len(used)} metric names; /metrics has {len(exported)} after the load")
    for name in sorted(used):
        state = "MISSING" if name in missing else ("made by Prometheus" if name in NOT_EXPORTED else "ok")
        print(f"  {state:18} {name} ({len(used[name])} uses)")
    if missing:
        for name, wheres in sorted(missing.items()):
            print(f"{name} is not in /metrics; used by:", file=sys.stderr)
            for where in wheres:
                print(f"  {where}", file=sys.stderr)
        sys.exit(f"check-dashboard-metrics: {len(missing)} metric name(s) used but not exported")
    if not used:
        sys.exit("check-dashboard-metrics: no metric names found in the queries (the parser is broken)")
    print("check-dashboard-metrics: every metric a panel or an alert uses is exported")


if __name__ == "__main__":
    main()
