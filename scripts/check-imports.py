#!/usr/bin/env python3
"""Fails when the crate's top-level modules import each other in a loop.

Reads every file under src/ (the binary's main.rs aside), finds the
top-level module it belongs to (src/http/call.rs -> http) and the modules
it names through `crate::` (in `use` trees and paths), and looks for
cycles in that graph. Prints the graph with --graph.
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def module_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def used_modules(text: str) -> set[str]:
    found = set(re.findall(r"\bcrate::(\w+)", text))
    # `use crate::{a::X, b, c::{...}}`: the first segment of each branch.
    for tree in re.findall(r"\buse\s+crate::\{(.*?)\};", text, flags=re.S):
        depth = 0
        branch = ""
        for ch in tree + ",":
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                head = branch.strip().split("::")[0].strip()
                if head:
                    found.add(head)
                branch = ""
            else:
                branch += ch
    return found


def main() -> int:
    modules = {module_of(p) for p in SRC.rglob("*.rs")} - {"main", "lib"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in SRC.rglob("*.rs"):
        source = module_of(path)
        if source not in graph:
            continue
        for target in used_modules(strip_comments(path.read_text())):
            if target in modules and target != source:
                graph[source].add(target)
    if "--graph" in sys.argv:
        for source in sorted(graph):
            print(f"{source} -> {', '.join(sorted(graph[source])) or '(nothing)'}")

    # Tarjan's strongly connected components: any with two or more
    # modules is a loop.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    for component in loops:
        members = set(component)
        edges = [
            f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members
        ]
        print(f"import loop among {', '.join(component)}: {'; '.join(edges)}")
    if loops:
        return 1
    print(f"check-imports: {len(graph)} top-level modules, no import loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
