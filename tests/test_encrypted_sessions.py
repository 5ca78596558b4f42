"""Encrypted cookie sessions: the keys, and Flask's session sealed by ``EncryptedSessionInterface``.

A sign-in against the development provider leaves a cookie in which neither the tokens nor any
claim can be read; a cookie that is altered, moved to another name, expired or sealed with a
dropped key is an empty session (a log line, never a 500); keys rotate; the cookie keeps Flask's
settings and the SDK's 4 KB check measures it. The FastAPI and Django halves are in
``test_fastapi_encrypted_sessions.py`` and ``test_django_encrypted_sessions.py``.
"""

from __future__ import annotations

import base64
import json
import pickle
import time
import warnings
import zlib
from datetime import timedelta
from typing import Any, Optional

import pytest
from flask import Flask, g, session
from flask.testing import FlaskClient

from logto_rs import LogtoConfig, LogtoConfigError, LogtoException, LogtoSealError, UserInfoScope
from logto_rs.flask import FlaskSessionStorage, LogtoFlask, LogtoSessionTooLargeWarning, authenticated
from logto_rs.sessions import SessionSealer, generate_key
from logto_rs.sessions.flask import EncryptedSessionInterface
from provider_harness import Provider, complete_sign_in

HOST = "127.0.0.1"
CALLBACK = f"http://{HOST}/callback"
OLD_KEY, NEW_KEY = generate_key(), generate_key()


def cookie_texts(value: str) -> list[str]:
    """The cookie as sent, and every reading of it a holder could try: the whole value and each
    dot-separated part base64-decoded (standard and URL-safe), and inflated when it is zlib."""
    texts = [value]
    for part in [value, *value.split(".")]:
        padded = part + "=" * (-len(part) % 4)
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                data = decode(padded)
            except ValueError:
                continue
            texts.append(data.decode("latin-1"))
            try:
                texts.append(zlib.decompress(data).decode("latin-1"))
            except zlib.error:
                pass
    return texts


def secrets_in(tokens: dict[str, Any]) -> list[str]:
    """What must not be readable: each token, each JWT's payload segment, and the user's claims."""
    found = []
    for token in tokens.values():
        if isinstance(token, str) and len(token) > 20:
            found.append(token)
            found.extend(token.split(".")[1:2])
    return [*found, "user-alice", "alice@example.com", "Alice Liddell"]


def assert_unreadable(cookie: str, secrets: list[str]) -> None:
    for text in cookie_texts(cookie):
        for secret in secrets:
            assert secret not in text, f"{secret[:12]}… readable in the cookie"


# The keys.


def test_keys_of_the_wrong_size_or_too_weak_are_refused_without_being_shown() -> None:
    raw = bytes(range(32))
    for key in [raw, raw.hex(), base64.urlsafe_b64encode(raw).decode(), base64.b64encode(raw).decode()]:
        assert SessionSealer([key]).key_ids == SessionSealer(raw).key_ids
    passphrase = "my-long-and-secret-passphrase-of-43-chars!!"
    for weak in ["0" * 64, "a" * 43, passphrase, raw[:31], raw.hex()[:62], b""]:
        with pytest.raises(LogtoConfigError) as caught:
            SessionSealer([weak])
        shown = f"{caught.value} {caught.value!r}"
        text = weak.decode("latin-1") if isinstance(weak, bytes) else weak
        assert not text or text not in shown, shown
        assert caught.value.code == "config.invalid"
    with pytest.raises(LogtoConfigError, match="at least one"):
        SessionSealer([])
    with pytest.raises(LogtoConfigError, match="same key"):
        SessionSealer([OLD_KEY, NEW_KEY, OLD_KEY])
    with pytest.raises(LogtoConfigError, match="list of session keys"):
        SessionSealer(12345)  # type: ignore[arg-type]


def test_the_repr_shows_key_ids_only() -> None:
    sealer = SessionSealer([NEW_KEY, OLD_KEY])
    shown = repr(sealer) + repr(EncryptedSessionInterface([NEW_KEY, OLD_KEY])) + repr(sealer._core)
    assert NEW_KEY not in shown and OLD_KEY not in shown
    assert all(key_id in shown for key_id in sealer.key_ids) and len(sealer.key_ids) == 2


def test_a_sealed_value_opens_only_with_its_name_and_keys(caplog: pytest.LogCaptureFixture) -> None:
    sealer = SessionSealer([NEW_KEY])
    sealed = sealer.seal(b'{"a": 1}', "session", 60)
    assert sealer.open(sealed, "session") == b'{"a": 1}'
    with caplog.at_level("INFO", logger="logto_rs.sessions"):
        assert sealer.open(sealed, "other") is None
        assert sealer.open(sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1], "session") is None
        assert SessionSealer([OLD_KEY]).open(sealed, "session") is None
        assert sealer.open("not a sealed value", "session") is None
    reasons = [record.getMessage().rsplit(": ", 1)[1] for record in caplog.records]
    assert reasons == ["seal.invalid", "seal.invalid", "seal.unknown_key", "seal.malformed"]
    assert all(sealed[20:] not in record.getMessage() for record in caplog.records)


def test_the_core_names_why_a_value_does_not_open() -> None:
    sealer = SessionSealer([NEW_KEY])
    sealed = sealer.seal(b"secret session", "session", 60)
    with pytest.raises(LogtoSealError) as caught:
        sealer._core.open(sealed, "another")
    error = caught.value
    assert (error.code, type(pickle.loads(pickle.dumps(error)))) == ("seal.invalid", LogtoSealError)
    assert sealed not in f"{error} {error!r}" and "secret" not in str(error)


# Flask.


def make_app(
    provider: Provider, keys: list[str], storage: Optional[FlaskSessionStorage] = None, **settings: Any
) -> Flask:
    app = Flask(__name__)
    app.config["SERVER_NAME"] = HOST
    app.config.update(settings)
    app.session_interface = EncryptedSessionInterface(keys)
    config = LogtoConfig(
        endpoint=provider.endpoint,
        appId="web-app",
        appSecret="web-app-secret",
        scopes=[UserInfoScope.email],
    )
    LogtoFlask(app, config, storage=storage or FlaskSessionStorage())

    @app.route("/protected")
    @authenticated()
    def protected() -> dict[str, Any]:
        return {"sub": g.user.sub, "email": g.user.email}

    @app.route("/touch")
    def touch() -> str:
        session["touched"] = True
        return "touched"

    @app.route("/clear")
    def clear() -> str:
        session.clear()
        return "cleared"

    return app


def sign_in(client: FlaskClient) -> None:
    to_provider = client.get("/sign-in")
    assert to_provider.status_code == 302
    callback = complete_sign_in(to_provider.headers["Location"], CALLBACK)
    back = client.get(callback.replace(f"http://{HOST}", ""))
    assert back.status_code == 302, back.get_data(as_text=True)


def session_cookie(client: FlaskClient, name: str = "session") -> str:
    cookie = client.get_cookie(name, domain=HOST)
    assert cookie is not None
    return cookie.value


def opened(app: Flask, value: str) -> dict[str, Any]:
    """What the server reads from a cookie value (the tokens the cookie must hide)."""
    interface = app.session_interface
    assert isinstance(interface, EncryptedSessionInterface)
    data: dict[str, Any] = interface.get_signing_serializer(app).loads(value)
    return data


def test_a_flask_sign_in_leaves_a_cookie_in_which_no_token_or_claim_can_be_read(provider: Provider) -> None:
    app = make_app(provider, [NEW_KEY])
    client = app.test_client()
    sign_in(client)
    assert client.get("/protected").get_json() == {"sub": "user-alice", "email": "alice@example.com"}
    cookie = session_cookie(client)
    tokens = {key: value for key, value in opened(app, cookie).items() if key.startswith("logto_")}
    assert {"logto_idToken", "logto_refreshToken"} <= set(tokens)
    assert cookie.startswith(f"v1.{SessionSealer([NEW_KEY]).key_ids[0]}.")
    assert_unreadable(cookie, secrets_in(tokens))

    # The same session in Flask's signed cookie shows all of it: the check above can fail.
    signed = Flask(__name__)
    signed.secret_key = "signed"
    serializer = signed.session_interface.get_signing_serializer(signed)  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="readable in the cookie"):
        assert_unreadable(serializer.dumps(tokens), secrets_in(tokens))


def test_an_altered_moved_or_foreign_cookie_is_an_empty_session_never_a_500(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(provider, [NEW_KEY])
    client = app.test_client()
    sign_in(client)
    cookie = session_cookie(client)
    prefix, body = cookie.rsplit(".", 1)
    middle = len(body) // 2
    altered = [
        f"{prefix}.{body[:middle]}{'B' if body[middle] == 'A' else 'A'}{body[middle + 1 :]}",
        cookie[:-8],
        "v1.AAAAAAAA." + body,
        "garbage",
        cookie + "==",
    ]
    with caplog.at_level("INFO", logger="logto_rs.sessions"):
        for value in altered:
            client.set_cookie("session", value, domain=HOST)
            answer = client.get("/protected")
            assert answer.status_code == 401, value
    assert len(caplog.records) == len(altered)
    assert all(body[10:30] not in record.getMessage() for record in caplog.records)
    # A value sealed for another cookie name does not open under this one.
    other = make_app(provider, [NEW_KEY], SESSION_COOKIE_NAME="other")
    other_client = other.test_client()
    other_client.set_cookie("other", cookie, domain=HOST)
    assert other_client.get("/protected").status_code == 401
    # Put back, the original still works.
    client.set_cookie("session", cookie, domain=HOST)
    assert client.get("/protected").status_code == 200


def test_keys_rotate_the_old_key_opens_and_the_new_key_seals(provider: Provider) -> None:
    before = make_app(provider, [OLD_KEY])
    client = before.test_client()
    sign_in(client)
    old_cookie = session_cookie(client)
    old_id, new_id = SessionSealer([OLD_KEY, NEW_KEY]).key_ids

    rotated = make_app(provider, [NEW_KEY, OLD_KEY])
    browser = rotated.test_client()
    browser.set_cookie("session", old_cookie, domain=HOST)
    assert browser.get("/protected").get_json()["sub"] == "user-alice"
    browser.get("/touch")  # the next write seals with the new key
    new_cookie = session_cookie(browser)
    assert old_cookie.split(".")[1] == old_id and new_cookie.split(".")[1] == new_id

    dropped = make_app(provider, [NEW_KEY])
    browser = dropped.test_client()
    browser.set_cookie("session", new_cookie, domain=HOST)
    assert browser.get("/protected").status_code == 200
    browser.set_cookie("session", old_cookie, domain=HOST)
    assert browser.get("/protected").status_code == 401


def test_a_cookie_past_the_session_lifetime_is_expired(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(provider, [NEW_KEY], PERMANENT_SESSION_LIFETIME=timedelta(seconds=1))
    client = app.test_client()
    sign_in(client)
    assert client.get("/protected").status_code == 200
    time.sleep(2.1)
    with caplog.at_level("INFO", logger="logto_rs.sessions"):
        assert client.get("/protected").status_code == 401
    assert [record.getMessage() for record in caplog.records] == [
        "the session cookie 'session' was refused: seal.expired"
    ]


def test_the_cookie_keeps_flasks_settings(provider: Provider) -> None:
    app = make_app(
        provider,
        [NEW_KEY],
        SESSION_COOKIE_NAME="app_session",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_DOMAIN=HOST,
    )
    client = app.test_client()
    headers = client.get("/touch", base_url=f"https://{HOST}").headers
    [set_cookie] = headers.getlist("Set-Cookie")
    assert set_cookie.startswith("app_session=v1.")
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/", f"Domain={HOST}"]:
        assert attribute in set_cookie, set_cookie
    assert headers["Vary"] == "Cookie"
    # Only a modified session is written back; a read-only request sends no cookie.
    assert client.get("/protected", base_url=f"https://{HOST}").headers.getlist("Set-Cookie") == []
    # Emptying the session deletes the cookie.
    [deleted] = client.get("/clear", base_url=f"https://{HOST}").headers.getlist("Set-Cookie")
    assert deleted.startswith("app_session=;") and "Expires=Thu, 01 Jan 1970" in deleted, deleted


def test_the_4kb_check_measures_the_sealed_cookie(provider: Provider) -> None:
    app = make_app(provider, [NEW_KEY])
    storage = FlaskSessionStorage()
    with app.test_request_context("/"):
        session["logto_idToken"] = "x" * 2000
        measured = storage.cookie_size()
        sealed = len(app.session_interface.get_signing_serializer(app).dumps(dict(session)))
        assert measured == len("session") + 1 + sealed + 100
        # Sealed is longer than Flask's signed cookie: the check measures what is sent.
        signed = Flask(__name__)
        signed.secret_key = "signed"
        signed_size = len(signed.session_interface.get_signing_serializer(signed).dumps(dict(session)))  # type: ignore[attr-defined]
        assert sealed > signed_size
    client = make_app(provider, [NEW_KEY], FlaskSessionStorage(max_cookie_bytes=1500)).test_client()
    with pytest.warns(LogtoSessionTooLargeWarning, match="more than the 1500"):
        sign_in(client)


def test_payload_types_survive_as_in_flasks_session() -> None:
    app = Flask(__name__)
    app.session_interface = EncryptedSessionInterface(NEW_KEY)
    value = {"tuple": (1, "a"), "bytes": b"\x00\xff", "nested": {"list": [1, 2]}}

    @app.route("/write")
    def write() -> str:
        session.update(value)
        return "ok"

    @app.route("/read")
    def read() -> str:
        return repr({key: session[key] for key in value})

    client = app.test_client()
    client.get("/write")
    assert client.get("/read").get_data(as_text=True) == repr(value)


def test_a_cookie_sealed_by_another_application_with_the_same_keys_is_refused() -> None:
    app = Flask(__name__)
    app.session_interface = EncryptedSessionInterface(NEW_KEY)

    @app.route("/read")
    def read() -> str:
        return json.dumps(dict(session))

    client = app.test_client()
    for payload in [b"not json at all", b"[1, 2]", b'"text"', b"\xff\xfe"]:
        client.set_cookie("session", SessionSealer(NEW_KEY).seal(payload, "session", 60))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            answer = client.get("/read")
        assert answer.status_code == 200 and answer.get_data(as_text=True) == "{}", payload


def test_a_flask_app_without_keys_fails_at_configuration() -> None:
    with pytest.raises(LogtoException, match="session key"):
        EncryptedSessionInterface(["short"])
