"""``LogtoBackend``: a Logto user is a Django user, found by ``sub`` and created on first sign-in.

Add it to ``AUTHENTICATION_BACKENDS``; the callback view calls
``authenticate(request, logto_claims=claims)`` and then ``login()``, so ``request.user``,
``@login_required``, the admin and permissions work as with any Django user.

The claims (the ID token's, plus the userinfo with ``LOGTO["FETCH_USER_INFO"]``) update the
user at every sign-in:

- ``USER_CLAIMS`` maps user fields to claims (default: ``email``; ``first_name`` and
  ``last_name`` from ``given_name``/``family_name``, or split from ``name``);
- ``GROUP_CLAIMS`` (e.g. ``("roles",)`` or ``("organization_roles",)``): the user's groups
  become exactly the claims' values (groups are created as needed);
- ``STAFF_ROLES`` / ``SUPERUSER_ROLES``: roles (``roles`` values, or ``org:role`` values of
  ``organization_roles``) that set ``is_staff`` / ``is_superuser``; ``None`` leaves the flags
  alone.

Override :meth:`LogtoBackend.map_claims`, :meth:`~LogtoBackend.update_user`,
:meth:`~LogtoBackend.get_user_by_sub` or :meth:`~LogtoBackend.create_user` in a subclass for
anything else (a custom user model, a separate identities table…).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Optional

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from . import conf

__all__ = ["LogtoBackend"]

Claims = Mapping[str, Any]


class LogtoBackend(ModelBackend):
    """Authenticates a user Logto signed in; permissions as ``ModelBackend``'s."""

    def authenticate(
        self, request: Optional[HttpRequest], logto_claims: Optional[Claims] = None, **credentials: Any
    ) -> Any:
        """The Django user of ``logto_claims`` (``None`` for other credentials or an inactive user)."""
        if logto_claims is None or credentials:
            return None
        sub = logto_claims.get("sub")
        if not isinstance(sub, str) or not sub:
            return None
        user = self.get_user_by_sub(sub)
        created = False
        if user is None:
            if not conf.option("CREATE_USERS"):
                return None
            user = self.create_user(sub, logto_claims)
            created = True
        self.update_user(user, logto_claims, created=created)
        return user if self.user_can_authenticate(user) else None

    def get_user_by_sub(self, sub: str) -> Any:
        """The user whose ``USERNAME_FIELD`` is ``sub``, or ``None``."""
        model = get_user_model()
        try:
            return model._default_manager.get_by_natural_key(sub)
        except model.DoesNotExist:
            return None

    def create_user(self, sub: str, claims: Claims) -> Any:
        """A new user named ``sub``, without a usable password (Logto signs them in)."""
        model = get_user_model()
        user = model(**{model.USERNAME_FIELD: sub})
        user.set_unusable_password()
        user.save()
        return user

    def map_claims(self, claims: Claims) -> dict[str, Any]:
        """The user fields the claims set (``USER_CLAIMS``, or the default mapping)."""
        mapping: Optional[dict[str, str]] = conf.option("USER_CLAIMS")
        if mapping is not None:
            return {field: claims[claim] for field, claim in mapping.items() if claims.get(claim) is not None}
        fields: dict[str, Any] = {}
        if claims.get("email"):
            fields["email"] = claims["email"]
        given, family = claims.get("given_name"), claims.get("family_name")
        if not given and not family and isinstance(claims.get("name"), str):
            given, _, family = claims["name"].strip().partition(" ")
        if given:
            fields["first_name"] = given
        if family:
            fields["last_name"] = family
        return fields

    def roles(self, claims: Claims) -> set[str]:
        """The user's roles: ``roles`` and ``organization_roles`` (``org:role``) values."""
        found: set[str] = set()
        for claim in ("roles", "organization_roles"):
            found.update(_strings(claims.get(claim)))
        return found

    def update_user(self, user: Any, claims: Claims, *, created: bool) -> None:
        """Apply the claims to ``user`` (fields, staff/superuser flags, groups) and save it."""
        changed: list[str] = []
        model = type(user)
        for name, value in self.map_claims(claims).items():
            try:
                field = model._meta.get_field(name)
            except Exception:
                continue
            max_length = getattr(field, "max_length", None)
            if isinstance(value, str) and max_length:
                value = value[:max_length]
            if getattr(user, name, None) != value:
                setattr(user, name, value)
                changed.append(name)
        if changed:
            user.save(update_fields=changed)
        self.update_roles(user, claims)

    def update_roles(self, user: Any, claims: Claims) -> None:
        """Apply the claims' roles: ``is_staff``/``is_superuser`` and the groups."""
        changed: list[str] = []
        roles = self.roles(claims)
        for flag, option in (("is_staff", "STAFF_ROLES"), ("is_superuser", "SUPERUSER_ROLES")):
            wanted = conf.option(option)
            if wanted is not None and hasattr(user, flag):
                value = bool(roles & wanted)
                if getattr(user, flag) != value:
                    setattr(user, flag, value)
                    changed.append(flag)
        if changed:
            user.save(update_fields=changed)
        self.update_groups(user, claims)

    def update_groups(self, user: Any, claims: Claims) -> None:
        """Make the user's groups exactly the values of the ``GROUP_CLAIMS`` claims."""
        group_claims: tuple[str, ...] = conf.option("GROUP_CLAIMS")
        if group_claims and hasattr(user, "groups"):
            from django.contrib.auth.models import Group

            names = sorted({name for claim in group_claims for name in _strings(claims.get(claim))})
            groups = [Group.objects.get_or_create(name=name[:150])[0] for name in names]
            user.groups.set(groups)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, str)]
    return []
