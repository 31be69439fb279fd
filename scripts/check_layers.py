#!/usr/bin/env python3
"""Layer checks for spdl-io (run by scripts/test.sh).

1. No import cycles between the crate's modules. Every file is a node;
   `use crate::...`, `use super::...` and inline `crate::a::b` paths are
   edges to the file that defines the module they name (a name re-exported
   by a `mod.rs` or by `lib.rs` resolves to that file, so importing through
   a facade counts as depending on it). `#[cfg(test)]` modules and comments
   are ignored.
2. For spdl-io, imports between top-level modules run down the layers of
   ARCHITECTURE.md only: ground floor (error, limits, memory, orientation)
   < source < ffmpeg < media < the media kinds (audio, image, video, which
   do not import each other) < dataset.
3. `unsafe` appears only at the C library edges, `src/ffmpeg/` and
   `src/libtiff.rs`, and in the allocation helper `src/memory.rs`.
4. (spdl-io) `vec![x; n]` outside tests, with a length that is not a
   literal, carries a `// bounded:` comment on its line or the line above
   saying what limits `n` (clippy's `disallowed-methods` in
   `spdl-io/clippy.toml` covers `Vec::with_capacity` and `reserve`, but not
   this macro): a length read from a header must go through
   `memory::zeroed` or a `Limits` check first.

Exits 1 and prints each cycle or offending line on failure.
"""
import re
import sys
from pathlib import Path

CRATE = Path(sys.argv[1] if len(sys.argv) > 1 else "spdl-io/src")
UNSAFE_ALLOWED = ("ffmpeg/", "libtiff.rs", "memory.rs")
# spdl-io's layers, bottom up: a module may import only from lower ranks
# (and the ground floor's limits from error).
LAYERS = {
    "error": 0, "memory": 0, "orientation": 0, "limits": 1, "choice": 1,
    "source": 2, "ffmpeg": 3, "libtiff": 3, "media": 4,
    "audio": 5, "image": 5, "video": 5, "npy": 5, "dataset": 6, "kind": 6,
}


def module_of(path: Path) -> tuple:
    rel = path.relative_to(CRATE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return tuple(parts)


def strip(text: str, tests: bool = False) -> str:
    if not tests:
        text = re.split(r"#\[cfg\(test\)\]\s*mod \w+", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def flatten(tree: str, prefix: str = "") -> list:
    """Expands a use tree (`a::{b, c::{d}}`) into full paths."""
    tree = tree.strip()
    m = re.match(r"^(.*?)::\{(.*)\}$", tree, re.S)
    if not m:
        return [prefix + tree] if tree else []
    head, body = m.group(1), m.group(2)
    out, depth, cur = [], 0, ""
    for ch in body + ",":
        if ch == "," and depth == 0:
            out += flatten(cur, prefix + head + "::")
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    return out


def paths_in(text: str, module: tuple, files: dict) -> list:
    paths = []
    for tree in re.findall(r"\buse\s+([^;]+);", text):
        paths += flatten(re.sub(r"\s+", "", tree))
    paths += re.findall(r"(?<![\w:])(crate(?:::\w+)+)", text)
    resolved = []
    for p in paths:
        p = re.sub(r"\s+as\s+\w+$", "", p)
        parts = p.split("::")
        if parts[0] == "crate":
            resolved.append(tuple(parts[1:]))
        elif parts[0] in ("super", "self"):
            base = list(module)
            while parts and parts[0] in ("super", "self"):
                if parts.pop(0) == "super":
                    base.pop()
            resolved.append(tuple(base + parts))
        elif module + (parts[0],) in files:  # a child module: `use clip::Video`
            resolved.append(module + tuple(parts))
    return resolved


def main() -> int:
    files = {module_of(p): p for p in CRATE.rglob("*.rs")}
    edges = {m: set() for m in files}
    for mod, path in files.items():
        for target in paths_in(strip(path.read_text()), mod, files):
            # the longest prefix of the path that is a module file
            for n in range(len(target), -1, -1):
                if target[:n] in files:
                    if target[:n] != mod:
                        edges[mod].add(target[:n])
                    break
    failures = []
    # cycles: strongly connected components of more than one module
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in files:
        if v not in index:
            visit(v)
    name = lambda m: "::".join(m) or "lib"
    for comp in sccs:
        members = set(comp)
        detail = "; ".join(f"{name(a)} -> {name(b)}" for a in sorted(comp) for b in sorted(edges[a] & members))
        failures.append(f"import cycle between {', '.join(sorted(map(name, comp)))}: {detail}")
    if CRATE.parent.name == "spdl-io":
        for a in sorted(edges):
            for b in sorted(edges[a]):
                if not a or not b or a[0] == b[0]:
                    continue
                if LAYERS.get(b[0], 99) >= LAYERS.get(a[0], -1):
                    failures.append(f"{name(a)} imports {name(b)}: not a lower layer")
    for path in sorted(CRATE.rglob("*.rs")):
        rel = path.relative_to(CRATE).as_posix()
        if rel.startswith(UNSAFE_ALLOWED[0]) or rel in UNSAFE_ALLOWED[1:]:
            continue
        for no, line in enumerate(strip(path.read_text(), tests=True).splitlines(), 1):
            if re.search(r"\bunsafe\b", line) and "unsafe_code" not in line:
                failures.append(f"{rel}:{no}: unsafe outside the C library edges: {line.strip()}")
        if CRATE.as_posix().endswith("spdl-io/src"):
            failures += sized_vecs(path, rel)
    for f in failures:
        print(f, file=sys.stderr)
    print(f"check_layers: {len(files)} modules, {sum(map(len, edges.values()))} imports, {len(failures)} problems")
    return 1 if failures else 0


def sized_vecs(path: Path, rel: str) -> list:
    """Check 4: `vec![x; n]` with a non-literal `n` needs a `// bounded:` note."""
    text = re.split(r"#\[cfg\(test\)\]\s*mod \w+", path.read_text())[0]
    lines = text.splitlines()
    found = []
    for no, line in enumerate(lines, 1):
        code = line.split("//")[0]
        for m in re.finditer(r"vec!\[[^;\]]+;\s*([^\]]+)\]", code):
            if re.fullmatch(r"[\d_ *+]+(usize|u8)?", m.group(1).strip()):
                continue
            if "// bounded:" not in line and "// bounded:" not in (lines[no - 2] if no > 1 else ""):
                found.append(f"{rel}:{no}: vec![..; {m.group(1).strip()}] without a `// bounded:` note")
    return found


if __name__ == "__main__":
    sys.exit(main())
