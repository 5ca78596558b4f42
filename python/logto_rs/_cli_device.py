"""The command line's device sign-in commands: ``login``, ``token``, ``whoami`` and ``logout``.

``login`` signs a person in with the device flow (a native app with the device flow enabled)
and keeps the tokens in the terminal token store (:mod:`logto_rs.token_store`); the other
commands use them, refreshing when due. The resources and scopes asked for at ``login`` are
kept with the tokens, since only those can be refreshed for later.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from types import ModuleType
from typing import Any, Optional, cast

from .client import BlockingLogtoClient, LogtoClient
from .config import LogtoConfig
from .device import start_device_sign_in_blocking
from .errors import LogtoInvalidGrantError, LogtoNotAuthenticatedError
from .token_store import Backend, TokenStore, open_token_store

__all__ = ["add_commands", "COMMANDS", "NotSignedIn"]

#: The store key (besides the client's own) that remembers what ``login`` asked for.
SETTINGS_KEY = "cliSettings"


class NotSignedIn(Exception):
    """Nobody is signed in, or the session ended (exit code 5)."""


class UsageProblem(Exception):
    """A bad combination of options or a missing optional dependency (exit code 2)."""


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``login``, ``token``, ``whoami`` and ``logout`` to the parser's subcommands."""
    store = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    store.add_argument(
        "--store",
        choices=["auto", "file", "keyring"],
        help="where the tokens live (default: $LOGTO_TOKEN_STORE, else auto: the OS keychain "
        "when logto-rs[keyring] is installed, else a file)",
    )
    store.add_argument(
        "--config-dir",
        help="the directory of the token file and its locks (default: $LOGTO_CONFIG_DIR, else "
        "logto-rs in $XDG_CONFIG_HOME or ~/.config)",
    )
    login = commands.add_parser(
        "login",
        parents=[common, store],
        help="sign in with a code on another device (device flow); keeps the tokens",
    )
    login.add_argument(
        "--resource", action="append", help="an API resource to get tokens for later (repeat it)"
    )
    login.add_argument(
        "--scope", action="append", help="a scope to ask for (repeat it, or space-separate them)"
    )
    login.add_argument("--organization-id", help="Logto's organization_id for the sign-in")
    login.add_argument(
        "--qr", action="store_true", help="also show the URL as a QR code (needs logto-rs[qr])"
    )
    token = commands.add_parser(
        "token", parents=[common, store], help="print a fresh access token of the signed-in person"
    )
    token.add_argument("--resource", help="the API resource (one asked for at login)")
    token.add_argument(
        "--organization", "--organization-id", dest="organization_id", help="an organization id"
    )
    commands.add_parser("whoami", parents=[common, store], help="show who is signed in")
    commands.add_parser(
        "logout", parents=[common, store], help="revoke the refresh token at Logto and delete the tokens"
    )


def _store(args: argparse.Namespace, endpoint: str, app_id: str) -> TokenStore:
    backend = getattr(args, "store", None) or os.environ.get("LOGTO_TOKEN_STORE", "").strip() or "auto"
    directory = getattr(args, "config_dir", None) or os.environ.get("LOGTO_CONFIG_DIR", "").strip() or None
    if backend not in ("auto", "file", "keyring"):
        raise UsageProblem(f"LOGTO_TOKEN_STORE must be auto, file or keyring, not {backend[:40]!r}")
    return open_token_store(endpoint, app_id, cast(Backend, backend), directory)


def _signed_in_client(
    args: argparse.Namespace, endpoint: str, app_id: str
) -> tuple[BlockingLogtoClient, TokenStore]:
    store = _store(args, endpoint, app_id)
    stored = store.get(SETTINGS_KEY)
    if stored is None or store.get("refreshToken") is None:
        raise NotSignedIn("not signed in: run logto-rs login")
    settings = json.loads(stored)
    config = LogtoConfig(
        endpoint=endpoint,
        appId=app_id,
        scopes=settings.get("scopes", []),
        resources=settings.get("resources", []),
        requestTimeout=args.timeout,
    )
    return LogtoClient(config, storage=store).blocking, store


def _segno() -> ModuleType:
    try:
        import segno
    except ImportError:
        raise UsageProblem("--qr needs the segno package: pip install 'logto-rs[qr]'") from None
    return segno


def _interruptible_at_a_terminal() -> None:
    """Let Ctrl-C end the wait when a person is at the terminal.

    A command a non-interactive shell starts in the background (``cmd &``) inherits SIGINT
    ignored, and Python keeps it ignored; a person typing at the terminal still expects Ctrl-C to
    stop the wait. A handler the host program installed is left alone.
    """
    if (
        sys.stdin is not None
        and sys.stdin.isatty()
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def login(args: argparse.Namespace, endpoint: str, app_id: str, scopes: list[str]) -> str:
    """Sign in with the device flow; the prompt and the result go to stderr."""
    _interruptible_at_a_terminal()
    resources = list(dict.fromkeys(args.resource or []))
    config = LogtoConfig(
        endpoint=endpoint, appId=app_id, scopes=scopes, resources=resources, requestTimeout=args.timeout
    )
    segno = _segno() if args.qr else None  # missing: fail before anything is asked of Logto
    store = _store(args, endpoint, app_id)
    sign_in = start_device_sign_in_blocking(config, store, args.organization_id)
    link = sign_in.verificationUriComplete or sign_in.verificationUri
    print(
        f"To sign in, open {sign_in.verificationUri} and enter the code {sign_in.userCode}\n"
        f"(or open {link}). The code expires in {int(sign_in.expiresIn // 60)} minutes.",
        file=sys.stderr,
        flush=True,
    )
    if segno is not None:
        segno.make(link, error="l").terminal(out=sys.stderr, compact=True)
    client = sign_in.waitBlocking()
    store.set(SETTINGS_KEY, json.dumps({"scopes": scopes, "resources": resources}))
    print(f"Signed in as {_name(client.getIdTokenClaims().model_dump())}.", file=sys.stderr, flush=True)
    return ""


def _name(claims: dict[str, Any]) -> str:
    name = claims.get("username") or claims.get("email") or claims.get("name")
    return f"{name} ({claims['sub']})" if name else str(claims["sub"])


def token(args: argparse.Namespace, endpoint: str, app_id: str) -> str:
    """A fresh access token, alone on stdout."""
    client = _signed_in_client(args, endpoint, app_id)[0]
    resource: str = args.resource or ""
    if resource and resource not in client.config.resources:
        raise UsageProblem(
            f"{resource[:200]} was not asked for at login: run logto-rs login --resource {resource[:200]}"
        )
    try:
        if args.organization_id and not resource:
            value: Optional[str] = client.getOrganizationToken(args.organization_id)
        else:
            value = client.getAccessToken(resource, args.organization_id)
    except (LogtoInvalidGrantError, LogtoNotAuthenticatedError) as error:
        raise NotSignedIn(f"the session has ended ({error.code}): run logto-rs login") from None
    if value is None:
        raise NotSignedIn("not signed in: run logto-rs login")
    return value


def whoami(args: argparse.Namespace, endpoint: str, app_id: str) -> str:
    """The signed-in person from userinfo (JSON with ``--json``)."""
    client = _signed_in_client(args, endpoint, app_id)[0]
    try:
        info = client.fetchUserInfo()
    except (LogtoInvalidGrantError, LogtoNotAuthenticatedError) as error:
        raise NotSignedIn(f"the session has ended ({error.code}): run logto-rs login") from None
    data = info.model_dump(mode="json", exclude_none=True)
    return json.dumps(data) if args.json else _name(data)


def logout(args: argparse.Namespace, endpoint: str, app_id: str) -> str:
    """Revoke the refresh token at Logto, then delete every stored value."""
    store = _store(args, endpoint, app_id)
    signed_in = store.get("refreshToken") is not None
    if signed_in:
        client = LogtoClient(
            LogtoConfig(endpoint=endpoint, appId=app_id, requestTimeout=args.timeout), storage=store
        )
        client.blocking.signOut()  # revokes the refresh token, then deletes the client's keys
    store.clear()
    print("Signed out." if signed_in else "Not signed in.", file=sys.stderr, flush=True)
    return json.dumps({"signedOut": signed_in}) if args.json else ""


COMMANDS = ("login", "token", "whoami", "logout")
