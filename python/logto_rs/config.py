"""``LogtoConfig``: the client configuration, with the official SDK's field names.

It is validated on construction by the Rust core (the same rules the client applies), so a bad
endpoint, an empty app id or an unknown prompt raise :class:`~logto_rs.errors.LogtoConfigError`
right away.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, Union

from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ._core import CoreClient
from .models import SecretHidingModel

__all__ = ["LogtoConfig"]


class SecretSafeModel(SecretHidingModel):
    """A configuration model holding a secret.

    Its validation errors never carry their input (see
    :class:`~logto_rs.models.SecretHidingModel`); unknown fields are refused, and assignment is
    validated too: a refused assignment raises and leaves the field as it was.
    """

    model_config = ConfigDict(validate_assignment=True, extra="forbid")
    _revision: int = PrivateAttr(default=0)
    """How many field assignments it has accepted (see :func:`assignments`)."""

    if not TYPE_CHECKING:  # keep pydantic's typed signature for type checkers

        def __setattr__(self, name: str, value: Any) -> None:
            if name not in type(self).model_fields:
                super().__setattr__(name, value)
                return
            # pydantic stores the field before the model's own checks run: a value they refuse
            # must not stay behind.
            previous = self.__dict__[name]
            try:
                super().__setattr__(name, value)
            except BaseException:
                self.__dict__[name] = previous
                raise
            self._revision += 1


def assignments(config: SecretSafeModel) -> dict[str, Any]:
    """The dict whose ``"_revision"`` counts the field assignments ``config`` accepted.

    It is pydantic's dict of private attributes, the same object for the model's whole life: a
    client keeps it and reads the count on every cached token without pydantic's
    ``__getattr__``, which takes microseconds.
    """
    private = config.__pydantic_private__
    assert private is not None  # SecretSafeModel declares a private attribute
    return private


class LogtoConfig(SecretSafeModel):
    """Configuration of a :class:`~logto_rs.LogtoClient`.

    Attributes:
        endpoint: The Logto tenant, e.g. ``https://tenant.logto.app``.
        appId: The application id.
        appSecret: The application secret (confidential apps); never shown in reprs.
        scopes: Extra scopes; ``openid``, ``offline_access`` and ``profile`` are always added,
            and the organizations resource is added with the organizations scope.
        resources: API resource indicators to request at sign-in.
        prompt: ``consent`` (default, needed for a refresh token), ``login``, ``login consent``,
            ``none``; a list of values is joined with spaces.
        requestTimeout: Seconds allowed for one HTTP request.
        connectTimeout: Seconds allowed to open a connection.
        clockTolerance: Seconds of clock skew tolerated on ``exp``/``iat``/``nbf``.
        jwksRefetchCooldown: Paces JWKS refetches caused by unknown key ids (a burst of two, then
            one per cooldown; a key id just looked for in vain waits a whole cooldown) and is the
            shortest time fetched keys are kept.
        allowInsecureHttp: Allow plain ``http://`` to hosts other than loopback, for development
            only. By default the endpoint and every URL discovery returns must be ``https`` (or
            ``http`` to ``localhost``, ``127.0.0.1``, ``[::1]``).
        accessTokenMargin: An access token is refreshed once it has less life left than this.

    Unknown fields are refused, and no validation error ever contains the input (so never the
    secret).
    """

    endpoint: str
    appId: str
    appSecret: Optional[str] = Field(default=None, repr=False)
    scopes: list[str] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=list)
    prompt: str = "consent"
    requestTimeout: float = 10.0
    connectTimeout: float = 5.0
    clockTolerance: float = 60.0
    jwksRefetchCooldown: float = 30.0
    allowInsecureHttp: bool = False
    accessTokenMargin: float = 60.0

    @field_validator("scopes", "resources", mode="before")
    @classmethod
    def _enum_values(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [item.value if isinstance(item, Enum) else item for item in value]
        return value

    @field_validator("prompt", mode="before")
    @classmethod
    def _join_prompt(cls, value: Union[str, list[str], Any]) -> Any:
        if isinstance(value, (list, tuple)):
            return " ".join(item.value if isinstance(item, Enum) else str(item) for item in value)
        if isinstance(value, Enum):
            return value.value
        return value

    @model_validator(mode="after")
    def _validate_with_core(self) -> LogtoConfig:
        CoreClient.validate_config(self)
        return self
