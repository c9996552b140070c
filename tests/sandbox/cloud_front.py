"""A Prefect-Cloud-shaped front for the sandbox's open-source Prefect server (started by scripts/sandbox.sh).

Push pools run only on Prefect Cloud, which cannot be reached from here; this front serves what Cloud
serves differently from the open-source server, in front of that server, so that pushpool's Cloud path
(and Prefect's own Python client in Cloud mode) can be tested on 127.0.0.1. Built from Prefect's own
client code (prefect 3.8: `prefect/client/cloud.py`, `prefect/client/orchestration/__init__.py`,
`prefect/settings/models/cloud.py`, `prefect/client/schemas/objects.py` `Workspace`) and its
documentation (docs.prefect.io "Rate limits and data retention").

What it models:
- URL shapes. `PREFECT_CLOUD_API_URL` is `http://127.0.0.1:PORT/api`; a workspace's API URL is
  `<cloud>/accounts/<account uuid>/workspaces/<workspace uuid>` (Cloud's `Workspace.api_url()`), and
  everything under it is the orchestration API, forwarded to the open-source server's `/api`.
- Auth. Every call needs `Authorization: Bearer <key>`; user keys start `pnu_`, service-account
  keys `pnb_`. No key, or one Cloud does not know: 401. A workspace the key cannot see (or that does
  not exist; Cloud does not tell them apart to a stranger): 403. `GET <cloud>/me/workspaces` lists the
  workspaces a key sees, in the `Workspace` shape Prefect's `CloudClient.read_workspaces` validates.
- Work pool types. `GET <workspace>/collections/work_pool_types` (Prefect's
  `CloudClient.read_worker_metadata`) lists, keyed collection -> worker, every type with its
  `type` and `default_base_job_configuration`: the server's worker types, and the push types
  `ecs:push`, `cloud-run:push`, `cloud-run-v2:push`, `azure-container-instance:push`, `modal:push`
  and `coiled:push`. Cloud's own push templates are not public: the first four are their hybrid
  twin's template, Modal's and Coiled's are tests/fixtures/prefect-cloud's, each with
  `variables.description` ending in "(Prefect Cloud's TYPE template)" so that a test can tell
  which template a pool got.
- Cloud-only block types. `modal-credentials` and `coiled-credentials` exist on Cloud, not on an
  open-source server: the front registers them (tests/fixtures/prefect-cloud) whenever it makes a
  workspace.
- Rate limits. Cloud limits API requests per account and answers 429 with `Retry-After` (seconds) and
  `{"detail": ...}`. Each account here has its own fixed window (`requests` per `seconds`, given when
  the workspace is made; none by default) counting every workspace call, and the 429 names the wait.

What it does not model: data isolation between workspaces (every workspace forwards to the one
server; tests keep apart by unique names), accounts' own API (members, settings, IP allow lists),
Cloud's push-pool execution, events and logs buckets, the UI, and TLS.

Sandbox admin (no auth, for tests and the demo; not Cloud's):
  POST /_sandbox/workspaces {"rate_limit": {"requests": N, "seconds": S}}?  ->
       {"cloud_api_url", "account_id", "workspace_id", "api_url", "hidden_workspace_id",
        "keys": {"user": "pnu_...", "bot": "pnb_..."}}
       a new account with a workspace both keys see, and a second workspace neither sees
  GET  /health  "ok"
Usage: cloud_front.py PORT PREFECT_API_URL FIXTURES_DIR
"""
import asyncio
import copy
import json
import math
import re
import secrets
import sys
import time
import uuid
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, web
from yarl import URL

HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
       "te", "trailer", "transfer-encoding", "upgrade", "content-length", "host", "authorization"}
WORKSPACE = re.compile(r"^/api/accounts/([^/]+)/workspaces/([^/]+)(/.*)?$")
# push type -> (the collection Cloud lists it under, its hybrid twin, or None for a fixture template)
PUSH_TYPES = {
    "ecs:push": ("prefect-aws", "ecs"),
    "cloud-run:push": ("prefect-gcp", "cloud-run"),
    "cloud-run-v2:push": ("prefect-gcp", "cloud-run-v2"),
    "azure-container-instance:push": ("prefect-azure", "azure-container-instance"),
    "modal:push": ("prefect-modal", None),
    "coiled:push": ("prefect-coiled", None),
}
CLOUD_ONLY_BLOCK_TYPES = ("modal-credentials.block-type.json", "coiled-credentials.block-type.json")


class Account:
    """One Cloud account: its workspaces and its request window."""

    def __init__(self, rate_limit):
        self.id, self.handle = str(uuid.uuid4()), f"sandbox-{secrets.token_hex(3)}"
        self.requests = rate_limit and int(rate_limit["requests"])
        self.seconds = rate_limit and float(rate_limit.get("seconds", 60))
        self.window_start, self.used = time.monotonic(), 0

    def admit(self):
        """None when the request may go on, else the seconds to wait (Retry-After)."""
        if not self.requests:
            return None
        now = time.monotonic()
        if now - self.window_start >= self.seconds:
            self.window_start, self.used = now, 0
        if self.used < self.requests:
            self.used += 1
            return None
        return max(1, math.ceil(self.window_start + self.seconds - now))


ACCOUNTS = {}    # account id -> Account
WORKSPACES = {}  # workspace id -> (account id, handle)
KEYS = {}        # key -> set of workspace ids it sees
STATE = {"prefect": None, "fixtures": None, "types": None}
LOCK = asyncio.Lock()
SESSION = None


def detail(status, message, headers=None):
    return web.json_response({"detail": message}, status=status, headers=headers)


def key_of(request):
    auth = request.headers.get("Authorization", "")
    return auth[len("Bearer "):] if auth.startswith("Bearer ") else None


async def upstream(method, path, body=None, headers=()):
    """One request to the open-source server: (status, headers, body). The body is as the server sent it:
    compressed only when the caller's own Accept-Encoding (forwarded in `headers`) asked for it."""
    url = URL(STATE["prefect"] + path, encoded=True)
    async with SESSION.request(method, url, data=body, headers=list(headers), allow_redirects=False,
                               skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type")) as answer:
        return answer.status, [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP], await answer.read()


async def register_cloud_block_types():
    """Registers the block types only Cloud has, as `prefect block register` does: the type (201, or 409
    when it exists), then its schema with the type's id (201, or 200 when it exists)."""
    for name in CLOUD_ONLY_BLOCK_TYPES:
        fixture = json.loads((STATE["fixtures"] / name).read_text())
        slug = fixture["block_type"]["slug"]
        await upstream("POST", "/block_types/", json.dumps(fixture["block_type"]).encode(), [("Content-Type", "application/json")])
        status, _, body = await upstream("GET", f"/block_types/slug/{slug}")
        if status != 200:
            raise RuntimeError(f"block type {slug}: {status} {body[:200]!r}")
        schema = dict(fixture["block_schema"], block_type_id=json.loads(body)["id"])
        status, _, body = await upstream("POST", "/block_schemas/", json.dumps(schema).encode(), [("Content-Type", "application/json")])
        if status not in (200, 201):
            raise RuntimeError(f"block schema of {slug}: {status} {body[:200]!r}")


async def work_pool_types():
    """Cloud's listing of work pool types, built once from the server's workers and the fixtures."""
    if STATE["types"] is None:
        status, _, body = await upstream("GET", "/collections/views/aggregate-worker-metadata")
        if status != 200:
            raise web.HTTPBadGateway(text=f"the Prefect server's worker metadata: {status}")
        listing = json.loads(body)
        workers = {w.get("type", k): w for collection in listing.values() for k, w in collection.items()}
        for push_type, (collection, twin) in PUSH_TYPES.items():
            if twin is None:
                fixture = STATE["fixtures"] / f"{push_type.split(':')[0]}-push.base-job-template.json"
                template = json.loads(fixture.read_text())
            else:
                template = copy.deepcopy(workers[twin]["default_base_job_configuration"])
            variables = template.setdefault("variables", {})
            variables["description"] = f"{variables.get('description', '').rstrip()} (Prefect Cloud's {push_type} template)".lstrip()
            worker = push_type.replace(":", "-")
            listing.setdefault(collection, {})[worker] = {
                "type": push_type, "display_name": push_type, "is_beta": False,
                "description": f"Prefect Cloud's {push_type} work pool (sandbox front)",
                "default_base_job_configuration": template,
            }
        STATE["types"] = listing
    return STATE["types"]


async def create_workspace(request):
    spec = await request.json() if request.can_read_body else {}
    async with LOCK:  # every time: a test of a server without them may have removed them meanwhile
        await register_cloud_block_types()
    account = Account(spec.get("rate_limit"))
    ACCOUNTS[account.id] = account
    seen, hidden = str(uuid.uuid4()), str(uuid.uuid4())
    WORKSPACES[seen] = (account.id, "main")
    WORKSPACES[hidden] = (account.id, "hidden")
    keys = {"user": f"pnu_{secrets.token_urlsafe(27)}", "bot": f"pnb_{secrets.token_urlsafe(27)}"}
    for key in keys.values():
        KEYS[key] = {seen}
    cloud = f"http://127.0.0.1:{request.url.port}/api"
    return web.json_response({
        "cloud_api_url": cloud, "account_id": account.id, "workspace_id": seen, "hidden_workspace_id": hidden,
        "api_url": f"{cloud}/accounts/{account.id}/workspaces/{seen}", "keys": keys,
    })


async def me_workspaces(request):
    key = key_of(request)
    if key not in KEYS:
        return detail(401, "Unauthorized")
    out = []
    for workspace in sorted(KEYS[key]):
        account_id, handle = WORKSPACES[workspace]
        account = ACCOUNTS[account_id]
        out.append({"account_id": account_id, "account_name": account.handle, "account_handle": account.handle,
                    "workspace_id": workspace, "workspace_name": handle, "workspace_description": "",
                    "workspace_handle": handle})
    return web.json_response(out)


async def workspace_call(request):
    match = WORKSPACE.match(request.path)
    if not match:
        return detail(404, "Not Found")
    account_id, workspace_id, rest = match.group(1), match.group(2), match.group(3) or "/"
    key = key_of(request)
    if key not in KEYS:
        return detail(401, "Unauthorized")
    if workspace_id not in KEYS[key] or WORKSPACES.get(workspace_id, (None,))[0] != account_id:
        return detail(403, "Forbidden")
    wait = ACCOUNTS[account_id].admit()
    if wait is not None:
        return detail(429, f"Rate limit exceeded; retry after {wait} seconds", {"Retry-After": str(wait)})
    if rest.rstrip("/") == "/collections/work_pool_types" and request.method == "GET":
        return web.json_response(await work_pool_types())
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP]
    query = request.rel_url.raw_query_string
    path = rest + (f"?{query}" if query else "")
    status, answer_headers, body = await upstream(request.method, path, await request.read() or None, headers)
    return web.Response(status=status, body=body, headers=answer_headers)


async def everything_else(request):
    if request.path.rstrip("/") == "/api/me/workspaces":
        return await me_workspaces(request)
    if request.path.startswith("/api/accounts/"):
        return await workspace_call(request)
    return detail(404, "Not Found")


async def health(_):
    return web.Response(text="ok")


async def lifecycle(_app):
    global SESSION
    SESSION = ClientSession(auto_decompress=False, trust_env=False, timeout=ClientTimeout(total=300, sock_connect=10))
    yield
    await SESSION.close()


if __name__ == "__main__":
    port, prefect, fixtures = int(sys.argv[1]), sys.argv[2].rstrip("/"), Path(sys.argv[3])
    STATE["prefect"], STATE["fixtures"] = prefect, fixtures
    app = web.Application(client_max_size=1 << 30)
    app.cleanup_ctx.append(lifecycle)
    app.add_routes([web.get("/health", health), web.post("/_sandbox/workspaces", create_workspace),
                    web.route("*", "/{tail:.*}", everything_else)])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None)
