"""The documentation site's API reference has no gaps, and the site builds strictly.

The reference pages (docs/reference/) render each module named in a ``::: module`` line with
mkdocstrings, which reads the docstrings and the native module's stubs through griffe. A public
name without a docstring would show there as a bare signature: this test loads the package the
same way and lists every such module, class, function and method. Attributes (model fields,
enum members, constants) are described in their class's or module's docstring instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import griffe

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"


def documented_modules() -> list[str]:
    names = []
    for page in sorted(REFERENCE.glob("*.md")):
        names += re.findall(r"^::: ([\w.]+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return names


def public_members(obj: griffe.Object | griffe.Alias, seen: set[str]) -> Iterator[griffe.Object]:
    """``obj`` and every public name under it that the reference renders, aliases resolved."""
    target = obj.final_target if isinstance(obj, griffe.Alias) else obj
    if target.path in seen:
        return
    seen.add(target.path)
    yield target
    if target.is_module or target.is_class:
        for name, member in target.members.items():
            if name.startswith("_") or not member.is_public:
                continue
            if target.is_module and member.is_alias and not member.is_exported:
                continue  # an import the module does not re-export
            try:
                yield from public_members(member, seen)
            except griffe.AliasResolutionError:
                continue  # a name from another package (pydantic, Flask…): not ours to document


def test_every_referenced_module_exists_and_every_public_name_has_a_docstring() -> None:
    modules = documented_modules()
    assert "logto_rs" in modules and len(modules) > 10, modules
    package = griffe.load(
        "logto_rs", search_paths=[str(ROOT / "python")], docstring_parser="google", resolve_aliases=True
    )
    seen: set[str] = set()
    roots = [package[module.removeprefix("logto_rs.")] if "." in module else package for module in modules]
    gaps = [
        obj.path
        for root in roots
        for obj in public_members(root, seen)
        if not obj.is_attribute and not (obj.docstring and obj.docstring.value.strip())
    ]
    assert gaps == [], f"public names without a docstring, shown bare in the API reference: {gaps}"
