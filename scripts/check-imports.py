#!/usr/bin/env python3
"""Fails when modules import each other in a loop, at any depth.

Every file under src/ is a module (src/http/call.rs is http::call,
src/http/mod.rs is http). Each path a file names through `crate::`,
`super::` or `self::` (in `use` trees and in code) is resolved to the
file that defines it; a name a `mod.rs` re-exports from a child
(`pub use child::Name`) resolves to the child. An edge between two files
becomes an edge between the two children of their nearest common module
that hold them (that module's own mod.rs counting as one child), and each
module's children must form no loop: top-level modules among themselves,
the files of storage among themselves, and so on down.

`mod x;` declarations and `pub use` re-exports are structure, not use,
and unit tests (`#[cfg(test)]` to the end of a file) are left out.

With --graph, prints every module's edges. With --sizes, also fails on a
file over 400 lines under src/ (migrations and entities aside) or a
function over 80 lines anywhere under src/.
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
SIZE_EXEMPT = ("storage/migrations/", "storage/entities/")

Module = tuple[str, ...]


def module_path(path: Path) -> Module:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def code_of(text: str) -> str:
    """The code of a file without comments, string contents or unit tests."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == "r" and re.match(r'r#*"', text[i:]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif ch == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:]):
            i += re.match(r"'(\\.[^']*|[^\\'])'", text[i:]).end()
            out.append("' '")
        else:
            out.append(ch)
            i += 1
    code = "".join(out)
    cut = re.search(r"#\[cfg\(test\)\]", code)
    return code[: cut.start()] if cut else code


def expand_tree(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"\bas\w+$", "", tree)] if tree else []
    head, body = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    branches, depth, current = [], 0, ""
    for ch in body + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            branches.append(current)
            current = ""
        else:
            current += ch
    out = []
    for branch in branches:
        for leaf in expand_tree(branch):
            out.append(head + leaf if leaf != "self" else head.rstrip(":"))
    return out


class Crate:
    def __init__(self) -> None:
        self.files = {module_path(p): p for p in SRC.rglob("*.rs")}
        self.files.pop((), None)
        self.reexports: dict[Module, dict[str, Module]] = {}
        for module, path in self.files.items():
            names: dict[str, Module] = {}
            for tree in re.findall(
                r"\bpub(?:\([\w:]+\))?\s+use\s+([^;]+);", code_of(path.read_text())
            ):
                for leaf in expand_tree(tree):
                    segments = [s for s in leaf.split("::") if s]
                    target = self.resolve(module, segments[:-1] + ["_"], follow=False)
                    if target is not None and target != module:
                        names[segments[-1].split(" as ")[0]] = target
            self.reexports[module] = names

    def resolve(self, here: Module, segments: list[str], follow: bool = True):
        """The module file a path names, seen from module `here`."""
        base: Module
        if segments[0] == "crate":
            base, rest = (), segments[1:]
        elif segments[0] in ("super", "self"):
            base = here
            rest = segments
            while rest and rest[0] in ("super", "self"):
                if rest[0] == "super":
                    base = base[:-1]
                rest = rest[1:]
        elif here + (segments[0],) in self.files:
            base, rest = here, segments
        else:
            return None
        current = base
        for segment in rest:
            if current + (segment,) in self.files:
                current = current + (segment,)
                continue
            if follow and segment in self.reexports.get(current, {}):
                return self.reexports[current][segment]
            break
        return current if current in self.files else None

    def edges(self) -> set[tuple[Module, Module]]:
        found = set()
        for module, path in self.files.items():
            text = code_of(path.read_text())
            text = re.sub(r"\bpub(?:\([\w:]+\))?\s+use\s+[^;]+;", "", text)
            paths = []
            for tree in re.findall(r"\buse\s+([^;]+);", text):
                paths += expand_tree(tree)
            paths += re.findall(r"(?<![\w:])\w+(?:::\w+)+(?!\w)(?!::\{)", text)
            for named in paths:
                segments = [s for s in named.split("::") if s]
                if not segments:
                    continue
                target = self.resolve(module, segments)
                if target is not None and target != module:
                    found.add((module, target))
        return found


def sibling_graphs(edges) -> dict[Module, dict[str, set[str]]]:
    """For each module, the graph among its children ("mod.rs" = itself)."""
    graphs: dict[Module, dict[str, set[str]]] = {}
    for source, target in edges:
        common = 0
        while (
            common < min(len(source), len(target)) and source[common] == target[common]
        ):
            common += 1
        parent = source[:common]
        a = source[common] if len(source) > common else "mod.rs"
        b = target[common] if len(target) > common else "mod.rs"
        graph = graphs.setdefault(parent, {})
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    return graphs


def loops_in(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with two or more nodes."""
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
    return loops


def oversized() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.rs")):
        rel = path.relative_to(SRC).as_posix()
        lines = path.read_text().splitlines()
        if len(lines) > MAX_FILE_LINES and not rel.startswith(SIZE_EXEMPT):
            found.append(f"src/{rel}: {len(lines)} lines (at most {MAX_FILE_LINES})")
        start = None
        for number, line in enumerate(lines, 1):
            if start is None:
                match = re.match(r"(\s*)(?:pub(?:\([\w:]+\))?\s+)?(?:async\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)", line)
                if match and not line.rstrip().endswith(";"):
                    start, indent, name = number, match.group(1), match.group(2)
            elif re.match(re.escape(indent) + r"\}", line):
                if number - start + 1 > MAX_FUNCTION_LINES:
                    found.append(
                        f"src/{rel}:{start}: fn {name} is {number - start + 1} lines"
                        f" (at most {MAX_FUNCTION_LINES})"
                    )
                start = None
    return found


def main() -> int:
    crate = Crate()
    graphs = sibling_graphs(crate.edges())
    failed = False
    for parent in sorted(graphs):
        graph = graphs[parent]
        name = "::".join(parent) or "crate"
        if "--graph" in sys.argv:
            for node in sorted(graph):
                if graph[node]:
                    print(f"{name}: {node} -> {', '.join(sorted(graph[node]))}")
        for component in loops_in(graph):
            members = set(component)
            edges = [
                f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members
            ]
            print(f"import loop in {name} among {', '.join(component)}: {'; '.join(edges)}")
            failed = True
    if "--sizes" in sys.argv:
        for line in oversized():
            print(line)
            failed = True
    if failed:
        return 1
    print(f"check-imports: {len(crate.files)} files in {len(graphs)} modules, no import loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
