"""The crate's modules form layers: no module depends, directly or through others, on itself.

The graph is read from the sources under ``src/``: every path through ``crate::``, ``super::``
and ``self::`` that names a module is an edge from the module it is written in. Comments
(doc links included) and string literals are left out, and so is code compiled only for tests
(``#[cfg(test)]`` items and the test modules): a test may use any module it exercises.

A module and the modules inside it are one unit towards each other (a child's ``super::`` and a
parent's use of its child are no cycle). Every other pair is compared at the level where the two
paths part: ``verifier::introspection`` using ``jwt`` is ``verifier`` using ``jwt``, and
``python::client`` using ``python::storage`` is a dependency between those two siblings.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

Module = tuple[str, ...]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
ATTRIBUTE = re.compile(r"\s*#!?\[")
SPACE = re.compile(r"\s*")
NAME = re.compile(IDENT)
SEPARATOR = re.compile(r"\s*::")
RAW_STRING = re.compile(r'b?r(#*)"')
LEXICAL = re.compile(r"/[/*]|[\"']|(?<![A-Za-z0-9_])b?r#*\"")
CHARACTER = re.compile(r"'(?:\\[^']{1,10}|[^\\'])'")
MOD_DECLARATION = re.compile(rf"\b(?:pub(?:\([^)]*\))?\s+)?mod\s+({IDENT})\s*([;{{])")
PUB_USE = re.compile(r"\bpub(?:\([^)]*\))?\s+use\s+")
ALIAS = re.compile(rf"\s+as\s+({IDENT})")
PATH_START = re.compile(r"(?<![A-Za-z0-9_$:])(crate|super|self)\s*::")


@dataclass
class Reference:
    """One path written in a module that names another module."""

    target: Module
    file: Path
    line: int
    text: str


@dataclass
class Crate:
    """The modules found from ``lib.rs`` and the references between them."""

    modules: set[Module] = field(default_factory=set)
    files: set[Path] = field(default_factory=set)
    test_files: set[Path] = field(default_factory=set)
    references: dict[Module, list[Reference]] = field(default_factory=lambda: defaultdict(list))
    # A name a module re-exports (`pub use x::Y;`): the path it stands for, from that module.
    exports: dict[tuple[Module, str], list[str]] = field(default_factory=dict)


def blank_comments_and_strings(source: str) -> str:
    """The source with comments, string and character literals replaced by spaces.

    Newlines are kept, so offsets still give the right line numbers.
    """
    out = list(source)

    def blank(start: int, end: int) -> None:
        for i in range(start, end):
            if out[i] != "\n":
                out[i] = " "

    i, n = 0, len(source)
    while i < n:
        if source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif source.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if source.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif source.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif (raw := RAW_STRING.match(source, i)) and (i == 0 or not source[i - 1].isalnum()):
            closing = '"' + raw.group(1)
            end = source.find(closing, raw.end())
            end = n if end < 0 else end + len(closing)
            blank(i, end)
            i = end
        elif source[i] == '"':
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif source[i] == "'" and (char := CHARACTER.match(source, i)):
            blank(i, char.end())
            i = char.end()
        else:
            following = LEXICAL.search(source, i + 1)
            i = following.start() if following else n
    return "".join(out)


def closing(text: str, start: int, pair: str = "{}") -> int:
    """The offset just past the bracket that closes the first ``pair[0]`` from ``start``."""
    depth = 0
    for i in range(text.index(pair[0], start), len(text)):
        if text[i] == pair[0]:
            depth += 1
        elif text[i] == pair[1]:
            depth -= 1
            if depth == 0:
                return i + 1
    raise AssertionError(f"unbalanced {pair}")


def item_end(text: str, start: int) -> int:
    """The offset just past the item starting at ``start``: its ``;`` or its closing brace."""
    semicolon, brace = text.find(";", start), text.find("{", start)
    if brace < 0 or 0 <= semicolon < brace:
        return semicolon + 1
    return closing(text, brace)


def blank_test_items(text: str) -> tuple[str, set[str]]:
    """The text with every ``#[cfg(test)]`` item blanked, and the test modules declared by file."""
    test_modules: set[str] = set()
    out = list(text)
    for found in re.finditer(r"#\[cfg\(test\)\]", text):
        start = found.end()
        while (attribute := ATTRIBUTE.match(text, start)) is not None:
            start = closing(text, attribute.start(), "[]")
        end = item_end(text, start)
        declaration = MOD_DECLARATION.match(text, SPACE.match(text, start).end())
        if declaration is not None and declaration.group(2) == ";":
            test_modules.add(declaration.group(1))
        for i in range(found.start(), end):
            if out[i] != "\n":
                out[i] = " "
    return "".join(out), test_modules


def expand(text: str, start: int) -> list[tuple[list[str], int]]:
    """The paths written from ``start`` (just past ``crate::``): each one's segments, with
    ``{a, b::c}`` groups expanded, and the offset where the path ends."""
    paths: list[tuple[list[str], int]] = []
    segments: list[str] = []
    i = start
    while True:
        i = SPACE.match(text, i).end()
        if text.startswith("{", i):
            end = closing(text, i)
            inner, depth, piece = text[i + 1 : end - 1], 0, 0
            for j, char in enumerate(inner + ","):
                depth += {"{": 1, "}": -1}.get(char, 0)
                if char == "," and depth == 0:
                    offset = i + 1 + piece + len(inner[piece:j]) - len(inner[piece:j].lstrip())
                    for sub, sub_end in expand(text[: i + 1 + j], offset):
                        paths.append((segments + sub, sub_end))
                    piece = j + 1
            return paths
        ident = NAME.match(text, i)
        if ident is None:
            return [(segments, i)] if segments else paths
        segments.append(ident.group())
        i = ident.end()
        separator = SEPARATOR.match(text, i)
        if separator is None:
            return [(segments, i)]
        i = separator.end()


def resolve(crate: Crate, base: Module, segments: list[str], depth: int = 0) -> Module:
    """The deepest module that ``segments`` walks through from ``base``, a re-exported name
    standing for the module it comes from."""
    module = base
    for segment in segments:
        if segment == "crate":
            module = ()
        elif segment == "super":
            module = module[:-1]
        elif segment == "self":
            continue
        elif (*module, segment) in crate.modules:
            module = (*module, segment)
        elif (module, segment) in crate.exports and depth < 8:
            return resolve(crate, module, crate.exports[module, segment], depth + 1)
        else:
            break
    return module


def blank_outside(text: str, start: int, end: int) -> str:
    """The text with everything outside ``[start, end)`` blanked, newlines kept."""
    return "".join(c if start <= i < end or c == "\n" else " " for i, c in enumerate(text))


def read_module(
    crate: Crate, module: Module, path: Path, text: str | None = None
) -> list[tuple[Module, Path, str]]:
    """Registers ``module`` (the file ``path``, or an inline block of it) and its children.

    Returns each module's own text (its children's blocks blanked) and file, to be scanned once
    every module is known.
    """
    crate.modules.add(module)
    if text is None:
        crate.files.add(path)
        text = blank_comments_and_strings(path.read_text(encoding="utf-8"))
    text, test_modules = blank_test_items(text)
    directory = path.parent if path.name in ("lib.rs", "mod.rs") else path.with_suffix("")
    for name in test_modules:
        for candidate in (directory / f"{name}.rs", directory / name / "mod.rs"):
            if candidate.exists():
                crate.test_files.add(candidate)
                crate.test_files.update(directory.joinpath(name).rglob("*.rs"))
    own, texts, consumed = text, [], 0
    for declaration in MOD_DECLARATION.finditer(text):
        if declaration.start() < consumed:
            continue  # declared inside an inline module read below
        child = (*module, declaration.group(1))
        if declaration.group(2) == "{":
            end = closing(text, declaration.end() - 1)
            texts += read_module(crate, child, path, blank_outside(text, declaration.end(), end - 1))
            own = own[: declaration.start()] + blank_outside(own[declaration.start() : end], 0, 0) + own[end:]
            consumed = end
            continue
        for candidate in (directory / f"{child[-1]}.rs", directory / child[-1] / "mod.rs"):
            if candidate.exists():
                texts += read_module(crate, child, candidate)
                break
        else:
            raise AssertionError(f"{path}: no file for `mod {child[-1]};`")
    return [(module, path, own), *texts]


def read_crate(src: Path) -> Crate:
    """The modules under ``src`` and every reference between them."""
    crate = Crate()
    texts = read_module(crate, (), src / "lib.rs")
    for module, _, text in texts:
        for statement in PUB_USE.finditer(text):
            for segments, end in expand(text, statement.end()):
                alias = ALIAS.match(text, end)
                name = alias.group(1) if alias else segments[-1]
                if name != "self":
                    crate.exports[module, name] = segments
    for module, path, text in texts:
        lines = path.read_text(encoding="utf-8").splitlines()
        for start in PATH_START.finditer(text):
            line = text.count("\n", 0, start.start()) + 1
            for segments, _ in expand(text, start.end()):
                target = resolve(crate, module, [start.group(1), *segments])
                crate.references[module].append(Reference(target, path, line, lines[line - 1].strip()))
    return crate


def dependencies(crate: Crate) -> dict[Module, dict[Module, Reference]]:
    """The edges between sibling units: for each pair, the first reference that makes it."""
    edges: dict[Module, dict[Module, Reference]] = defaultdict(dict)
    for module, references in crate.references.items():
        for reference in references:
            target = reference.target
            common = 0
            while common < min(len(module), len(target)) and module[common] == target[common]:
                common += 1
            if common in (len(module), len(target)):
                continue  # one contains the other
            edges[module[: common + 1]].setdefault(target[: common + 1], reference)
    return edges


def cycles(edges: dict[Module, dict[Module, Reference]]) -> list[list[Module]]:
    """The shortest cycle through each module that is on one, each cycle listed once."""
    found: dict[tuple[Module, ...], list[Module]] = {}
    for start in sorted(edges):
        previous: dict[Module, Module] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if start in edges.get(node, {}):
                cycle = [node]
                while cycle[-1] != start:
                    cycle.append(previous[cycle[-1]])
                cycle.reverse()
                first = cycle.index(min(cycle))
                cycle = cycle[first:] + cycle[:first]
                found.setdefault(tuple(cycle), cycle)
                break
            for target in sorted(edges.get(node, {})):
                if target not in previous and target != start:
                    previous[target] = node
                    queue.append(target)
    return sorted(found.values(), key=lambda cycle: (len(cycle), cycle))


def describe(cycle: list[Module], edges: dict[Module, dict[Module, Reference]], src: Path) -> str:
    """A cycle as its modules and, for each step, the line that makes it."""
    steps = []
    for here, there in zip(cycle, cycle[1:] + cycle[:1]):
        reference = edges[here][there]
        where = reference.file.relative_to(src.parent)
        steps.append(
            f"  {'::'.join(here)} -> {'::'.join(there)}  ({where}:{reference.line}: {reference.text})"
        )
    return " -> ".join("::".join(m) for m in [*cycle, cycle[0]]) + "\n" + "\n".join(steps)


def module_cycles(src: Path) -> list[str]:
    """Every module cycle of the crate at ``src``, described."""
    crate = read_crate(src)
    unread = {f for f in src.rglob("*.rs")} - crate.files - crate.test_files
    assert not unread, f"files under src/ that no `mod` declaration reaches: {sorted(map(str, unread))}"
    edges = dependencies(crate)
    return [describe(cycle, edges, src) for cycle in cycles(edges)]


def test_the_crate_has_no_module_cycles() -> None:
    found = module_cycles(ROOT / "src")
    assert not found, "module cycles in src/:\n" + "\n".join(found)


def test_the_graph_holds_the_crate_dependencies() -> None:
    crate = read_crate(ROOT / "src")
    edges = dependencies(crate)
    assert ("storage",) in edges[("client",)]
    assert ("client",) in edges[("python",)]
    assert ("python", "storage") in edges[("python", "client")]


def write_crate(src: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    return src


def test_a_cycle_is_reported_with_the_lines_that_make_it(tmp_path: Path) -> None:
    src = write_crate(
        tmp_path / "src",
        {
            "lib.rs": "pub mod a;\npub mod b;\nmod c;\nmod error;\n",
            "a.rs": "//! Uses crate::c in a doc comment only.\nuse crate::b::B;\npub struct A;\n",
            "b.rs": 'pub struct B;\nfn f() -> &str { "crate::a" }\nfn g() { crate::c::go(); }\n',
            "c.rs": "pub fn go() {}\nuse crate::{error, a::{A, self}};\n",
            "error.rs": "pub struct E;\n",
        },
    )
    found = module_cycles(src)
    assert len(found) == 1
    assert found[0].splitlines() == [
        "a -> b -> c -> a",
        "  a -> b  (src/a.rs:2: use crate::b::B;)",
        "  b -> c  (src/b.rs:3: fn g() { crate::c::go(); })",
        "  c -> a  (src/c.rs:2: use crate::{error, a::{A, self}};)",
    ]


def test_children_and_test_code_make_no_cycle(tmp_path: Path) -> None:
    src = write_crate(
        tmp_path / "src",
        {
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "mod inner;\nuse inner::X;\nuse crate::b::B;\n#[cfg(test)]\nmod tests;\n",
            "a/inner.rs": "pub struct X;\nuse super::super::b;\n",
            "a/tests.rs": "use crate::b::tests_only;\n",
            "b.rs": "pub struct B;\n#[cfg(test)]\n#[allow(unused)]\nfn t() { crate::a::inner::X; }\n"
            "#[cfg(test)]\nmod tests { use crate::a; }\n",
        },
    )
    assert module_cycles(src) == []
    src = write_crate(src, {"b.rs": "pub struct B;\nmod helper { pub fn h() { super::super::a::f(); } }\n"})
    assert module_cycles(src)[0].splitlines()[0] == "a -> b -> a"


def test_a_name_the_crate_re_exports_stands_for_its_module(tmp_path: Path) -> None:
    src = write_crate(
        tmp_path / "src",
        {
            "lib.rs": "pub mod a;\npub mod b;\npub use a::{A as Alias, self as first};\n",
            "a.rs": "use crate::b::B;\npub struct A;\n",
            "b.rs": "pub struct B;\nfn f(_: crate::Alias) {}\n",
        },
    )
    assert module_cycles(src)[0].splitlines() == [
        "a -> b -> a",
        "  a -> b  (src/a.rs:1: use crate::b::B;)",
        "  b -> a  (src/b.rs:2: fn f(_: crate::Alias) {})",
    ]
