"""The generated Management and Account API clients: the committed code is exactly what the
generator writes from the pinned document, and every operation of the document is either called
by a client or left out for a stated reason (the coverage is printed).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import ValidationError

import logto_rs
from logto_rs import account, management
from logto_rs._rest import RequestModel, ResponseModel

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_api_clients", ROOT / "tools" / "generate_api_clients.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


generator = _generator()


def test_the_committed_clients_are_what_the_generator_writes(tmp_path: Path) -> None:
    written = generator.generate(generator.pinned_document(), tmp_path)
    assert sorted(str(path.relative_to(tmp_path)) for path in written) == [
        "account/client.py",
        "account/models.py",
        "management/client.py",
        "management/models.py",
    ]
    for path in written:
        committed = generator.PACKAGE / path.relative_to(tmp_path)
        assert path.read_text() == committed.read_text(), (
            f"{committed.relative_to(ROOT)} is not the generator's output: "
            "run `.venv/bin/python tools/generate_api_clients.py`"
        )


def test_the_pinned_document_is_the_one_the_clients_name() -> None:
    document = generator.pinned_document()
    assert document.name == f"logto-{management.LOGTO_VERSION}.json" == f"logto-{account.LOGTO_VERSION}.json"
    assert json.loads(document.read_text())["openapi"].startswith("3.")


def test_every_operation_is_called_or_left_out_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(generator.pinned_document().read_text())
    clients = {
        "management": (
            management.OPERATIONS,
            management.ManagementClient,
            management.BlockingManagementClient,
        ),
        "account": (account.OPERATIONS, account.AccountClient, account.BlockingAccountClient),
    }
    covered: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    left_out: list[tuple[str, str]] = []
    seen = set()
    for operation in generator.operations(document):
        seen.add(operation.id)
        where = generator.client_of(operation)
        if where is None:
            reason = generator.left_out_reason(operation)
            assert reason, operation.key
            assert all(operation.id not in table for table, _, _ in clients.values())
            left_out.append((operation.key, reason))
            continue
        expected[where] += 1
        table, awaitable, blocking = clients[where]
        if table.get(operation.id) == operation.key:
            name = generator.camel(operation.id)
            assert callable(getattr(awaitable, name)) and callable(getattr(blocking, name)), operation.key
            covered[where] += 1
    for table, _, _ in clients.values():
        assert set(table) <= seen, "a client calls an operation the document does not have"
    total = sum(1 for _ in generator.operations(document))
    with capsys.disabled():
        print(f"\nLogto {management.LOGTO_VERSION}'s API document: {total} operations")
        for where in clients:
            share = 100 * covered[where] / expected[where]
            print(f"  {where} API: {covered[where]} of {expected[where]} operations ({share:.0f}%)")
        print(f"  left out: {len(left_out)}")
        for reason, count in Counter(reason for _, reason in left_out).most_common():
            print(f"    {count:3} {reason}")
    assert covered == expected
    assert covered["management"] + covered["account"] + len(left_out) == total


def test_a_shape_several_operations_share_is_named_for_what_it_is() -> None:
    verb = re.compile(r"^(Get|List|Create|Update|Replace|Delete|Add|Assign|Verify|Upsert)(?=[A-Z])")
    for package, client in ((management, management.ManagementClient), (account, account.AccountClient)):
        models = set(package.models.__all__)
        assert not models & set(logto_rs.__all__), "a model named like one of the SDK's own classes"
        users: dict[str, set[str]] = {}
        for operation in package.OPERATIONS:
            annotations = " ".join(getattr(client, generator.camel(operation)).__annotations__.values())
            for name in set(re.findall(r"\w+", annotations)) & models:
                users.setdefault(name, set()).add(operation)
        shared = {name: operations for name, operations in users.items() if len(operations) > 1}
        assert shared, "no operations share a shape"
        for name, operations in shared.items():
            assert not verb.match(name), f"{name}, shared by {sorted(operations)}, is named after a verb"
    signature = account.AccountClient.createVerificationByPassword.__annotations__
    assert "PasswordBody" in signature["body"] and signature["return"] == "PasswordVerification"
    assert "PasswordBody" in account.AccountClient.updatePassword.__annotations__["body"]
    assert management.ManagementClient.createHook.__annotations__["return"] == "HookResponse"
    assert management.ManagementClient.getUser.__annotations__["return"] == "User"


def _model_bodies(package: ModuleType) -> dict[str, str]:
    """Each model class the module itself defines: its bases and fields, without its docstring."""
    source = Path(package.models.__file__).read_text()
    bodies = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            fields = [statement for statement in node.body if not isinstance(statement, ast.Expr)]
            bases = ", ".join(ast.unparse(base) for base in node.bases)
            bodies[node.name] = bases + "\n" + "\n".join(ast.unparse(statement) for statement in fields)
    return bodies


def test_each_model_structure_is_defined_once() -> None:
    for package in (management, account):
        bodies = Counter(_model_bodies(package).values())
        repeated = [body for body, count in bodies.items() if count > 1]
        assert not repeated, f"{package.__name__}.models defines these more than once: {repeated}"
    # A second name is the same class, and says so.
    assert account.models.AddMfaVerificationBody4 is account.models.AddMfaVerificationBody1
    assert "AddMfaVerificationBody4 = AddMfaVerificationBody1" in Path(account.models.__file__).read_text()


def test_the_account_models_define_no_shape_the_management_models_define() -> None:
    management_bodies = {body: name for name, body in _model_bodies(management).items()}
    repeated = {
        name: management_bodies[body]
        for name, body in _model_bodies(account).items()
        if body in management_bodies
    }
    assert not repeated, f"account models that repeat a management model: {repeated}"
    # The shared shapes keep the Account API's names: the same classes, re-exported.
    assert account.models.PasswordBody is management.models.PasswordBody
    assert account.models.UpdateOtherProfileBody is management.models.UserProfile
    for name in account.models.__all__:
        model = getattr(account.models, name)
        assert issubclass(model, (RequestModel, ResponseModel)), name
    body = account.models.UpdateOtherProfileBody.model_validate(
        {"givenName": "Alice", "address": {"country": "NZ"}}
    )
    assert body.address is not None and body.address.country == "NZ"
    with pytest.raises(ValidationError):
        account.models.UpdateOtherProfileBody.model_validate({"nickname": "a", "unknown": 1})
