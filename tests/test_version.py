"""One version for the crate and the package: Cargo.toml's.

pyproject.toml declares the version dynamic, so maturin takes Cargo.toml's into the wheel and the
sdist, and the native module reports it as ``logto_rs.__version__``. The newest release in
CHANGELOG.md must be that version too: a release's tag, its package and its notes agree.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the oldest supported CPythons
    tomllib = None

import logto_rs

ROOT = Path(__file__).resolve().parent.parent


def cargo_version() -> str:
    text = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    if tomllib is not None:
        return str(tomllib.loads(text)["package"]["version"])
    match = re.search(r'^\[package\][^\[]*?^version = "([^"]+)"', text, flags=re.MULTILINE | re.DOTALL)
    assert match, "Cargo.toml has no [package] version"
    return match.group(1)


def newest_changelog_release() -> str:
    releases = re.findall(
        r"^## \[(\d+\.\d+\.\d+[^\]]*)\] - \d{4}-\d{2}-\d{2}$",
        (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    assert releases, "CHANGELOG.md has no '## [X.Y.Z] - YYYY-MM-DD' release"
    return releases[0]


def test_the_package_the_crate_and_the_changelog_have_one_version() -> None:
    version = cargo_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", version), version
    assert logto_rs.__version__ == version
    assert metadata.version("logto-rs") == version
    assert newest_changelog_release() == version


def test_pyproject_takes_the_version_from_the_crate() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^dynamic = \["version"\]$', text, flags=re.MULTILINE)
    assert not re.search(r"^version\s*=", text, flags=re.MULTILINE), "a second version source"


def test_the_changelog_keeps_an_unreleased_section_first() -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.MULTILINE)
    assert headings[0] == "[Unreleased]", headings
