"""The terminal token store: file modes, atomic replacement, concurrent writers, the flock lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

from logto_rs import LogtoConfigError, LogtoStorageError
from logto_rs.token_store import FileTokenStore, KeyringTokenStore, default_directory, open_token_store

ENDPOINT = "https://tenant.logto.app"


def run_python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_modes_location_and_one_file_per_endpoint_and_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_directory() == tmp_path / "xdg" / "logto-rs"
    store = open_token_store(ENDPOINT, "app-1", "file")
    assert isinstance(store, FileTokenStore) and store.directory == default_directory()
    store.set("refreshToken", "rt-1")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    other_app = FileTokenStore(ENDPOINT, "app-2")
    other_endpoint = FileTokenStore("https://other.logto.app", "app-1")
    assert len({store.path, other_app.path, other_endpoint.path}) == 3
    assert other_app.get("refreshToken") is None
    assert FileTokenStore(ENDPOINT + "/", "app-1").get("refreshToken") == "rt-1"
    assert "rt-1" not in repr(store)
    store.delete("refreshToken")
    assert not store.path.exists()  # nothing left on disk once the last key is gone


def test_every_write_replaces_the_file_atomically(tmp_path: Path) -> None:
    store = FileTokenStore(ENDPOINT, "app", tmp_path)
    store.set("idToken", "a")
    before = os.stat(store.path).st_ino
    store.set("idToken", "b")
    assert os.stat(store.path).st_ino != before  # a new file renamed over the old one
    # A reader in another process never sees half a file while a writer replaces it.
    reader = run_python(
        """
        import json, sys, time
        from pathlib import Path
        path, seen, deadline = Path(sys.argv[1]), 0, time.time() + 1.5
        while time.time() < deadline:
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue
            assert len(json.loads(text)["idToken"]) == 200_000, "a partial file"
            seen += 1
        print(seen)
        """,
        str(store.path),
    )
    store.set("idToken", "x" * 200_000)
    for letter in "abcdefghijklmnopqrstuvwxyz" * 4:
        store.set("idToken", letter * 200_000)
    out, err = reader.communicate(timeout=30)
    assert reader.returncode == 0, err
    assert int(out) > 0
    assert list(tmp_path.glob("*.tmp")) == []


def test_concurrent_writers_never_lose_each_others_keys(tmp_path: Path) -> None:
    code = """
        import sys
        from logto_rs.token_store import FileTokenStore
        store = FileTokenStore("https://tenant.logto.app", "app", sys.argv[1])
        for round in range(30):
            store.set(f"writer-{sys.argv[2]}", str(round))
        """
    writers = [run_python(code, str(tmp_path), str(n)) for n in range(6)]
    for writer in writers:
        assert writer.wait(timeout=60) == 0, writer.communicate()[1]
    values = json.loads(FileTokenStore(ENDPOINT, "app", tmp_path).path.read_text())
    assert values == {f"writer-{n}": "29" for n in range(6)}


def test_the_session_lock_is_exclusive_and_dies_with_its_process(tmp_path: Path) -> None:
    store = FileTokenStore(ENDPOINT, "app", tmp_path)
    other = FileTokenStore(ENDPOINT, "app", tmp_path)
    token = store.lock("refresh", 10)
    assert token is not None
    assert other.lock("refresh", 10) is None  # another thread or object of this process
    assert other.lock("other", 10) is not None
    holder = run_python(
        """
        import sys
        from logto_rs.token_store import FileTokenStore
        print(FileTokenStore("https://tenant.logto.app", "app", sys.argv[1]).lock("refresh", 10))
        """,
        str(tmp_path),
    )
    out, _ = holder.communicate(timeout=30)
    assert out.strip() == "None"  # held here, so refused in another process
    store.unlock("refresh", token)
    holder = run_python(
        """
        import os, sys
        from logto_rs.token_store import FileTokenStore
        assert FileTokenStore("https://tenant.logto.app", "app", sys.argv[1]).lock("refresh", 10)
        os._exit(0)  # dies holding the lock, without unlocking
        """,
        str(tmp_path),
    )
    assert holder.wait(timeout=30) == 0
    again = store.lock("refresh", 10)
    assert again is not None
    store.unlock("refresh", again)
    store.unlock("refresh", "not-a-token")  # harmless


def test_the_keychain_store_needs_a_keychain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)  # not installed
    with pytest.raises(LogtoConfigError, match="logto-rs\\[keyring\\]"):
        KeyringTokenStore(ENDPOINT, "app", tmp_path)
    with pytest.raises(LogtoConfigError):
        open_token_store(ENDPOINT, "app", "keyring", tmp_path)
    assert isinstance(open_token_store(ENDPOINT, "app", "auto", tmp_path), FileTokenStore)


def test_the_keychain_store_over_a_real_keyring_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # keyrings.alt's plaintext file keyring: a real backend that needs no desktop session.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    import keyring.core

    original = keyring.get_keyring()
    keyring.core.set_keyring(keyring.core.load_env() or keyring.core.load_config())
    try:
        store = open_token_store(ENDPOINT, "app", "keyring", tmp_path / "locks")
        assert isinstance(store, KeyringTokenStore)
        store.set("refreshToken", "rt-1")
        store.set("idToken", "id-1")
        assert KeyringTokenStore(ENDPOINT, "app", tmp_path / "locks").get("refreshToken") == "rt-1"
        assert json.loads(keyring.get_password("logto-rs", store.name) or "") == {
            "refreshToken": "rt-1",
            "idToken": "id-1",
        }
        token = store.lock("refresh", 10)
        assert token and KeyringTokenStore(ENDPOINT, "app", tmp_path / "locks").lock("refresh", 10) is None
        store.unlock("refresh", token)
        store.clear()
        assert keyring.get_password("logto-rs", store.name) is None
        # A file keyring is not an OS keychain: "auto" keeps the tokens in the 0600 file instead.
        assert isinstance(open_token_store(ENDPOINT, "app", "auto", tmp_path), FileTokenStore)
    finally:
        keyring.core.set_keyring(original)


# --- a store in a place another user controls ----------------------------------------------------

OTHER_USER = 65534  # nobody


def make_foreign(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give ``path`` to another user: really as root; otherwise the store runs as another uid."""
    if os.geteuid() == 0:
        os.chown(path, OTHER_USER, OTHER_USER, follow_symlinks=False)
    else:
        uid = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: uid + 1)


def assert_refused(action: Callable[[], object], reason: str) -> None:
    with pytest.raises(LogtoStorageError) as caught:
        action()
    assert caught.value.code == "storage.error" and reason in str(caught.value)
    assert "rt-" not in str(caught.value)


def test_a_directory_other_users_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: anyone may plant or swap a file in it
    store = FileTokenStore(ENDPOINT, "app", shared)
    assert_refused(lambda: store.set("refreshToken", "rt-1"), "other users may write it")
    assert_refused(lambda: store.get("refreshToken"), "other users may write it")
    assert_refused(lambda: store.lock("refresh", 10), "other users may write it")
    assert list(shared.iterdir()) == []  # nothing written, no lock file made


def test_a_planted_or_swapped_session_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileTokenStore(ENDPOINT, "app", tmp_path / "mine")
    store.set("refreshToken", "rt-mine")
    make_foreign(store.path, monkeypatch)
    assert_refused(lambda: store.get("refreshToken"), "it belongs to another user")
    assert_refused(lambda: store.set("refreshToken", "rt-2"), "it belongs to another user")

    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    planted = FileTokenStore(ENDPOINT, "app", theirs)
    planted.path.write_text(json.dumps({"refreshToken": "rt-planted"}))
    make_foreign(theirs, monkeypatch)
    assert_refused(lambda: planted.get("refreshToken"), "it belongs to another user")


def test_token_and_lock_files_are_not_opened_through_a_symbolic_link(tmp_path: Path) -> None:
    store = FileTokenStore(ENDPOINT, "app", tmp_path / "store")
    store.set("refreshToken", "rt-1")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"refreshToken": "rt-swapped"}))
    elsewhere.chmod(0o600)
    store.path.unlink()
    store.path.symlink_to(elsewhere)
    assert_refused(lambda: store.get("refreshToken"), "symbolic link")

    target = tmp_path / "target-of-the-lock"
    lock_file = store.directory / f"{store.name}.refresh.lock"
    lock_file.symlink_to(target)
    assert_refused(lambda: store.lock("refresh", 10), "symbolic link")
    assert not target.exists()  # the lock was not created through the link
