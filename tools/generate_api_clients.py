r"""Generate the typed Management API and Account API clients from Logto's OpenAPI document.

Usage (from the repository root)::

    .venv/bin/python tools/generate_api_clients.py
        # regenerate python/logto_rs/{management,account}/{models,client}.py from the pinned
        # document, tools/openapi/logto-<version>.json
    .venv/bin/python tools/generate_api_clients.py --fetch https://tenant.example/api/swagger.json \\
        --logto-version 1.43.0
        # adopt a newer Logto: pin its document (replacing the old one), then regenerate
    .venv/bin/python tools/generate_api_clients.py --output /tmp/out
        # write the modules under /tmp/out instead (tests/test_api_generator.py compares them
        # with the committed ones)

Which operation goes where:

- the Account API (``/api/my-account``) and the verification API it relies on
  (``/api/verifications``) take the signed-in user's access token: ``logto_rs.account``;
- every other operation that takes a Management API token: ``logto_rs.management``;
- what neither client can or should call is listed in :data:`LEFT_OUT`, each with its reason.

The clients also read the answers of the oldest Logto they support, whose document is pinned in
``tools/openapi/oldest/`` (replace it by hand to change that version): a field of an answer is
required only where both documents require it.

An enum in an answer is its known values or any string (a newer Logto may add a value); in a
body, only the known values.

The document's schemas are inline, so each distinct shape becomes one model that every use
shares. A shape only one operation uses is named after it (``CreateUserBody``). A shape several
operations share is named for what it is, never after one operation's verb: the answer of a read
by id is the resource (``GetUser``'s answer is ``User``), another shared body or answer is named
by the resource of its path and its role (``PasswordBody``, ``PasswordVerification``,
``HookResponse``), a shared field's shape by the field (``Profile``, ``Identity``).

A model with the same structure as another (fields, types, required-ness, config; see
:meth:`Models.structure`) is not written twice: a second name in the same module is the first
class, and the Account API's models module takes a Management API model's class under its own
name, which it re-exports. The output is formatted with ruff, so that it is exactly what the
repository holds.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import keyword
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ROOT / "tools" / "openapi"
PACKAGE = ROOT / "python" / "logto_rs"
METHODS = ("get", "post", "put", "patch", "delete")

ACCOUNT_PREFIXES = ("/api/my-account", "/api/verifications")
"""The Account API and its verification records: the signed-in user's access token."""

LEFT_OUT: dict[str, str] = {
    "/api/experience": "the Experience API: the sign-in page's own interaction, bound to its "
    "session cookie, not to a token",
    "/api/.well-known": "public and unauthenticated: what the sign-in pages and the Account Center read",
    "/api/status": "public health check, no token",
    "/api/swagger.json": "this document itself, public",
    "/api/authn": "callbacks that Hasura and SAML identity providers call, not an API for clients",
    "/api/saml/": "the SAML sign-in flow a SAML service provider drives with form posts and redirects",
    "POST /api/user-assets": "a multipart file upload; the clients send JSON",
    "POST /api/sign-in-exp/default/custom-ui-assets": "a multipart file upload; the clients send JSON",
    "POST /api/my-account/user-assets/avatar": "a multipart file upload; the clients send JSON",
    "GET /api/saml-applications/{id}/metadata": "answers the SAML metadata as XML, not JSON",
}
"""Operations of the document no client calls, by path prefix or ``METHOD path``, with why."""

SECRET_FIELD = re.compile(
    r"password|secret|token|verificationCode|verificationRecordId|code$|signingKey|privateKey|value$|digest|"
    r"recoveryCode|backupCodes",
    re.IGNORECASE,
)
"""Fields whose values must never appear in a ``repr`` (an answer or a body may hold them)."""

OPEN_ENUM = re.compile(r"Union\[Literal\[[^\]]*\], str\]")
"""An answer's enum: its known values, or any string (what a newer Logto may have added)."""

OPEN_ENUM_COMMENT = "# the known values, or one a newer Logto added"
"""The comment on an answer's field that :data:`OPEN_ENUM` types."""

RESERVED = {
    "model_config",
    "model_fields",
    "schema",
    "json",
    "dict",
    "copy",
    "validate",
    "construct",
    "fields",
}


@dataclass(frozen=True)
class Operation:
    """One operation of the document."""

    method: str
    path: str
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        """The ``operationId``."""
        return str(self.spec["operationId"])

    @property
    def key(self) -> str:
        """``METHOD /api/path``."""
        return f"{self.method.upper()} {self.path}"


def left_out_reason(operation: Operation) -> Optional[str]:
    """Why no client calls ``operation``, or ``None``."""
    for rule, reason in LEFT_OUT.items():
        if rule == operation.key or (rule.startswith("/") and operation.path.startswith(rule)):
            return reason
    return None


def client_of(operation: Operation) -> Optional[str]:
    """``"account"``, ``"management"``, or ``None`` for an operation left out."""
    if left_out_reason(operation) is not None:
        return None
    if operation.path.startswith(ACCOUNT_PREFIXES):
        return "account"
    return "management"


def pinned_document() -> Path:
    """The one pinned document, ``tools/openapi/logto-<version>.json``."""
    [document] = sorted(DOCUMENTS.glob("logto-*.json"))
    return document


def oldest_document() -> Optional[Path]:
    """The oldest Logto the clients support, ``tools/openapi/oldest/logto-<version>.json``."""
    documents = sorted((DOCUMENTS / "oldest").glob("logto-*.json"))
    return documents[0] if documents else None


def relax_answers(document: dict[str, Any], oldest: dict[str, Any]) -> None:
    """Make an answer's field required only where the oldest supported Logto requires it too.

    A newer document requires fields an older Logto does not send (1.42's applications have
    ``appLevelAccessControlEnabled``, 1.37's do not): such a field is optional in the models, so
    that the same client reads both.
    """
    old_operations = {(op.method, op.path): op for op in operations(oldest)}
    for operation in operations(document):
        old = old_operations.get((operation.method, operation.path))
        if old is None:
            continue
        has_json, schema = response_schema(operation)
        _, old_schema = response_schema(old)
        if has_json and schema is not None:
            _relax(schema, old_schema)


def _relax(schema: dict[str, Any], old: Optional[dict[str, Any]]) -> None:
    if not isinstance(old, dict) or "$ref" in schema:
        return
    if "properties" in schema:
        kept = set(old.get("required", []))
        schema["required"] = [name for name in schema.get("required", []) if name in kept]
        old_properties = old.get("properties", {})
        for name, sub in schema["properties"].items():
            _relax(sub, old_properties.get(name))
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _relax(schema[key], old.get(key))
    for key in ("oneOf", "anyOf", "allOf"):
        if key in schema and len(schema[key]) == len(old.get(key, [])):
            for sub, old_sub in zip(schema[key], old[key]):
                _relax(sub, old_sub)


def logto_version(document: Path) -> str:
    """The Logto version a pinned document is named after."""
    return document.stem.removeprefix("logto-")


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    """Every operation of the document, in its order."""
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield Operation(method, path, item[method])


def pascal(name: str) -> str:
    """``PascalCase`` of a name in any case."""
    words = re.split(r"[^0-9A-Za-z]+|(?<=[a-z0-9])(?=[A-Z])", name)
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def camel(name: str) -> str:
    """``camelCase`` of a name in any case."""
    name = pascal(name)
    return name[:1].lower() + name[1:]


def identifier(name: str) -> str:
    """A Python name for a JSON field or parameter (the wire name stays its alias)."""
    safe = re.sub(r"\W", "_", name).strip("_") or "field"
    if safe[0].isdigit():
        safe = "_" + safe
    if keyword.iskeyword(safe) or safe in RESERVED or safe.startswith("model_") or safe.startswith("_"):
        safe = safe.lstrip("_") + "_"
    return safe


def one_line(text: str) -> str:
    """``text`` as one docstring-safe line ending with a full stop."""
    text = " ".join(text.replace("\\", "\\\\").replace('"""', "'''").split())
    return text if text.endswith((".", "?", "!")) else text + "."


def docstring(summary: str, indent: int, details: str = "") -> str:
    """A docstring: a one-line summary, then ``details``, wrapped to the line length at ``indent``."""
    pad = " " * indent
    width = 104 - indent
    first, _, rest = summary.partition(". ")
    if not rest:
        first = summary.removesuffix(".")
    head = first + "."
    if len(head) > width:
        head, rest = textwrap.shorten(first, width - 3, placeholder="") + "...", summary
    more = " ".join([rest, details]).strip()
    if not more:
        return f'{pad}"""{head}"""\n'
    body = "\n".join(pad + line for line in textwrap.wrap(more, width=width))
    return f'{pad}"""{head}\n\n{body}\n{pad}"""\n'


@dataclass
class Models:
    """The models of one client: each distinct shape once (see the module's docstring for names)."""

    document: dict[str, Any]
    shared: set[str] = field(default_factory=set)
    code: list[str] = field(default_factory=list)
    shapes: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    uses: dict[str, set[str]] = field(default_factory=dict)
    operation: Optional[Operation] = None
    structures: dict[str, str] = field(default_factory=dict)
    defined: dict[str, str] = field(default_factory=dict)
    elsewhere: dict[str, str] = field(default_factory=dict)
    elsewhere_module: str = ""
    imported: dict[str, str] = field(default_factory=dict)

    def borrow(self, other: Models, module: str) -> None:
        """Import the models ``other`` (another client's) defines instead of repeating them.

        A model is the same when its structure is (see :meth:`structure`). It keeps this
        client's name, so this module's names stay what they are; only the class is shared.
        """
        self.elsewhere, self.elsewhere_module = dict(other.defined), module

    def structure(self, base: str, fields: list[str]) -> str:
        """What makes a model the one it is, whatever its name and words.

        Its base (a request's or an answer's config) and its fields (names, aliases, types,
        required-ness, ``repr``), each nested model standing for its own structure; a quoted
        value (an alias, a ``Literal``) stays as it is.
        """

        def nested(match: re.Match[str]) -> str:
            return self.structures.get(match.group(0), match.group(0))

        text = "\n".join([base, *(re.sub(r'"(?:[^"\\]|\\.)*"|\w+', nested, line) for line in fields)])
        return "<" + hashlib.sha256(text.encode()).hexdigest() + ">"

    def unique(self, hint: str, *preferred: str) -> str:
        """A model name not used yet: the first free of ``preferred``, else one from ``hint``."""
        for name in preferred:
            if name not in self.names and name not in PACKAGE_NAMES:
                self.names.add(name)
                return name
        if len(hint) > 60:
            # A deeply nested shape: its operation and its own last words.
            words = re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", hint)
            hint = "".join(words[:2] + words[-3:])
        name, n = hint, 2
        while name in self.names:
            name, n = f"{hint}{n}", n + 1
        self.names.add(name)
        return name

    def resolve(self, schema: dict[str, Any]) -> tuple[dict[str, Any], Optional[str]]:
        """A ``$ref`` followed to its component, with the component's name."""
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return self.document["components"]["schemas"][name], name
        return schema, None

    def type_of(self, schema: Optional[dict[str, Any]], hint: str, kind: str) -> str:
        """The annotation for ``schema``; objects become models named from ``hint``."""
        if not schema or schema.get("description") == "Validator function":
            # The document renders a custom validator (e.g. of a redirect URI) as an object.
            return "Any"
        schema, component = self.resolve(schema)
        hint = component or hint
        annotation = self._type(schema, hint, kind)
        nullable = schema.get("nullable") or None in schema.get("enum", [])
        if nullable and annotation != "Any" and not annotation.startswith("Optional["):
            return f"Optional[{annotation}]"
        return annotation

    def _type(self, schema: dict[str, Any], hint: str, kind: str) -> str:
        literal = re.fullmatch(r'"(.*)"', str(schema.get("format", "")))
        if literal and schema.get("type") == "string":
            return f"Literal[{json.dumps(literal.group(1))}]"
        if "enum" in schema:
            values = [value for value in schema["enum"] if value is not None]
            if not values:
                return "None"
            literal_type = f"Literal[{', '.join(json.dumps(value) for value in values)}]"
            if kind == "response" and all(isinstance(value, str) for value in values):
                # An answer may carry a value a newer Logto added: the known ones stay visible.
                return f"Union[{literal_type}, str]"
            return literal_type
        for union in ("oneOf", "anyOf"):
            if union in schema:
                alternatives: list[str] = []
                for index, alternative in enumerate(schema[union], 1):
                    annotation = self.type_of(alternative, f"{hint}{index}", kind)
                    if annotation not in alternatives:
                        alternatives.append(annotation)
                if "Any" in alternatives:
                    return "Any"
                return alternatives[0] if len(alternatives) == 1 else f"Union[{', '.join(alternatives)}]"
        if "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                part, _ = self.resolve(part)
                if part.get("type") not in (None, "object") or not part.get("properties"):
                    return "Any"
                merged["properties"].update(part["properties"])
                merged["required"] += part.get("required", [])
            return self._type(merged, hint, kind)
        kind_of = schema.get("type")
        if kind_of == "string":
            return "str"
        if kind_of == "integer":
            return "int"
        if kind_of == "number":
            return "float"
        if kind_of == "boolean":
            return "bool"
        if kind_of == "array":
            return f"list[{self.type_of(schema.get('items'), hint + 'Item', kind)}]"
        if kind_of in ("object", None) and schema.get("properties"):
            return self.model(schema, hint, kind)
        if kind_of == "object":
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and extra:
                return f"dict[str, {self.type_of(extra, hint + 'Value', kind)}]"
            return "dict[str, Any]"
        return "Any"

    def shared_names(self, hint: str, kind: str) -> list[str]:
        """Names for a shape several operations share, best first: what it is, never a verb.

        A field's shape is named by the field (``Profile``), else by its parent's resource and the
        field (``OrganizationInvitationOrganizationRole``). An operation's body or answer is named
        by the resource of the operation's path: an answer ``Hook`` (``HookResponse`` when a
        resource's read by id answers another ``Hook``), a body ``PasswordBody``. A document's
        component and the answer of a read by id keep their names (``User``).
        """
        parent, nested, tail = hint.rpartition(NESTED)
        # An alternative of a union keeps its number (``Identifier1``, ``Identifier2``).
        words, _, number = re.fullmatch(r"(.*?)((?:Item|Value)*)(\d*)", tail or hint).groups()  # type: ignore[union-attr]
        if nested:
            noun = (singular(words) or tail) + number
            return [noun, resource_of_name(parent) + noun]
        if hint in self.document.get("components", {}).get("schemas", {}) or self.operation is None:
            return []
        if kind == "response" and is_read_by_id(self.operation):
            return [hint]
        noun, path = resource_of(self.operation)
        if kind == "response":
            return [noun + number, path + number, f"{noun}Response{number}", f"{path}Response{number}"]
        return [f"{noun}Body{number}", f"{path}Body{number}"]

    def model(self, schema: dict[str, Any], hint: str, kind: str) -> str:
        """The model of an object ``schema`` (written once per shape); its name."""
        shape = kind + json.dumps(strip_docs(schema), sort_keys=True)
        if self.operation is not None:
            self.uses.setdefault(shape, set()).add(self.operation.id)
        if shape in self.shapes:
            return self.shapes[shape]
        preferred = self.shared_names(hint, kind) if shape in self.shared else []
        # All taken: the first, numbered (never another operation's verb).
        name = self.unique(preferred[0] if preferred else pascal(hint), *preferred)
        self.shapes[shape] = name
        required = set(schema.get("required", []))
        lines: list[str] = []
        for prop, sub in schema["properties"].items():
            annotation = self.type_of(sub, f"{name}{NESTED}{pascal(prop)}", kind)
            # A request field with a default is filled in by Logto: the caller may leave it out.
            optional = prop not in required or (kind == "request" and "default" in sub)
            if optional and annotation != "Any" and not annotation.startswith("Optional["):
                annotation = f"Optional[{annotation}]"
            python_name = identifier(prop)
            arguments = [] if not optional else ["None"]
            if python_name != prop:
                arguments.append(f"alias={json.dumps(prop)}")
            if SECRET_FIELD.search(prop):
                arguments.append("repr=False")
            if arguments == ["None"]:
                line = f"    {python_name}: {annotation} = None"
            elif arguments:
                line = f"    {python_name}: {annotation} = Field({', '.join(arguments)})"
            else:
                line = f"    {python_name}: {annotation}"
            if OPEN_ENUM.search(annotation):
                lines.append(f"    {OPEN_ENUM_COMMENT}")
            lines.append(line)
        base = "RequestModel" if kind == "request" else "ResponseModel"
        structure = self.structure(base, lines)
        self.structures[name] = structure
        if structure in self.elsewhere:
            self.imported[name] = self.elsewhere[structure]
            return name
        if structure in self.defined:
            same = self.defined[structure]
            self.code.append(f'{name} = {same}\n"""The same model as :class:`{same}`."""\n')
            return name
        self.defined[structure] = name
        description = schema.get("description") or ""
        summary = one_line(description) if description and description != "arbitrary" else f"{name}."
        self.code.append(f"class {name}({base}):\n{docstring(summary, 4)}\n" + "\n".join(lines) + "\n")
        return name


def exported_names() -> frozenset[str]:
    """What ``logto_rs`` itself exports (``AccessToken``, ``LogtoConfig``): no model shares a name."""
    names: set[str] = set()
    for node in ast.parse((PACKAGE / "__init__.py").read_text()).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AugAssign)
            else []
        )
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            names.update(ast.literal_eval(node.value))  # type: ignore[attr-defined]
    return frozenset(names)


PACKAGE_NAMES = exported_names()
"""Names a shared shape never takes: a model called ``AccessToken`` would read as the SDK's own."""

NESTED = "."
"""Parts a nested shape's name hint: its parent model's name, then the field's own words."""

VERBS = re.compile(
    r"^(Get|List|Create|Update|Replace|Delete|Add|Assign|Verify|Upsert|Patch|Put|Post|Remove|Generate|Test)"
    r"(?=[A-Z])"
)
"""An operation's leading verb, which a shared shape's name must not inherit."""


def singular(noun: str) -> str:
    """``Hooks`` → ``Hook``, ``Policies`` → ``Policy``, ``Address`` stays."""
    if noun.endswith("ies"):
        return noun[:-3] + "y"
    if noun.endswith(("sses", "xes")):
        return noun[:-2]
    if noun.endswith("s") and not noun.endswith(("ss", "us", "Settings")):
        return noun[:-1]
    return noun


def resource_of_name(name: str) -> str:
    """The resource a model name names: without an operation's verb and its role.

    ``UpdateHookBody`` and ``ResourceResponse`` name a ``Hook`` and a ``Resource``.
    """
    return re.sub(r"(?<=[a-z0-9])(Response|Body)$", "", VERBS.sub("", name))


def resource_of(operation: Operation) -> tuple[str, str]:
    """The resource an operation acts on, and that resource qualified by every noun of its path.

    The resource is the path's last noun, singular (``/api/hooks/{id}``: ``Hook``); qualified,
    ``/api/organizations/{id}/jit/roles`` is an ``OrganizationJitRole``.

    A path's trailing action (``.../verify``) is not a noun; what the verification API records
    is a verification (``/api/verifications/password``: ``PasswordVerification``).
    """
    nouns = [
        segment
        for segment in operation.path.removeprefix("/api/").split("/")
        if not segment.startswith("{") and segment not in ("verify", "batch", "test")
    ]
    if not nouns:
        return pascal(operation.id), pascal(operation.id)
    noun = singular(pascal(nouns[-1]))
    if nouns[0] == "verifications" and len(nouns) > 1:
        noun += "Verification"
    return noun, "".join(singular(pascal(segment)) for segment in nouns)


def is_read_by_id(operation: Operation) -> bool:
    """``GET /api/users/{userId}``: its answer is the resource itself."""
    return operation.method == "get" and operation.id.startswith("Get") and operation.path.endswith("}")


def strip_docs(schema: Any) -> Any:
    """The schema without the words (descriptions, examples): what decides a shape."""
    if isinstance(schema, dict):
        return {
            key: strip_properties(value) if key == "properties" else strip_docs(value)
            for key, value in schema.items()
            if key not in ("description", "example", "examples", "deprecated")
        }
    if isinstance(schema, list):
        return [strip_docs(item) for item in schema]
    return schema


def strip_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """Properties without their words (a property may well be called ``description``)."""
    return {name: strip_docs(sub) for name, sub in properties.items()}


@dataclass
class Method:
    """One generated method, written into both twins."""

    name: str
    signature: str
    returns: str
    summary: str
    details: str
    call: str


def parameters(document: dict[str, Any], operation: Operation) -> list[dict[str, Any]]:
    """The operation's parameters, ``$ref`` followed."""
    resolved = []
    for parameter in operation.spec.get("parameters", []):
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[-1]]
        resolved.append(parameter)
    return resolved


def response_schema(operation: Operation) -> tuple[bool, Optional[dict[str, Any]]]:
    """Whether a JSON answer comes, and its schema."""
    for code in sorted(operation.spec.get("responses", {})):
        if not code.startswith("2"):
            continue
        content = operation.spec["responses"][code].get("content") or {}
        if "application/json" in content:
            return True, content["application/json"].get("schema") or {}
    return False, None


def method_for(document: dict[str, Any], models: Models, operation: Operation) -> Method:
    """The method that calls ``operation``; its models are added to ``models``."""
    models.operation = operation
    op_id = operation.id
    params = parameters(document, operation)
    taken = {"self", "body"}
    path_args: list[str] = []
    segments: list[str] = []
    for segment in operation.path.removeprefix("/api/").split("/"):
        match = re.fullmatch(r"\{(\w+)\}", segment)
        if match:
            python_name = identifier(match.group(1))
            taken.add(python_name)
            path_args.append(f"{python_name}: str")
            segments.append(python_name)
        else:
            segments.append(json.dumps(segment))
    required_query: list[str] = []
    optional_query: list[str] = []
    query: list[str] = []
    names = {p["name"] for p in params if p["in"] == "query"}
    paginated = {"page", "page_size"} <= names
    for parameter in params:
        if parameter["in"] != "query":
            continue
        python_name = identifier(parameter["name"])
        while python_name in taken:
            python_name += "_"
        taken.add(python_name)
        annotation = models.type_of(parameter.get("schema"), op_id + pascal(parameter["name"]), "request")
        annotation = annotation.replace("dict[str, str]", "Mapping[str, str]")
        if annotation.startswith("Union[list["):
            annotation = annotation.replace("Union[list[", "Union[Sequence[", 1)
        elif annotation.startswith("list["):
            annotation = "Sequence[" + annotation.removeprefix("list[")
        if parameter.get("required"):
            required_query.append(f"{python_name}: {annotation}")
        else:
            if not annotation.startswith("Optional[") and annotation != "Any":
                annotation = f"Optional[{annotation}]"
            optional_query.append(f"{python_name}: {annotation} = None")
        query.append(f"({json.dumps(parameter['name'])}, {python_name})")
    body_args: list[str] = []
    body_call = ""
    request_body = operation.spec.get("requestBody")
    if request_body:
        schema = request_body["content"]["application/json"].get("schema")
        body_type = models.type_of(schema, op_id + "Body", "request")
        accepts = body_type
        if body_type in models.names or body_type.startswith("Union["):
            accepts = f"Union[{body_type.removeprefix('Union[').removesuffix(']')}, Mapping[str, Any]]"
        if request_body.get("required"):
            body_args.append(f"body: {accepts}")
        else:
            body_args.append(f"body: Optional[{accepts}] = None")
        body_call = f", body=body_text({body_type}, body)"
    has_json, schema = response_schema(operation)
    returns = models.type_of(schema, response_hint(operation), "response") if has_json else "None"
    response_argument = returns
    if paginated and returns.startswith("list["):
        returns = "Page[" + returns.removeprefix("list[")
    positional = ["self", *path_args, *body_args]
    keywords = [*required_query, *optional_query]
    signature = ", ".join(positional + (["*", *keywords] if keywords else []))
    segments_text = "[" + ", ".join(segments) + "]"
    extra = ""
    if query:
        extra += f", query=[{', '.join(query)}]"
    extra += body_call
    if returns.startswith("Page["):
        extra += ", paginated=True"
    summary = one_line(operation.spec.get("summary") or op_id)
    call = f"self._send({json.dumps(operation.method.upper())}, {segments_text}, {response_argument}{extra})"
    return Method(camel(op_id), signature, returns, summary, f"``{operation.key}``", call)


def response_hint(operation: Operation) -> str:
    """``GetUser`` (``GET /api/users/{userId}``) answers a ``User``; others ``<Id>Response``."""
    op_id = operation.id
    if is_read_by_id(operation):
        # ``GetCustomProfileFieldByName`` answers a ``CustomProfileField``.
        return re.sub(r"(?<=[a-z])By[A-Z][A-Za-z]*$", "", op_id.removeprefix("Get"))
    if op_id.startswith("List"):
        return op_id.removeprefix("List")
    return op_id + "Response"


HEADER = """# Generated by tools/generate_api_clients.py from tools/openapi/{document}: do not edit.
# Regenerate with `.venv/bin/python tools/generate_api_clients.py` (see its docstring).
# ruff: noqa: E501 (paths and names from the document can be longer than a line)
"""


def render_models(title: str, models: Models, document_name: str) -> str:
    """The text of a ``models.py``: its own models, and those it shares with another client's."""
    source = models.elsewhere_module
    shared = "".join(f"{name} = _{source}.{model}\n" for name, model in sorted(models.imported.items()))
    if shared:
        shared = f"# The models {source} defines too: one class each, by this API's names.\n{shared}\n\n"
    return (
        HEADER.format(document=document_name)
        + f'"""{title}"""\n\n'
        + "from __future__ import annotations\n\n"
        + "from typing import Any, Literal, Optional, Union\n\n"
        + "from pydantic import Field\n\n"
        + "from .._rest import RequestModel, ResponseModel\n"
        + (f"from ..{source} import models as _{source}\n" if shared else "")
        + "\n__all__ = [\n"
        + "".join(f'    "{name}",\n' for name in sorted(models.names))
        + "]\n\n"
        + shared
        + "\n"
        + "\n\n".join(models.code)
    )


def render_client(spec: ClientSpec, methods: list[Method], models: Models, document_name: str) -> str:
    """The text of a ``client.py``: both twins and the table of operations."""
    text = "".join(m.call + m.signature + m.returns for m in methods)
    used = sorted(name for name in models.names if re.search(rf"\b{name}\b", text))
    twins = []
    for async_twin in (True, False):
        name = spec.async_name if async_twin else spec.blocking_name
        base = "AsyncTransport" if async_twin else "BlockingTransport"
        doc = spec.async_doc if async_twin else f"{spec.blocking_doc}"
        body = [f"class {name}({spec.transport}, {base}):\n{docstring(doc, 4)}"]
        if async_twin:
            body.append(
                f"    @property\n    def blocking(self) -> {spec.blocking_name}:\n"
                f'        """The same client with blocking methods."""\n'
                f"        return self._twin({spec.blocking_name})\n"
            )
        for method in methods:
            prefix = "async def" if async_twin else "def"
            awaited = "await " if async_twin else ""
            summary = method.summary if async_twin else f"Blocking :meth:`{spec.async_name}.{method.name}`."
            body.append(
                f"    {prefix} {method.name}({method.signature}) -> {method.returns}:\n"
                f"{docstring(summary, 8, method.details if async_twin else '')}"
                f"        return {awaited}{method.call}\n"
            )
        twins.append("\n".join(body))
    operations_table = "".join(f'    "{op_id}": "{key}",\n' for op_id, key in spec.operations)
    return (
        HEADER.format(document=document_name)
        + f'"""{spec.title}"""\n\n'
        + '# mypy: disable-error-code="no-any-return"\n'
        + "from __future__ import annotations\n\n"
        + "from collections.abc import Mapping, Sequence\n"
        + "from typing import Any, Literal, Optional, Union\n\n"
        + "from .._rest import AsyncTransport, BlockingTransport, Page, body_text\n"
        + f"from ._transport import {spec.transport}\n"
        + ("from .models import (\n" + "".join(f"    {name},\n" for name in used) + ")\n" if used else "")
        + f'\n__all__ = ["{spec.async_name}", "{spec.blocking_name}", "OPERATIONS"]\n\n'
        + f'LOGTO_VERSION = "{spec.version}"\n'
        + '"""The Logto whose API document this client was generated from."""\n\n'
        + "OPERATIONS: dict[str, str] = {\n"
        + operations_table
        + "}\n"
        + '"""Every operation this client calls: its ``operationId`` → ``METHOD path``."""\n\n\n'
        + "\n\n".join(twins)
    )


@dataclass
class ClientSpec:
    """What differs between the two clients."""

    package: str
    title: str
    models_title: str
    async_name: str
    blocking_name: str
    transport: str
    async_doc: str
    blocking_doc: str
    borrows: str = ""
    """The client (generated before this one) whose identical shapes this one imports."""
    version: str = ""
    operations: list[tuple[str, str]] = field(default_factory=list)


def specs(version: str) -> list[ClientSpec]:
    """The two clients."""
    return [
        ClientSpec(
            "management",
            f"Logto's Management API: every operation of Logto {version}'s API document.",
            f"The Management API's request and response models (Logto {version}).",
            "ManagementClient",
            "BlockingManagementClient",
            "ManagementTransport",
            "Logto's Management API: one awaitable method per operation. It calls with a "
            "machine-to-machine app's Management API token; the app's token cache and single flight "
            "serve every call.",
            "Logto's Management API with blocking methods (the GIL is released while they wait).",
        ),
        ClientSpec(
            "account",
            f"Logto's Account API (``/api/my-account``) and verification API (Logto {version}).",
            f"The Account API's request and response models (Logto {version}).",
            "AccountClient",
            "BlockingAccountClient",
            "AccountTransport",
            "The signed-in user's own account through Logto's Account API. One awaitable method per "
            "operation, called with the session's access token.",
            "The Account API with blocking methods (the GIL is released while they wait).",
            borrows="management",
        ),
    ]


def read_first(operation: Operation) -> tuple[bool, bool, int]:
    """Sort key: reads of one resource, then other reads, then the rest; short paths first."""
    return operation.method != "get", not operation.path.endswith("}"), operation.path.count("/")


def generate(document_path: Path, output: Path) -> list[Path]:
    """Write the four generated modules under ``output``; return their paths."""
    document = json.loads(document_path.read_text())
    oldest = oldest_document()
    if oldest is not None:
        relax_answers(document, json.loads(oldest.read_text()))
    version = logto_version(document_path)
    written = []
    defined: dict[str, Models] = {}
    for spec in specs(version):
        spec.version = version
        mine = [op for op in operations(document) if client_of(op) == spec.package]
        # Reads of one resource first, shortest paths first, so that the shapes they answer get
        # the resource's own name (``GET /api/users/{userId}`` answers a ``User``).
        ordered = sorted(mine, key=read_first)
        # A first pass finds the shapes several operations share: they are named for what they
        # are, not after whichever operation met them first.
        survey = Models(document)
        for op in ordered:
            method_for(document, survey, op)
        models = Models(document, shared={shape for shape, ops in survey.uses.items() if len(ops) > 1})
        if spec.borrows:
            models.borrow(defined[spec.borrows], spec.borrows)
        defined[spec.package] = models
        built = {op.id: method_for(document, models, op) for op in ordered}
        methods = [built[op.id] for op in mine]
        spec.operations = [(op.id, op.key) for op in mine]
        folder = output / spec.package
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in (
            ("models.py", render_models(spec.models_title, models, document_path.name)),
            ("client.py", render_client(spec, methods, models, document_path.name)),
        ):
            path = folder / name
            path.write_text(text)
            written.append(path)
    ruff = (
        shutil.which("ruff", path=str(Path(sys.executable).parent))
        or shutil.which("ruff")
        or shutil.which("ruff", path=str(ROOT / ".venv" / "bin"))
    )
    if ruff is None:
        raise SystemExit("ruff is needed to format the generated code (it is a dev dependency)")
    config = ["--config", str(ROOT / "pyproject.toml")]
    subprocess.run([ruff, "check", "--fix-only", "--quiet", *config, *map(str, written)], check=False)
    subprocess.run([ruff, "format", "--quiet", *config, *map(str, written)], check=True)
    return written


def main() -> None:
    """Pin a fetched document if asked, then regenerate."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--fetch", metavar="URL", help="a Logto's /api/swagger.json to pin first")
    parser.add_argument("--logto-version", help="the version of the Logto at --fetch (names the pinned file)")
    parser.add_argument("--output", type=Path, default=PACKAGE, help="where the packages go")
    arguments = parser.parse_args()
    if arguments.fetch:
        if not arguments.logto_version:
            parser.error("--fetch needs --logto-version")
        with urllib.request.urlopen(arguments.fetch, timeout=30) as response:
            document = response.read()
        json.loads(document)  # a JSON document, or stop here
        for old in DOCUMENTS.glob("logto-*.json"):
            old.unlink()
        # Byte for byte what Logto served.
        (DOCUMENTS / f"logto-{arguments.logto_version}.json").write_bytes(document)
    for path in generate(pinned_document(), arguments.output):
        print(path)


if __name__ == "__main__":
    main()
