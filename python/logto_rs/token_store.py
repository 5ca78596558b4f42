"""Token storage for a person at a terminal: a file per Logto app, or the OS keychain.

:func:`open_token_store` picks one for an endpoint and app id: the OS keychain through
``keyring`` when it is installed (``pip install logto-rs[keyring]``) and has a working backend,
else a file. Both are a :class:`~logto_rs.storage.LockingStorage`: the session lock is an
``flock`` on a lock file beside the tokens, so parallel processes of one user (a shell pipeline,
``make -j``) refresh the session once and never present one refresh token twice. The operating
system releases the lock of a process that dies, so a crash never blocks the next command.

:class:`FileTokenStore` keeps the tokens of one endpoint and app id in one JSON file under
``$XDG_CONFIG_HOME/logto-rs`` (``~/.config/logto-rs``; ``~/Library/Application Support/logto-rs``
on macOS), or the directory given. The directory is created with mode ``0700`` and the file with
``0600``. Every write replaces the file atomically (a temporary file in the same directory,
``fsync``, ``rename``) under a write lock, so a reader sees the old or the new file, never half
of one, and concurrent writers never lose each other's keys.

A store in a place another user controls is refused with
:class:`~logto_rs.errors.LogtoStorageError` before anything is read or locked: a directory, token
file or lock file that belongs to another user or that other users may write (they could plant
a session or swap the file), and a token or lock file that is a symbolic link (both are opened
with ``O_NOFOLLOW``).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
import sys
import tempfile
import threading
from abc import abstractmethod
from pathlib import Path
from types import ModuleType
from typing import Literal, Optional

from .errors import LogtoConfigError, LogtoStorageError
from .storage import LockingStorage

__all__ = ["FileTokenStore", "KeyringTokenStore", "TokenStore", "default_directory", "open_token_store"]

KEYRING_SERVICE = "logto-rs"
"""The keychain service under which :class:`KeyringTokenStore` keeps the tokens."""

Backend = Literal["auto", "file", "keyring"]


def default_directory() -> Path:
    """Where token files live by default: ``logto-rs`` in the user's configuration directory.

    ``$XDG_CONFIG_HOME`` when set, else ``~/Library/Application Support`` on macOS and
    ``~/.config`` elsewhere.
    """
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    if base:
        return Path(base) / "logto-rs"
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "logto-rs"
    return home / ".config" / "logto-rs"


def _session_name(endpoint: str, app_id: str) -> str:
    """A file name for one endpoint and app id: readable, and unique by a hash of both."""
    host = re.sub(r"^[a-z]+://", "", endpoint.strip().rstrip("/").lower())
    readable = re.sub(r"[^a-z0-9.-]+", "_", f"{host}-{app_id}".lower())[:60]
    digest = hashlib.sha256(f"{endpoint.strip().rstrip('/')}\n{app_id}".encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _check_owned(path: Path, status: os.stat_result, kind: str) -> None:
    """Refuse ``path`` unless it is a ``kind`` of the current user that only they may write."""
    is_kind = stat.S_ISDIR if kind == "directory" else stat.S_ISREG
    if not is_kind(status.st_mode):
        why = f"it is not a {'directory' if kind == 'directory' else 'regular file'}"
    elif status.st_uid != os.geteuid():
        why = "it belongs to another user"
    elif status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        why = "other users may write it"
    else:
        return
    raise LogtoStorageError(f"refusing the token store's {kind} {str(path)!r}: {why}", "storage.error")


def _open_own(path: Path, flags: int, kind: str) -> int:
    """Open ``path`` without following a symbolic link, and check that it is the user's own."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise LogtoStorageError(
                f"refusing the token store's {kind} {str(path)!r}: it is a symbolic link", "storage.error"
            ) from None
        raise
    try:
        _check_owned(path, os.fstat(fd), kind)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _FileLock:
    """An ``flock`` on a lock file: exclusive between processes and between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(self, blocking: bool) -> Optional[int]:
        fd = _open_own(self.path, os.O_RDWR | os.O_CREAT, "lock file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        return fd

    @staticmethod
    def release(fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class TokenStore(LockingStorage):
    """A session kept for a person at a terminal; :class:`FileTokenStore` and :class:`KeyringTokenStore`.

    Values are read from the backing store at every ``get``, so a refresh made by another
    process is seen at once. The session lock (``lock``/``unlock``) is an ``flock`` on
    ``<name>.<lock name>.lock`` in ``directory``.
    """

    def __init__(self, endpoint: str, appId: str, directory: Optional[os.PathLike[str] | str] = None) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()
        self.name = _session_name(endpoint, appId)
        self._held: dict[str, int] = {}
        self._held_guard = threading.Lock()

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._check_directory()

    def _check_directory(self) -> bool:
        """Whether the directory exists; refuse it when it is not the user's own."""
        try:
            status = os.stat(self.directory)
        except FileNotFoundError:
            return False
        _check_owned(self.directory, status, "directory")
        return True

    def _lock_file(self, name: str) -> _FileLock:
        return _FileLock(self.directory / f"{self.name}.{re.sub(r'[^a-z0-9_-]', '_', name.lower())}.lock")

    @abstractmethod
    def _load(self) -> dict[str, str]:
        """Every stored value."""

    @abstractmethod
    def _save(self, values: dict[str, str]) -> None:
        """Replace every stored value (an empty dict removes the session)."""

    def _update(self, key: str, value: Optional[str]) -> None:
        self._ensure_directory()
        lock = self._lock_file("write")
        fd = lock.acquire(blocking=True)
        assert fd is not None
        try:
            values = self._load()
            if value is None:
                if key not in values:
                    return
                del values[key]
            else:
                values[key] = value
            self._save(values)
        finally:
            lock.release(fd)

    def get(self, key: str) -> Optional[str]:
        """Return the value stored under ``key``, or ``None``."""
        return self._load().get(key)

    def set(self, key: str, value: Optional[str]) -> None:
        """Store ``value`` under ``key`` (``None`` deletes the key)."""
        self._update(key, value)

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""
        self._update(key, None)

    def clear(self) -> None:
        """Remove every stored value of this session."""
        self._ensure_directory()
        lock = self._lock_file("write")
        fd = lock.acquire(blocking=True)
        assert fd is not None
        try:
            self._save({})
        finally:
            lock.release(fd)

    def lock(self, name: str, ttl: float) -> Optional[str]:
        """Take the session lock ``name`` if it is free; an owner token, or ``None``.

        ``ttl`` is not needed: the operating system releases the lock of a process that exits.
        """
        del ttl
        self._ensure_directory()
        fd = self._lock_file(name).acquire(blocking=False)
        if fd is None:
            return None
        token = secrets.token_hex(16)
        with self._held_guard:
            self._held[token] = fd
        return token

    def unlock(self, name: str, token: str) -> None:
        """Release the lock ``name`` taken with ``token`` (nothing when it is not held)."""
        del name
        with self._held_guard:
            fd = self._held.pop(token, None)
        if fd is not None:
            _FileLock.release(fd)

    def rotate(self) -> None:
        """Nothing to do: a terminal's session has no id that another person could plant."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(directory={str(self.directory)!r}, name={self.name!r})"


class FileTokenStore(TokenStore):
    """The tokens of one endpoint and app id in one JSON file (mode ``0600``), replaced atomically.

    Args:
        endpoint: The Logto endpoint.
        appId: The application id.
        directory: Where the file lives (default: :func:`default_directory`).

    """

    @property
    def path(self) -> Path:
        """The token file."""
        return self.directory / f"{self.name}.json"

    def _load(self) -> dict[str, str]:
        if not self._check_directory():
            return {}
        try:
            fd = _open_own(self.path, os.O_RDONLY, "token file")
        except FileNotFoundError:
            return {}
        try:
            with os.fdopen(fd, encoding="utf-8") as file:
                data = json.load(file)
        except (ValueError, UnicodeDecodeError):
            return {}  # unreadable: as if signed out (the next sign-in replaces it)
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def _save(self, values: dict[str, str]) -> None:
        if not values:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            return
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{self.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(values, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            raise
        try:
            directory = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(directory)
        except OSError:
            pass
        finally:
            os.close(directory)


#: The keyring backends that are an OS keychain (``"auto"`` picks only these): the Secret
#: Service (GNOME Keyring, KWallet 5.97+, KeePassXC), KWallet, the macOS Keychain, the Windows
#: Credential Manager.
OS_KEYCHAINS = frozenset(
    {
        "keyring.backends.SecretService",
        "keyring.backends.libsecret",
        "keyring.backends.kwallet",
        "keyring.backends.macOS",
        "keyring.backends.Windows",
    }
)


def _keyring(os_keychain_only: bool) -> Optional[ModuleType]:
    """The ``keyring`` module when it is installed and its backend works.

    With ``os_keychain_only``, only when that backend is an OS keychain: not a file of
    ``keyrings.alt``, nor one that would ask for a password.
    """
    try:
        import keyring
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
        backends = list(getattr(backend, "backends", [backend]))
        if float(getattr(backend, "priority", 0)) <= 0 or not backends:
            return None
    except Exception:  # a backend that cannot even say whether it works
        return None
    if os_keychain_only and not any(type(b).__module__ in OS_KEYCHAINS for b in backends):
        return None
    return keyring


class KeyringTokenStore(TokenStore):
    """The tokens of one endpoint and app id in the OS keychain (``pip install logto-rs[keyring]``).

    One keychain entry (service ``logto-rs``) holds them as JSON; the lock files stay in
    ``directory``.

    Raises:
        LogtoConfigError: ``keyring`` is not installed or has no working backend.

    """

    def __init__(self, endpoint: str, appId: str, directory: Optional[os.PathLike[str] | str] = None) -> None:
        super().__init__(endpoint, appId, directory)
        module = _keyring(os_keychain_only=False)
        if module is None:
            raise LogtoConfigError(
                "the OS keychain is not available: install logto-rs[keyring] on a system with a "
                "keychain, or use the file store",
                "config.invalid",
            )
        self._keyring = module

    def _load(self) -> dict[str, str]:
        stored = self._keyring.get_password(KEYRING_SERVICE, self.name)
        if not stored:
            return {}
        try:
            data = json.loads(stored)
        except ValueError:
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def _save(self, values: dict[str, str]) -> None:
        if values:
            self._keyring.set_password(KEYRING_SERVICE, self.name, json.dumps(values))
            return
        try:
            self._keyring.delete_password(KEYRING_SERVICE, self.name)
        except Exception as error:  # keyring.errors.PasswordDeleteError: nothing stored
            if type(error).__name__ != "PasswordDeleteError":
                raise


def open_token_store(
    endpoint: str,
    appId: str,
    backend: Backend = "auto",
    directory: Optional[os.PathLike[str] | str] = None,
) -> TokenStore:
    """The token store of one endpoint and app id for a person at a terminal.

    Args:
        endpoint: The Logto endpoint.
        appId: The application id.
        backend: ``"keyring"`` (whatever backend ``keyring`` is configured with), ``"file"``,
            or ``"auto"``: the OS keychain when ``keyring`` is installed and one works, else the
            file.
        directory: Where the token file and the lock files live (default:
            :func:`default_directory`).

    Raises:
        LogtoConfigError: ``backend="keyring"`` without a working keychain, or an unknown backend.

    """
    if backend == "file" or (backend == "auto" and _keyring(os_keychain_only=True) is None):
        return FileTokenStore(endpoint, appId, directory)
    if backend in ("keyring", "auto"):
        return KeyringTokenStore(endpoint, appId, directory)
    raise LogtoConfigError(f"unknown token store {backend!r}: auto, file or keyring", "config.invalid")
