#!/usr/bin/env python3
"""Fails when the top-level modules of src/ import each other in a cycle.

An edge A -> B is any `crate::B` path (including `use crate::{B::..}` groups
and intra-doc links) in a file of module A; plain `//` comments do not count.
Prints the module graph, and every cycle found, so a failure names the edge to
remove. Usage: scripts/check-module-graph.py [src-dir]
"""

import pathlib
import re
import sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
# The crate roots are wiring, not layers.
ROOTS = {"lib", "main"}

modules = {}
for entry in sorted(src.iterdir()):
    if entry.is_dir():
        modules[entry.name] = sorted(entry.rglob("*.rs"))
    elif entry.suffix == ".rs" and entry.stem not in ROOTS:
        modules[entry.stem] = [entry]

PATH = re.compile(r"\bcrate::(\{)?")
NAME = re.compile(r"\s*([a-z_][a-z0-9_]*)")


def referenced(text):
    """Top-level module names a file refers to through `crate::`."""
    names = set()
    for match in PATH.finditer(text):
        rest = text[match.end():]
        if match.group(1) is None:
            name = NAME.match(rest)
            if name:
                names.add(name.group(1))
            continue
        # `crate::{a::x, b::{y, z}}`: the names at depth one of the group.
        depth, item_start = 1, 0
        for index, char in enumerate(rest):
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            if depth == 1 and char == "," or depth == 0:
                name = NAME.match(rest[item_start:index])
                if name:
                    names.add(name.group(1))
                item_start = index + 1
            if depth == 0:
                break
    return names


def strip_plain_comments(text):
    return "\n".join(
        line.split("//", 1)[0] if "//" in line and not re.search(r"//[/!]", line) else line
        for line in text.splitlines()
    )


edges = {name: set() for name in modules}
for name, files in modules.items():
    for path in files:
        text = strip_plain_comments(path.read_text(encoding="utf-8"))
        for target in referenced(text):
            if target != name and target in modules:
                edges[name].add(target)

for name in sorted(edges):
    print(f"{name} -> {', '.join(sorted(edges[name])) or '(nothing)'}")

# Depth-first search; a grey node met again closes a cycle.
WHITE, GREY, BLACK = 0, 1, 2
colour = {name: WHITE for name in edges}
stack, cycles = [], []


def visit(node):
    colour[node] = GREY
    stack.append(node)
    for target in sorted(edges[node]):
        if colour[target] == GREY:
            cycles.append(stack[stack.index(target):] + [target])
        elif colour[target] == WHITE:
            visit(target)
    stack.pop()
    colour[node] = BLACK


for name in sorted(edges):
    if colour[name] == WHITE:
        visit(name)

if cycles:
    print("\nimport cycles between top-level modules of src/ (each must be broken):")
    for cycle in cycles:
        print("  " + " -> ".join(cycle))
    sys.exit(1)
print("\nthe top-level modules of src/ form no cycle")
