#!/usr/bin/env python3
"""Reports import cycles between the modules of each crate of the workspace.

A module here is a top-level module of a crate (`src/foo.rs` or `src/foo/`,
its submodules included); `a -> b` when a file of `a` names `crate::b`
(in a `use` or a path), or `super::b` from a top-level module, or an item the
crate root re-exports from `b` (`pub use b::Item;` in lib.rs). Unit-test
modules (`#[cfg(test)] mod tests { ... }` at the end of a file, and files
named tests.rs) are left out: tests may reach anywhere.

Usage: scripts/module-cycles.py [CRATE_DIR ...]   (default: every crate)
Exits 1 and prints each cycle when there is one.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def crates(args):
    if args:
        return [pathlib.Path(a).resolve() for a in args]
    return sorted(p.parent for p in ROOT.glob("*/*/Cargo.toml") if (p.parent / "src").is_dir())


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


def top_module(src, path):
    rel = path.relative_to(src).with_suffix("")
    parts = rel.parts
    if parts in (("lib",), ("main",)):
        return None
    return parts[0]


def reexports(lib):
    """name -> module for `pub use module::{A, B}` / `pub use module::A` in the crate root."""
    out = {}
    if not lib.exists():
        return out
    for m in re.finditer(r"pub\s+use\s+(?:crate::)?(\w+)::([^;]+);", strip(lib.read_text())):
        module, rest = m.group(1), m.group(2)
        for name in re.findall(r"\b(\w+)\b(?:\s+as\s+(\w+))?", rest):
            out[name[1] or name[0]] = module
    return out


def graph(crate):
    src = crate / "src"
    modules = {p.stem if p.suffix == ".rs" else p.name for p in src.iterdir()} - {"lib", "main"}
    names = reexports(src / "lib.rs")
    edges = {}
    for path in src.rglob("*.rs"):
        if path.name == "tests.rs":
            continue
        me = top_module(src, path)
        if me is None:
            continue
        text = strip(path.read_text())
        targets = set()
        for m in re.finditer(r"\bcrate::(\w+)", text):
            targets.add(m.group(1))
        for m in re.finditer(r"use\s+crate::\{([^;]+)\};", text):
            targets.update(re.findall(r"(?:^|[,{\s])(\w+)(?=::|\s*[,}]|$)", m.group(1)))
        if len(path.relative_to(src).parts) == 1:
            targets.update(re.findall(r"\bsuper::(\w+)", text))
        resolved = set()
        for t in targets:
            if t in modules:
                resolved.add(t)
            elif t in names and names[t] in modules:
                resolved.add(names[t])
        resolved.discard(me)
        edges.setdefault(me, set()).update(resolved)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    bad = 0
    for crate in crates(sys.argv[1:]):
        edges = graph(crate)
        for comp in cycles(edges):
            bad += 1
            inner = ", ".join(f"{a} -> {b}" for a in comp for b in sorted(edges.get(a, ())) if b in comp)
            print(f"{crate.relative_to(ROOT)}: cycle between {', '.join(comp)} ({inner})")
    if bad:
        sys.exit(1)
    print("module-cycles: no cycles between the modules of any crate")


if __name__ == "__main__":
    main()
