"""A stateful fake of the Azure calls pushpool makes (started by scripts/sandbox.sh).

What it proves: the WIRE CONTRACT, not the live cloud. Every ARM request pushpool sends is matched to
an operation whose api-version is pinned (the official example's, where one exists) and whose body
is checked against the shape of the official example in specs/azure/examples/; every Microsoft Graph
body (request and answer) is checked against the Graph CSDL subset. The behaviour (201 vs 200 on
PUT, server-computed fields, 409s, long-running operations, paging (small pages by default: see PAGING),
replication delays (ARM's PrincipalNotFound; Graph's "does not reference a valid application object" and
Request_ResourceNotFound for objects just created), throttling, error envelopes) follows Azure's
documented semantics as far as the tests need them; it is a model, and a model can be wrong where the
documentation is silent (each such choice says so where it is made).

One listener on 127.0.0.1 (port PUSHPOOL_AZURE_PORT, default 15400) serves, under path prefixes:
    /arm/...                                    Azure Resource Manager (per subscription)
    /graph/v1.0/...                             Microsoft Graph v1.0 (per tenant: the token's)
    /login/{tenant}/oauth2/v2.0/token           Entra ID client-credentials grant (checks a secret)
    /acr/{registryName}/oauth2/exchange         ACR's AAD token exchange (what `az acr login` does)
    /admin/...                                  the tests' own API (see ADMIN at the end)
    /health                                     "ok"
A custom Azure CLI cloud (clouds.config: endpoint_resource_manager = <base>/arm/,
endpoint_microsoft_graph_resource_id = <base>/graph/, endpoint_active_directory = <base>/login)
points pushpool and the fake `az` (tests/sandbox/az-bin/az) here.

Tokens: "fake.<audience>.<tenant>.<random>", as the fake `az` and the token endpoint issue them;
<audience> is `arm` or `graph` (anything else is refused by both). One token per audience: ARM
answers a Graph token 401 InvalidAuthenticationTokenAudience, Graph answers an ARM token 401
InvalidAuthenticationToken. An ARM token for another tenant than the subscription's is refused too.

Specs: $PUSHPOOL_AZURE_SPECS_DIR, else ../shared/specs/azure/ beside the repository, else the vendored
copy in tests/sandbox/specs/azure/ (identical; no PyPI wheel ships these examples). The fake logs
which one it loaded.

No request or response body is ever logged: they carry client secrets and tokens.
"""
import json
import logging
import os
import re
import secrets
import string
import sys
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode

from aiohttp import web

log = logging.getLogger("azure_fake")

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ROLES = {  # built-in role definitions the fake knows (ids are the same in every tenant)
    CONTRIBUTOR: "Contributor",
    ACR_PULL: "AcrPull",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "8311e382-0749-4cb8-b61a-304f252e45ec": "AcrPush",
    "f1a07417-d97a-45cb-824c-7a7467783830": "Managed Identity Operator",
}
GRAPH_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata"


# ---------------------------------------------------------------------------------------------
# SPECS: find them, load the four ARM examples and the Graph CSDL subset.
# ---------------------------------------------------------------------------------------------

EXAMPLES = {  # operation -> example file (the api-version is in the file and in its name)
    "resourceGroups.createOrUpdate": "CreateResourceGroup.2021-04-01.json",
    "registries.create": "RegistryCreate.2023-07-01.json",
    "userAssignedIdentities.createOrUpdate": "IdentityCreate.2023-01-31.json",
    "roleAssignments.create": "RoleAssignments_CreateForResourceGroup.2022-04-01.json",
}
CSDL = "graph_v1.0_subset_application_sp_addPassword.xml"


def specs_dir():
    """Where the specs are: the env override, ../shared beside the repo, the vendored copy."""
    if os.environ.get("PUSHPOOL_AZURE_SPECS_DIR"):
        return Path(os.environ["PUSHPOOL_AZURE_SPECS_DIR"])
    shared = Path(__file__).resolve().parents[3] / "shared" / "specs" / "azure"
    if (shared / CSDL).is_file() and all((shared / "examples" / f).is_file() for f in EXAMPLES.values()):
        return shared
    return Path(__file__).resolve().parent / "specs" / "azure"


@dataclass
class Example:
    """One official example: its api-version, request body and response bodies by status."""
    name: str
    api_version: str
    request: dict
    responses: dict  # "200" / "201" -> body


def load_examples(directory):
    out = {}
    for operation, name in EXAMPLES.items():
        doc = json.loads((directory / "examples" / name).read_text())
        params = doc["parameters"]
        # The body parameter is the one object among the parameters (its name differs per spec).
        body = next(v for k, v in params.items() if isinstance(v, dict))
        out[operation] = Example(name, params["api-version"], body,
                                 {code: r["body"] for code, r in doc["responses"].items() if "body" in r})
    return out


@dataclass
class GraphType:
    """One CSDL entity or complex type, with its base type's properties folded in."""
    name: str
    properties: dict  # name -> CSDL type string ("Edm.String", "Collection(graph.passwordCredential)")
    navigation: set


def load_csdl(path):
    """The CSDL subset: types by short name ("application"), actions by (name, binding type).
    The file is a list of fragments whose EntitySet tags are left open; they are closed here."""
    text = path.read_text()
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"<EntitySet ([^>]*[^/])>", r"<EntitySet \1/>", text)
    root = ET.fromstring(f"<Schema>{text}</Schema>")
    raw = {}
    for node in root:
        if node.tag in ("EntityType", "ComplexType"):
            props = {p.get("Name"): p.get("Type") for p in node.findall("Property")}
            nav = {p.get("Name") for p in node.findall("NavigationProperty")}
            raw[node.get("Name")] = (node.get("BaseType"), props, nav)
    types = {}
    for name in raw:
        props, nav, current = {}, set(), name
        while current:
            base, own, own_nav = raw[current]
            props = {**own, **props}
            nav |= own_nav
            current = base.split(".", 1)[1] if base else None
        types[name] = GraphType(name, props, nav)
    actions = {}
    for node in root.findall("Action"):
        params = [(p.get("Name"), p.get("Type")) for p in node.findall("Parameter")]
        binding = params[0][1].split(".", 1)[1]
        actions[(node.get("Name"), binding)] = {"parameters": dict(params[1:]),
                                                "returns": node.find("ReturnType").get("Type")}
    sets = {n.get("Name"): n.get("EntityType").rsplit(".", 1)[1] for n in root.findall("EntitySet")}
    return types, actions, sets


# ---------------------------------------------------------------------------------------------
# CONTRACT: ARM bodies against the example's shape, Graph bodies against the CSDL.
# ---------------------------------------------------------------------------------------------

def json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


# Fields the REST reference documents for a model but its example leaves out. Each entry names the
# model (operation), the direction and the dotted path; nothing else beyond the example is allowed.
ARM_EXTRAS = {
    # learn.microsoft.com/rest/api/resources/resource-groups/create-or-update: ResourceGroup has
    # tags (request and response) and type (response); the example shows neither.
    ("resourceGroups.createOrUpdate", "request"): {"tags": "map"},
    ("resourceGroups.createOrUpdate", "response"): {"tags": "map", "type": "string"},
}
# Maps whose keys are free (user data): only their values' type is checked (strings).
MAPS = {"tags"}
# What the REST reference marks required in the request body of each example's operation.
ARM_REQUIRED = {
    "resourceGroups.createOrUpdate": ["location"],
    "registries.create": ["location", "sku.name"],
    "userAssignedIdentities.createOrUpdate": ["location"],
    "roleAssignments.create": ["properties.roleDefinitionId", "properties.principalId"],
}


def shape_problems(value, example, where="", extras=None):
    """Problems of `value` against the example value `example`: a field the example does not have
    (and `extras` does not add), or of another JSON type, at any depth. Arrays are checked element
    by element against the example's first element (an empty example array accepts any element).
    A null in the example matches only null: the fake must say what the service says."""
    extras = extras or {}
    problems = []
    if isinstance(example, dict) and isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key in MAPS and (key in example or extras.get(path) == "map"):
                if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
                    problems.append(f"{path}: expected a map of strings, got {item!r}")
            elif key in example:
                problems += shape_problems(item, example[key], path, extras)
            elif path in extras:
                if json_type(item) != extras[path]:
                    problems.append(f"{path}: expected {extras[path]}, got {json_type(item)}")
            else:
                problems.append(f"{path}: not a field of the official example")
        return problems
    if isinstance(example, list) and isinstance(value, list):
        if example:
            for i, item in enumerate(value):
                problems += shape_problems(item, example[0], f"{where}[{i}]", extras)
        return problems
    if json_type(value) != json_type(example):
        problems.append(f"{where or '<body>'}: expected {json_type(example)}, got {json_type(value)}")
    return problems


def missing_fields(value, example, where=""):
    """Fields of the example response that an answer of the fake lacks (at any depth): a fake that
    dropped a server-computed field would let a client that never reads it pass."""
    if not (isinstance(example, dict) and isinstance(value, dict)):
        return []
    out = []
    for key, item in example.items():
        path = f"{where}.{key}" if where else key
        if key not in value:
            out.append(f"{path}: in the official example's response, missing from the fake's")
        elif key not in MAPS:
            out += missing_fields(value[key], item, path)
    return out


def check_arm_request(operation, body):
    """Problems of an ARM request body against its example (types, unknown fields, required)."""
    example = SPECS["examples"][operation]
    if not isinstance(body, dict):
        return [f"request body must be a JSON object, got {json_type(body)}"]
    problems = shape_problems(body, example.request, "", ARM_EXTRAS.get((operation, "request")))
    for path in ARM_REQUIRED[operation]:
        node = body
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            problems.append(f"{path}: required by the REST reference, missing")
    return problems


def check_arm_response(operation, status, body):
    """Problems of one of the fake's answers against the example's response of that status (a GET
    is checked against the 200 response of the create example: ARM returns the same model)."""
    example = SPECS["examples"][operation]
    expected = example.responses.get(str(status)) or example.responses["200"]
    extras = ARM_EXTRAS.get((operation, "response"))
    return shape_problems(body, expected, "", extras) + missing_fields(body, expected)


# Bodies of ARM operations that have no official example here: the fake's own reading of the REST
# reference (learn.microsoft.com/rest/api/...), checked the same way but labelled as such.
REFERENCE_SHAPES = {
    "registries.checkNameAvailability": {
        "request": {"name": "x", "type": "Microsoft.ContainerRegistry/registries"},
        "response": {"nameAvailable": True, "reason": "x", "message": "x"},
    },
}

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?(Z|[+-]\d\d:\d\d)$")
# Graph properties the service computes, per type (the Graph reference marks them read-only; the
# CSDL subset does not): a client that sends one is wrong (Graph rejects or ignores it).
GRAPH_COMPUTED = {
    "application": {"id", "appId", "deletedDateTime", "createdDateTime", "publisherDomain"},
    "servicePrincipal": {"id", "deletedDateTime", "appDisplayName", "appOwnerOrganizationId", "signInAudience"},
}
PASSWORD_COMPUTED = {"keyId", "secretText", "hint"}


class GraphChecker:
    """Walks a JSON value along a CSDL type. Unknown properties are violations even though the CSDL
    marks application and servicePrincipal OpenType: Graph answers an undeclared property with
    400 ("Property 'x' does not exist on type 'microsoft.graph.application'"). Complex types that
    the subset does not include (apiApplication, ...) are accepted as any object."""

    def __init__(self, mode):
        self.mode, self.problems = mode, []

    def problem(self, where, text):
        self.problems.append(f"{where or '<body>'}: {text}")

    def check_entity(self, value, type_name, where="", computed=()):
        gtype = SPECS["graph_types"].get(type_name)
        if gtype is None:
            return  # not in the subset
        if not isinstance(value, dict):
            self.problem(where, f"expected an object ({type_name}), got {json_type(value)}")
            return
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key.startswith("@odata."):
                if self.mode == "request" and key != "@odata.type":
                    self.problem(path, "an annotation a client does not send")
                continue
            if key in gtype.navigation:
                self.problem(path, f"navigation property of {type_name}: not settable inline here")
            elif key not in gtype.properties:
                self.problem(path, f"unknown property of {type_name}")
            else:
                if self.mode == "request" and key in computed:
                    self.problem(path, f"computed by the service ({type_name}), sent by the client")
                self.check_value(item, gtype.properties[key], path)

    def check_value(self, value, csdl_type, where):
        if value is None:
            return  # every property of the subset that can be null is nullable; collections never are
        m = re.match(r"^Collection\((.+)\)$", csdl_type)
        if m:
            if not isinstance(value, list):
                self.problem(where, f"expected an array ({csdl_type}), got {json_type(value)}")
                return
            for i, item in enumerate(value):
                if item is None:
                    self.problem(f"{where}[{i}]", "null in a collection")
                else:
                    self.check_value(item, m.group(1), f"{where}[{i}]")
            return
        if csdl_type.startswith("graph."):
            self.check_entity(value, csdl_type[6:], where)
            return
        expected = {"Edm.String": str, "Edm.Boolean": bool, "Edm.Guid": str, "Edm.DateTimeOffset": str,
                    "Edm.Binary": str, "Edm.Stream": str}.get(csdl_type)
        if expected is not None and not isinstance(value, expected):
            self.problem(where, f"expected {csdl_type}, got {json_type(value)}")
        elif csdl_type == "Edm.Guid" and not GUID.match(value):
            self.problem(where, f"not a GUID: {value!r}")
        elif csdl_type == "Edm.DateTimeOffset" and not DATETIME.match(value):
            self.problem(where, f"not an ISO 8601 date-time: {value!r}")


def check_graph_request(kind, body):
    """Problems of a Graph request body. kind: ("entity", type) for POST/PATCH of an entity set,
    ("action", name, binding) for a bound action, ("reference", shape) for an action outside the
    subset (removePassword), checked against the fake's reading of the reference."""
    if not isinstance(body, dict):
        return [f"request body must be a JSON object, got {json_type(body)}"]
    checker = GraphChecker("request")
    if kind[0] == "entity":
        checker.check_entity(body, kind[1], computed=GRAPH_COMPUTED[kind[1]])
    elif kind[0] == "action":
        action = SPECS["graph_actions"][(kind[1], kind[2])]
        for key, item in body.items():
            if key not in action["parameters"]:
                checker.problem(key, f"not a parameter of {kind[1]}")
            elif action["parameters"][key] == "graph.passwordCredential":
                checker.check_entity(item, "passwordCredential", key, computed=PASSWORD_COMPUTED)
            else:
                checker.check_value(item, action["parameters"][key], key)
    else:
        for key, item in body.items():
            if key not in kind[1]:
                checker.problem(key, "not a parameter (the fake's reading of the reference; not in the CSDL subset)")
            else:
                checker.check_value(item, kind[1][key], key)
    return checker.problems


def check_graph_response(type_name, body, collection=False):
    checker = GraphChecker("response")
    if collection:
        for i, item in enumerate(body.get("value", [])):
            checker.check_entity(item, type_name, f"value[{i}]")
        unknown = [k for k in body if k != "value" and not k.startswith("@odata.")]
        if unknown:
            checker.problem("", f"unknown members of a collection answer: {unknown}")
    else:
        checker.check_entity(body, type_name)
    return checker.problems


# ---------------------------------------------------------------------------------------------
# ERRORS: ARM's and Graph's envelopes.
# ---------------------------------------------------------------------------------------------

class ArmError(Exception):
    """{"error": {"code", "message"}}, ARM's envelope."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def response(self):
        return web.json_response({"error": {"code": self.code, "message": self.message}}, status=self.status,
                                 headers={"x-ms-failure-cause": "gateway", **self.headers})


class GraphError(Exception):
    """{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def response(self):
        request_id = str(uuid.uuid4())
        inner = {"date": now().strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id, "client-request-id": request_id}
        return web.json_response({"error": {"code": self.code, "message": self.message, "innerError": inner}},
                                 status=self.status, headers={"request-id": request_id, **self.headers})


def contract_arm(problems):
    return ArmError(400, "InvalidRequestContent", "fake contract: " + "; ".join(problems))


def contract_graph(problems):
    return GraphError(400, "BadRequest", "fake contract: " + "; ".join(problems))


def rg_not_found(name):
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def resource_not_found(kind, name, rg):
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{kind}/{name}' under resource group '{rg}' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def graph_not_found(key):
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.")


# ---------------------------------------------------------------------------------------------
# PAGING: ARM's `nextLink` and Graph's `@odata.nextLink`, small pages by default.
#
# ARM (learn.microsoft.com/azure/azure-resource-manager/management/azure-resource-manager-api-reference,
# "paging"): a list answers {"value": [...], "nextLink": "<absolute URL>"}; the link carries the
# original query and a `$skiptoken`; no nextLink on the last page. Graph (learn.microsoft.com/graph/
# paging): a collection answers "@odata.nextLink" (an absolute URL with a `$skiptoken`) until the end;
# `$top` asks for a page size (1..999 for directory objects); a page may hold fewer objects than that,
# even none, and still carry a next link. The fake models that last point for `$filter` lists: each
# page scans a window of the whole directory and returns the matches in it.
# Both page at DEFAULT_PAGE_SIZE unless the owner's `page_size` fault says otherwise, so that every test
# exercises continuation. A `$skiptoken` is opaque: only one the fake handed out, for the same query,
# is accepted (a client that builds its own is caught).
# ---------------------------------------------------------------------------------------------

DEFAULT_PAGE_SIZE = 2
GRAPH_MAX_TOP = 999


def page_size(owner):
    return max(1, int(owner.faults.get("page_size", DEFAULT_PAGE_SIZE)))


def continuation_key(path, query):
    """What a continuation belongs to: the path and every query parameter but the token."""
    return path.lower(), tuple(sorted((k, v) for k, v in query.items() if k != "$skiptoken"))


def resume_at(path, query, invalid):
    """The offset a request's `$skiptoken` resumes at (0 without one); `invalid` makes the
    service's error for a token the fake did not hand out for this query."""
    token = query.get("$skiptoken")
    if token is None:
        return 0
    found = WORLD.continuations.get(token)
    if found is None or found[0] != continuation_key(path, query):
        raise invalid(token)
    return found[1]


def next_link(base, path, query, offset):
    """An absolute URL that continues `query` at `offset` under a fresh opaque `$skiptoken`."""
    token = secrets.token_urlsafe(18)
    WORLD.continuations[token] = (continuation_key(path, query), offset)
    params = {**{k: v for k, v in query.items() if k != "$skiptoken"}, "$skiptoken": token}
    return f"{base}{path}?" + urlencode(params, quote_via=quote, safe="$'")


def arm_page(ctx, items):
    """One ARM page of `items`, with a nextLink while more remain."""
    path = ctx.request.path
    start = resume_at(path, ctx.query, lambda t: ArmError(
        400, "InvalidSkipToken", f"The skip token '{t}' is not valid for this request."))
    end = start + page_size(ctx.subscription)
    out = {"value": items[start:end]}
    if end < len(items):
        out["nextLink"] = next_link(ctx.base, path, ctx.query, end)
    return out


@dataclass
class Listing:
    """A Graph list before paging: every object of the collection in the directory's order, and
    whether each matches the request's $filter (all do without one)."""
    entity_set: str
    scanned: list  # [(json, matches)]


def graph_page(listing, tenant, base, path, query):
    """One Graph page of `listing`: a window of `$top` (else the page size) objects of the whole
    collection, keeping those that match, with an @odata.nextLink while the window is not the end.
    A filtered page may therefore be short, or empty, and still link to the next."""
    size = page_size(tenant)
    if "$top" in query:
        if not re.fullmatch(r"\d+", query["$top"]) or not 1 <= int(query["$top"]) <= GRAPH_MAX_TOP:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Invalid page size specified: '{query['$top']}'. Must be between 1 and {GRAPH_MAX_TOP} inclusive.")
        size = int(query["$top"])
    start = resume_at(path, query, lambda t: GraphError(
        400, "Request_BadRequest", f"The specified page token value '{t}' has expired or is not valid for this query."))
    end = start + size
    out = graph_collection(listing.entity_set, [item for item, matches in listing.scanned[start:end] if matches])
    if end < len(listing.scanned):
        out["@odata.nextLink"] = next_link(base, path, query, end)
    return out


# ---------------------------------------------------------------------------------------------
# STATE: tenants (directory objects) and subscriptions (ARM resources). In memory.
# ---------------------------------------------------------------------------------------------

def now():
    return datetime.now(timezone.utc)


def stamp(when=None):
    """ARM's and Graph's timestamp form, e.g. 2026-11-30T16:02:11.1234567Z."""
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def graph_stamp(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text):
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", text).replace("Z", "+00:00"))


def new_secret_text():
    """A client secret in Entra's form: 40 characters, `Q~` after the first four."""
    alphabet = string.ascii_letters + string.digits + "_-.~"
    head = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    return head + secrets.choice(string.digits) + "Q~" + "".join(secrets.choice(alphabet) for _ in range(34))


REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
RG_NAME = re.compile(r"^[-\w._()]{1,90}$")
IDENTITY_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$")
BASIC_STORAGE = 10 * 1024 ** 3  # Basic SKU: 10 GiB included storage (the Size usage's limit)
SECRET_LIMIT = 10  # see Tenant.secret_limit


@dataclass
class Password:
    key_id: str
    display_name: str
    secret_text: str
    start: datetime
    end: datetime

    def json(self, with_secret=False):
        return {"customKeyIdentifier": None, "displayName": self.display_name, "endDateTime": graph_stamp(self.end),
                "hint": self.secret_text[:3], "keyId": self.key_id,
                "secretText": self.secret_text if with_secret else None, "startDateTime": graph_stamp(self.start)}

    def live(self):
        return self.start <= now() < self.end


@dataclass
class Application:
    tenant: "Tenant"
    display_name: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    app_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: datetime = field(default_factory=now)
    properties: dict = field(default_factory=dict)  # tags, notes, description, ... (writable ones)
    passwords: list = field(default_factory=list)

    def json(self):
        out = {"id": self.id, "deletedDateTime": None, "appId": self.app_id, "applicationTemplateId": None,
               "createdDateTime": graph_stamp(self.created), "description": None, "displayName": self.display_name,
               "identifierUris": [], "isFallbackPublicClient": None, "notes": None,
               "publisherDomain": self.tenant.domain, "signInAudience": "AzureADMyOrg", "tags": [],
               "keyCredentials": [], "passwordCredentials": [p.json() for p in self.passwords]}
        out.update(self.properties)
        return out


@dataclass
class ServicePrincipal:
    app_id: str
    display_name: str
    type: str = "Application"  # or "ManagedIdentity"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    tags: list = field(default_factory=list)

    def json(self, tenant):
        return {"id": self.id, "deletedDateTime": None, "accountEnabled": True, "appDisplayName": self.display_name,
                "appId": self.app_id, "appOwnerOrganizationId": tenant.id, "appRoleAssignmentRequired": False,
                "displayName": self.display_name, "servicePrincipalNames": [self.app_id],
                "servicePrincipalType": self.type, "signInAudience": "AzureADMyOrg", "tags": list(self.tags),
                "keyCredentials": [], "passwordCredentials": []}


@dataclass
class Tenant:
    id: str
    domain: str
    applications: dict = field(default_factory=dict)  # id -> Application
    principals: dict = field(default_factory=dict)  # id -> ServicePrincipal
    faults: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)
    unreplicated: dict = field(default_factory=dict)  # principal id -> role-assignment calls that will not see it
    unbacked: dict = field(default_factory=dict)  # appId -> servicePrincipals.create calls that will not see its application
    lagging: dict = field(default_factory=dict)  # object id -> Graph requests naming it that answer 404
    minted: list = field(default_factory=list)  # every secret, token and refresh token issued in this tenant

    def secret_limit(self):
        """Client secrets per application. Entra documents no count that the fake could rely on (the
        limit is the directory object's size); the fake refuses the 11th by default, with the error
        an oversized object gets, and the `secret_limit` fault changes the count."""
        return int(self.faults.get("secret_limit", SECRET_LIMIT))

    def add_principal(self, sp):
        self.principals[sp.id] = sp
        hide = int(self.faults.get("principal_not_found", 0))
        if hide:
            self.unreplicated[sp.id] = hide
        return sp

    def created_by_graph(self, obj, app_id=None):
        """Starts the replication delays of an object just created through Graph (the faults
        `object_not_found` and, for an application, `app_not_replicated`; both off by default)."""
        lag = int(self.faults.get("object_not_found", 0))
        if lag:
            self.lagging[obj.id] = lag
        unbacked = int(self.faults.get("app_not_replicated", 0))
        if unbacked and app_id:
            self.unbacked[app_id] = unbacked

    def replicated(self, table, key):
        """False while a replication fault still hides `key` from the next request (each such
        request uses up one unit)."""
        if table.get(key, 0) > 0:
            table[key] -= 1
            return False
        return True

    def principal_visible(self, principal_id):
        """False while the principal_not_found fault hides a new principal from role assignments
        (directory replication); each role-assignment write that names it uses up one unit."""
        return self.replicated(self.unreplicated, principal_id) and principal_id in self.principals

    def app_by_app_id(self, app_id):
        return next((a for a in self.applications.values() if a.app_id == app_id), None)

    def state(self):
        return {"tenantId": self.id, "defaultDomain": self.domain,
                "applications": [{"id": a.id, "appId": a.app_id, "displayName": a.display_name,
                                  "tags": a.properties.get("tags", []), "notes": a.properties.get("notes"),
                                  "passwordCredentials": [{"keyId": p.key_id, "displayName": p.display_name,
                                                           "hint": p.secret_text[:3], "endDateTime": graph_stamp(p.end),
                                                           "live": p.live()} for p in a.passwords]}
                                 for a in self.applications.values()],
                "servicePrincipals": [{"id": s.id, "appId": s.app_id, "displayName": s.display_name,
                                       "servicePrincipalType": s.type} for s in self.principals.values()],
                "faults": self.faults}


@dataclass
class Registry:
    subscription: "Subscription"
    rg: str
    name: str
    location: str
    tags: dict
    sku: str = "Basic"
    admin_user: bool = False
    state: str = "Succeeded"
    created: str = field(default_factory=stamp)
    images: list = field(default_factory=list)  # sizes in bytes

    @property
    def id(self):
        return f"/subscriptions/{self.subscription.id}/resourceGroups/{self.rg}/providers/Microsoft.ContainerRegistry/registries/{self.name}"

    @property
    def login_server(self):
        return f"{self.name.lower()}.azurecr.io"

    def json(self):
        return {
            "id": self.id, "name": self.name, "type": "Microsoft.ContainerRegistry/registries",
            "location": self.location, "tags": dict(self.tags), "sku": {"name": self.sku, "tier": self.sku},
            "properties": {
                "loginServer": self.login_server, "creationDate": self.created, "provisioningState": self.state,
                "adminUserEnabled": self.admin_user,
                "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
                "policies": {"quarantinePolicy": {"status": "disabled"},
                             "trustPolicy": {"type": "Notary", "status": "disabled"},
                             "retentionPolicy": {"days": 7, "lastUpdatedTime": self.created, "status": "disabled"},
                             "exportPolicy": {"status": "enabled"}},
                "encryption": {"status": "disabled"}, "status": None, "dataEndpointEnabled": False,
                "dataEndpointHostNames": [], "privateEndpointConnections": [], "publicNetworkAccess": "Enabled",
                "networkRuleBypassOptions": "AzureServices", "zoneRedundancy": "Disabled"}}


@dataclass
class Identity:
    subscription: "Subscription"
    rg: str
    name: str
    location: str
    tags: dict
    principal_id: str = ""
    client_id: str = ""

    @property
    def id(self):
        # As the service answers (and the official example shows): "resourcegroups" in lower case.
        return f"/subscriptions/{self.subscription.id}/resourcegroups/{self.rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{self.name}"

    def json(self):
        return {"id": self.id, "location": self.location, "name": self.name,
                "properties": {"clientId": self.client_id, "principalId": self.principal_id,
                               "tenantId": self.subscription.tenant.id},
                "tags": dict(self.tags), "type": "Microsoft.ManagedIdentity/userAssignedIdentities"}


@dataclass
class ResourceGroup:
    subscription: "Subscription"
    name: str
    location: str
    tags: dict
    state: str = "Succeeded"
    registries: dict = field(default_factory=dict)  # lower name -> Registry
    identities: dict = field(default_factory=dict)  # lower name -> Identity
    operation: "Operation" = None  # the deletion under way, while state is Deleting

    @property
    def id(self):
        return f"/subscriptions/{self.subscription.id}/resourceGroups/{self.name}"

    def json(self):
        out = {"id": self.id, "name": self.name, "type": "Microsoft.Resources/resourceGroups",
               "location": self.location, "properties": {"provisioningState": self.state}}
        if self.tags:
            out["tags"] = dict(self.tags)
        return out


@dataclass
class RoleAssignment:
    scope: str
    name: str
    role_definition_id: str
    principal_id: str
    principal_type: str

    @property
    def id(self):
        return f"{self.scope}/providers/Microsoft.Authorization/roleAssignments/{self.name}"

    @property
    def role(self):
        return self.role_definition_id.rsplit("/", 1)[-1].lower()

    def json(self):
        return {"properties": {"roleDefinitionId": self.role_definition_id, "principalId": self.principal_id,
                               "principalType": self.principal_type, "scope": self.scope},
                "id": self.id, "type": "Microsoft.Authorization/roleAssignments", "name": self.name}


@dataclass
class Subscription:
    id: str
    name: str
    tenant: Tenant
    groups: dict = field(default_factory=dict)  # lower name -> ResourceGroup
    assignments: dict = field(default_factory=dict)  # lower id -> RoleAssignment
    faults: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)

    def group(self, name):
        rg = self.groups.get(name.lower())
        if rg is None or rg.state == "Deleted":
            raise rg_not_found(name)
        return rg

    def count_down(self, fault):
        left = self.faults.get(fault, 0)
        if isinstance(left, bool) or left <= 0:
            return False
        self.faults[fault] = left - 1
        return True

    def state(self):
        return {"subscriptionId": self.id, "displayName": self.name, "tenantId": self.tenant.id,
                "resourceGroups": [{"name": g.name, "location": g.location, "tags": g.tags, "provisioningState": g.state,
                                    "registries": [{"name": r.name, "id": r.id, "loginServer": r.login_server, "tags": r.tags,
                                                    "sku": r.sku, "provisioningState": r.state, "images": len(r.images),
                                                    "bytes": sum(r.images)} for r in g.registries.values()],
                                    "identities": [{"name": i.name, "id": i.id, "principalId": i.principal_id,
                                                    "clientId": i.client_id, "tags": i.tags} for i in g.identities.values()]}
                                   for g in self.groups.values()],
                "roleAssignments": [{"id": a.id, "name": a.name, "scope": a.scope, "roleDefinitionId": a.role_definition_id,
                                     "principalId": a.principal_id, "principalType": a.principal_type}
                                    for a in self.assignments.values()],
                "faults": self.faults}


@dataclass
class Operation:
    """A long-running operation: done after `polls_left` more polls; `finish` runs once then."""
    id: str
    subscription: Subscription
    polls_left: int
    finish: object = None
    done: bool = False

    def poll(self):
        if not self.done:
            self.polls_left -= 1
            if self.polls_left <= 0:
                self.complete()
        return self.done

    def complete(self):
        self.done = True
        if self.finish:
            self.finish()


class World:
    """Everything the fake holds: tenants, subscriptions, the global registry names, operations."""

    def __init__(self):
        self.tenants, self.subscriptions, self.operations = {}, {}, {}
        self.registry_names = {}  # lower name -> Registry (names are global, as DNS names are)
        self.continuations = {}  # $skiptoken -> (the query it continues, the offset it resumes at)
        self.violations, self.calls = [], []

    def tenant(self, tenant_id=None, domain=None):
        tenant_id = (tenant_id or str(uuid.uuid4())).lower()
        if tenant_id not in self.tenants:
            self.tenants[tenant_id] = Tenant(tenant_id, domain or f"pushpool{tenant_id[:8]}.onmicrosoft.com")
        return self.tenants[tenant_id]

    def start_operation(self, subscription, finish):
        polls = int(subscription.faults.get("operation_polls", 2))
        op = Operation(str(uuid.uuid4()), subscription, polls, finish)
        self.operations[op.id] = op
        if polls <= 0:
            op.complete()
        return op


WORLD = World()
SPECS = {}


# ---------------------------------------------------------------------------------------------
# AUTH: "fake.<audience>.<tenant>.<random>" bearer tokens.
# ---------------------------------------------------------------------------------------------

TOKEN = re.compile(r"^fake\.([a-z0-9-]+)\.([0-9a-f-]{36})\.[A-Za-z0-9_-]{8,}$")


def bearer(request):
    """(audience, tenant) of the request's token, or None if it has no well-formed one."""
    m = re.match(r"^Bearer (\S+)$", request.headers.get("Authorization", ""))
    if not m:
        return None, None, "missing"
    t = TOKEN.match(m.group(1))
    if not t:
        return None, None, "malformed"
    return t.group(1), t.group(2), "ok"


def issue_token(audience, tenant):
    token = f"fake.{audience}.{tenant.id}.{secrets.token_urlsafe(24)}"
    tenant.minted.append(token)
    return token


def audience_of_resource(resource):
    """The audience label of a token requested for `resource` (a scope without /.default):
    <anything>/arm -> arm, <anything>/graph -> graph, anything else keeps a label of its own
    that neither ARM nor Graph accepts."""
    trimmed = resource.rstrip("/")
    if trimmed.endswith("/arm"):
        return "arm"
    if trimmed.endswith("/graph"):
        return "graph"
    return "foreign"


# ---------------------------------------------------------------------------------------------
# ARM: routing table, then handlers.
# ---------------------------------------------------------------------------------------------

SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<rg>[^/]+)"
ACR = RG + r"/providers/Microsoft\.ContainerRegistry/registries"
MSI = RG + r"/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/(?P<name>[^/]+)"
RA = r"(?P<scope>/subscriptions/[^/]+(?:/.+?)?)/providers/Microsoft\.Authorization/roleAssignments"

# (path regex, verb, operation id, action, api-version, extra query parameters allowed)
# The api-version of an operation with an example is the example's; the others are those the
# brief pins, each one a current stable version of its resource provider.
ARM_ROUTES = [
    (RA + r"/(?P<name>[^/]+)", "GET", "roleAssignments.get", "Microsoft.Authorization/roleAssignments/read", "2022-04-01", ()),
    (RA + r"/(?P<name>[^/]+)", "PUT", "roleAssignments.create", "Microsoft.Authorization/roleAssignments/write", "2022-04-01", ()),
    (RA + r"/(?P<name>[^/]+)", "DELETE", "roleAssignments.delete", "Microsoft.Authorization/roleAssignments/delete", "2022-04-01", ()),
    (RA, "GET", "roleAssignments.listForScope", "Microsoft.Authorization/roleAssignments/read", "2022-04-01", ("$filter", "$skiptoken")),
    (SUB, "GET", "subscriptions.get", "Microsoft.Resources/subscriptions/read", "2022-12-01", ()),
    (RG, "GET", "resourceGroups.get", "Microsoft.Resources/subscriptions/resourceGroups/read", "2021-04-01", ()),
    (RG, "HEAD", "resourceGroups.checkExistence", "Microsoft.Resources/subscriptions/resourceGroups/read", "2021-04-01", ()),
    (RG, "PUT", "resourceGroups.createOrUpdate", "Microsoft.Resources/subscriptions/resourceGroups/write", "2021-04-01", ()),
    (RG, "DELETE", "resourceGroups.delete", "Microsoft.Resources/subscriptions/resourceGroups/delete", "2021-04-01", ()),
    (SUB + r"/operationresults/(?P<op>[^/]+)", "GET", "resourceGroups.deleteStatus", "Microsoft.Resources/subscriptions/operationresults/read", "2021-04-01", ()),
    (SUB + r"/providers/Microsoft\.ContainerRegistry/checkNameAvailability", "POST", "registries.checkNameAvailability",
     "Microsoft.ContainerRegistry/checkNameAvailability/read", "2023-07-01", ()),
    (SUB + r"/providers/Microsoft\.ContainerRegistry/locations/(?P<location>[^/]+)/operationResults/(?P<op>[^/]+)", "GET",
     "registries.operationStatus", "Microsoft.ContainerRegistry/locations/operationResults/read", "2023-07-01", ()),
    (ACR, "GET", "registries.list", "Microsoft.ContainerRegistry/registries/read", "2023-07-01", ("$skiptoken",)),
    (ACR + r"/(?P<name>[^/]+)", "GET", "registries.get", "Microsoft.ContainerRegistry/registries/read", "2023-07-01", ()),
    (ACR + r"/(?P<name>[^/]+)", "PUT", "registries.create", "Microsoft.ContainerRegistry/registries/write", "2023-07-01", ()),
    (ACR + r"/(?P<name>[^/]+)", "DELETE", "registries.delete", "Microsoft.ContainerRegistry/registries/delete", "2023-07-01", ()),
    (ACR + r"/(?P<name>[^/]+)/listUsages", "GET", "registries.listUsages", "Microsoft.ContainerRegistry/registries/listUsages/read", "2023-07-01", ()),
    (MSI, "GET", "userAssignedIdentities.get", "Microsoft.ManagedIdentity/userAssignedIdentities/read", "2023-01-31", ()),
    (MSI, "PUT", "userAssignedIdentities.createOrUpdate", "Microsoft.ManagedIdentity/userAssignedIdentities/write", "2023-01-31", ()),
    (MSI, "DELETE", "userAssignedIdentities.delete", "Microsoft.ManagedIdentity/userAssignedIdentities/delete", "2023-01-31", ()),
]
ARM_COMPILED = [(re.compile(f"^{p}$", re.I), verb, op, action, version, extra) for p, verb, op, action, version, extra in ARM_ROUTES]
# Writes: every PUT, PATCH and DELETE, and no POST of this table (checkNameAvailability only reads).
ARM_WRITES = {"PUT", "PATCH", "DELETE"}


def match_arm(verb, path):
    """(operation, action, api-version, extra query names, path parameters) or None."""
    for regex, method, op, action, version, extra in ARM_COMPILED:
        m = regex.match(path)
        if m and method == verb:
            return op, action, version, extra, m.groupdict()
    return None


@dataclass
class ArmCtx:
    request: web.Request
    op: str
    params: dict
    query: dict
    body: object
    subscription: Subscription
    base: str  # scheme://host of this request, for the URLs the fake hands out (LRO headers)


ARM_HANDLERS = {}


def arm(op):
    def register(fn):
        ARM_HANDLERS[op] = fn
        return fn
    return register


@arm("subscriptions.get")
def subscription_get(ctx):
    s = ctx.subscription
    return 200, {"id": f"/subscriptions/{s.id}", "authorizationSource": "RoleBased", "managedByTenants": [],
                 "subscriptionId": s.id, "tenantId": s.tenant.id, "displayName": s.name, "state": "Enabled",
                 "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                          "spendingLimit": "Off"}}, {}


def check_location(location):
    if not isinstance(location, str) or not re.match(r"^[a-z0-9]+$", location.replace(" ", "").lower()):
        raise ArmError(400, "LocationNotAvailableForResourceGroup", f"The provided location '{location}' is not available.")
    return location.replace(" ", "").lower()


@arm("resourceGroups.get")
def resource_group_get(ctx):
    rg = ctx.subscription.group(ctx.params["rg"])
    if rg.state == "Deleting":
        rg.operation.poll()  # a client may poll the group itself instead of the Location
        if rg.state == "Deleted":
            raise rg_not_found(rg.name)
    return 200, rg.json(), {}


@arm("resourceGroups.checkExistence")
def resource_group_exists(ctx):
    """204 if the group exists (what `az group exists` asks), 404 with no body if not."""
    rg = ctx.subscription.groups.get(ctx.params["rg"].lower())
    return (204 if rg is not None and rg.state != "Deleted" else 404), None, {}


@arm("resourceGroups.createOrUpdate")
def resource_group_put(ctx):
    s, name = ctx.subscription, ctx.params["rg"]
    if not RG_NAME.match(name) or name.endswith("."):
        raise ArmError(400, "InvalidResourceGroup", f"The provided resource group name '{name}' has these invalid characters.")
    location = check_location(ctx.body.get("location"))
    existing = s.groups.get(name.lower())
    if existing and existing.state == "Deleting":
        raise ArmError(409, "ResourceGroupBeingDeleted",
                       f"The resource group '{existing.name}' is in deprovisioning state and cannot perform this operation.")
    if existing:
        if existing.location != location:
            raise ArmError(409, "InvalidResourceGroupLocation",
                           f"Invalid resource group location '{location}'. The Resource group already exists in location "
                           f"'{existing.location}' in resource group '{existing.name}'. A resource group cannot change location.")
        existing.tags = dict(ctx.body.get("tags") or {})
        return 200, existing.json(), {}
    rg = ResourceGroup(s, name, location, dict(ctx.body.get("tags") or {}))
    s.groups[name.lower()] = rg
    return 201, rg.json(), {}


@arm("resourceGroups.delete")
def resource_group_delete(ctx):
    """202 Accepted with a Location to poll; the group and everything in it are gone when the
    operation completes (after `operation_polls` polls). Until then GET shows Deleting."""
    s = ctx.subscription
    rg = s.groups.get(ctx.params["rg"].lower())
    if rg is None:
        raise rg_not_found(ctx.params["rg"])
    if rg.state != "Deleting":
        rg.state = "Deleting"
        rg.operation = WORLD.start_operation(s, lambda: purge_group(rg))
    op = rg.operation
    location = f"{ctx.base}/arm/subscriptions/{s.id}/operationresults/{op.id}?api-version=2021-04-01"
    return 202, None, {"Location": location, **retry_after(s)}


def retry_after(subscription):
    seconds = subscription.faults.get("poll_retry_after")
    return {"Retry-After": str(seconds)} if seconds is not None else {}


def purge_group(rg):
    s = rg.subscription
    for registry in rg.registries.values():
        WORLD.registry_names.pop(registry.name.lower(), None)
    for identity in rg.identities.values():
        s.tenant.principals.pop(identity.principal_id, None)
    prefix = rg.id.lower()
    for key in [k for k, a in s.assignments.items() if a.scope.lower() == prefix or a.scope.lower().startswith(prefix + "/")]:
        del s.assignments[key]
    rg.state = "Deleted"
    s.groups.pop(rg.name.lower(), None)


@arm("resourceGroups.deleteStatus")
def resource_group_delete_status(ctx):
    op = WORLD.operations.get(ctx.params["op"])
    if op is None or op.subscription is not ctx.subscription:
        raise ArmError(404, "OperationNotFound", f"The operation '{ctx.params['op']}' could not be found.")
    if op.poll():
        return 200, None, {}
    location = f"{ctx.base}/arm/subscriptions/{ctx.subscription.id}/operationresults/{op.id}?api-version=2021-04-01"
    return 202, None, {"Location": location, **retry_after(ctx.subscription)}


def registry_of(ctx):
    rg = ctx.subscription.group(ctx.params["rg"])
    registry = rg.registries.get(ctx.params["name"].lower())
    if registry is None:
        raise resource_not_found("Microsoft.ContainerRegistry/registries", ctx.params["name"], rg.name)
    return rg, registry


def name_availability(name):
    if not isinstance(name, str) or not REGISTRY_NAME.match(name):
        return {"nameAvailable": False, "reason": "Invalid",
                "message": "Registry names may contain only alpha numeric characters and must be between 5 and 50 characters"}
    if name.lower() in WORLD.registry_names:
        return {"nameAvailable": False, "reason": "AlreadyExists", "message": f"The registry {name} is already in use."}
    return {"nameAvailable": True}


@arm("registries.checkNameAvailability")
def registry_check_name(ctx):
    if ctx.body.get("type") != "Microsoft.ContainerRegistry/registries":
        raise ArmError(400, "InvalidResourceType", f"The resource type '{ctx.body.get('type')}' is not supported.")
    return 200, name_availability(ctx.body.get("name")), {}


@arm("registries.list")
def registry_list(ctx):
    rg = ctx.subscription.group(ctx.params["rg"])
    return 200, arm_page(ctx, [r.json() for r in rg.registries.values()]), {}


@arm("registries.get")
def registry_get(ctx):
    return 200, registry_of(ctx)[1].json(), {}


@arm("registries.create")
def registry_put(ctx):
    """New: 201 with provisioningState Creating and an Azure-AsyncOperation header; the operation
    reports InProgress for `operation_polls` polls, then Succeeded, and only then does GET show
    Succeeded. Existing (same resource group): 200, tags updated. A name taken anywhere in the fake
    (registry names are global DNS names): 400 AlreadyInUse (the status is the fake's choice)."""
    s, name = ctx.subscription, ctx.params["name"]
    rg = s.group(ctx.params["rg"])
    if not REGISTRY_NAME.match(name):
        raise ArmError(400, "InvalidResourceName",
                       f"Resource name '{name}' is invalid: registry names may contain only alpha numeric characters and must be between 5 and 50 characters")
    sku = (ctx.body.get("sku") or {}).get("name")
    if sku not in ("Basic", "Standard", "Premium"):
        raise ArmError(400, "InvalidSku", f"The SKU '{sku}' is not valid. Valid values are Basic, Standard and Premium.")
    location = check_location(ctx.body.get("location"))
    props = ctx.body.get("properties") or {}
    existing = rg.registries.get(name.lower())
    if existing:
        if existing.location != location:
            raise ArmError(400, "LocationNotAllowed", "The location of an existing registry cannot be changed.")
        existing.tags = dict(ctx.body.get("tags") or {})
        existing.sku = sku
        existing.admin_user = bool(props.get("adminUserEnabled", existing.admin_user))
        return 200, existing.json(), {}
    if name.lower() in WORLD.registry_names:
        raise ArmError(400, "AlreadyInUse", f"The registry DNS name {name.lower()}.azurecr.io is already in use. You can check "
                       "if the name is already claimed using following API: https://docs.microsoft.com/en-us/rest/api/"
                       "containerregistry/registries/checknameavailability")
    registry = Registry(s, rg.name, name, location, dict(ctx.body.get("tags") or {}), sku,
                        bool(props.get("adminUserEnabled", False)), state="Creating")
    rg.registries[name.lower()] = registry
    WORLD.registry_names[name.lower()] = registry

    def finish():
        registry.state = "Succeeded"

    op = WORLD.start_operation(s, finish)
    status_url = (f"{ctx.base}/arm/subscriptions/{s.id}/providers/Microsoft.ContainerRegistry/locations/{location}"
                  f"/operationResults/registries-{op.id}?api-version=2023-07-01")
    return 201, registry.json(), {"Azure-AsyncOperation": status_url, **retry_after(s)}


@arm("registries.operationStatus")
def registry_operation_status(ctx):
    op = WORLD.operations.get(ctx.params["op"].removeprefix("registries-"))
    if op is None or op.subscription is not ctx.subscription:
        raise ArmError(404, "OperationNotFound", f"The operation '{ctx.params['op']}' could not be found.")
    done = op.poll()
    return 200, {"status": "Succeeded" if done else "InProgress"}, retry_after(ctx.subscription) if not done else {}


@arm("registries.delete")
def registry_delete(ctx):
    """200 and gone at once (the service may answer 202 and an operation; the fake does not)."""
    rg = ctx.subscription.group(ctx.params["rg"])
    registry = rg.registries.pop(ctx.params["name"].lower(), None)
    if registry is None:
        return 204, None, {}
    WORLD.registry_names.pop(registry.name.lower(), None)
    scope = registry.id.lower()
    for key in [k for k, a in ctx.subscription.assignments.items() if a.scope.lower() == scope]:
        del ctx.subscription.assignments[key]
    return 200, None, {}


@arm("registries.listUsages")
def registry_usages(ctx):
    """Not paged: the REST reference's RegistryUsageListResult has `value` only, no nextLink."""
    registry = registry_of(ctx)[1]
    limits = {"Basic": BASIC_STORAGE, "Standard": 100 * 1024 ** 3, "Premium": 500 * 1024 ** 3}
    webhooks = {"Basic": 2, "Standard": 10, "Premium": 500}
    return 200, {"value": [
        {"name": "Size", "limit": limits[registry.sku], "currentValue": sum(registry.images), "unit": "Bytes"},
        {"name": "Webhooks", "limit": webhooks[registry.sku], "currentValue": 0, "unit": "Count"},
    ]}, {}


def identity_of(ctx):
    rg = ctx.subscription.group(ctx.params["rg"])
    identity = rg.identities.get(ctx.params["name"].lower())
    if identity is None:
        raise resource_not_found("Microsoft.ManagedIdentity/userAssignedIdentities", ctx.params["name"], rg.name)
    return rg, identity


@arm("userAssignedIdentities.get")
def identity_get(ctx):
    return 200, identity_of(ctx)[1].json(), {}


@arm("userAssignedIdentities.createOrUpdate")
def identity_put(ctx):
    """New: 201 with a server-computed principalId and clientId; its service principal appears in
    the tenant at once (visible to role assignments only after the principal_not_found fault's
    count). Existing: 200, tags updated, ids unchanged."""
    s, name = ctx.subscription, ctx.params["name"]
    rg = s.group(ctx.params["rg"])
    if not IDENTITY_NAME.match(name):
        raise ArmError(400, "InvalidResourceName", f"Resource name '{name}' is invalid.")
    location = check_location(ctx.body.get("location"))
    existing = rg.identities.get(name.lower())
    if existing:
        existing.tags = dict(ctx.body.get("tags") or {})
        return 200, existing.json(), {}
    identity = new_identity(s, rg, name, location, dict(ctx.body.get("tags") or {}))
    return 201, identity.json(), {}


def new_identity(s, rg, name, location, tags):
    identity = Identity(s, rg.name, name, location, tags)
    sp = s.tenant.add_principal(ServicePrincipal(str(uuid.uuid4()), name, "ManagedIdentity"))
    identity.principal_id, identity.client_id = sp.id, sp.app_id
    rg.identities[name.lower()] = identity
    return identity


@arm("userAssignedIdentities.delete")
def identity_delete(ctx):
    rg = ctx.subscription.group(ctx.params["rg"])
    identity = rg.identities.pop(ctx.params["name"].lower(), None)
    if identity is None:
        return 204, None, {}
    ctx.subscription.tenant.principals.pop(identity.principal_id, None)
    return 200, None, {}


def scope_exists(s, scope):
    """Raises ARM's 404 unless `scope` is this subscription, one of its groups or a resource in one."""
    m = re.match(r"^/subscriptions/([^/]+)(?:/resourcegroups/([^/]+)(?:/providers/([^/]+/[^/]+)/([^/]+))?)?$", scope, re.I)
    if not m or m.group(1).lower() != s.id:
        raise ArmError(400, "InvalidScope", f"The scope '{scope}' is not valid for this subscription.")
    if m.group(2):
        rg = s.group(m.group(2))
        if m.group(3):
            kind, name = m.group(3).lower(), m.group(4).lower()
            found = (rg.registries if kind == "microsoft.containerregistry/registries" else
                     rg.identities if kind == "microsoft.managedidentity/userassignedidentities" else {}).get(name)
            if found is None:
                raise resource_not_found(m.group(3), m.group(4), rg.name)


def assignment_of(ctx):
    return ctx.subscription.assignments.get(f"{ctx.params['scope']}/providers/Microsoft.Authorization/roleAssignments/{ctx.params['name']}".lower())


@arm("roleAssignments.get")
def role_assignment_get(ctx):
    found = assignment_of(ctx)
    if found is None:
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{ctx.params['name']}' is not found.")
    return 200, found.json(), {}


@arm("roleAssignments.create")
def role_assignment_put(ctx):
    """201 for a new assignment; 200 when this name already holds the same role for the same
    principal (a re-run); 409 RoleAssignmentExists when another name does (the name is the
    caller's: pushpool derives it deterministically); 400 PrincipalNotFound while the directory has
    not replicated the principal (principal_not_found fault), even though the request names its
    principalType (Azure says principalType avoids the replication lookup; the fault models the
    case where it still happens); 400 UnmatchedPrincipalType when principalType is not the
    principal's type."""
    s, scope, name = ctx.subscription, ctx.params["scope"], ctx.params["name"]
    scope_exists(s, scope)
    if not GUID.match(name):
        raise ArmError(400, "InvalidRoleAssignmentId",
                       f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.")
    props = ctx.body.get("properties") or {}
    role_id = props.get("roleDefinitionId") or ""
    m = re.match(r"^(?:/subscriptions/([^/]+))?/providers/Microsoft\.Authorization/roleDefinitions/([^/]+)$", role_id, re.I)
    if not m or m.group(2).lower() not in ROLES or (m.group(1) and m.group(1).lower() != s.id):
        raise ArmError(400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{role_id.rsplit('/', 1)[-1]}' does not exist.")
    principal_id = (props.get("principalId") or "").lower()
    existing = assignment_of(ctx)
    if existing:
        if existing.role == m.group(2).lower() and existing.principal_id == principal_id:
            return 200, existing.json(), {}
        raise ArmError(400, "RoleAssignmentUpdateNotPermitted",
                       "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
    for other in s.assignments.values():
        if other.scope.lower() == scope.lower() and other.role == m.group(2).lower() and other.principal_id == principal_id:
            raise ArmError(409, "RoleAssignmentExists", f"The role assignment already exists. The ID of the existing role assignment is {other.name}.")
    tenant = s.tenant
    if not tenant.principal_visible(principal_id):
        raise ArmError(400, "PrincipalNotFound",
                       f"Principal {principal_id.replace('-', '')} does not exist in the directory {tenant.id}. Check that you have "
                       "the correct principal ID. If you are creating this principal and then immediately assigning a role, this "
                       "error might be related to a replication delay. In this case, set the role assignment principalType "
                       "property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype")
    principal_type = props.get("principalType") or "ServicePrincipal"
    if principal_type != "ServicePrincipal":
        raise ArmError(400, "UnmatchedPrincipalType",
                       f"The PrincipalId '{principal_id.replace('-', '')}' has type 'ServicePrincipal' , which is different from "
                       f"specified PrincipalType '{principal_type}'.")
    assignment = RoleAssignment(scope, name, role_id, principal_id, principal_type)
    s.assignments[assignment.id.lower()] = assignment
    return 201, assignment.json(), {}


@arm("roleAssignments.delete")
def role_assignment_delete(ctx):
    found = assignment_of(ctx)
    if found is None:
        return 204, None, {}
    del ctx.subscription.assignments[found.id.lower()]
    return 200, found.json(), {}


@arm("roleAssignments.listForScope")
def role_assignment_list(ctx):
    """Assignments at, above and below the scope (as the service lists them), optionally
    `$filter=principalId eq '<id>'` (the only filter the fake parses)."""
    scope = ctx.params["scope"].lower()
    principal = None
    if "$filter" in ctx.query:
        m = re.match(r"^principalId eq '([0-9a-fA-F-]{36})'$", ctx.query["$filter"])
        if not m:
            raise ArmError(400, "UnsupportedQuery", f"The filter '{ctx.query['$filter']}' is not supported by the fake "
                           "(only principalId eq '<id>').")
        principal = m.group(1).lower()
    out = []
    for a in ctx.subscription.assignments.values():
        at = a.scope.lower()
        related = at == scope or scope.startswith(at + "/") or at.startswith(scope + "/")
        if related and (principal is None or a.principal_id == principal):
            out.append(a.json())
    return 200, arm_page(ctx, out), {}


def throttled(owner, action):
    """A `throttle` fault: {"<regex over the action>": N} answers the next N matching calls 429."""
    for pattern, left in (owner.faults.get("throttle") or {}).items():
        if left > 0 and re.search(pattern, action):
            owner.faults["throttle"][pattern] = left - 1
            return True
    return False


def base_of(request):
    return f"{request.scheme}://{request.host}"


def record_violation(service, request, operation, direction, problems, owner=None):
    """owner: the subscription (ARM) or tenant (Graph) id the request was about, when known."""
    entry = {"service": service, "method": request.method, "path": request.path, "operation": operation,
             "direction": direction, "problems": problems, "owner": owner}
    WORLD.violations.append(entry)
    log.warning("CONTRACT VIOLATION (%s) %s %s: %s", direction, request.method, request.path, "; ".join(problems))


async def read_json(request):
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return ...


async def arm_api(request):
    """Every ARM request: authenticate, match an operation, check api-version, query and body,
    run the handler, check the answer, record the call on its subscription."""
    path = "/" + request.match_info["tail"]
    matched = match_arm(request.method, path)
    op, action = (matched[0], matched[1]) if matched else (None, f"{request.method} {path}")
    call = {"service": "arm", "method": request.method, "path": request.path, "action": action,
            "write": request.method in ARM_WRITES, "status": 0}
    sub_id = re.match(r"^/subscriptions/([^/]+)", path)
    subscription = WORLD.subscriptions.get(sub_id.group(1).lower()) if sub_id else None
    owner = sub_id.group(1).lower() if sub_id else None
    if subscription is not None:
        subscription.calls.append(call)
    try:
        audience, tenant, how = bearer(request)
        if how == "missing":
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        if how == "malformed":
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if audience != "arm":
            raise ArmError(401, "InvalidAuthenticationTokenAudience",
                           f"The access token has been obtained for wrong audience or resource '{audience}'. It should exactly "
                           "match with one of the allowed audiences for Azure Resource Manager (this cloud's "
                           "endpoint_active_directory_resource_id).")
        if matched is None:
            problems = [f"no modelled ARM operation matches {request.method} {path}"]
            record_violation("arm", request, None, "request", problems, owner)
            raise contract_arm(problems)
        op, action, version, extra, params = matched
        problems = []
        query = {}
        for name in set(request.rel_url.query.keys()):
            values = request.rel_url.query.getall(name)
            if name != "api-version" and name not in extra:
                problems.append(f"query parameter {name!r} is not one of {op}'s")
            elif len(values) > 1:
                problems.append(f"query parameter {name!r} repeated")
            query[name] = values[0]
        if "api-version" not in query:
            record_violation("arm", request, op, "request", ["api-version missing"], owner)
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if query["api-version"] != version:
            problems.append(f"api-version {query['api-version']}, but {op} is pinned to {version}"
                            + (" (the official example's)" if op in EXAMPLES else ""))
        body = await read_json(request)
        if body is ...:
            problems.append("request body is not JSON")
        elif request.method in ("PUT", "POST"):
            if op in EXAMPLES:
                problems += check_arm_request(op, body if body is not None else {})
            elif op in REFERENCE_SHAPES:
                problems += [p + " (the fake's reading of the REST reference)" for p in
                             shape_problems(body, REFERENCE_SHAPES[op]["request"]) if body is not None]
        elif body is not None:
            problems.append(f"{request.method} takes no body")
        if problems:
            record_violation("arm", request, op, "request", problems, owner)
            raise contract_arm(problems)
        if subscription is None:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub_id.group(1) if sub_id else path}' could not be found.")
        if tenant != subscription.tenant.id:
            raise ArmError(401, "InvalidAuthenticationTokenTenant",
                           f"The access token is from the wrong issuer. It must match the tenant associated with this "
                           f"subscription ({subscription.tenant.id}). Please use the authority (URL) for that tenant.")
        if throttled(subscription, action):
            seconds = str(subscription.faults.get("retry_after", 1))
            kind = "write" if call["write"] else "read"
            raise ArmError(429, "SubscriptionRequestsThrottled",
                           f"Number of '{kind}' requests for subscription '{subscription.id}' actor '{tenant}' exceeded. "
                           f"Please try again after '{seconds}' seconds after additional tokens are available. "
                           "Refer to https://aka.ms/arm-throttling for additional information.",
                           {"Retry-After": seconds})
        ctx = ArmCtx(request, op, params, query, body or {}, subscription, base_of(request))
        status, result, headers = ARM_HANDLERS[op](ctx)
        if result is not None and 200 <= status < 300:
            if op.endswith(("createOrUpdate", ".create", ".get")) and op.split(".")[0] in {e.split(".")[0] for e in EXAMPLES}:
                example_op = next(e for e in EXAMPLES if e.split(".")[0] == op.split(".")[0])
                answer_problems = check_arm_response(example_op, status, result)
            elif op in ("registries.list", "roleAssignments.listForScope"):
                example_op = "registries.create" if op == "registries.list" else "roleAssignments.create"
                answer_problems = [p for item in result["value"] for p in check_arm_response(example_op, 200, item)]
            elif op in REFERENCE_SHAPES:
                answer_problems = shape_problems(result, REFERENCE_SHAPES[op]["response"])
            else:
                answer_problems = []
            if answer_problems:
                record_violation("arm", request, op, "response", answer_problems, owner)
        call["status"] = status
        if result is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(result, status=status, headers=headers)
    except ArmError as e:
        call["status"] = e.status
        return e.response()
    finally:
        WORLD.calls.append({**call, "subscription": subscription.id if subscription else None})
        log.info("%s %s -> %s (%s)", request.method, request.path_qs, call["status"], op)


# ---------------------------------------------------------------------------------------------
# GRAPH: applications, service principals, addPassword/removePassword. Per tenant (the token's).
# ---------------------------------------------------------------------------------------------

def parse_filter(text, allowed):
    """(property, value) of `<property> eq '<value>'` ('' escapes a quote), for `allowed` properties."""
    m = re.match(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", text or "")
    if not m or m.group(1) not in allowed:
        raise GraphError(400, "Request_UnsupportedQuery",
                         f"Unsupported or invalid query filter clause specified (the fake parses only "
                         f"{' or '.join(p + ' eq ' for p in allowed)}'<value>').")
    return m.group(1), m.group(2).replace("''", "'")


def graph_collection(entity_set, items):
    return {"@odata.context": f"{GRAPH_CONTEXT}#{entity_set}", "value": items}


def app_of(tenant, key):
    app = tenant.applications.get(key)
    if app is None:
        raise graph_not_found(key)
    return app


# (regex over the path after /graph/v1.0, verb, action, request kind or None, response type, collection?)
GRAPH_ROUTES = [
    (r"/applications", "GET", "applications.list", None, "application", True),
    (r"/applications", "POST", "applications.create", ("entity", "application"), "application", False),
    (r"/applications/(?P<id>[^/()]+)", "GET", "applications.get", None, "application", False),
    (r"/applications/(?P<id>[^/()]+)", "PATCH", "applications.update", ("entity", "application"), None, False),
    (r"/applications/(?P<id>[^/()]+)", "DELETE", "applications.delete", None, None, False),
    (r"/applications/(?P<id>[^/()]+)/addPassword", "POST", "applications.addPassword",
     ("action", "addPassword", "application"), "passwordCredential", False),
    (r"/applications/(?P<id>[^/()]+)/removePassword", "POST", "applications.removePassword",
     ("reference", {"keyId": "Edm.Guid"}), None, False),
    (r"/servicePrincipals", "GET", "servicePrincipals.list", None, "servicePrincipal", True),
    (r"/servicePrincipals", "POST", "servicePrincipals.create", ("entity", "servicePrincipal"), "servicePrincipal", False),
    (r"/servicePrincipals/(?P<id>[^/()]+)", "GET", "servicePrincipals.get", None, "servicePrincipal", False),
    (r"/servicePrincipals/(?P<id>[^/()]+)", "DELETE", "servicePrincipals.delete", None, None, False),
]
GRAPH_COMPILED = [(re.compile(f"^{p}$"), verb, action, kind, rtype, coll) for p, verb, action, kind, rtype, coll in GRAPH_ROUTES]
GRAPH_QUERY = {"$filter", "$select", "$top", "$count", "$skiptoken"}


def graph_applications_list(tenant, query, body, params):
    apps = list(tenant.applications.values())
    if "$filter" not in query:
        return 200, Listing("applications", [(a.json(), True) for a in apps])
    prop, value = parse_filter(query["$filter"], ("displayName", "appId"))
    return 200, Listing("applications", [(a.json(), (a.display_name if prop == "displayName" else a.app_id) == value) for a in apps])


def graph_applications_create(tenant, query, body, params):
    if not body.get("displayName"):
        raise GraphError(400, "Request_BadRequest", "A value is required for property 'displayName' of resource 'Application'.")
    app = Application(tenant, body["displayName"])
    app.properties = {k: v for k, v in body.items() if k != "displayName" and k != "passwordCredentials"}
    tenant.applications[app.id] = app
    tenant.created_by_graph(app, app.app_id)
    out = app.json()
    out["@odata.context"] = f"{GRAPH_CONTEXT}#applications/$entity"
    return 201, out


def graph_applications_get(tenant, query, body, params):
    return 200, {"@odata.context": f"{GRAPH_CONTEXT}#applications/$entity", **app_of(tenant, params["id"]).json()}


def graph_applications_update(tenant, query, body, params):
    app = app_of(tenant, params["id"])
    if "passwordCredentials" in body:
        raise GraphError(400, "Request_BadRequest", "passwordCredentials cannot be updated with PATCH: use addPassword and removePassword.")
    if "displayName" in body:
        app.display_name = body["displayName"]
    app.properties.update({k: v for k, v in body.items() if k != "displayName"})
    return 204, None


def graph_applications_delete(tenant, query, body, params):
    """Deletes the application and its service principal (as the home tenant does)."""
    app = app_of(tenant, params["id"])
    del tenant.applications[app.id]
    for sp_id in [s.id for s in tenant.principals.values() if s.app_id == app.app_id]:
        del tenant.principals[sp_id]
    return 204, None


def graph_add_password(tenant, query, body, params):
    """A new client secret: keyId, secretText (returned once), hint (its first 3 characters).
    endDateTime defaults to two years after startDateTime (Graph's default). Past the tenant's
    secret limit: 400 Request_BadRequest, "The size of the object has exceeded its limit" (what
    Entra answers for an application object that grew too large; see Tenant.secret_limit)."""
    app = app_of(tenant, params["id"])
    cred = body.get("passwordCredential") or {}
    if len(app.passwords) >= tenant.secret_limit():
        raise GraphError(400, "Request_BadRequest",
                         "The size of the object has exceeded its limit. Please reduce the number of values and retry your request.")
    start = parse_stamp(cred["startDateTime"]) if cred.get("startDateTime") else now()
    end = parse_stamp(cred["endDateTime"]) if cred.get("endDateTime") else start + timedelta(days=730)
    if end <= start:
        raise GraphError(400, "InvalidKeyCredentialDates", "Key credential end date is invalid: it must be after its start date.")
    password = Password(str(uuid.uuid4()), cred.get("displayName") or "", new_secret_text(), start, end)
    app.passwords.append(password)
    tenant.minted.append(password.secret_text)
    return 200, {"@odata.context": f"{GRAPH_CONTEXT}#microsoft.graph.passwordCredential", **password.json(with_secret=True)}


def graph_remove_password(tenant, query, body, params):
    app = app_of(tenant, params["id"])
    key_id = (body.get("keyId") or "").lower()
    found = next((p for p in app.passwords if p.key_id == key_id), None)
    if found is None:
        raise GraphError(400, "Request_BadRequest", f"No password credential found with keyId {key_id}.")
    app.passwords.remove(found)
    return 204, None


def graph_principals_list(tenant, query, body, params):
    principals = list(tenant.principals.values())
    if "$filter" not in query:
        return 200, Listing("servicePrincipals", [(s.json(tenant), True) for s in principals])
    _, value = parse_filter(query["$filter"], ("appId",))
    return 200, Listing("servicePrincipals", [(s.json(tenant), s.app_id == value) for s in principals])


def graph_principals_create(tenant, query, body, params):
    """400 "does not reference a valid application object" for an appId no application has, and,
    with the `app_not_replicated` fault, for one just created, until the directory has replicated it
    (what the Azure CLI retries for minutes after `az ad app create`)."""
    app_id = body.get("appId") or ""
    app = tenant.app_by_app_id(app_id)
    if app is None or not tenant.replicated(tenant.unbacked, app_id):
        raise GraphError(400, "Request_BadRequest",
                         f"The appId '{app_id}' of the service principal does not reference a valid application object.")
    if any(s.app_id == app_id for s in tenant.principals.values()):
        raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue",
                         "The service principal cannot be created, updated, or restored because the service principal name "
                         f"{app_id} is already in use.")
    sp = tenant.add_principal(ServicePrincipal(app_id, app.display_name, tags=list(body.get("tags") or [])))
    tenant.created_by_graph(sp)
    return 201, {"@odata.context": f"{GRAPH_CONTEXT}#servicePrincipals/$entity", **sp.json(tenant)}


def graph_principals_get(tenant, query, body, params):
    sp = tenant.principals.get(params["id"])
    if sp is None:
        raise graph_not_found(params["id"])
    return 200, {"@odata.context": f"{GRAPH_CONTEXT}#servicePrincipals/$entity", **sp.json(tenant)}


def graph_principals_delete(tenant, query, body, params):
    if tenant.principals.pop(params["id"], None) is None:
        raise graph_not_found(params["id"])
    return 204, None


GRAPH_HANDLERS = {
    "applications.list": graph_applications_list, "applications.create": graph_applications_create,
    "applications.get": graph_applications_get, "applications.update": graph_applications_update,
    "applications.delete": graph_applications_delete, "applications.addPassword": graph_add_password,
    "applications.removePassword": graph_remove_password, "servicePrincipals.list": graph_principals_list,
    "servicePrincipals.create": graph_principals_create, "servicePrincipals.get": graph_principals_get,
    "servicePrincipals.delete": graph_principals_delete,
}


async def graph_api(request):
    """Every Graph request: authenticate (the token names the tenant), match, check the body
    against the CSDL, run the handler, check the answer, record the call on the tenant."""
    tail = "/" + request.match_info["tail"]
    version, _, path = tail[1:].partition("/")
    path = "/" + path
    matched = next(((action, kind, rtype, coll, m.groupdict()) for regex, verb, action, kind, rtype, coll in GRAPH_COMPILED
                    if verb == request.method and (m := regex.match(path))), None) if version == "v1.0" else None
    action = matched[0] if matched else f"{request.method} {tail}"
    call = {"service": "graph", "method": request.method, "path": request.path, "action": action,
            "write": request.method in ("POST", "PATCH", "DELETE", "PUT"), "status": 0}
    tenant = None
    try:
        audience, tenant_id, how = bearer(request)
        if how != "ok":
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty." if how == "missing" else "IDX14100: JWT is not well formed.")
        tenant = WORLD.tenants.get(tenant_id)
        if tenant is not None:
            tenant.calls.append(call)
        if audience != "graph":
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        if tenant is None:
            raise GraphError(401, "InvalidAuthenticationToken", f"Access token validation failure: tenant {tenant_id} does not exist.")
        if matched is None:
            problems = [f"no modelled Graph operation matches {request.method} {tail}"]
            record_violation("graph", request, None, "request", problems, tenant.id)
            raise contract_graph(problems)
        action, kind, rtype, collection, params = matched
        problems, query = [], {}
        for name in set(request.rel_url.query.keys()):
            if name not in GRAPH_QUERY or (name == "$filter" and not collection):
                problems.append(f"query parameter {name!r} is not one the fake models for {action}")
            query[name] = request.rel_url.query.getall(name)[0]
        body = await read_json(request)
        if body is ...:
            problems.append("request body is not JSON")
        elif kind is not None:
            problems += check_graph_request(kind, body if body is not None else {})
        elif body is not None:
            problems.append(f"{request.method} {action} takes no body")
        if problems:
            record_violation("graph", request, action, "request", problems, tenant.id)
            raise contract_graph(problems)
        if throttled(tenant, action):
            seconds = str(tenant.faults.get("retry_after", 1))
            raise GraphError(429, "TooManyRequests", "Too many requests, please retry later.", {"Retry-After": seconds})
        if "id" in params and not tenant.replicated(tenant.lagging, params["id"]):
            raise graph_not_found(params["id"])  # created moments ago: not yet on every replica
        status, result = GRAPH_HANDLERS[action](tenant, query, body or {}, params)
        if isinstance(result, Listing):
            result = graph_page(result, tenant, base_of(request), request.path, query)
        if result is not None and rtype:
            answer_problems = check_graph_response(rtype, result, collection)
            if answer_problems:
                record_violation("graph", request, action, "response", answer_problems, tenant.id)
        call["status"] = status
        if result is None:
            return web.Response(status=status)
        return web.json_response(result, status=status)
    except GraphError as e:
        call["status"] = e.status
        return e.response()
    finally:
        WORLD.calls.append({**call, "tenant": tenant.id if tenant else None})
        log.info("%s %s -> %s (%s)", request.method, request.path, call["status"], action)


# ---------------------------------------------------------------------------------------------
# LOGIN: the client-credentials grant, which is how pushpool checks that a block's secret works.
# ---------------------------------------------------------------------------------------------

def aad_error(status, error, code, description):
    return web.json_response({"error": error, "error_description": f"AADSTS{code}: {description}",
                              "error_codes": [code], "timestamp": now().strftime("%Y-%m-%d %H:%M:%SZ"),
                              "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}, status=status)


async def login_token(request):
    """POST /login/{tenant}/oauth2/v2.0/token, form client_id, client_secret, scope,
    grant_type=client_credentials: a token only for a live, unexpired secret of an application of
    that tenant that has a service principal there. Entra's errors otherwise (AADSTS codes)."""
    tenant = WORLD.tenants.get(request.match_info["tenant"].lower())
    call = {"service": "login", "method": request.method, "path": request.path, "action": "oauth2.token",
            "write": False, "status": 0}
    if tenant is not None:
        tenant.calls.append(call)
    form = {k: v[0] for k, v in parse_qs((await request.read()).decode("utf-8", "replace")).items()}
    response = login_answer(tenant, request.match_info["tenant"], form)
    call["status"] = response.status
    WORLD.calls.append({**call, "tenant": tenant.id if tenant else None})
    log.info("POST %s -> %s", request.path, response.status)
    return response


def login_answer(tenant, tenant_key, form):
    if tenant is None:
        return aad_error(400, "invalid_request", 90002, f"Tenant '{tenant_key}' not found. Check to make sure you have the "
                         "correct tenant ID and are signing into the correct cloud.")
    if form.get("grant_type") != "client_credentials":
        return aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
    scope = form.get("scope") or ""
    if not scope.endswith("/.default"):
        return aad_error(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. Client "
                         "credential flows must have a scope value with /.default suffixed to the resource identifier.")
    app = tenant.app_by_app_id(form.get("client_id") or "")
    if app is None:
        return aad_error(400, "unauthorized_client", 700016, f"Application with identifier '{form.get('client_id')}' was not "
                         f"found in the directory '{tenant.id}'.")
    if not any(s.app_id == app.app_id for s in tenant.principals.values()):
        return aad_error(401, "invalid_client", 7000229, f"The client application {app.app_id} is missing service principal "
                         f"in the tenant {tenant.id}.")
    given = form.get("client_secret") or ""
    match = next((p for p in app.passwords if secrets.compare_digest(p.secret_text, given)), None)
    if match is None:
        return aad_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the "
                         "request is the client secret value, not the client secret ID, for a secret added to app "
                         f"'{app.app_id}'.")
    if not match.live():
        return aad_error(401, "invalid_client", 7000222, f"The provided client secret keys for app '{app.app_id}' are expired.")
    audience = audience_of_resource(scope[: -len("/.default")])
    return web.json_response({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                              "access_token": issue_token(audience, tenant)})


# ---------------------------------------------------------------------------------------------
# ACR: the AAD token exchange (an ARM access token for a registry refresh token).
# ---------------------------------------------------------------------------------------------

async def acr_exchange(request):
    """POST /acr/{registry}/oauth2/exchange, form grant_type=access_token, service=<loginServer>,
    tenant, access_token=<an ARM token of the registry's tenant> -> {"refresh_token"}. The path
    segment may be the registry's name or its login server. Errors in the registry's envelope,
    {"errors": [{"code", "message"}]}."""
    key = request.match_info["registry"].lower().removesuffix(".azurecr.io")
    registry = WORLD.registry_names.get(key)
    subscription = registry.subscription if registry else None
    call = {"service": "acr", "method": request.method, "path": request.path, "action": "oauth2.exchange",
            "write": False, "status": 0}
    if subscription is not None:
        subscription.calls.append(call)
    form = {k: v[0] for k, v in parse_qs((await request.read()).decode("utf-8", "replace")).items()}

    def error(status, code, message):
        call["status"] = status
        return web.json_response({"errors": [{"code": code, "message": message}]}, status=status)

    try:
        if registry is None or registry.state != "Succeeded":
            return error(404, "NAME_UNKNOWN", f"registry {key} not found")
        if form.get("grant_type") != "access_token":
            return error(400, "UNSUPPORTED", f"grant_type {form.get('grant_type')!r} is not supported (access_token expected)")
        if form.get("service") != registry.login_server:
            return error(400, "DENIED", f"service {form.get('service')!r} does not match the registry ({registry.login_server})")
        t = TOKEN.match(form.get("access_token") or "")
        if not t or t.group(1) != "arm":
            return error(401, "UNAUTHORIZED", "the access token is not an Azure Resource Manager token")
        if t.group(2) != subscription.tenant.id or (form.get("tenant") or "").lower() != subscription.tenant.id:
            return error(401, "UNAUTHORIZED", "the access token is not from the registry's tenant")
        refresh = f"fake-acr-refresh.{secrets.token_urlsafe(32)}"
        subscription.tenant.minted.append(refresh)
        call["status"] = 200
        return web.json_response({"refresh_token": refresh})
    finally:
        WORLD.calls.append({**call, "subscription": subscription.id if subscription else None})
        log.info("POST %s -> %s", request.path, call["status"])


# ---------------------------------------------------------------------------------------------
# ADMIN: the tests' own API (not Azure's; not contract-checked).
#   POST /admin/tenants {"tenantId"?, "defaultDomain"?}                        -> {"tenantId", "defaultDomain"}
#   POST /admin/subscriptions {"subscriptionId"?, "displayName", "tenantId"?}  -> {"subscriptionId", "displayName", "tenantId"}
#        (a new tenant unless tenantId names one; ids are lower-case GUIDs, random when omitted)
#   GET  /admin/subscriptions/{s}/state   resource groups (registries, identities), role assignments, faults
#   GET  /admin/tenants/{t}/state         applications (secrets by keyId and hint, never their text), principals
#   GET  /admin/subscriptions/{s}/calls | /admin/tenants/{t}/calls
#        -> [{"service": arm|graph|acr|login, "method", "path", "action", "write", "status"}]
#   PUT  /admin/subscriptions/{s}/faults {...} (replaces; {} clears): operation_polls N (default 2),
#        throttle {"<regex over the action>": N}, retry_after S (default 1), poll_retry_after S,
#        principal_not_found K (passed on to the subscription's tenant), page_size N (ARM lists; default 2)
#   PUT  /admin/tenants/{t}/faults {...}: principal_not_found K (each principal created from now on is
#        unknown to the next K role-assignment writes naming it), throttle, retry_after, secret_limit N,
#        page_size N (Graph lists without $top; default 2), app_not_replicated K (each application created
#        through Graph from now on is unknown to the next K servicePrincipals.create naming its appId: 400),
#        object_not_found K (each application and service principal created through Graph from now on
#        answers the next K requests naming its id 404 Request_ResourceNotFound)
#   POST /admin/subscriptions/{s}/resourceGroups {"name", "location"?, "tags"?}
#   POST /admin/subscriptions/{s}/resourceGroups/{rg}/registries {"name", "tags"?, "location"?, "sku"?}
#   POST /admin/subscriptions/{s}/resourceGroups/{rg}/registries/{name}/images {"count", "bytes"?}
#   POST /admin/subscriptions/{s}/resourceGroups/{rg}/identities {"name", "tags"?, "location"?}
#   POST /admin/subscriptions/{s}/roleAssignments {"scope", "roleDefinitionId", "principalId", "principalType"?, "name"?}
#   POST /admin/tenants/{t}/applications {"displayName", "tags"?, "notes"?, "secrets"?: N, "servicePrincipal"?: bool}
#        -> {"id", "appId", "servicePrincipalId"?, "secrets": [{"keyId", "secretText"}]}
#   POST /admin/tenants/{t}/applications/{id}/secrets/{keyId}/expire     (endDateTime one day ago)
#   DELETE /admin/tenants/{t}/applications/{id}/secrets/{keyId}
#   GET  /admin/tenants/{t}/minted  -> every secret text, access token and ACR refresh token issued in
#        that tenant (for the tests' leak checks)
#   GET  /admin/violations  -> [{"service", "method", "path", "operation", "direction", "problems", "owner"}]
#        (owner: the subscription or tenant id the request was about)
#   GET  /admin/calls
# ---------------------------------------------------------------------------------------------

async def admin_json(request):
    raw = await request.read()
    return json.loads(raw) if raw else {}


def admin_subscription(request):
    s = WORLD.subscriptions.get(request.match_info["sub"].lower())
    if s is None:
        raise web.HTTPNotFound(text=f"no subscription {request.match_info['sub']}")
    return s


def admin_tenant(request):
    t = WORLD.tenants.get(request.match_info["tenant"].lower())
    if t is None:
        raise web.HTTPNotFound(text=f"no tenant {request.match_info['tenant']}")
    return t


def admin_rg(request):
    rg = admin_subscription(request).groups.get(request.match_info["rg"].lower())
    if rg is None:
        raise web.HTTPNotFound(text="no such resource group")
    return rg


async def admin_create_tenant(request):
    spec = await admin_json(request)
    if spec.get("tenantId") and spec["tenantId"].lower() in WORLD.tenants:
        raise web.HTTPConflict(text="tenant exists")
    t = WORLD.tenant(spec.get("tenantId"), spec.get("defaultDomain"))
    return web.json_response({"tenantId": t.id, "defaultDomain": t.domain})


async def admin_create_subscription(request):
    spec = await admin_json(request)
    sub_id = (spec.get("subscriptionId") or str(uuid.uuid4())).lower()
    if not GUID.match(sub_id):
        raise web.HTTPBadRequest(text="a subscription id is a GUID")
    if sub_id in WORLD.subscriptions:
        raise web.HTTPConflict(text="subscription exists")
    tenant = WORLD.tenant(spec.get("tenantId"))
    s = Subscription(sub_id, spec.get("displayName") or f"Pushpool test {sub_id[:8]}", tenant)
    WORLD.subscriptions[sub_id] = s
    return web.json_response({"subscriptionId": s.id, "displayName": s.name, "tenantId": tenant.id})


async def admin_subscription_state(request):
    return web.json_response(admin_subscription(request).state())


async def admin_tenant_state(request):
    return web.json_response(admin_tenant(request).state())


async def admin_subscription_calls(request):
    return web.json_response(admin_subscription(request).calls)


async def admin_tenant_calls(request):
    return web.json_response(admin_tenant(request).calls)


async def admin_subscription_faults(request):
    s = admin_subscription(request)
    s.faults = await admin_json(request)
    if "principal_not_found" in s.faults:
        s.tenant.faults["principal_not_found"] = s.faults["principal_not_found"]
    return web.json_response(s.faults)


async def admin_tenant_faults(request):
    t = admin_tenant(request)
    t.faults = await admin_json(request)
    t.unreplicated, t.unbacked, t.lagging = {}, {}, {}
    return web.json_response(t.faults)


async def admin_seed_rg(request):
    s, spec = admin_subscription(request), await admin_json(request)
    rg = ResourceGroup(s, spec["name"], spec.get("location", "eastus"), dict(spec.get("tags") or {}))
    s.groups[rg.name.lower()] = rg
    return web.json_response(rg.json())


async def admin_seed_registry(request):
    rg, spec = admin_rg(request), await admin_json(request)
    if spec["name"].lower() in WORLD.registry_names:
        raise web.HTTPConflict(text="registry name taken")
    registry = Registry(rg.subscription, rg.name, spec["name"], spec.get("location", rg.location),
                        dict(spec.get("tags") or {}), spec.get("sku", "Basic"))
    rg.registries[registry.name.lower()] = registry
    WORLD.registry_names[registry.name.lower()] = registry
    return web.json_response(registry.json())


async def admin_seed_images(request):
    rg, spec = admin_rg(request), await admin_json(request)
    registry = rg.registries.get(request.match_info["name"].lower())
    if registry is None:
        raise web.HTTPNotFound(text="no such registry")
    count = int(spec.get("count", 1))
    each = int(spec.get("bytes", 50_000_000 * count)) // max(count, 1)
    registry.images.extend([each] * count)
    return web.json_response({"images": len(registry.images), "bytes": sum(registry.images)})


async def admin_seed_identity(request):
    rg, spec = admin_rg(request), await admin_json(request)
    identity = new_identity(rg.subscription, rg, spec["name"], spec.get("location", rg.location), dict(spec.get("tags") or {}))
    rg.subscription.tenant.unreplicated.pop(identity.principal_id, None)
    return web.json_response(identity.json())


async def admin_seed_assignment(request):
    s, spec = admin_subscription(request), await admin_json(request)
    role_id = spec["roleDefinitionId"]
    if "/" not in role_id:
        role_id = f"/subscriptions/{s.id}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"
    a = RoleAssignment(spec["scope"], spec.get("name") or str(uuid.uuid4()), role_id, spec["principalId"].lower(),
                       spec.get("principalType", "ServicePrincipal"))
    s.assignments[a.id.lower()] = a
    return web.json_response(a.json())


async def admin_seed_application(request):
    t, spec = admin_tenant(request), await admin_json(request)
    app = Application(t, spec["displayName"])
    app.properties = {k: spec[k] for k in ("tags", "notes") if k in spec}
    t.applications[app.id] = app
    out = {"id": app.id, "appId": app.app_id, "secrets": []}
    for i in range(int(spec.get("secrets", 0))):
        p = Password(str(uuid.uuid4()), f"seeded-{i}", new_secret_text(), now() - timedelta(minutes=1), now() + timedelta(days=365))
        app.passwords.append(p)
        t.minted.append(p.secret_text)
        out["secrets"].append({"keyId": p.key_id, "secretText": p.secret_text})
    if spec.get("servicePrincipal"):
        sp = ServicePrincipal(app.app_id, app.display_name)
        t.principals[sp.id] = sp
        out["servicePrincipalId"] = sp.id
    return web.json_response(out)


def admin_password(request):
    app = admin_tenant(request).applications.get(request.match_info["app"])
    found = app and next((p for p in app.passwords if p.key_id == request.match_info["key"].lower()), None)
    if found is None:
        raise web.HTTPNotFound(text="no such application secret")
    return app, found


async def admin_expire_secret(request):
    _, password = admin_password(request)
    password.start = min(password.start, now() - timedelta(days=2))
    password.end = now() - timedelta(days=1)
    return web.json_response({"expired": True})


async def admin_remove_secret(request):
    app, password = admin_password(request)
    app.passwords.remove(password)
    return web.json_response({"removed": True})


async def admin_minted(request):
    return web.json_response(admin_tenant(request).minted)


async def admin_violations(_request):
    return web.json_response(WORLD.violations)


async def admin_calls(_request):
    return web.json_response(WORLD.calls)


async def health(_request):
    return web.Response(text="ok")


def app():
    application = web.Application(client_max_size=16 << 20)
    application.add_routes([
        web.get("/health", health),
        web.post("/admin/tenants", admin_create_tenant),
        web.post("/admin/subscriptions", admin_create_subscription),
        web.get("/admin/subscriptions/{sub}/state", admin_subscription_state),
        web.get("/admin/tenants/{tenant}/state", admin_tenant_state),
        web.get("/admin/subscriptions/{sub}/calls", admin_subscription_calls),
        web.get("/admin/tenants/{tenant}/calls", admin_tenant_calls),
        web.put("/admin/subscriptions/{sub}/faults", admin_subscription_faults),
        web.put("/admin/tenants/{tenant}/faults", admin_tenant_faults),
        web.post("/admin/subscriptions/{sub}/resourceGroups", admin_seed_rg),
        web.post("/admin/subscriptions/{sub}/resourceGroups/{rg}/registries", admin_seed_registry),
        web.post("/admin/subscriptions/{sub}/resourceGroups/{rg}/registries/{name}/images", admin_seed_images),
        web.post("/admin/subscriptions/{sub}/resourceGroups/{rg}/identities", admin_seed_identity),
        web.post("/admin/subscriptions/{sub}/roleAssignments", admin_seed_assignment),
        web.post("/admin/tenants/{tenant}/applications", admin_seed_application),
        web.post("/admin/tenants/{tenant}/applications/{app}/secrets/{key}/expire", admin_expire_secret),
        web.delete("/admin/tenants/{tenant}/applications/{app}/secrets/{key}", admin_remove_secret),
        web.get("/admin/tenants/{tenant}/minted", admin_minted),
        web.get("/admin/violations", admin_violations),
        web.get("/admin/calls", admin_calls),
        web.post("/login/{tenant}/oauth2/v2.0/token", login_token),
        web.post("/acr/{registry}/oauth2/exchange", acr_exchange),
        web.route("*", "/arm/{tail:.*}", arm_api),
        web.route("*", "/graph/{tail:.*}", graph_api),
    ])
    return application


def load_specs():
    directory = specs_dir()
    SPECS["dir"] = directory
    SPECS["examples"] = load_examples(directory)
    SPECS["graph_types"], SPECS["graph_actions"], SPECS["graph_sets"] = load_csdl(directory / CSDL)
    log.info("specs from %s: %s; Graph types %s", directory,
             ", ".join(e.name for e in SPECS["examples"].values()), ", ".join(sorted(SPECS["graph_types"])))


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    load_specs()
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PUSHPOOL_AZURE_PORT", "15400"))
    web.run_app(app(), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
