"""``logto-rs`` (or ``python -m logto_rs``): machine tokens and personal access tokens for scripts.

Commands::

    logto-rs exchange [--resource R] [--scope S]... [--organization-id O]
    logto-rs m2m-token (--resource R | --management-api) [--scope S]... [--organization-id O]
    logto-rs pat list USER_ID [--show-values]
    logto-rs pat create USER_ID NAME [--expires-at ISO8601 | --expires-in 90d]
    logto-rs pat rename USER_ID CURRENT_NAME NEW_NAME
    logto-rs pat delete USER_ID NAME
    logto-rs login [--resource R]... [--scope S]... [--organization-id O] [--qr]
    logto-rs token [--resource R] [--organization O]
    logto-rs whoami
    logto-rs logout

``exchange`` exchanges a personal access token for an access token of its user, with the app
that has token exchange enabled. ``m2m-token`` and the ``pat`` commands use a machine-to-machine
app (``pat``: one with Management API access). Tokens print alone on a line, or as JSON with
``--json``; ``pat list`` leaves the tokens' values out unless ``--show-values``.

``login`` signs a person in with the device flow (a native app with the device flow enabled in
Logto): it prints a code and a URL to open on any device (``--qr``: also a QR code, with
``logto-rs[qr]``), waits, and keeps the tokens for this endpoint and app in the OS keychain
(``logto-rs[keyring]``) or a ``0600`` file under ``$XDG_CONFIG_HOME/logto-rs`` (``--store``,
``--config-dir``, ``LOGTO_TOKEN_STORE``, ``LOGTO_CONFIG_DIR``). ``token`` then prints a fresh
access token and nothing else, refreshing when due (parallel processes refresh once);
``whoami`` shows the person; ``logout`` revokes the refresh token at Logto and deletes the
tokens. Their messages go to stderr.

Configuration comes from options or the environment: ``--endpoint``/``LOGTO_ENDPOINT``,
``--app-id``/``LOGTO_APP_ID``, ``--management-api-resource``/``LOGTO_MANAGEMENT_API_RESOURCE``.
Secrets are never arguments: the app secret comes from ``LOGTO_APP_SECRET`` (or the first line
of stdin with ``--app-secret-stdin``), the personal access token from ``LOGTO_PAT``, else from
stdin (the next line; prompted for, unechoed, on a terminal). Without an app secret, ``exchange``
authenticates as a public app (its ``client_id`` alone).

Exit codes:
    0: success.
    1: any other failure.
    2: usage: a bad option, a missing setting or secret, an invalid configuration.
    3: refused by Logto: an unknown, expired or revoked personal access token, wrong app
       credentials, a grant the app may not use, a Management API answer such as 404 or 422.
    4: Logto could not be reached or answered unexpectedly (network error, timeout, 5xx).
    5: nobody is signed in (``login`` first), or the session has ended.
    130: interrupted (Ctrl-C).

Errors go to stderr as one line, ``logto-rs: error: <message> [<code>]``; no message contains a
token or a secret.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, NoReturn, Optional, TextIO

from . import _cli_device
from .config import LogtoConfig
from .errors import (
    LogtoApiError,
    LogtoConfigError,
    LogtoException,
    LogtoNetworkError,
    LogtoOAuthError,
    LogtoResponseError,
)
from .machine import (
    BlockingLogtoM2MClient,
    ExpiresAt,
    LogtoM2MClient,
    LogtoM2MConfig,
    exchange_personal_access_token_blocking,
)
from .models import MachineToken, PersonalAccessToken

__all__ = [
    "main",
    "EXIT_OK",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_NOT_SIGNED_IN",
    "EXIT_INTERRUPTED",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 4
EXIT_NOT_SIGNED_IN = 5
EXIT_INTERRUPTED = 130

PROG = "logto-rs"


class UsageError(Exception):
    """A missing setting or secret (exit code 2)."""


class _Secrets:
    """Secrets from the environment or stdin, read once, line by line, in the order asked."""

    def __init__(self, stdin: TextIO) -> None:
        self._stdin = stdin
        self._lines: Optional[list[str]] = None

    def _next_line(self, what: str) -> str:
        if self._stdin.isatty():
            return getpass.getpass(f"{what}: ").strip()
        if self._lines is None:
            self._lines = self._stdin.read().splitlines()
        return self._lines.pop(0).strip() if self._lines else ""

    def get(self, variable: str, what: str, from_stdin: bool = True) -> str:
        value = os.environ.get(variable, "").strip() or (self._next_line(what) if from_stdin else "")
        if not value:
            source = f"set {variable} or write it to stdin" if from_stdin else f"set {variable}"
            raise UsageError(f"no {what}: {source}")
        return value


def _setting(value: Optional[str], variable: str, option: str) -> str:
    value = value or os.environ.get(variable, "").strip()
    if not value:
        raise UsageError(f"{option} or {variable} is required")
    return value


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)\s*([smhd]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 3600, 90m, 12h or 30d")
    unit = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    try:
        duration = timedelta(**{unit: int(match.group(1))})
        datetime.now(timezone.utc) + duration  # the expiry it gives must be a date
    except (OverflowError, ValueError):  # beyond datetime's range, or a 5000-digit number
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is too long a duration") from None
    return duration


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date and time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _scopes(values: Optional[list[str]]) -> list[str]:
    return [scope for value in values or [] for scope in value.split()]


#: The options every command takes, before or after its name, and their defaults.
_COMMON_DEFAULTS: dict[str, Any] = {
    "endpoint": None,
    "app_id": None,
    "app_secret_stdin": False,
    "management_api_resource": None,
    "json": False,
    "timeout": 10.0,
}


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line of stderr like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{PROG}: error: {_one_line(message)} (see {self.prog} --help)\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _common_options() -> _Parser:
    common = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--endpoint", help="the Logto endpoint (default: $LOGTO_ENDPOINT)")
    common.add_argument("--app-id", help="the application id (default: $LOGTO_APP_ID)")
    common.add_argument(
        "--app-secret-stdin",
        action="store_true",
        help="read the app secret from the first line of stdin instead of $LOGTO_APP_SECRET",
    )
    common.add_argument(
        "--management-api-resource",
        help="the Management API's resource indicator (default: $LOGTO_MANAGEMENT_API_RESOURCE, "
        "else derived from the endpoint)",
    )
    common.add_argument("--json", action="store_true", help="print JSON")
    common.add_argument("--timeout", type=float, help="seconds per request (default 10)")
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(
        prog=PROG,
        parents=[common],
        description="Logto sign-in, machine tokens and personal access tokens for scripts.",
        epilog="Secrets come from LOGTO_APP_SECRET and LOGTO_PAT, or stdin; never from arguments. "
        "Exit codes: 0 ok, 1 failure, 2 usage, 3 refused by Logto, 4 Logto unreachable, "
        "5 not signed in, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def target_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--scope", action="append", help="a scope to ask for (repeat it, or space-separate them)"
        )
        command.add_argument("--organization-id", help="an organization id: an organization token")

    exchange = commands.add_parser(
        "exchange",
        parents=[common],
        help="exchange a personal access token ($LOGTO_PAT or stdin) for an access token",
    )
    exchange.add_argument("--resource", help="an API resource indicator")
    target_options(exchange)

    m2m = commands.add_parser(
        "m2m-token", parents=[common], help="get a machine-to-machine (client_credentials) token"
    )
    which = m2m.add_mutually_exclusive_group()
    which.add_argument("--resource", help="an API resource indicator")
    which.add_argument("--management-api", action="store_true", help="a Management API token (scope all)")
    target_options(m2m)

    pat = commands.add_parser("pat", help="manage a user's personal access tokens (Management API)")
    actions = pat.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list a user's personal access tokens")
    listing.add_argument("user_id")
    listing.add_argument("--show-values", action="store_true", help="print the tokens' values too")
    create = actions.add_parser(
        "create", parents=[common], help="create a personal access token; prints its value"
    )
    create.add_argument("user_id")
    create.add_argument("name")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-at", type=_timestamp, help="ISO 8601 (UTC unless an offset is given)")
    expiry.add_argument("--expires-in", type=_duration, help="a duration: 3600, 90m, 12h, 30d")
    rename = actions.add_parser("rename", parents=[common], help="rename a personal access token")
    rename.add_argument("user_id")
    rename.add_argument("current_name")
    rename.add_argument("new_name")
    delete = actions.add_parser("delete", parents=[common], help="delete a personal access token")
    delete.add_argument("user_id")
    delete.add_argument("name")
    _cli_device.add_commands(commands, common)
    return parser


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    for name, default in _COMMON_DEFAULTS.items():
        vars(args).setdefault(name, default)
    return args


def _token_output(token: MachineToken, as_json: bool) -> str:
    if not as_json:
        return token.accessToken
    data = token.model_dump(mode="json")
    data["expiresIn"] = int(token.expiresIn)
    return json.dumps(data)


def _pat_json(token: PersonalAccessToken, with_value: bool) -> dict[str, Any]:
    return token.model_dump(mode="json", exclude=None if with_value else {"value"})


def _pat_line(token: PersonalAccessToken, with_value: bool) -> str:
    expires = token.expiresAt.isoformat() if token.expiresAt else "never"
    fields = [token.name, token.createdAt.isoformat(), expires] + ([token.value] if with_value else [])
    return "\t".join(fields)


def _m2m_client(args: argparse.Namespace, secrets: _Secrets) -> BlockingLogtoM2MClient:
    secret = secrets.get("LOGTO_APP_SECRET", "app secret", from_stdin=args.app_secret_stdin)
    config = LogtoM2MConfig(
        endpoint=_setting(args.endpoint, "LOGTO_ENDPOINT", "--endpoint"),
        appId=_setting(args.app_id, "LOGTO_APP_ID", "--app-id"),
        appSecret=secret,
        managementApiResource=args.management_api_resource
        or os.environ.get("LOGTO_MANAGEMENT_API_RESOURCE")
        or None,
        requestTimeout=args.timeout,
    )
    return LogtoM2MClient(config).blocking


def _exchange(args: argparse.Namespace, secrets: _Secrets) -> str:
    endpoint = _setting(args.endpoint, "LOGTO_ENDPOINT", "--endpoint")
    app_id = _setting(args.app_id, "LOGTO_APP_ID", "--app-id")
    secret = None
    if args.app_secret_stdin or os.environ.get("LOGTO_APP_SECRET", "").strip():
        secret = secrets.get("LOGTO_APP_SECRET", "app secret", from_stdin=args.app_secret_stdin)
    pat = secrets.get("LOGTO_PAT", "personal access token")
    config = LogtoConfig(endpoint=endpoint, appId=app_id, appSecret=secret, requestTimeout=args.timeout)
    result = exchange_personal_access_token_blocking(
        config,
        pat,
        resource=args.resource,
        scopes=_scopes(args.scope),
        organizationId=args.organization_id,
    )
    return _token_output(result, args.json)


def _m2m_token(args: argparse.Namespace, secrets: _Secrets) -> str:
    client = _m2m_client(args, secrets)
    if args.management_api:
        token = client.getManagementApiToken()
    else:
        token = client.getAccessToken(args.resource, _scopes(args.scope), args.organization_id)
    return _token_output(token, args.json)


def _pat(args: argparse.Namespace, secrets: _Secrets) -> str:
    api = _m2m_client(args, secrets).managementApi
    if args.action == "list":
        tokens = api.listPersonalAccessTokens(args.user_id)
        if args.json:
            return json.dumps([_pat_json(token, args.show_values) for token in tokens])
        return "\n".join(_pat_line(token, args.show_values) for token in tokens)
    if args.action == "create":
        expires: Optional[ExpiresAt] = args.expires_at or args.expires_in
        created = api.createPersonalAccessToken(args.user_id, args.name, expires)
        return json.dumps(_pat_json(created, True)) if args.json else created.value
    if args.action == "rename":
        renamed = api.renamePersonalAccessToken(args.user_id, args.current_name, args.new_name)
        return json.dumps(_pat_json(renamed, False)) if args.json else renamed.name
    api.deletePersonalAccessToken(args.user_id, args.name)
    return json.dumps({"deleted": args.name}) if args.json else ""


def _device_command(args: argparse.Namespace, secrets: _Secrets) -> str:
    endpoint = _setting(args.endpoint, "LOGTO_ENDPOINT", "--endpoint")
    app_id = _setting(args.app_id, "LOGTO_APP_ID", "--app-id")
    if args.command == "login":
        return _cli_device.login(args, endpoint, app_id, _scopes(args.scope))
    command: Callable[[argparse.Namespace, str, str], str] = getattr(_cli_device, args.command)
    return command(args, endpoint, app_id)


_COMMANDS: dict[str, Callable[[argparse.Namespace, _Secrets], str]] = {
    "exchange": _exchange,
    "m2m-token": _m2m_token,
    "pat": _pat,
    **dict.fromkeys(_cli_device.COMMANDS, _device_command),
}


def exit_code(error: LogtoException) -> int:
    """The exit code for ``error`` (see the module docstring)."""
    if isinstance(error, LogtoConfigError):
        return EXIT_USAGE
    if isinstance(error, (LogtoNetworkError, LogtoResponseError)):
        return EXIT_UNREACHABLE
    if isinstance(error, LogtoApiError):
        return EXIT_UNREACHABLE if (error.status or 0) >= 500 else EXIT_REFUSED
    if isinstance(error, LogtoOAuthError):
        return EXIT_UNREACHABLE if (error.status or 0) >= 500 else EXIT_REFUSED
    return EXIT_FAILURE


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return its exit code.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    """
    try:
        args = _parse(argv)
        output = _COMMANDS[args.command](args, _Secrets(sys.stdin))
    except (UsageError, _cli_device.UsageProblem) as error:
        return _fail(str(error), EXIT_USAGE)
    except _cli_device.NotSignedIn as error:
        return _fail(str(error), EXIT_NOT_SIGNED_IN)
    except LogtoException as error:
        return _fail(f"{error.message} [{error.code}]", exit_code(error))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:  # no traceback reaches the user; the type says what broke
        return _fail(f"unexpected {type(error).__name__}", EXIT_FAILURE)
    if output:
        return _write(output)
    return EXIT_OK


def _fail(message: str, code: int) -> int:
    try:
        print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    except (OSError, ValueError, AttributeError):  # stderr closed too: the exit code remains
        pass
    return code


def _write(output: str) -> int:
    """Print the result; a closed stdout is a failure on stderr, not a traceback."""
    if sys.stdout is None:  # started with stdout closed
        return _fail("stdout is closed: nothing was printed", EXIT_FAILURE)
    try:
        print(output)
        sys.stdout.flush()
    except (OSError, ValueError):
        # The reader went away (EPIPE) or stdout was closed under us. Point stdout at
        # /dev/null so the interpreter's final flush cannot fail again with a traceback.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return _fail("stdout was closed before the result was written", EXIT_FAILURE)
    return EXIT_OK
