"""The real-Logto harness (tools/logto/logto.sh) where its source cannot be had.

No outside host is contacted: the download goes to a closed loopback port, the source folders
are empty and `docker` names no command. The step must fail with one line that says what is
missing, never with a `cd` error and never silently.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOGTO_SH = REPO / "tools" / "logto" / "logto.sh"
VERSIONS = sorted(path.name for path in (REPO / "tools" / "logto" / "versions").iterdir())
CLOSED_PORT = "http://127.0.0.1:9"  # discard: nothing listens, the connection is refused at once


def logto_sh(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    clean = {name: value for name, value in os.environ.items() if not name.startswith(("LOGTO_", "PG_"))}
    return subprocess.run(
        ["bash", str(LOGTO_SH), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **clean,
            "LOGTO_HOME": str(tmp_path / "home"),
            "LOGTO_SOURCE_DIR": str(empty),
            "LOGTO_SHARED_DIR": str(empty),
            "LOGTO_GITHUB": CLOSED_PORT,
            "LOGTO_DOCKER": "no-such-docker-command",
            **env,
        },
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("command", ["up", "sources"])
def test_without_any_source_the_step_fails_with_one_clear_line(
    tmp_path: Path, version: str, command: str
) -> None:
    result = logto_sh(tmp_path, command, LOGTO_VERSION=version)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"logto.sh: cannot get Logto {version}: ")
    assert f"logto-core-{version}-src.tar.gz is not in" in line
    assert f"its download from {CLOSED_PORT} failed" in line
    assert "cd:" not in line and "No such file" not in line
    if command == "up":
        assert "there is no docker for svhd/logto:" + version in line


def test_a_docker_that_does_not_answer_is_named_in_the_one_line(tmp_path: Path) -> None:
    """`false` stands for a docker client whose daemon is not running."""
    result = logto_sh(tmp_path, "up", LOGTO_VERSION="1.42.0", LOGTO_DOCKER="false")
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith("; and docker (false) does not answer: docker info failed")


def test_a_tarball_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "logto-core-1.42.0-src.tar.gz").write_bytes(b"not the pinned bundle")
    result = logto_sh(tmp_path, "sources", LOGTO_VERSION="1.42.0", LOGTO_SOURCE_DIR=str(sources))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"logto.sh: {sources}/logto-core-1.42.0-src.tar.gz is not the pinned logto-core-1.42.0-src.tar.gz "
        f"(sha256 differs from {LOGTO_SH.parent}/versions/1.42.0)"
    ]


def test_an_unknown_version_is_named(tmp_path: Path) -> None:
    result = logto_sh(tmp_path, "up", LOGTO_VERSION="0.0.1")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"logto.sh: no pins for Logto 0.0.1 (known: {' '.join(VERSIONS)} )"]
