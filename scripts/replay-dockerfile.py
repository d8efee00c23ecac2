#!/usr/bin/env python3
"""Replays the Dockerfile's build stage without a container engine, then
starts the binary it built and asks it `health-check`.

No base image can be pulled on the machines CI runs on, so the image cannot
be built for real there. This script does what the build stage does, in the
order it says: an empty directory stands for the stage's file system, each
COPY copies the same files from the build context (minus .dockerignore),
each RUN runs the same command in the stage's WORKDIR with the stage's ENV,
with the host's Rust toolchain (the Dockerfile pins the same version). It
fails where the build would fail: a file the stage forgets, a command that
fails, a path the runtime stage copies that the build did not make.

It refuses what it cannot replay faithfully: instructions other than
WORKDIR, COPY, RUN, ENV, ARG, LABEL and EXPOSE in the build stage, `COPY
--from` there, and RUN commands that name absolute paths (they would touch
this machine, not the stage).

    scripts/replay-dockerfile.py [--dockerfile Dockerfile] [--out DIR]

With --out, the files the runtime stage copies from the build stage are
left in DIR (the binary CI's end-to-end checks then run).
"""

import argparse
import fnmatch
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from ports import free_port

BUILD_STAGE = "build"
REPLAYED = {"WORKDIR", "COPY", "RUN", "ENV", "ARG", "LABEL", "EXPOSE"}


def fail(message):
    print(f"replay-dockerfile: {message}", file=sys.stderr)
    sys.exit(1)


def instructions(text):
    """(line number, KEYWORD, arguments) per instruction, continuation lines
    joined, comments and parser directives dropped."""
    result, pending, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, rest = pending.partition(" ")
        result.append((start, keyword.upper(), rest.strip()))
        pending = ""
    if pending:
        fail("the Dockerfile ends inside a continued line")
    return result


def stages(parsed):
    """{stage name: [instructions]} in file order; FROM lines start them."""
    found, current = {}, None
    for number, keyword, rest in parsed:
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(found))
            current = found.setdefault(name, [])
            continue
        if current is None:
            if keyword == "ARG":
                continue
            fail(f"line {number}: {keyword} before the first FROM")
        current.append((number, keyword, rest))
    return found


def ignored_patterns(context):
    path = context / ".dockerignore"
    if not path.exists():
        return []
    return [
        line.strip().rstrip("/")
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def is_ignored(relative, patterns):
    parts = Path(relative).parts
    for pattern in patterns:
        if pattern.startswith("!"):
            fail(".dockerignore exceptions (!) are not replayed")
        for depth in range(1, len(parts) + 1):
            if fnmatch.fnmatch("/".join(parts[:depth]), pattern):
                return True
    return False


def copy_tree(source, destination, context, patterns):
    for root, dirs, files in os.walk(source):
        relative_root = Path(root).relative_to(context)
        dirs[:] = [d for d in dirs if not is_ignored(relative_root / d, patterns)]
        target_root = destination / Path(root).relative_to(source)
        target_root.mkdir(parents=True, exist_ok=True)
        for name in files:
            if not is_ignored(relative_root / name, patterns):
                shutil.copy2(Path(root) / name, target_root / name)


class Stage:
    """The build stage's file system (a directory) and its state."""

    def __init__(self, root, context):
        self.root = root
        self.context = context
        self.workdir = "/"
        self.env = {}
        self.patterns = ignored_patterns(context)

    def host(self, path):
        """Where a path of the stage is on this machine."""
        absolute = path if path.startswith("/") else os.path.join(self.workdir, path)
        absolute = os.path.normpath(absolute)
        return self.root / absolute.lstrip("/")

    def workdir_(self, rest):
        self.workdir = os.path.normpath(os.path.join(self.workdir, rest))
        self.host(self.workdir).mkdir(parents=True, exist_ok=True)

    def copy(self, number, rest):
        words = shlex.split(rest)
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            fail(f"line {number}: COPY --from in the build stage is not replayed")
        paths = [w for w in words if not w.startswith("--")]
        if len(paths) < 2:
            fail(f"line {number}: COPY needs a source and a destination")
        *sources, destination = paths
        into_directory = destination.endswith("/") or len(sources) > 1
        target = self.host(destination)
        for source in sources:
            matches = sorted(self.context.glob(source)) if any(c in source for c in "*?[") else [self.context / source]
            matches = [m for m in matches if not is_ignored(m.relative_to(self.context), self.patterns)]
            if not matches or not all(m.exists() for m in matches):
                fail(f"line {number}: COPY {source}: not in the build context")
            for match in matches:
                if match.is_dir():
                    copy_tree(match, target, self.context, self.patterns)
                elif into_directory:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(match, target / match.name)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(match, target)

    def run(self, number, rest):
        if rest.startswith("["):
            fail(f"line {number}: exec-form RUN is not replayed")
        if re.search(r"(^|[\s=>'\"])/", rest):
            fail(f"line {number}: RUN names an absolute path; keep the build stage's paths relative to WORKDIR")
        print(f"--- line {number}: RUN {rest}", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_TARGET")}
        env.update(self.env)
        done = subprocess.run(["/bin/sh", "-c", rest], cwd=self.host(self.workdir), env=env)
        if done.returncode != 0:
            fail(f"line {number}: RUN failed with exit code {done.returncode}")

    def set_env(self, rest, keyword):
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            if default:
                self.env[name.strip()] = default.strip()
            return
        words = shlex.split(rest)
        if words and "=" not in words[0]:
            self.env[words[0]] = " ".join(words[1:])
            return
        for word in words:
            name, _, value = word.partition("=")
            self.env[name] = value


def replay(context, dockerfile, root):
    parsed = stages(instructions(dockerfile.read_text()))
    if BUILD_STAGE not in parsed:
        fail(f"no stage named {BUILD_STAGE!r} (FROM … AS {BUILD_STAGE})")
    stage = Stage(root, context)
    for number, keyword, rest in parsed[BUILD_STAGE]:
        if keyword not in REPLAYED:
            fail(f"line {number}: {keyword} in the build stage is not replayed")
        if keyword == "WORKDIR":
            stage.workdir_(rest)
        elif keyword == "COPY":
            stage.copy(number, rest)
        elif keyword == "RUN":
            stage.run(number, rest)
        elif keyword in ("ENV", "ARG"):
            stage.set_env(rest, keyword)
    # What the other stages take from this one must be there.
    taken = []
    runtime_env = {}
    for name, body in parsed.items():
        if name == BUILD_STAGE:
            continue
        for number, keyword, rest in body:
            if keyword == "ENV":
                holder = Stage(root, context)
                holder.set_env(rest, keyword)
                runtime_env.update(holder.env)
            if keyword != "COPY" or f"--from={BUILD_STAGE}" not in rest:
                continue
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            for source in words[:-1]:
                made = stage.host(source)
                if not made.exists():
                    fail(f"line {number}: the build stage made no {source}")
                taken.append(made)
    return taken, runtime_env



def smoke(binary, runtime_env):
    """Starts the built binary as the image would (its ENV, ports and
    database moved to loopback and a scratch directory), then asks it
    `health-check`, as the image's HEALTHCHECK does."""
    scratch = Path(tempfile.mkdtemp(prefix="docker-smoke-"))
    env = dict(os.environ)
    env.update(runtime_env)
    env.update({
        "LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "HTTP_LISTEN_ADDR": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite://{scratch}/workspace-service.db",
    })
    server = subprocess.Popen([str(binary), "serve"], env=env, cwd=scratch,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            check = subprocess.run([str(binary), "health-check"], env=env, capture_output=True, text=True)
            if check.returncode == 0:
                print(f"health-check: {check.stdout.strip()}")
                break
            if server.poll() is not None or time.monotonic() > deadline:
                fail(f"the built binary never answered health-check SERVING: {check.stdout}{check.stderr}")
            time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        if code != 0:
            fail(f"the built binary exited {code} on SIGTERM")
    finally:
        if server.poll() is None:
            server.kill()
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dockerfile", default="Dockerfile")
    parser.add_argument("--out", help="leave what the runtime stage copies here")
    args = parser.parse_args()
    context = Path(__file__).resolve().parent.parent
    root = Path(tempfile.mkdtemp(prefix="docker-build-stage-"))
    try:
        taken, runtime_env = replay(context, context / args.dockerfile, root)
        binaries = [t for t in taken if t.is_file() and os.access(t, os.X_OK)]
        if not binaries:
            fail("the runtime stage copies no executable from the build stage")
        for binary in binaries:
            smoke(binary, runtime_env)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            for made in taken:
                shutil.copy2(made, out / made.name)
                print(f"kept {out / made.name}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("replay-dockerfile: the build stage builds, and its binary serves")


if __name__ == "__main__":
    main()
