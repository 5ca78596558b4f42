"""Django: Logto's user events keep the Django users in step through the settings' endpoint
(created, updated, suspended, deleted per WEBHOOK_DELETED_USERS, roles as groups), and DRF maps
a bearer token to the Django user with its ``sub`` when LOGTO["TOKEN_USERS"] says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_webhooks import KEY, OLD_KEY, encode, payload

import django_site
from conftest import run, sign_in
from provider_harness import Provider

django_site.setup()

pytestmark = pytest.mark.filterwarnings("ignore::logto_rs.django.middleware.LogtoInsecureCookieWarning")

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from logto_rs.webhooks import SIGNATURE_HEADER, Webhooks, sign  # noqa: E402
from logto_rs.webhooks.django import UserSync, webhook_view, webhooks  # noqa: E402

urlpatterns = [path("webhooks/logto", webhook_view())]

User = get_user_model()


@pytest.fixture
def site() -> Iterator[dict[str, Any]]:
    values = {**settings.LOGTO, "WEBHOOK_SIGNING_KEYS": [KEY, OLD_KEY], "WEBHOOK_SYNC_USERS": True}
    with override_settings(LOGTO=values, ROOT_URLCONF=__name__):
        cache.clear()
        User.objects.filter(username__startswith="wh-").delete()
        yield values
        User.objects.filter(username__startswith="wh-").delete()


def deliver(event: str, user: dict[str, Any], **fields: Any) -> tuple[int, dict[str, Any]]:
    return post(encode(payload(event, data=user, **fields)))


def post(body: bytes) -> tuple[int, dict[str, Any]]:
    answer = Client(enforce_csrf_checks=True).post(
        "/webhooks/logto",
        data=body,
        content_type="application/json",
        **{"HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"): sign(KEY, body)},
    )
    return answer.status_code, json.loads(answer.content)


ADA = {"id": "wh-ada", "username": "ada", "primaryEmail": "ada@example.com", "name": "Ada Lovelace"}


def test_created_and_updated_users_follow_with_the_sign_in_mapping(site: dict[str, Any]) -> None:
    assert deliver("User.Created", {**ADA, "isSuspended": False}) == (200, {})
    user = User.objects.get(username="wh-ada")
    assert (user.email, user.first_name, user.last_name, user.is_active) == (
        "ada@example.com",
        "Ada",
        "Lovelace",
        True,
    )
    assert not user.has_usable_password()
    assert deliver("User.Data.Updated", {**ADA, "primaryEmail": "ada@lovelace.dev"})[0] == 200
    assert User.objects.get(username="wh-ada").email == "ada@lovelace.dev"


def test_an_update_of_an_unknown_user_creates_it(site: dict[str, Any]) -> None:
    assert deliver("User.Data.Updated", {"id": "wh-bob", "primaryEmail": "bob@example.com"})[0] == 200
    assert User.objects.get(username="wh-bob").email == "bob@example.com"


def test_a_suspension_deactivates_and_a_reinstatement_reactivates(site: dict[str, Any]) -> None:
    deliver("User.Created", ADA)
    assert deliver("User.SuspensionStatus.Updated", {**ADA, "isSuspended": True})[0] == 200
    assert not User.objects.get(username="wh-ada").is_active
    assert (
        deliver("User.SuspensionStatus.Updated", {**ADA, "isSuspended": False}, userAgent="again")[0] == 200
    )
    assert User.objects.get(username="wh-ada").is_active


@pytest.mark.parametrize(("setting", "kept"), [("deactivate", True), ("delete", False)])
def test_a_deleted_user_is_deactivated_or_deleted_as_set(
    site: dict[str, Any], setting: str, kept: bool
) -> None:
    deliver("User.Created", ADA)
    with override_settings(LOGTO={**site, "WEBHOOK_DELETED_USERS": setting}):
        assert deliver("User.Deleted", ADA)[0] == 200
    found = User.objects.filter(username="wh-ada").first()
    assert (found is not None) == kept
    if found is not None:
        assert not found.is_active


def test_without_the_setting_nothing_is_synced(site: dict[str, Any]) -> None:
    with override_settings(LOGTO={**site, "WEBHOOK_SYNC_USERS": False}):
        assert deliver("User.Created", ADA) == (200, {})
    assert not User.objects.filter(username="wh-ada").exists()


def test_roles_become_groups_when_they_can_be_looked_up(site: dict[str, Any]) -> None:
    roles = {"wh-ada": ["editor", "admin"]}
    hooks = Webhooks(KEY)
    UserSync(roles=lambda user_id: roles[user_id]).register(hooks)
    body = encode(payload("User.Created", data=ADA))
    with override_settings(LOGTO={**site, "GROUP_CLAIMS": ["roles"], "STAFF_ROLES": ["admin"]}):
        assert hooks.respond(body, sign(KEY, body)).status == 200
        user = User.objects.get(username="wh-ada")
        assert sorted(user.groups.values_list("name", flat=True)) == ["admin", "editor"] and user.is_staff
        # without a roles lookup, an event leaves groups and flags as they are
        assert deliver("User.Data.Updated", {**ADA, "name": "Ada King"})[0] == 200
        user = User.objects.get(username="wh-ada")
        assert sorted(user.groups.values_list("name", flat=True)) == ["admin", "editor"] and user.is_staff
        assert user.last_name == "King"


def test_a_forged_or_replayed_delivery_changes_nothing(site: dict[str, Any]) -> None:
    body = encode(payload("User.Created", data=ADA))
    forged = Client().post(
        "/webhooks/logto",
        data=body,
        content_type="application/json",
        HTTP_LOGTO_SIGNATURE_SHA_256=sign("x", body),
    )
    assert forged.status_code == 401 and not User.objects.filter(username="wh-ada").exists()
    assert post(body)[0] == 200
    User.objects.filter(username="wh-ada").update(email="changed@example.com")
    assert post(body) == (200, {"duplicate": True})
    assert User.objects.get(username="wh-ada").email == "changed@example.com"


def test_the_settings_webhooks_keep_their_handlers_and_hide_the_keys(site: dict[str, Any]) -> None:
    assert webhooks() is webhooks()
    assert KEY not in repr(webhooks()) and KEY not in repr(
        __import__("logto_rs.django.conf").django.conf.get_settings()
    )


# --- DRF: a bearer token's Django user ------------------------------------------------------

API = "https://api.example.com"


@pytest.fixture(scope="module")
def api_token(provider: Provider) -> str:
    from logto_rs import LogtoClient, LogtoConfig, MemoryStorage

    config = LogtoConfig(
        endpoint=provider.endpoint,
        appId="web-app",
        appSecret="web-app-secret",
        scopes=["read:products"],
        resources=[API],
    )
    client = LogtoClient(config, storage=MemoryStorage())
    run(sign_in(client))
    return client.blocking.getAccessToken(API) or ""


def products(token: str) -> Any:
    return Client().get("/api/products/", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def drf(provider: Provider) -> Iterator[dict[str, Any]]:
    values = {**settings.LOGTO, "ENDPOINT": provider.endpoint}
    with override_settings(LOGTO=values):
        User.objects.filter(username="user-alice").delete()
        yield values
        User.objects.filter(username="user-alice").delete()  # deactivated here: the sign-in tests need her


def test_drf_maps_the_token_to_a_django_user_only_when_set(drf: dict[str, Any], api_token: str) -> None:
    assert products(api_token).status_code == 200
    assert not User.objects.filter(username="user-alice").exists()  # off by default
    with override_settings(LOGTO={**drf, "TOKEN_USERS": True}):
        refused = products(api_token)
        assert refused.status_code == 401 and refused.json()["error_description"] == "unknown user"
        with override_settings(LOGTO={**drf, "TOKEN_USERS": True, "TOKEN_CREATE_USERS": True}):
            assert products(api_token).json()["user"] == "user-alice"
        user = User.objects.get(username="user-alice")
        assert products(api_token).status_code == 200
        User.objects.filter(pk=user.pk).update(is_active=False)
        assert products(api_token).status_code == 401


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("WEBHOOK_DELETED_USERS", "archive"),
        ("WEBHOOK_MAX_AGE", 0),
        ("WEBHOOK_SIGNING_KEYS", "one-key-not-a-list"),
    ],
)
def test_bad_webhook_settings_are_refused_by_name_without_the_key(option: str, value: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from logto_rs.django.conf import get_settings

    with override_settings(LOGTO={**settings.LOGTO, option: value}):
        with pytest.raises(ImproperlyConfigured, match=option) as caught:
            get_settings()
    assert "one-key-not-a-list" not in str(caught.value)
