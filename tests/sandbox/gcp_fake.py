"""A stateful fake of the Google Cloud REST calls pushpool makes (started by scripts/sandbox.sh).

What it proves: the WIRE CONTRACT, not the live cloud. Every request pushpool sends is matched to a
method of Google's own discovery documents and checked against its schemas; every answer the fake
gives is checked against them too. The behaviour (error codes, server-computed fields, long-running
operations, etag races, eventual consistency) follows Google's documented semantics as far as the
tests need them; it is a model, and a model can be wrong where the documentation is silent.

One listener on 127.0.0.1 (port PUSHPOOL_GCP_PORT, default 15300) serves four services under path
prefixes; pushpool's endpoint overrides are
    CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM=http://127.0.0.1:15300/iam/
    CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER=http://127.0.0.1:15300/cloudresourcemanager/
    CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE=http://127.0.0.1:15300/serviceusage/
    CLOUDSDK_API_ENDPOINT_OVERRIDES_ARTIFACTREGISTRY=http://127.0.0.1:15300/artifactregistry/
and the discovery path (e.g. v1/projects/p/serviceAccounts) follows the prefix.

Discovery documents: $PUSHPOOL_GCP_DISCOVERY_DIR, else ../shared/specs/gcp/ beside the repository,
else the google-api-python-client wheel's googleapiclient/discovery_cache/documents/ (in the sandbox
venv). The shared copies were taken from that same wheel (2.202.0), so the revisions are the same:
iam.v1 20261023, cloudresourcemanager.v3 20261107, serviceusage.v1 20260921, artifactregistry.v1
20261031. The fake logs which directory and revisions it loaded.

Wire details that the official Rust clients (google-cloud-*-v1) use and the fake accepts:
  - `$alt=json;enum-encoding=int` (a system parameter, alias of `alt`): enums are sent as numbers and,
    as Google does, answered as numbers. Numbers are the proto numbers (the discovery order, except
    Repository.format, whose proto numbers have gaps; see PROTO_NUMBERS).
  - a `body: "*"` request that also repeats its path fields (`name`, `parent`, `resource`) in the
    body: allowed when the value equals the path's.
  - proto3 JSON: int64 as strings, bytes as base64, empty lists and false booleans omitted in answers.

Paging (AIP-158): every list method whose discovery entry declares `pageToken` answers pages of
`pageSize` items, at most the maximum its `pageSize` description states, and of the project's page
size (2 unless a test sets it) when the request asks none: every test that lists pages. The
`nextPageToken` is opaque and bound to its method; another method's or a made-up token is 400
INVALID_ARGUMENT. A page may hold fewer items than asked, even none (the `empty_pages` fault).
Methods without `pageToken` (serviceAccounts.keys.list) answer whole.

Admin API (not in any discovery document; for tests only): see the ADMIN section at the end.
No request or response body is ever logged: key files carry private keys.
"""
import asyncio
import base64
import binascii
import hashlib
import itertools
import json
import logging
import os
import random
import re
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

log = logging.getLogger("gcp_fake")

SERVICES = {  # path prefix -> discovery document
    "iam": "iam.v1.json",
    "cloudresourcemanager": "cloudresourcemanager.v3.json",
    "serviceusage": "serviceusage.v1.json",
    "artifactregistry": "artifactregistry.v1.json",
}
ARTIFACT_REGISTRY = "artifactregistry.googleapis.com"


# ---------------------------------------------------------------------------------------------
# DISCOVERY: find the documents, match a request to a method.
# ---------------------------------------------------------------------------------------------

def discovery_dir():
    """Where the discovery documents are: the env override, ../shared beside the repo, the wheel."""
    if os.environ.get("PUSHPOOL_GCP_DISCOVERY_DIR"):
        return Path(os.environ["PUSHPOOL_GCP_DISCOVERY_DIR"])
    shared = Path(__file__).resolve().parents[3] / "shared" / "specs" / "gcp"
    if all((shared / name).is_file() for name in SERVICES.values()):
        return shared
    import googleapiclient  # from the google-api-python-client wheel
    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


@dataclass
class Method:
    """One discovery method: its id, HTTP verb, matching regexes and request/response schemas."""
    id: str
    http: str
    flat: re.Pattern  # from flatPath: one segment per variable, used to pick the method
    full: re.Pattern  # from path: {+name} spans slashes, gives the named parameters
    spec: dict
    literal: int  # characters of literal text in flatPath: more is more specific

    @property
    def request(self):
        return self.spec.get("request", {}).get("$ref")

    @property
    def response(self):
        return self.spec.get("response", {}).get("$ref")

    @property
    def write(self):
        return self.http != "GET" and not self.id.endswith("getIamPolicy")


def template_regex(template, spanning):
    """A regex for a discovery path template: {x} is one segment (no '/', no ':'), {+x} may span
    slashes when `spanning` (the `path` form)."""
    out, pos = "", 0
    for m in re.finditer(r"\{(\+?)([^}]+)\}", template):
        out += re.escape(template[pos:m.start()])
        name = re.sub(r"\W", "_", m.group(2))
        out += f"(?P<{name}>[^:]+?)" if (m.group(1) and spanning) else f"(?P<{name}>[^/:]+)"
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]) + "$")


class Api:
    """One loaded discovery document."""

    def __init__(self, prefix, doc):
        self.prefix, self.doc, self.schemas = prefix, doc, doc["schemas"]
        self.methods = []
        for spec in self.walk(doc.get("resources", {})):
            flat = spec.get("flatPath", spec["path"])
            self.methods.append(Method(spec["id"], spec["httpMethod"], template_regex(flat, False),
                                       template_regex(spec["path"], True), spec,
                                       len(re.sub(r"\{[^}]+\}", "", flat))))
        self.methods.sort(key=lambda m: -m.literal)

    @staticmethod
    def walk(resources):
        for resource in resources.values():
            yield from resource.get("methods", {}).values()
            yield from Api.walk(resource.get("resources", {}))

    def match(self, http, path):
        """(method, path parameters) of `http path` (path without the service prefix), or None."""
        for method in self.methods:
            if method.http == http and method.flat.match(path):
                params = method.full.match(path)
                return method, (params.groupdict() if params else {})
        return None


def load_apis(directory):
    apis = {}
    for prefix, name in SERVICES.items():
        doc = json.loads((directory / name).read_text())
        apis[prefix] = Api(prefix, doc)
        log.info("discovery %s revision %s from %s", name, doc.get("revision"), directory)
    return apis


# ---------------------------------------------------------------------------------------------
# CONTRACT: check values against discovery schemas (requests and responses).
# ---------------------------------------------------------------------------------------------

# Proto enum numbers where they differ from the position in the discovery document's enum list.
PROTO_NUMBERS = {("Repository", "format"): {"FORMAT_UNSPECIFIED": 0, "DOCKER": 1, "MAVEN": 2, "NPM": 3,
                                            "APT": 5, "YUM": 6, "GOOGET": 7, "PYTHON": 8, "KFP": 9,
                                            "GO": 10, "GENERIC": 11, "RUBY": 12, "CONDA": 13}}
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
INT = re.compile(r"^-?\d+$")
INT_RANGES = {"int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
              "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1)}


def output_only(prop):
    """A field the server computes: readOnly, or documented "Output only"."""
    return prop.get("readOnly") or prop.get("description", "").lstrip().startswith("Output only")


class Checker:
    """Walks a JSON value along a discovery schema, collecting problems, and returns the value with
    enums normalized: request enums (names or numbers) become names; response enums become numbers
    when the client asked for `enum-encoding=int`.

    mode "request": unknown fields, output-only fields, wrong types, bad enums, bad formats.
    mode "response": the same minus the output-only rule; int64 must be strings, enums names."""

    def __init__(self, api, mode, enums_as_numbers=False):
        self.api, self.mode, self.enums_as_numbers, self.problems = api, mode, enums_as_numbers, []

    def problem(self, where, text):
        self.problems.append(f"{where or '<body>'}: {text}")

    def check_ref(self, value, ref, where=""):
        return self.check(value, {"$ref": ref}, where, owner=None)

    def check(self, value, schema, where, owner, field_name=None):
        if value is None and self.mode == "request":
            return None  # proto3 JSON: null is the default value
        if "$ref" in schema:
            ref = schema["$ref"]
            return self.check_object(value, self.api.schemas[ref], where, ref)
        kind = schema.get("type")
        if kind == "object":
            return self.check_object(value, schema, where, owner)
        if kind == "array":
            if not isinstance(value, list):
                self.problem(where, f"expected an array, got {type(value).__name__}")
                return value
            return [self.check(v, schema.get("items", {}), f"{where}[{i}]", owner, field_name)
                    for i, v in enumerate(value)]
        if kind == "string":
            return self.check_string(value, schema, where, owner, field_name)
        if kind == "integer":
            if isinstance(value, str) and self.mode == "request" and INT.match(value):
                value = int(value)  # proto3 JSON parsers accept quoted numbers
            if not isinstance(value, int) or isinstance(value, bool):
                self.problem(where, f"expected an integer, got {value!r}")
            elif not in_range(value, schema.get("format")):
                self.problem(where, f"{value} out of range for {schema.get('format')}")
            return value
        if kind == "number":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.problem(where, f"expected a number, got {value!r}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                self.problem(where, f"expected a boolean, got {value!r}")
            return value
        return value  # "any"

    def check_object(self, value, schema, where, owner):
        if not isinstance(value, dict):
            self.problem(where, f"expected an object ({owner or 'map'}), got {type(value).__name__}")
            return value
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        if "@type" in value and extra is not None:  # a google.protobuf.Any: check the packed message
            packed = value["@type"].rsplit(".", 1)[-1]
            if packed in self.api.schemas:
                inner = {k: v for k, v in value.items() if k != "@type"}
                return {"@type": value["@type"], **self.check_object(inner, self.api.schemas[packed], where, packed)}
        out = {}
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key in props:
                if self.mode == "request" and output_only(props[key]):
                    self.problem(path, f"output-only field of {owner} sent by the client")
                out[key] = self.check(item, props[key], path, owner, key)
            elif extra is not None:
                out[key] = self.check(item, extra, path, owner, key)
            else:
                self.problem(path, f"unknown field of {owner}")
                out[key] = item
        return out

    def check_string(self, value, schema, where, owner, field_name):
        enum = schema.get("enum")
        if enum:
            return self.check_enum(value, enum, where, owner, field_name)
        fmt = schema.get("format")
        if fmt in INT_RANGES:
            if isinstance(value, int) and not isinstance(value, bool) and self.mode == "request":
                return value  # a JSON number is accepted for an int64 on input
            if not (isinstance(value, str) and INT.match(value) and in_range(int(value), fmt)):
                self.problem(where, f"expected {fmt} as a decimal string, got {value!r}")
            return value
        if not isinstance(value, str):
            self.problem(where, f"expected a string, got {value!r}")
            return value
        if fmt == "byte" and not is_base64(value):
            self.problem(where, "not base64 (format byte)")
        if fmt == "google-datetime" and not DATETIME.match(value):
            self.problem(where, f"not an RFC 3339 timestamp: {value!r}")
        if fmt == "google-duration" and not re.match(r"^-?\d+(\.\d+)?s$", value):
            self.problem(where, f"not a duration: {value!r}")
        return value

    def check_enum(self, value, enum, where, owner, field_name):
        numbers = PROTO_NUMBERS.get((owner, field_name)) or {name: i for i, name in enumerate(enum)}
        names = {n: name for name, n in numbers.items()}
        if self.mode == "request":
            if isinstance(value, int) and not isinstance(value, bool):
                if value not in names:
                    self.problem(where, f"enum number {value} is not one of {enum}")
                return names.get(value, value)
            if value not in enum:
                self.problem(where, f"{value!r} is not one of {enum}")
            return value
        if value not in enum:
            self.problem(where, f"{value!r} is not one of {enum}")
            return value
        return numbers[value] if self.enums_as_numbers else value


def in_range(number, fmt):
    low, high = INT_RANGES.get(fmt, (-2**63, 2**64))
    return low <= number <= high


def is_base64(text):
    try:
        base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        return True
    except (binascii.Error, ValueError):
        return False


def check_query(api, method, query):
    """Problems with the query string: undeclared parameters, repeats of a single-valued one,
    bad enum values, non-integers. Returns (problems, {name: [values]}) with enums as names."""
    problems, out = [], {}
    declared = {**api.doc.get("parameters", {}), **method.spec.get("parameters", {})}
    for name in set(query.keys()):
        values = query.getall(name)
        spec = declared.get("alt" if name == "$alt" else name)
        if spec is None or spec.get("location") == "path":
            problems.append(f"query parameter {name!r} is not declared for {method.id}")
            continue
        if len(values) > 1 and not spec.get("repeated"):
            problems.append(f"query parameter {name!r} repeated but not repeatable")
        if spec.get("enum") and name not in ("alt", "$alt"):
            numbers = {str(i): e for i, e in enumerate(spec["enum"])}
            bad = [v for v in values if v not in spec["enum"] and v not in numbers]
            if bad:
                problems.append(f"query parameter {name}={bad} not one of {spec['enum']}")
            values = [numbers.get(v, v) for v in values]
        if spec.get("type") == "integer" and not all(INT.match(v) for v in values):
            problems.append(f"query parameter {name}={values} is not an integer")
        out[name] = values
    for name, spec in method.spec.get("parameters", {}).items():
        if spec.get("location") == "query" and spec.get("required") and name not in out:
            problems.append(f"required query parameter {name!r} missing")
    return problems, out


def enums_as_numbers(query):
    return any("enum-encoding=int" in v for k in ("$alt", "alt") for v in query.get(k, []))


def check_request_body(api, method, body, path_params):
    """Problems with the request body, and the body with enums as names and the path fields that
    the official clients repeat in a `body: "*"` request removed."""
    if body is None:
        return [], {}
    if method.request is None:
        return ([f"{method.id} takes no request body"] if body not in ({}, None) else []), {}
    if not isinstance(body, dict):
        return [f"request body must be a JSON object, got {type(body).__name__}"], {}
    problems, body = [], dict(body)
    for name, spec in method.spec.get("parameters", {}).items():
        if spec.get("location") == "path" and name in body and name not in api.schemas[method.request].get("properties", {}):
            if body.pop(name) != path_params.get(name):
                problems.append(f"{name}: differs from the path's {path_params.get(name)!r}")
    checker = Checker(api, "request")
    normalized = checker.check_ref(body, method.request)
    return problems + checker.problems, normalized


# ---------------------------------------------------------------------------------------------
# ERRORS: Google's envelope.
# ---------------------------------------------------------------------------------------------

class GoogleError(Exception):
    """An error answer: {"error": {"code", "message", "status", "details"?}}."""

    def __init__(self, code, status, message, details=()):
        super().__init__(message)
        self.code, self.status, self.message, self.details = code, status, message, list(details)

    def response(self):
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return web.json_response({"error": error}, status=self.code)


def not_found(message="Requested entity was not found."):
    return GoogleError(404, "NOT_FOUND", message)


def invalid(message):
    return GoogleError(400, "INVALID_ARGUMENT", message)


def error_info(reason, domain="googleapis.com", **metadata):
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": domain, "metadata": metadata}


# ---------------------------------------------------------------------------------------------
# STATE: projects, service accounts, keys, repositories, operations. In memory, per project.
# ---------------------------------------------------------------------------------------------

def now():
    return datetime.now(timezone.utc)


def stamp(when=None):
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def new_etag():
    """A policy etag: base64 of 8 random bytes, like Google's "BwYTz3ABCDE=" (format byte)."""
    return base64.b64encode(b"\x07" + secrets.token_bytes(7)).decode()


def digits(n, first="123456789"):
    return random.choice(first) + "".join(random.choice("0123456789") for _ in range(n - 1))


SERVICE_TITLES = {
    "run.googleapis.com": "Cloud Run Admin API",
    "artifactregistry.googleapis.com": "Artifact Registry API",
    "iam.googleapis.com": "Identity and Access Management (IAM) API",
    "iamcredentials.googleapis.com": "IAM Service Account Credentials API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "serviceusage.googleapis.com": "Service Usage API",
    "compute.googleapis.com": "Compute Engine API",
    "storage.googleapis.com": "Cloud Storage API",
    "cloudbuild.googleapis.com": "Cloud Build API",
    "secretmanager.googleapis.com": "Secret Manager API",
    "logging.googleapis.com": "Cloud Logging API",
    "containerregistry.googleapis.com": "Container Registry API",
}
PROJECT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
ACCOUNT_ID = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])$")
REPOSITORY_ID = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
LOCATION = re.compile(r"^[a-z]+(-[a-z]+\d+)?$")
KEY_LIMIT = 10


@dataclass
class Key:
    """A key. A user-managed key never expires unless the organization policy
    constraints/iam.serviceAccountKeyExpiryHours gave it an end (`expires`); like Google, an
    expired key stays listed (with its past validBeforeTime) and counts towards the limit until
    it is deleted."""
    id: str
    type: str = "USER_MANAGED"
    disabled: bool = False
    created: datetime = field(default_factory=now)
    expires: datetime | None = None

    def valid_before(self):
        if self.expires:
            return stamp(self.expires)
        return "9999-12-31T23:59:59Z" if self.type == "USER_MANAGED" else stamp(self.created + timedelta(days=14))

    def json(self, sa):
        out = {"name": f"{sa.name}/keys/{self.id}", "keyAlgorithm": "KEY_ALG_RSA_2048",
               "keyOrigin": "GOOGLE_PROVIDED", "keyType": self.type, "validAfterTime": stamp(self.created),
               "validBeforeTime": self.valid_before()}
        if self.disabled:
            out["disabled"] = True
            out["disableReason"] = "SERVICE_ACCOUNT_KEY_DISABLE_REASON_USER_INITIATED"
        return out


@dataclass
class ServiceAccount:
    project: "Project"
    account_id: str
    display_name: str = ""
    description: str = ""
    unique_id: str = field(default_factory=lambda: digits(21, "1"))
    keys: dict = field(default_factory=dict)

    @property
    def email(self):
        return f"{self.account_id}@{self.project.id}.iam.gserviceaccount.com"

    @property
    def name(self):
        return f"projects/{self.project.id}/serviceAccounts/{self.email}"

    def json(self):
        out = {"name": self.name, "projectId": self.project.id, "uniqueId": self.unique_id, "email": self.email,
               "etag": "MDEwMjE5MjA=", "oauth2ClientId": self.unique_id}
        if self.display_name:
            out["displayName"] = self.display_name
        if self.description:
            out["description"] = self.description
        return out

    def user_keys(self):
        return [k for k in self.keys.values() if k.type == "USER_MANAGED"]


@dataclass
class Repository:
    project: "Project"
    location: str
    id: str
    format: str = "DOCKER"
    description: str = ""
    labels: dict = field(default_factory=dict)
    created: str = field(default_factory=stamp)
    updated: str = ""
    images: list = field(default_factory=list)

    @property
    def name(self):
        return f"projects/{self.project.id}/locations/{self.location}/repositories/{self.id}"

    def json(self):
        out = {"name": self.name, "format": self.format, "mode": "STANDARD_REPOSITORY",
               "createTime": self.created, "updateTime": self.updated or self.created,
               "sizeBytes": str(sum(i["size"] for i in self.images)),
               "registryUri": f"{self.location}-docker.pkg.dev/{self.project.id}/{self.id}"}
        if self.description:
            out["description"] = self.description
        if self.labels:
            out["labels"] = dict(self.labels)
        return out

    def image_json(self, image):
        digest = image["digest"]
        return {"name": f"{self.name}/dockerImages/{image['image']}@{digest}",
                "uri": f"{self.location}-docker.pkg.dev/{self.project.id}/{self.id}/{image['image']}@{digest}",
                "tags": ["latest"], "imageSizeBytes": str(image["size"]), "uploadTime": image["time"],
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "buildTime": image["time"], "updateTime": image["time"]}


@dataclass
class Operation:
    """A long-running operation: `done` after `polls_left` more GETs; then `finish` runs once."""
    name: str
    project: "Project"
    metadata: dict
    polls_left: int
    response: dict = None
    finish: object = None  # run once when the operation completes; returns the response
    done: bool = False

    def poll(self):
        if not self.done:
            self.polls_left -= 1
            if self.polls_left <= 0:
                self.complete()

    def complete(self):
        self.done = True
        if self.finish:
            self.response = self.finish()

    def json(self):
        out = {"name": self.name, "metadata": self.metadata}
        if self.done:
            out["done"] = True
            out["response"] = self.response
        return out


@dataclass
class Project:
    id: str
    number: str
    services: dict  # service name -> "ENABLED" | "DISABLED"
    created: str = field(default_factory=stamp)
    accounts: dict = field(default_factory=dict)  # email -> ServiceAccount
    repositories: dict = field(default_factory=dict)  # (location, id) -> Repository
    policy: dict = None
    faults: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)
    page_size: int = 2  # the page size of a list request that asks none (see PAGING)
    propagation: int = 0  # Artifact Registry calls still answered SERVICE_DISABLED after an enable
    invisible: dict = field(default_factory=dict)  # email -> calls that will not see it yet

    def __post_init__(self):
        self.policy = self.policy or {"version": 1, "etag": new_etag(),
                                      "bindings": [{"role": "roles/owner", "members": ["user:tester@example.com"]}]}

    def enabled(self, service):
        return self.services.get(service) == "ENABLED"

    def count_down(self, fault):
        """Uses one unit of a counted fault; True while the fault applies."""
        left = self.faults.get(fault, 0)
        if isinstance(left, bool) or left <= 0:
            return False
        self.faults[fault] = left - 1
        return True

    def state(self):
        return {"projectId": self.id, "number": self.number, "services": dict(self.services),
                "serviceAccounts": {e: {**sa.json(), "keys": [{"id": k.id, "type": k.type, "disabled": k.disabled}
                                                             for k in sa.keys.values()]}
                                    for e, sa in self.accounts.items()},
                "repositories": [{"name": r.name, "location": r.location, "repositoryId": r.id, "labels": r.labels,
                                  "description": r.description, "images": len(r.images)}
                                 for r in self.repositories.values()],
                "iamPolicy": self.policy, "faults": self.faults}


class World:
    """Everything the fake holds: projects by id (and number), operations by name, violations."""

    def __init__(self):
        self.projects, self.operations, self.violations, self.calls = {}, {}, [], []

    def create_project(self, project_id, enabled=(), number=None):
        if not PROJECT_ID.match(project_id):
            raise invalid(f"invalid project id {project_id!r}: 6-30 chars, lowercase letters, digits, hyphens")
        if project_id in self.projects:
            raise GoogleError(409, "ALREADY_EXISTS", f"project {project_id} already exists")
        services = {s: "DISABLED" for s in SERVICE_TITLES}
        services.update({s: "ENABLED" for s in enabled})
        project = Project(project_id, number or digits(12), services)
        self.projects[project_id] = project
        return project

    def project(self, key):
        """The project of a path segment `projects/<id or number>`, or None."""
        if key in self.projects:
            return self.projects[key]
        return next((p for p in self.projects.values() if p.number == key), None)

    def account(self, email):
        """A service account anywhere in the fake, by email."""
        for project in self.projects.values():
            if email in project.accounts:
                return project.accounts[email]
        return None


WORLD = World()


def denied(project_key, service):
    """What Google answers for anything in a project that does not exist (or that you cannot see):
    403, never 404, so that a caller cannot probe for project ids."""
    return GoogleError(403, "PERMISSION_DENIED",
                       f"Permission denied on resource project {project_key} (or it may not exist).",
                       [error_info("CONSUMER_INVALID" if service == "serviceusage" else "IAM_PERMISSION_DENIED",
                                   consumer=f"projects/{project_key}")])


# ---------------------------------------------------------------------------------------------
# HANDLERS: one per discovery method id. Each gets (request context) and returns (status, json).
# ---------------------------------------------------------------------------------------------

@dataclass
class Ctx:
    """One API request, matched and checked: its project, path parameters, query and body."""
    api: Api
    method: Method
    params: dict
    query: dict
    body: dict
    project: Project = None


HANDLERS = {}


def handles(method_id):
    def register(fn):
        HANDLERS[method_id] = fn
        return fn
    return register


def project_of_path(params):
    """The `projects/<x>` segment of the request's resource name, or None."""
    for key in ("name", "parent", "resource"):
        m = re.match(r"^projects/([^/]+)", params.get(key) or "")
        if m:
            return m.group(1)
    return None


# --- PAGING: one rule for every list method that declares pageToken ---------------------------

MAXIMUM = re.compile(r"[Mm]aximum (?:page size |value )?is (\d[\d,]*)")


def page_maximum(method):
    """The largest page the method's `pageSize` description allows, or None when it states none."""
    found = MAXIMUM.search(method.spec.get("parameters", {}).get("pageSize", {}).get("description", ""))
    return int(found.group(1).replace(",", "")) if found else None


def page_token(method, offset):
    return base64.urlsafe_b64encode(f"{method.id}:{offset}".encode()).decode()


def token_offset(method, token):
    """Where the page of `token` starts; 400 for a token this method did not hand out."""
    try:
        method_id, offset = base64.urlsafe_b64decode(token.encode()).decode().rsplit(":", 1)
        if method_id == method.id and INT.match(offset):
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise invalid(f"Invalid page token {token!r}.")


def paged(ctx, field_name, items):
    """One page of `items` as `{field_name: [...], "nextPageToken"?}`: `pageSize` items (0 or none
    asked: the project's page size; above the documented maximum: the maximum) from the position
    of `pageToken`. The `empty_pages` fault answers the next N pages with no item and a token
    that resumes where they were, as Google may."""
    if "pageToken" not in ctx.method.spec.get("parameters", {}):
        raise AssertionError(f"{ctx.method.id} does not page: answer it whole")
    asked = int((ctx.query.get("pageSize") or ["0"])[0])
    if asked < 0:
        raise invalid("page_size must be non-negative.")
    size = asked or ctx.project.page_size
    maximum = page_maximum(ctx.method)
    if maximum:
        size = min(size, maximum)
    token = (ctx.query.get("pageToken") or [""])[0]
    start = token_offset(ctx.method, token) if token else 0
    if start < len(items) and ctx.project.count_down("empty_pages"):
        return {"nextPageToken": page_token(ctx.method, start)}
    out = {field_name: items[start:start + size]} if items[start:start + size] else {}
    if start + size < len(items):
        out["nextPageToken"] = page_token(ctx.method, start + size)
    return out


# --- Cloud Resource Manager v3 ---------------------------------------------------------------

@handles("cloudresourcemanager.projects.get")
def project_get(ctx):
    p = ctx.project
    return {"name": f"projects/{p.number}", "parent": "organizations/123456789012", "projectId": p.id,
            "state": "ACTIVE", "displayName": p.id, "createTime": p.created, "updateTime": p.created,
            "etag": f'W/"{hashlib.sha1(p.id.encode()).hexdigest()[:16]}"'}


@handles("cloudresourcemanager.projects.getIamPolicy")
def get_iam_policy(ctx):
    return policy_json(ctx.project.policy)


def policy_json(policy):
    out = {"version": policy["version"], "etag": policy["etag"]}
    if policy["bindings"]:
        out["bindings"] = policy["bindings"]
    if policy.get("auditConfigs"):
        out["auditConfigs"] = policy["auditConfigs"]
    return out


@handles("cloudresourcemanager.projects.setIamPolicy")
def set_iam_policy(ctx):
    """Read-modify-write with the etag: a stale etag is 409 ABORTED; a member that is a service
    account the fake does not know (or cannot see yet) is 400; empty bindings are dropped."""
    p, policy = ctx.project, (ctx.body.get("policy") or {})
    if p.count_down("etag_race"):  # another client wrote in between
        add_binding(p.policy, "roles/viewer", "user:other@example.com")
        p.policy["etag"] = new_etag()
        raise aborted(policy.get("etag"), p.policy["etag"])
    if policy.get("etag") and policy["etag"] != p.policy["etag"]:
        raise aborted(policy["etag"], p.policy["etag"])
    bindings = []
    for binding in policy.get("bindings") or []:
        role = binding.get("role") or ""
        if not re.match(r"^(roles/[A-Za-z0-9_.]+|(projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+)$", role):
            raise invalid(f"Role ({role}) does not exist in the resource's hierarchy.")
        for member in binding.get("members") or []:
            check_member(p, member)
        if binding.get("members"):
            bindings.append({**binding, "members": sorted(set(binding["members"]))})
    bindings.sort(key=lambda b: b["role"])
    changed = bindings != p.policy["bindings"] or policy.get("auditConfigs") != p.policy.get("auditConfigs")
    p.policy = {"version": 3 if any(b.get("condition") for b in bindings) else 1,
                "etag": new_etag() if changed else p.policy["etag"], "bindings": bindings}
    if policy.get("auditConfigs"):
        p.policy["auditConfigs"] = policy["auditConfigs"]
    return policy_json(p.policy)


def aborted(sent, current):
    return GoogleError(409, "ABORTED",
                       "There were concurrent policy changes. Please retry the whole read-modify-write with "
                       f"exponential backoff. The request's ETag '{sent}' did not match the current policy's ETag '{current}'.")


def check_member(project, member):
    kind, _, email = member.partition(":")
    if kind == "serviceAccount" and email.endswith(".iam.gserviceaccount.com"):
        sa = WORLD.account(email)
        if sa is None or not visible(sa.project, email):
            raise invalid(f"Service account {email} does not exist.")
    elif kind not in ("user", "group", "domain", "serviceAccount", "deleted", "principal", "principalSet") \
            and member not in ("allUsers", "allAuthenticatedUsers"):
        raise invalid(f"Invalid member type {member!r}.")


def visible(project, email):
    """False while the service_account_invisible fault hides a new service account (eventual
    consistency); each call that asks uses up one unit."""
    if project.invisible.get(email, 0) > 0:
        project.invisible[email] -= 1
        return False
    return True


def add_binding(policy, role, member):
    for binding in policy["bindings"]:
        if binding["role"] == role and not binding.get("condition"):
            binding["members"] = sorted(set(binding["members"]) | {member})
            return
    policy["bindings"].append({"role": role, "members": [member]})
    policy["bindings"].sort(key=lambda b: b["role"])


# --- Service Usage v1 -------------------------------------------------------------------------

def service_json(project, service):
    return {"name": f"projects/{project.number}/services/{service}", "parent": f"projects/{project.number}",
            "config": {"name": service, "title": SERVICE_TITLES.get(service, service)},
            "state": project.services.get(service, "DISABLED")}


def service_of(project, name):
    """The service id of `projects/<id or number>/services/<svc>`, checked against the catalogue."""
    m = re.match(r"^projects/([^/]+)/services/([^/]+)$", name)
    if not m or WORLD.project(m.group(1)) is not project:
        raise invalid(f"Invalid service name {name!r}: expected projects/{project.id}/services/SERVICE.")
    if m.group(2) not in project.services:
        raise GoogleError(403, "PERMISSION_DENIED", f"Not found or permission denied for service(s): {m.group(2)}.")
    return m.group(2)


@handles("serviceusage.services.batchGet")
def services_batch_get(ctx):
    names = ctx.query.get("names", [])
    if not names or len(names) > 30:
        raise invalid("names: between 1 and 30 service names are required.")
    return {"services": [service_json(ctx.project, service_of(ctx.project, n)) for n in names]}


@handles("serviceusage.services.get")
def service_get(ctx):
    return service_json(ctx.project, service_of(ctx.project, ctx.params["name"]))


@handles("serviceusage.services.batchEnable")
def services_batch_enable(ctx):
    """An operation that enables the services when it is done (after `operation_polls` polls).
    All already enabled: Google's `operations/noop.DONE_OPERATION`, done at once."""
    p, ids = ctx.project, ctx.body.get("serviceIds") or []
    if not ids or len(ids) > 20:
        raise invalid("serviceIds: between 1 and 20 services are required.")
    unknown = [s for s in ids if s not in p.services]
    if unknown:
        raise GoogleError(403, "PERMISSION_DENIED", f"Not found or permission denied for service(s): {', '.join(unknown)}.")

    def response():
        return {"@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
                "services": [service_json(p, s) for s in ids]}

    metadata = {"@type": "type.googleapis.com/google.api.serviceusage.v1.OperationMetadata",
                "resourceNames": [f"services/{s}/projectSettings/{p.number}" for s in ids]}
    if all(p.enabled(s) for s in ids):
        return {"name": "operations/noop.DONE_OPERATION", "metadata": metadata, "done": True, "response": response()}

    def finish():
        for s in ids:
            p.services[s] = "ENABLED"
        if ARTIFACT_REGISTRY in ids:
            p.propagation = int(p.faults.get("service_disabled_after_enable", 0))
        return response()

    op = start_operation(f"operations/acat.p2-{p.number}-{uuid.uuid4()}", p, metadata, finish)
    return op.json()


def start_operation(name, project, metadata, finish=None, response=None):
    polls = int(project.faults.get("operation_polls", 2))
    op = Operation(name, project, metadata, polls, response, finish)
    WORLD.operations[name] = op
    if polls <= 0:
        op.complete()
    return op


@handles("serviceusage.operations.get")
def service_operation_get(ctx):
    return poll(ctx.params["name"])


def poll(name):
    op = WORLD.operations.get(name)
    if op is None:
        raise not_found(f"Operation {name} not found.")
    op.poll()
    return op.json()


# --- IAM v1: service accounts and keys --------------------------------------------------------

def account_of(ctx, email=None):
    """The service account named by the request (projects/<p or ->/serviceAccounts/<email or uniqueId>)."""
    m = re.match(r"^projects/[^/]+/serviceAccounts/([^/]+)", ctx.params.get("name", ""))
    key = email or (m and m.group(1))
    sa = ctx.project.accounts.get(key) or next((s for s in ctx.project.accounts.values() if s.unique_id == key), None)
    if sa is None:
        raise not_found(f"Unknown service account")
    return sa


def hidden_account(ctx, sa):
    """404 while the service_account_invisible fault hides a new account from this call."""
    if not visible(ctx.project, sa.email):
        raise not_found("Unknown service account")


@handles("iam.projects.serviceAccounts.get")
def account_get(ctx):
    return account_of(ctx).json()


@handles("iam.projects.serviceAccounts.create")
def account_create(ctx):
    p, account_id = ctx.project, ctx.body.get("accountId") or ""
    sa_in = ctx.body.get("serviceAccount") or {}
    if not (6 <= len(account_id) <= 30 and ACCOUNT_ID.match(account_id)):
        raise invalid(f"Account ID {account_id!r} must be between 6 and 30 characters, start with a lowercase letter "
                      "and contain only lowercase letters, digits and hyphens, and not end with a hyphen.")
    if len(sa_in.get("displayName") or "") > 100 or len(sa_in.get("description") or "") > 256:
        raise invalid("displayName is at most 100 characters and description at most 256.")
    email = f"{account_id}@{p.id}.iam.gserviceaccount.com"
    if email in p.accounts:
        raise GoogleError(409, "ALREADY_EXISTS", f"Service account {account_id} already exists within project projects/{p.id}.",
                          [{"@type": "type.googleapis.com/google.rpc.ResourceInfo", "resourceName": p.accounts[email].name}])
    sa = new_account(p, account_id, sa_in.get("displayName") or "", sa_in.get("description") or "")
    hide = int(p.faults.get("service_account_invisible", 0))
    if hide:
        p.invisible[email] = hide
    return sa.json()


def new_account(project, account_id, display_name="", description=""):
    """A service account with the one SYSTEM_MANAGED key Google gives every account (listed unless
    the caller filters keyTypes=USER_MANAGED, and not counted against the limit of 10)."""
    sa = ServiceAccount(project, account_id, display_name, description)
    system_key = Key(secrets.token_hex(20), type="SYSTEM_MANAGED")
    sa.keys[system_key.id] = system_key
    project.accounts[sa.email] = sa
    return sa


@handles("iam.projects.serviceAccounts.patch")
def account_patch(ctx):
    sa = account_of(ctx)
    mask = [f for f in (ctx.body.get("updateMask") or "").split(",") if f]
    if not mask or any(f not in ("description", "displayName", "display_name") for f in mask):
        raise invalid(f"updateMask must name description and/or displayName, got {ctx.body.get('updateMask')!r}.")
    sa_in = ctx.body.get("serviceAccount") or {}
    if "description" in mask:
        sa.description = sa_in.get("description") or ""
    if "displayName" in mask or "display_name" in mask:
        sa.display_name = sa_in.get("displayName") or ""
    return sa.json()


@handles("iam.projects.serviceAccounts.delete")
def account_delete(ctx):
    """Deletes the account and its keys; like Google, the project policy keeps its bindings as
    `deleted:serviceAccount:<email>?uid=<uniqueId>`."""
    sa = account_of(ctx)
    del ctx.project.accounts[sa.email]
    for binding in ctx.project.policy["bindings"]:
        binding["members"] = sorted(f"deleted:{m}?uid={sa.unique_id}" if m == f"serviceAccount:{sa.email}" else m
                                    for m in binding["members"])
    return {}


@handles("iam.projects.serviceAccounts.keys.list")
def keys_list(ctx):
    sa = account_of(ctx)
    hidden_account(ctx, sa)
    types = ctx.query.get("keyTypes") or []
    keys = [k.json(sa) for k in sa.keys.values() if not types or k.type in types]
    return {"keys": keys} if keys else {}


def key_of(ctx):
    sa = account_of(ctx)
    key_id = ctx.params["name"].rsplit("/", 1)[-1]
    key = sa.keys.get(key_id)
    if key is None:
        raise not_found(f"Service account key {key_id} does not exist.")
    return sa, key


@handles("iam.projects.serviceAccounts.keys.get")
def key_get(ctx):
    sa, key = key_of(ctx)
    hidden_account(ctx, sa)
    return key.json(sa)


@handles("iam.projects.serviceAccounts.keys.create")
def key_create(ctx):
    """A new USER_MANAGED key with a real key file; refused past 10 keys (disabled ones count)
    and when the org policy iam.disableServiceAccountKeyCreation is on (fault)."""
    p, sa = ctx.project, account_of(ctx)
    hidden_account(ctx, sa)
    if p.faults.get("key_creation_disabled"):
        raise GoogleError(400, "FAILED_PRECONDITION", "Key creation is not allowed on this service account.", [{
            "@type": "type.googleapis.com/google.rpc.PreconditionFailure",
            "violations": [{"type": "constraints/iam.disableServiceAccountKeyCreation", "subject": f"projects/{p.number}",
                            "description": "Key creation is not allowed on this service account."}]}])
    if len(sa.user_keys()) >= KEY_LIMIT:
        raise GoogleError(400, "FAILED_PRECONDITION", "Precondition check failed.")
    if ctx.body.get("privateKeyType") not in (None, "TYPE_UNSPECIFIED", "TYPE_GOOGLE_CREDENTIALS_FILE"):
        raise invalid("The fake only makes TYPE_GOOGLE_CREDENTIALS_FILE keys.")
    key = Key(secrets.token_hex(20))
    sa.keys[key.id] = key
    key_file = service_account_key_file(p.id, sa.email, sa.unique_id, key.id)
    return {**key.json(sa), "privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE",
            "privateKeyData": base64.b64encode(json.dumps(key_file, indent=2).encode()).decode()}


@handles("iam.projects.serviceAccounts.keys.delete")
def key_delete(ctx):
    sa, key = key_of(ctx)
    del sa.keys[key.id]
    return {}


@handles("iam.projects.serviceAccounts.keys.disable")
def key_disable(ctx):
    key_of(ctx)[1].disabled = True
    return {}


@handles("iam.projects.serviceAccounts.keys.enable")
def key_enable(ctx):
    key_of(ctx)[1].disabled = False
    return {}


def service_account_key_file(project_id, email, client_id, key_id):
    """A service-account key file as Google issues it, with a real RSA 2048 PKCS#8 private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": project_id, "private_key_id": key_id, "private_key": pem,
            "client_email": email, "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{quote(email)}",
            "universe_domain": "googleapis.com"}


# --- Artifact Registry v1 ---------------------------------------------------------------------

def require_artifact_registry(project):
    """403 SERVICE_DISABLED while the API is not enabled, and for `service_disabled_after_enable`
    calls after it was (propagation)."""
    if project.enabled(ARTIFACT_REGISTRY) and project.propagation <= 0:
        return
    if project.enabled(ARTIFACT_REGISTRY):
        project.propagation -= 1
    raise GoogleError(
        403, "PERMISSION_DENIED",
        f"Artifact Registry API has not been used in project {project.number} before or it is disabled. Enable it by "
        f"visiting https://console.developers.google.com/apis/api/artifactregistry.googleapis.com/overview?project={project.number} "
        "then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.",
        [error_info("SERVICE_DISABLED", service=ARTIFACT_REGISTRY, consumer=f"projects/{project.number}")])


def location_of(ctx):
    m = re.match(r"^projects/[^/]+/locations/([^/]+)", ctx.params.get("name") or ctx.params.get("parent") or "")
    if not m or not LOCATION.match(m.group(1)):
        raise invalid(f"Invalid location in {ctx.params}.")
    return m.group(1)


def repository_of(ctx):
    name = ctx.params.get("name") or ctx.params.get("parent")
    m = re.match(r"^projects/[^/]+/locations/([^/]+)/repositories/([^/]+)", name)
    repo = ctx.project.repositories.get((m.group(1), m.group(2)))
    if repo is None:
        raise not_found()
    return repo


def check_labels(labels):
    if len(labels) > 64:
        raise invalid("At most 64 labels.")
    for key, value in labels.items():
        if not LABEL_KEY.match(key) or not isinstance(value, str) or not LABEL_VALUE.match(value):
            raise invalid(f"Invalid label {key}={value!r}: keys start with a lowercase letter; keys and values use "
                          "lowercase letters, digits, '_' and '-', at most 63 characters.")


AR_METADATA = {"@type": "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata"}


@handles("artifactregistry.projects.locations.repositories.get")
def repository_get(ctx):
    return repository_of(ctx).json()


@handles("artifactregistry.projects.locations.repositories.create")
def repository_create(ctx):
    """The repository exists at once; the operation reports it after `operation_polls` polls."""
    p, location = ctx.project, location_of(ctx)
    repo_id = (ctx.query.get("repositoryId") or [""])[0]
    if not REPOSITORY_ID.match(repo_id) or len(repo_id) > 63:
        raise invalid(f"Invalid repository id {repo_id!r}.")
    fmt = ctx.body.get("format") or "FORMAT_UNSPECIFIED"
    if fmt == "FORMAT_UNSPECIFIED":
        raise invalid("Repository format must be specified.")
    labels = ctx.body.get("labels") or {}
    check_labels(labels)
    if (location, repo_id) in p.repositories:
        raise GoogleError(409, "ALREADY_EXISTS", f"the repository already exists")
    repo = Repository(p, location, repo_id, fmt, ctx.body.get("description") or "", dict(labels))
    p.repositories[(location, repo_id)] = repo
    op = start_operation(f"projects/{p.id}/locations/{location}/operations/{uuid.uuid4()}", p, AR_METADATA,
                         response={"@type": "type.googleapis.com/google.devtools.artifactregistry.v1.Repository", **repo.json()})
    return op.json()


@handles("artifactregistry.projects.locations.repositories.patch")
def repository_patch(ctx):
    repo = repository_of(ctx)
    mask = [f for f in ",".join(ctx.query.get("updateMask", [])).split(",") if f] or list(ctx.body)
    unsupported = [f for f in mask if f not in ("labels", "description", "name")]
    if unsupported:
        raise invalid(f"The fake cannot update {unsupported}: updateMask supports labels and description.")
    if "labels" in mask:
        check_labels(ctx.body.get("labels") or {})
        repo.labels = dict(ctx.body.get("labels") or {})
    if "description" in mask:
        repo.description = ctx.body.get("description") or ""
    repo.updated = stamp()
    return repo.json()


@handles("artifactregistry.projects.locations.repositories.delete")
def repository_delete(ctx):
    repo = repository_of(ctx)
    del ctx.project.repositories[(repo.location, repo.id)]
    op = start_operation(f"projects/{ctx.project.id}/locations/{repo.location}/operations/{uuid.uuid4()}", ctx.project,
                         AR_METADATA, response={"@type": "type.googleapis.com/google.protobuf.Empty"})
    return op.json()


@handles("artifactregistry.projects.locations.repositories.dockerImages.list")
def docker_images_list(ctx):
    repo = repository_of(ctx)
    return paged(ctx, "dockerImages", [repo.image_json(i) for i in repo.images])


@handles("artifactregistry.projects.locations.operations.get")
def repository_operation_get(ctx):
    return poll(ctx.params["name"])


# ---------------------------------------------------------------------------------------------
# DISPATCH: auth, routing, contract checks, faults, call records.
# ---------------------------------------------------------------------------------------------

def record_violation(service, request, method_id, direction, problems):
    entry = {"service": service, "method": request.method, "path": request.path, "rpc": method_id,
             "direction": direction, "problems": problems}
    WORLD.violations.append(entry)
    log.warning("CONTRACT VIOLATION (%s) %s %s: %s", direction, request.method, request.path, "; ".join(problems))


def resolve_project(service, method, params):
    """The project a request is about: from its resource name, from the operation it polls, or
    from the service account's email for `projects/-`. None if it names no known project."""
    key = project_of_path(params)
    if key == "-":
        m = re.match(r"^projects/-/serviceAccounts/([^/]+)", params.get("name", ""))
        sa = m and WORLD.account(m.group(1))
        return (sa.project if sa else None), key
    if key is None and method.id == "serviceusage.operations.get":
        op = WORLD.operations.get(params.get("name"))
        return (op.project if op else None), None
    return WORLD.project(key) if key else None, key


def throttled(project, method):
    """A `throttle` fault: {"<regex over the method id>": N} answers the next N matching calls 429."""
    for pattern, left in (project.faults.get("throttle") or {}).items():
        if left > 0 and re.search(pattern, method.id):
            project.faults["throttle"][pattern] = left - 1
            return True
    return False


async def api(request):
    """Every non-admin request: authenticate, match a discovery method, check the request,
    run the handler, check the response, record the call."""
    service = request.match_info["service"]
    api_doc = APIS[service]
    path = request.match_info["tail"]
    matched = api_doc.match(request.method, path)
    method_id = matched[0].id if matched else None
    call = {"service": service, "method": request.method, "path": request.path, "action": method_id,
            "write": request.method != "GET" and not path.endswith(":getIamPolicy"), "status": 0}
    project, key = resolve_project(service, *matched) if matched else (None, None)
    if project is not None:
        project.calls.append(call)
    try:
        auth = request.headers.get("Authorization", "")
        if not re.match(r"^Bearer \S+$", auth):
            raise GoogleError(401, "UNAUTHENTICATED",
                              "Request is missing required authentication credential. Expected OAuth 2 access token, "
                              "login cookie or other valid authentication credential.",
                              [error_info("CREDENTIALS_MISSING")])
        if matched is None:
            problems = [f"no {service} discovery method matches {request.method} {path}"]
            record_violation(service, request, None, "request", problems)
            raise invalid("fake contract: " + problems[0])
        method, params = matched
        body = None
        raw = await request.read()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = ...
        problems, query = check_query(api_doc, method, request.rel_url.query)
        if body is ...:
            problems.append("request body is not JSON")
            body = {}
        else:
            body_problems, body = check_request_body(api_doc, method, body, params)
            problems += body_problems
        if problems:
            record_violation(service, request, method.id, "request", problems)
            raise invalid("fake contract: " + "; ".join(problems))
        ctx = Ctx(api_doc, method, params, query, body or {})
        if project is None and key == "-":
            raise not_found("Unknown service account")
        if project is None and method.id != "serviceusage.operations.get":
            raise denied(key or "?", service)
        if project is not None and throttled(project, method):
            raise GoogleError(429, "RESOURCE_EXHAUSTED", f"Quota exceeded for quota metric of service {service}.googleapis.com.",
                              [error_info("RATE_LIMIT_EXCEEDED", service=f"{service}.googleapis.com")])
        ctx.project = project
        if service == "artifactregistry":
            require_artifact_registry(project)
        handler = HANDLERS.get(method.id)
        if handler is None:
            raise GoogleError(501, "UNIMPLEMENTED", f"fake: {method.id} is not modelled (pushpool is not expected to call it)")
        result = handler(ctx)
        checker = Checker(api_doc, "response", enums_as_numbers(query))
        result = checker.check_ref(result, method.response) if method.response else result
        if checker.problems:
            record_violation(service, request, method.id, "response", checker.problems)
        call["status"] = 200
        return web.json_response(result)
    except GoogleError as e:
        call["status"] = e.code
        return e.response()
    finally:
        WORLD.calls.append({**call, "project": project.id if project else None})
        log.info("%s %s -> %s (%s)", request.method, request.path_qs, call["status"], method_id)


# ---------------------------------------------------------------------------------------------
# ADMIN: the tests' own API (not Google's; not contract-checked).
#   POST /admin/projects {"projectId", "enabled": [services], "number"?}     -> {"projectId", "number"}
#   GET  /admin/projects/{id}/state                                         -> services, accounts+keys, repos, policy
#   PUT  /admin/projects/{id}/faults {...}                                  replaces the faults ({} clears):
#        operation_polls N, service_disabled_after_enable K, service_account_invisible K, etag_race N,
#        key_creation_disabled true, throttle {"<regex over the method id>": N}, empty_pages N
#   PUT  /admin/projects/{id}/paging {"pageSize": n}                         the page size of lists that ask none
#   PUT  /admin/projects/{id}/services {"<svc>": "ENABLED"|"DISABLED"}
#   POST /admin/projects/{id}/bindings {"role", "member"}                    adds a binding, new etag
#   POST /admin/projects/{id}/serviceAccounts {"accountId", "displayName"?, "description"?}
#   POST /admin/projects/{id}/serviceAccounts/{email}/keys {"count": n, "disabled"?: bool} -> {"keys": [ids]}
#   POST /admin/projects/{id}/serviceAccounts/{email}/keys/{key}/disable
#   POST /admin/projects/{id}/serviceAccounts/{email}/keys/{key}/expire     (created 2 days ago, expired 1 day ago)
#   DELETE /admin/projects/{id}/serviceAccounts/{email}/keys/{key}
#   POST /admin/projects/{id}/repositories {"location", "repositoryId", "labels"?, "description"?}
#   POST /admin/projects/{id}/locations/{loc}/repositories/{repo}/images {"count": n}
#   GET  /admin/projects/{id}/calls  -> [{"service","method","path","action","write","status"}]
#   GET  /admin/violations           -> [{"service","method","path","rpc","direction","problems"}]
#   GET  /admin/calls                -> every call, with its project
#   POST /admin/credentials {"projectId"?} -> a service-account key file (real RSA key) for ADC
#   GET  /health                     -> "ok"
# ---------------------------------------------------------------------------------------------

def admin_project(request):
    project = WORLD.projects.get(request.match_info["project"])
    if project is None:
        raise web.HTTPNotFound(text=f"no project {request.match_info['project']}")
    return project


async def admin_json(request):
    raw = await request.read()
    return json.loads(raw) if raw else {}


async def admin_create_project(request):
    spec = await admin_json(request)
    try:
        project = WORLD.create_project(spec["projectId"], spec.get("enabled", []), spec.get("number"))
    except GoogleError as e:
        return e.response()
    return web.json_response({"projectId": project.id, "number": project.number})


async def admin_state(request):
    return web.json_response(admin_project(request).state())


async def admin_faults(request):
    project = admin_project(request)
    project.faults = await admin_json(request)
    project.propagation, project.invisible = 0, {}
    return web.json_response(project.faults)


async def admin_paging(request):
    project, spec = admin_project(request), await admin_json(request)
    size = spec.get("pageSize")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise web.HTTPBadRequest(text="pageSize must be a positive integer")
    project.page_size = size
    return web.json_response({"pageSize": size})


async def admin_services(request):
    project = admin_project(request)
    project.services.update(await admin_json(request))
    return web.json_response(project.services)


async def admin_binding(request):
    project, spec = admin_project(request), await admin_json(request)
    add_binding(project.policy, spec["role"], spec["member"])
    project.policy["etag"] = new_etag()
    return web.json_response(project.policy)


async def admin_account(request):
    project, spec = admin_project(request), await admin_json(request)
    sa = new_account(project, spec["accountId"], spec.get("displayName", ""), spec.get("description", ""))
    return web.json_response(sa.json())


def admin_sa(request):
    project = admin_project(request)
    sa = project.accounts.get(request.match_info["email"])
    if sa is None:
        raise web.HTTPNotFound(text="no such service account")
    return sa


async def admin_keys(request):
    sa, spec = admin_sa(request), await admin_json(request)
    ids = []
    for _ in range(int(spec.get("count", 1))):
        key = Key(secrets.token_hex(20), disabled=bool(spec.get("disabled")))
        sa.keys[key.id] = key
        ids.append(key.id)
    return web.json_response({"keys": ids})


async def admin_key_disable(request):
    sa = admin_sa(request)
    sa.keys[request.match_info["key"]].disabled = True
    return web.json_response({"disabled": True})


async def admin_key_expire(request):
    sa = admin_sa(request)
    key = sa.keys[request.match_info["key"]]
    key.created = min(key.created, now() - timedelta(days=2))
    key.expires = now() - timedelta(days=1)
    return web.json_response({"validBeforeTime": stamp(key.expires)})


async def admin_key_delete(request):
    sa = admin_sa(request)
    sa.keys.pop(request.match_info["key"], None)
    return web.json_response({"deleted": True})


async def admin_repository(request):
    project, spec = admin_project(request), await admin_json(request)
    repo = Repository(project, spec["location"], spec["repositoryId"], spec.get("format", "DOCKER"),
                      spec.get("description", ""), dict(spec.get("labels") or {}))
    project.repositories[(repo.location, repo.id)] = repo
    return web.json_response(repo.json())


async def admin_images(request):
    project, spec = admin_project(request), await admin_json(request)
    repo = project.repositories.get((request.match_info["location"], request.match_info["repo"]))
    if repo is None:
        raise web.HTTPNotFound(text="no such repository")
    for _ in range(int(spec.get("count", 1))):
        repo.images.append({"image": f"flow-{len(repo.images)}", "digest": "sha256:" + secrets.token_hex(32),
                            "size": random.randint(10_000_000, 90_000_000), "time": stamp()})
    return web.json_response({"images": len(repo.images)})


async def admin_calls(request):
    return web.json_response(admin_project(request).calls)


async def admin_all_calls(_request):
    return web.json_response(WORLD.calls)


async def admin_violations(_request):
    return web.json_response(WORLD.violations)


async def admin_credentials(request):
    """A key file for GOOGLE_APPLICATION_CREDENTIALS: google-cloud-auth signs a self-signed JWT with
    it locally (no token exchange), and the fake accepts any Bearer."""
    spec = await admin_json(request)
    project_id = spec.get("projectId", "pushpool-tests")
    n = next(CREDENTIALS)
    key_file = service_account_key_file(project_id, f"tester-{n}@{project_id}.iam.gserviceaccount.com",
                                        digits(21, "1"), secrets.token_hex(20))
    return web.json_response(key_file)


CREDENTIALS = itertools.count(1)


async def health(_request):
    return web.Response(text="ok")


def app():
    application = web.Application(client_max_size=16 << 20)
    application.add_routes([
        web.get("/health", health),
        web.post("/admin/projects", admin_create_project),
        web.get("/admin/projects/{project}/state", admin_state),
        web.put("/admin/projects/{project}/faults", admin_faults),
        web.put("/admin/projects/{project}/services", admin_services),
        web.put("/admin/projects/{project}/paging", admin_paging),
        web.post("/admin/projects/{project}/bindings", admin_binding),
        web.post("/admin/projects/{project}/serviceAccounts", admin_account),
        web.post("/admin/projects/{project}/serviceAccounts/{email}/keys", admin_keys),
        web.post("/admin/projects/{project}/serviceAccounts/{email}/keys/{key}/disable", admin_key_disable),
        web.post("/admin/projects/{project}/serviceAccounts/{email}/keys/{key}/expire", admin_key_expire),
        web.delete("/admin/projects/{project}/serviceAccounts/{email}/keys/{key}", admin_key_delete),
        web.post("/admin/projects/{project}/repositories", admin_repository),
        web.post("/admin/projects/{project}/locations/{location}/repositories/{repo}/images", admin_images),
        web.get("/admin/projects/{project}/calls", admin_calls),
        web.get("/admin/calls", admin_all_calls),
        web.get("/admin/violations", admin_violations),
        web.post("/admin/credentials", admin_credentials),
        web.route("*", r"/{service:iam|cloudresourcemanager|serviceusage|artifactregistry}/{tail:.*}", api),
    ])
    return application


APIS = {}


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    APIS.update(load_apis(discovery_dir()))
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PUSHPOOL_GCP_PORT", "15300"))
    web.run_app(app(), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
