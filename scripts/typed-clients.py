#!/usr/bin/env python3
"""Typed clients from each seed document's schema parse every 201 of a default server.

Usage: scripts/typed-clients.py BINARY [POSTGRES_ADMIN_URL]

Run it with a Python that has datamodel-code-generator, pydantic (with
email-validator), jsonschema and rfc3339-validator (.ci/run makes a virtual
environment for it). For each database (SQLite in a temporary file; PostgreSQL
in a fresh database created on the server POSTGRES_ADMIN_URL names, default
postgres://postgres@127.0.0.1:5432/postgres, dropped at the end) it starts the
binary on free ports with the demo seed, creates workspaces through each seed
route the way that document's client would, and checks every 201 body with
the client generated from tests/fixtures/seed_schemas/ (see its README):
000 and 001 as pydantic models made by datamodel-codegen, 002 to 004 with
jsonschema. Any refusal is printed and the script exits 1.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jsonschema
from ports import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(ROOT, "tests", "fixtures", "seed_schemas")
FAILURES = []


def generated_model(work, source, kind, name):
    """The pydantic model class datamodel-codegen writes for one document."""
    out = os.path.join(work, f"model_{name}.py")
    codegen = os.path.join(os.path.dirname(sys.executable), "datamodel-codegen")
    subprocess.run(
        [codegen, "--input", os.path.join(SCHEMAS, source), "--input-file-type", kind,
         "--output-model-type", "pydantic_v2.BaseModel",
         "--output", out],
        check=True, stderr=subprocess.DEVNULL)
    spec = importlib.util.spec_from_file_location(f"model_{name}", out)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its postponed annotations resolve here
    spec.loader.exec_module(module)
    return module


def json_schema_checker(source):
    with open(os.path.join(SCHEMAS, source)) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)



class Server:
    """The binary on its own ports, its demo token read from its stdout."""

    def __init__(self, binary, database_url, work, extra_env):
        self.http = free_port()
        env = dict(os.environ, DATABASE_URL=database_url, SEED_DEMO="true",
                   LISTEN_ADDR=f"127.0.0.1:{free_port()}",
                   HTTP_LISTEN_ADDR=f"127.0.0.1:{self.http}", RUST_LOG="warn", **extra_env)
        self.stdout = open(os.path.join(work, "stdout"), "w+")
        self.stderr = open(os.path.join(work, "stderr"), "w+")
        self.process = subprocess.Popen([binary, "serve"], env=env, stdout=self.stdout,
                                        stderr=self.stderr)
        self.token = None
        for _ in range(300):
            self.stdout.seek(0)
            match = re.search(r"Bearer (wst_[A-Za-z0-9_-]+)", self.stdout.read())
            if match and self.answers():
                self.token = match.group(1)
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        self.stderr.seek(0)
        sys.exit(f"typed-clients: the service did not start\n{self.stderr.read()}")

    def answers(self):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.http}/openapi.json", timeout=2)
            return True
        except OSError:
            return False

    def post(self, path, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http}{path}", data=data, method="POST",
            headers={"content-type": content_type, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def check(label, status, body, parse):
    if status != 201:
        FAILURES.append(f"{label}: answered {status}: {body}")
        print(f"FAIL {label}: answered {status}: {body}")
        return
    try:
        parse(body)
        print(f"ok   {label}: the 201 parses")
    except Exception as e:  # pydantic.ValidationError, jsonschema.ValidationError
        FAILURES.append(f"{label}: {e}")
        print(f"FAIL {label}: the 201 does not parse:\n{e}")


def run_000_002_003_004(server, binary, database_url, clients, db):
    bearer = {"authorization": f"Bearer {server.token}"}
    model_000 = clients["000"].CreatedWorkspace
    for name in ("Search pipelines", "Second pipelines"):
        status, body = server.post("/api/v1/workspaces", {"name": name}, headers=bearer)
        check(f"{db} 000 POST /api/v1/workspaces", status, body, model_000.model_validate)
    for name in ("Engineering Team Workspace", "Second Team Workspace"):
        status, body = server.post("/api/v3/workspaces", {"name": name, "description": "d"},
                                   headers=bearer)
        check(f"{db} 002 POST /api/v3/workspaces (JSON)", status, body, clients["002"].validate)
    form = urllib.parse.urlencode({"name": "Form workspace", "description": "form"}).encode()
    status, body = server.post("/api/v3/workspaces", form,
                               "application/x-www-form-urlencoded", bearer)
    check(f"{db} 002 POST /api/v3/workspaces (form)", status, body, clients["002"].validate)
    for name in ("Development Workspace", "Second Workspace"):
        status, body = server.post("/workspace", {"name": name}, headers=bearer)
        check(f"{db} 003 POST /workspace", status, body, clients["003"].validate)
    session = subprocess.run(
        [binary, "admin", "session", "create", "--user", "owner@demo.example"],
        env=dict(os.environ, DATABASE_URL=database_url, RUST_LOG="warn"),
        check=True, capture_output=True, text=True).stdout.split()[-1]
    for name in ("Development Team", "Second Team"):
        status, body = server.post("/workspaces", {"name": name, "description": "d"},
                                   headers={"cookie": f"session={session}"})
        check(f"{db} 004 POST /workspaces", status, body, clients["004"].validate)


def run_001(server, clients, db):
    model = clients["001"].CreateWorkspaceResponseDto
    bearer = {"authorization": f"Bearer {server.token}"}
    for name in ("QA", "Second QA"):
        body = {"name": name, "billingAccountEmail": "billing@example.com"}
        status, answer = server.post("/api/v1/workspaces", body, headers=bearer)
        check(f"{db} 001 POST /api/v1/workspaces", status, answer, model.model_validate)


def run_database(binary, database_url, clients, db, work):
    server = Server(binary, database_url, work, {})
    try:
        run_000_002_003_004(server, binary, database_url, clients, db)
    finally:
        server.stop()
    server = Server(binary, database_url, work, {"HTTP_API_V1_DIALECT": "001"})
    try:
        run_001(server, clients, db)
    finally:
        server.stop()


def main():
    binary = os.path.abspath(sys.argv[1])
    admin = sys.argv[2] if len(sys.argv) > 2 else "postgres://postgres@127.0.0.1:5432/postgres"
    with tempfile.TemporaryDirectory() as work:
        clients = {
            "000": generated_model(work, "000.openapi.json", "openapi", "000"),
            "001": generated_model(work, "001.openapi.yaml", "openapi", "001"),
            "002": json_schema_checker("002.schema.json"),
            "003": json_schema_checker("003.schema.json"),
            "004": json_schema_checker("004.schema.json"),
        }
        run_database(binary, f"sqlite://{work}/typed.db", clients, "SQLite", work)
        name = f"typed_clients_{uuid.uuid4().hex[:12]}"
        subprocess.run(["psql", admin, "-qc", f'create database "{name}"'], check=True)
        try:
            url = urllib.parse.urlsplit(admin)._replace(path=f"/{name}").geturl()
            run_database(binary, url, clients, "PostgreSQL", work)
        finally:
            subprocess.run(["psql", admin, "-qc", f'drop database if exists "{name}" with (force)'],
                           check=True)
    if FAILURES:
        sys.exit(f"typed-clients: {len(FAILURES)} answer(s) refused by a typed client")
    print("typed-clients: every 201 parses with its document's client on SQLite and PostgreSQL")


if __name__ == "__main__":
    main()
