"""What the generated Management API and Account API clients share.

Each generated method names its call (method, path segments, query, body, the response's type)
and hands it to :class:`AsyncTransport` or :class:`BlockingTransport`. The call itself is one
generic request of the Rust core, on the SDK's one HTTP stack (pooled connections, timeouts, no
redirects), which retries 429 and 5xx answers of idempotent methods as the :class:`RetryPolicy`
says. Here the body is validated against its model before anything is sent, the answer against
the response's type; neither error ever shows a value (a body may hold a password, an answer an
application secret).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from enum import Enum
from typing import Any, Callable, List, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from . import _driver
from ._core import Operation
from .errors import LogtoConfigError, LogtoResponseError

__all__ = [
    "RetryPolicy",
    "Page",
    "iterate_pages",
    "iterate_pages_blocking",
    "RequestModel",
    "ResponseModel",
    "CoreCall",
    "Transport",
    "AsyncTransport",
    "BlockingTransport",
]

T = TypeVar("T")


class RetryPolicy(BaseModel):
    """How idempotent calls (GET, PUT, DELETE) are retried after a 429 or a 5xx answer.

    The wait before retry ``n`` (0-based) is a random duration up to ``baseDelay * 2**n``
    (full jitter), at most ``maxDelay``; a ``Retry-After`` header is honoured instead, and one
    asking for more than ``maxDelay`` ends the retries at once. POST and PATCH are never retried:
    Logto may have done them.

    Attributes:
        maxRetries: Retries after the first attempt (0: never retry).
        baseDelay: Seconds; the first backoff.
        maxDelay: Seconds; the longest wait between two attempts.

    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    maxRetries: int = 3
    baseDelay: float = 0.25
    maxDelay: float = 10.0

    def _core_args(self) -> tuple[int, float, float]:
        if self.maxRetries < 0 or self.baseDelay < 0 or self.maxDelay < 0:
            raise LogtoConfigError("a RetryPolicy's values must not be negative", "config.invalid")
        return self.maxRetries, self.baseDelay, self.maxDelay


class Page(List[T]):
    """One page of a paginated list: a list with the ``total`` of all pages (``Total-Number``).

    Attributes:
        total: How many items all pages hold (``None`` when Logto did not paginate: the call
            had no ``page``).

    """

    total: Optional[int]

    def __init__(self, items: Sequence[T] = (), total: Optional[int] = None) -> None:
        super().__init__(items)
        self.total = total


def _last_page(page: Page[Any], seen: int) -> bool:
    """Whether no page follows: an empty one, an unpaginated answer, or all items seen."""
    return not page or page.total is None or seen >= page.total


async def iterate_pages(fetch: Callable[[int], Awaitable[Page[T]]], *, first: int = 1) -> AsyncIterator[T]:
    """Yield every item of a paginated list, fetching one page at a time.

    Args:
        fetch: Returns page ``n`` (from 1), e.g. ``lambda n: api.listUsers(page=n, page_size=100)``.
        first: The first page to fetch.

    """
    page_number, seen = first, 0
    while True:
        page = await fetch(page_number)
        for item in page:
            yield item
        seen += len(page)
        if _last_page(page, seen):
            return
        page_number += 1


def iterate_pages_blocking(fetch: Callable[[int], Page[T]], *, first: int = 1) -> Iterator[T]:
    """Blocking :func:`iterate_pages`: ``fetch`` is e.g. ``lambda n: api.blocking.listUsers(page=n)``."""
    page_number, seen = first, 0
    while True:
        page = fetch(page_number)
        yield from page
        seen += len(page)
        if _last_page(page, seen):
            return
        page_number += 1


_MODEL_CONFIG = ConfigDict(
    populate_by_name=True,
    hide_input_in_errors=True,
    defer_build=True,
    protected_namespaces=(),
)
"""What request and response models share: fields by name or alias, no value in an error."""


class RequestModel(BaseModel):
    """A request body: unknown fields are refused, unset fields are not sent."""

    model_config = ConfigDict(**_MODEL_CONFIG, extra="forbid")


class ResponseModel(BaseModel):
    """A response: fields the document does not know (a newer Logto's) are kept."""

    model_config = ConfigDict(**_MODEL_CONFIG, extra="allow")


def _problems(error: ValidationError) -> str:
    """Where and what, never the value."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or '(body)'}: {problem['msg']}"
        for problem in error.errors(include_input=False, include_url=False)[:10]
    )


def body_text(shape: Any, body: Any) -> Optional[str]:
    """The JSON text of a request body, validated against its type (unset fields are not sent).

    Raises:
        LogtoConfigError: the body does not fit the type (the message names the fields, never
            a value).

    """
    if body is None:
        return None
    adapter = _adapter(shape)
    try:
        value = body if type(body) is shape else adapter.validate_python(body)
    except ValidationError as error:
        name = getattr(shape, "__name__", "body")
        raise LogtoConfigError(f"invalid {name}: {_problems(error)}", "config.invalid") from None
    return adapter.dump_json(value, by_alias=True, exclude_unset=True).decode()


def _query_value(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def query_pairs(params: Sequence[tuple[str, Any]]) -> list[tuple[str, str]]:
    """Query parameters on the wire: ``None`` left out, a list repeated, a mapping exploded."""
    pairs: list[tuple[str, str]] = []
    for name, value in params:
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend((str(key), _query_value(item)) for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            pairs.extend((name, _query_value(item)) for item in value)
        else:
            pairs.append((name, _query_value(value)))
    return pairs


@functools.lru_cache(maxsize=1024)
def _adapter(response: Any) -> TypeAdapter[Any]:
    return TypeAdapter(response)


def read_answer(answer: tuple[int, Optional[int], str], response: Any, paginated: bool, what: str) -> Any:
    """The answer's body validated as ``response`` (a :class:`Page` when ``paginated``)."""
    _status, total, text = answer
    if response is None or not text:
        # No body: 204, or a success Logto answers without one (1.37 does for some 201s).
        return None
    try:
        value = _adapter(response).validate_json(text or "null")
    except ValidationError as error:
        raise LogtoResponseError(
            f"the answer of {what} does not match Logto's API document: {_problems(error)}",
            "response.unexpected",
        ) from None
    return Page(value, total) if paginated else value


Query = Sequence[tuple[str, Any]]
_T = TypeVar("_T", bound="Transport")

CoreCall = Callable[
    [str, list[str], list[tuple[str, str]], Optional[str], list[tuple[str, str]], tuple[int, float, float]],
    Operation,
]
"""The Rust core's generic request of one API: method, path segments, query, body, headers, retry."""


class Transport:
    """How a call reaches Logto: the Rust core's request for its API, and the retries.

    An API's transport (``ManagementTransport``, ``AccountTransport``) calls :meth:`_connect`
    once, and adds the headers its calls carry by overriding :meth:`_headers`.
    """

    _call: CoreCall
    _retry: tuple[int, float, float]

    def _connect(self, call: CoreCall, retry: Optional[RetryPolicy]) -> None:
        """Send every call through ``call``, retrying idempotent ones as ``retry`` says."""
        self._call = call
        self._retry = (retry or RetryPolicy())._core_args()

    def _twin(self, twin: type[_T]) -> _T:
        """The other twin (awaitable or blocking) of this client, sharing everything."""
        other = twin.__new__(twin)
        other.__dict__.update(self.__dict__)
        return other

    @property
    def retryPolicy(self) -> RetryPolicy:
        """How idempotent calls are retried after 429 and 5xx answers."""
        maxRetries, baseDelay, maxDelay = self._retry
        return RetryPolicy(maxRetries=maxRetries, baseDelay=baseDelay, maxDelay=maxDelay)

    def _headers(self) -> list[tuple[str, str]]:
        return []

    def _start(self, method: str, segments: Sequence[str], query: Query, body: Optional[str]) -> Operation:
        return self._call(method, list(segments), query_pairs(query), body, self._headers(), self._retry)


def _what(method: str, segments: Sequence[str]) -> str:
    return f"{method} /api/{'/'.join(segments[:1])}…" if len(segments) > 1 else f"{method} /api/{segments[0]}"


class AsyncTransport(Transport):
    """The awaitable calls."""

    async def _send(
        self,
        method: str,
        segments: Sequence[str],
        response: Any,
        *,
        query: Query = (),
        body: Optional[str] = None,
        paginated: bool = False,
    ) -> Any:
        answer = await _driver.run(self._start(method, segments, query, body))
        return read_answer(answer, response, paginated, _what(method, segments))


class BlockingTransport(Transport):
    """The blocking calls (the GIL is released while they wait)."""

    def _send(
        self,
        method: str,
        segments: Sequence[str],
        response: Any,
        *,
        query: Query = (),
        body: Optional[str] = None,
        paginated: bool = False,
    ) -> Any:
        answer = _driver.run_blocking(self._start(method, segments, query, body))
        return read_answer(answer, response, paginated, _what(method, segments))
