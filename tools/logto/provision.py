"""Provision a freshly seeded real Logto (logto.sh up) for tests. Idempotent; standard library only.

Where discovery advertises the device flow (Logto 1.38+), two more apps: `device`, a native app for
the device authorization grant (customClientMetadata.isDeviceFlow, set at creation and never
changeable), and `service`, a machine-to-machine app with token exchange allowed, the "API A" of
service-to-service delegation (which came in the same release).

Bootstrap: Logto's seed creates no machine-to-machine app in the `default` tenant, so one is
inserted with SQL (the rows the Management API writes: applications, application_secrets and
applications_roles -> the seeded role "Logto Management API access", scope `all`). Everything else
goes through the real Management API with that app's token.

Writes $LOGTO_HOME/provision.json and $LOGTO_HOME/env (shell exports). Loopback only.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import subprocess
import urllib.error
import urllib.parse
import urllib.request

# Given by logto.sh (the pins of the version it runs).
HOME = os.environ["LOGTO_HOME"]
ENDPOINT = os.environ["LOGTO_ENDPOINT"]
PG_PORT = os.environ["PG_PORT"]
# The psql command (logto.sh runs it inside the PostgreSQL container when Logto runs in docker).
PSQL = shlex.split(os.environ.get("LOGTO_PSQL", "psql"))
MAPI = "https://default.logto.app/api"
RESOURCE = "https://api.example.com"
SHORT_RESOURCE = "https://short.example.com"
SHORT_TTL = 10
REDIRECT_URIS = os.environ.get(
    "LOGTO_REDIRECT_URIS", "http://127.0.0.1:5000/callback http://127.0.0.1:3000/callback"
).split()
POST_LOGOUT_URIS = ["http://127.0.0.1:5000/", "http://127.0.0.1:3000/"]
USERS = {"alice": "Alice-Passw0rd!", "bob": "B0b-Passw0rd!"}
BOOT_ID = "bootstrap-m2m"

assert urllib.parse.urlparse(ENDPOINT).hostname in ("127.0.0.1", "localhost"), "loopback only"


def psql(sql: str) -> str:
    """Run one SQL statement on the server's database; its unaligned output."""
    out = subprocess.run(
        [
            *PSQL,
            "-h",
            "127.0.0.1",
            "-p",
            PG_PORT,
            "-U",
            "logto",
            "-d",
            "logto",
            "-v",
            "ON_ERROR_STOP=1",
            "-tAc",
            sql,
        ],
        env=dict(os.environ, PGPASSWORD="logto"),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def bootstrap() -> tuple[str, str]:
    """The bootstrap M2M app (id, secret), inserted with SQL once: Logto's seed makes none."""
    existing = psql(f"select value from application_secrets where application_id='{BOOT_ID}'")
    if existing:
        return BOOT_ID, existing
    secret, internal = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    psql(f"""begin;
    insert into applications (tenant_id, id, name, secret, description, type, oidc_client_metadata)
      values ('default', '{BOOT_ID}', 'bootstrap (SQL)', '{internal}', 'inserted by provision.py',
              'MachineToMachine', '{{"redirectUris": [], "postLogoutRedirectUris": []}}');
    insert into application_secrets (tenant_id, application_id, name, value)
      values ('default', '{BOOT_ID}', 'Default secret', '{secret}');
    insert into applications_roles (tenant_id, id, application_id, role_id)
      select 'default', 'bootstrap-role', '{BOOT_ID}', id from roles
      where tenant_id = 'default' and name = 'Logto Management API access';
    commit;""")
    return BOOT_ID, secret


def http(method: str, url: str, body=None, headers=None, form=None):
    """One HTTP call with the standard library; the decoded JSON answer (raises on an error)."""
    data = None
    headers = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            text = r.read().decode()
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {url} -> {e.code} {e.read().decode()[:300]}") from None
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


class Api:
    """The Management API, authenticated as the bootstrap app."""

    def __init__(self, app_id: str, secret: str) -> None:
        basic = base64.b64encode(f"{app_id}:{secret}".encode()).decode()
        tok = http(
            "POST",
            f"{ENDPOINT}/oidc/token",
            headers={"authorization": f"Basic {basic}"},
            form={"grant_type": "client_credentials", "resource": MAPI, "scope": "all"},
        )
        self.auth = {"authorization": f"Bearer {tok['access_token']}"}

    def __call__(self, method: str, path: str, body=None, **params):
        """Call `path` under /api with `params` as the query."""
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        return http(method, f"{ENDPOINT}/api{path}{q}", body, self.auth)

    def find(self, path: str, key: str, value: str, **params):
        """The first item of the list at `path` whose `key` is `value`, or None."""
        return next((i for i in self("GET", path, page_size=100, **params) if i.get(key) == value), None)

    def ensure(self, path: str, key: str, body: dict, **params):
        """The item of `path` whose `key` matches `body`, created from `body` when missing."""
        return self.find(path, key, body[key], **params) or self("POST", path, body)


def main() -> None:
    """Provision everything the tests use, idempotently, and write provision.json and env."""
    boot_id, boot_secret = bootstrap()
    api = Api(boot_id, boot_secret)

    res = api.ensure("/resources", "indicator", {"name": "Products API", "indicator": RESOURCE})
    scopes = {
        n: api.ensure(f"/resources/{res['id']}/scopes", "name", {"name": n, "description": n})
        for n in ("read:products", "write:products")
    }
    short = api.ensure(
        "/resources",
        "indicator",
        {"name": "Short-lived API", "indicator": SHORT_RESOURCE, "accessTokenTtl": SHORT_TTL},
    )
    short_scope = api.ensure(
        f"/resources/{short['id']}/scopes", "name", {"name": "read:short", "description": "short"}
    )

    reader = api.ensure(
        "/roles",
        "name",
        {
            "name": "products-reader",
            "description": "read products",
            "type": "User",
            "scopeIds": [scopes["read:products"]["id"], short_scope["id"]],
        },
    )
    users = {}
    for name, password in USERS.items():
        u = api.find("/users", "username", name, search=name) or api(
            "POST",
            "/users",
            {
                "username": name,
                "password": password,
                "name": name.title(),
                "primaryEmail": f"{name}@example.com",
            },
        )
        users[name] = {"id": u["id"], "username": name, "password": password}
    if reader["id"] not in {r["id"] for r in api("GET", f"/users/{users['alice']['id']}/roles")}:
        api("POST", f"/users/{users['alice']['id']}/roles", {"roleIds": [reader["id"]]})

    org_scope = api.ensure(
        "/organization-scopes", "name", {"name": "read:members", "description": "read members"}
    )
    org_role = api.find("/organization-roles", "name", "member") or api(
        "POST",
        "/organization-roles",
        {
            "name": "member",
            "description": "member",
            "organizationScopeIds": [org_scope["id"]],
            "resourceScopeIds": [scopes["read:products"]["id"]],
        },
    )
    org = api.ensure("/organizations", "name", {"name": "acme", "description": "test organization"})
    if users["alice"]["id"] not in {u["id"] for u in api("GET", f"/organizations/{org['id']}/users")}:
        api("POST", f"/organizations/{org['id']}/users", {"userIds": [users["alice"]["id"]]})
        api(
            "POST",
            f"/organizations/{org['id']}/users/{users['alice']['id']}/roles",
            {"organizationRoleIds": [org_role["id"]]},
        )

    meta = {"redirectUris": REDIRECT_URIS, "postLogoutRedirectUris": POST_LOGOUT_URIS}
    web = api.find("/applications", "name", "web") or api(
        "POST",
        "/applications",
        {
            "name": "web",
            "type": "Traditional",
            "oidcClientMetadata": meta,
            "customClientMetadata": {"allowTokenExchange": True},
        },
    )
    web_nx = api.find("/applications", "name", "web-no-exchange") or api(
        "POST",
        "/applications",
        {"name": "web-no-exchange", "type": "Traditional", "oidcClientMetadata": meta},
    )
    native = api.find("/applications", "name", "native") or api(
        "POST", "/applications", {"name": "native", "type": "Native", "oidcClientMetadata": meta}
    )
    m2m = api.find("/applications", "name", "m2m") or api(
        "POST", "/applications", {"name": "m2m", "type": "MachineToMachine"}
    )
    # Logto 1.38+: a device-flow native app (grant types device_code + refresh_token, no redirect
    # URIs), and a backend service app that may exchange a user's access token (delegation).
    discovery = http("GET", f"{ENDPOINT}/oidc/.well-known/openid-configuration")
    device = service = None
    if "device_authorization_endpoint" in discovery:
        device = api.find("/applications", "name", "device") or api(
            "POST",
            "/applications",
            {"name": "device", "type": "Native", "customClientMetadata": {"isDeviceFlow": True}},
        )
        service = api.find("/applications", "name", "service") or api(
            "POST",
            "/applications",
            {
                "name": "service",
                "type": "MachineToMachine",
                "customClientMetadata": {"allowTokenExchange": True},
            },
        )
    m2m_role = api.ensure(
        "/roles",
        "name",
        {
            "name": "m2m-products",
            "description": "m2m read products",
            "type": "MachineToMachine",
            "scopeIds": [scopes["read:products"]["id"]],
        },
    )
    mapi_role = api.find("/roles", "name", "Logto Management API access", type="MachineToMachine")
    have = {r["id"] for r in api("GET", f"/applications/{m2m['id']}/roles")}
    want = [r for r in (mapi_role["id"], m2m_role["id"]) if r not in have]
    if want:
        api("POST", f"/applications/{m2m['id']}/roles", {"roleIds": want})
    m2m_org_role = api.find("/organization-roles", "name", "m2m-member") or api(
        "POST",
        "/organization-roles",
        {
            "name": "m2m-member",
            "description": "m2m member",
            "type": "MachineToMachine",
            "organizationScopeIds": [org_scope["id"]],
        },
    )
    if m2m["id"] not in {a["id"] for a in api("GET", f"/organizations/{org['id']}/applications")}:
        api("POST", f"/organizations/{org['id']}/applications", {"applicationIds": [m2m["id"]]})
        api(
            "POST",
            f"/organizations/{org['id']}/applications/{m2m['id']}/roles",
            {"organizationRoleIds": [m2m_org_role["id"]]},
        )

    def secret(app) -> str:
        return api("GET", f"/applications/{app['id']}/secrets")[0]["value"]

    out = {
        "endpoint": ENDPOINT,
        "issuer": ENDPOINT + "/oidc",
        "managementApi": MAPI,
        "resource": RESOURCE,
        "scopes": sorted(scopes),
        "shortResource": SHORT_RESOURCE,
        "shortTtl": SHORT_TTL,
        "redirectUris": REDIRECT_URIS,
        "postLogoutRedirectUris": POST_LOGOUT_URIS,
        "users": users,
        "organization": {"id": org["id"], "scope": "read:members"},
        "web": {"id": web["id"], "secret": secret(web)},
        "webNoExchange": {"id": web_nx["id"], "secret": secret(web_nx)},
        "native": {"id": native["id"]},
        "m2m": {"id": m2m["id"], "secret": secret(m2m)},
        "bootstrap": {"id": boot_id, "secret": boot_secret},
    }
    if device and service:
        out["device"] = {"id": device["id"]}
        out["service"] = {"id": service["id"], "secret": secret(service)}
    os.makedirs(HOME, exist_ok=True)
    with open(os.path.join(HOME, "provision.json"), "w") as f:
        json.dump(out, f, indent=2)
    env = {
        "LOGTO_ENDPOINT": ENDPOINT,
        "LOGTO_RESOURCE": RESOURCE,
        "LOGTO_SHORT_RESOURCE": SHORT_RESOURCE,
        "LOGTO_WEB_APP_ID": web["id"],
        "LOGTO_WEB_APP_SECRET": out["web"]["secret"],
        "LOGTO_NATIVE_APP_ID": native["id"],
        "LOGTO_M2M_APP_ID": m2m["id"],
        "LOGTO_M2M_APP_SECRET": out["m2m"]["secret"],
        "LOGTO_ORGANIZATION_ID": org["id"],
        "LOGTO_USER": "alice",
        "LOGTO_PASSWORD": USERS["alice"],
        "LOGTO_USER_ID": users["alice"]["id"],
        "LOGTO_PROVISION_JSON": os.path.join(HOME, "provision.json"),
    }
    if device and service:
        env.update(
            {
                "LOGTO_DEVICE_APP_ID": device["id"],
                "LOGTO_SERVICE_APP_ID": service["id"],
                "LOGTO_SERVICE_APP_SECRET": out["service"]["secret"],
            }
        )
    with open(os.path.join(HOME, "env"), "w") as f:
        f.writelines(f"export {k}='{v}'\n" for k, v in env.items())
    for p in ("provision.json", "env"):
        os.chmod(os.path.join(HOME, p), 0o600)


if __name__ == "__main__":
    main()
