"""Counting reverse proxy for pushpool's tests (started by scripts/sandbox.sh).

Tests open a "channel" (a fresh listener on 127.0.0.1) in front of moto, the Prefect server or a cloud fake, point
the CLI at it, and then read back every API call the CLI made, classified as read or write.
Each channel can also delay requests (latency_ms) and inject faults per action, in the wire format
of the action's protocol. Channels of one group share a write counter that can freeze them all
right after the k-th write, so that a test can kill the client "just after" that write.

Every channel pages small (`page_size`, DEFAULT_PAGE_SIZE unless set), so that every test pages
and a client that reads only the first page of a list fails: the AWS list and describe actions of
AWS_PAGED are answered a page at a time by the proxy itself, from moto's whole answer (moto 5.2
honours a page size only for ListAttachedUserPolicies, ListAttachedRolePolicies and
DescribeLogGroups), with the token of the action's protocol (nextToken; NextToken/nextToken;
Marker + IsTruncated); every Prefect `.../filter` request gets its `limit` clamped to the page
size (the server honours limit and offset).

Admin API (usage: proxy.py ADMIN_PORT):
  POST   /channels              {"target": "http://127.0.0.1:15000", "latency_ms": 0, "group": "g",
                                 "page_size": 2} -> {"port": N}
  PUT    /channels/{port}/paging {"page_size": N} (null or 0: answers as the target gives them)
  GET    /channels/{port}/calls [{"method", "path", "service", "action", "write", "status", "fault"?,
                                 "region"?, "start", "end"?}, ...]  (start/end: the proxy's monotonic clock,
                                 seconds; region: a SigV4 call's, which with its service names the AWS
                                 endpoint it stands for)
  PUT    /channels/{port}/faults {ACTION or "*": FAULT, ...}; {} clears. ACTION is an AWS action
                                 ("CreateVpc") or, for Prefect and the GCP and Azure fakes, "METHOD /path"
                                 (e.g. "POST /iam/v1/projects/p/serviceAccounts"). FAULT:
           {"kind": "error", "status": 400, "code": "AccessDeniedException", "message": "..."}
           {"kind": "throttle"}   AWS: 400 Throttling / ThrottlingException; Prefect: 429 + Retry-After;
                                  GCP: 429 RESOURCE_EXHAUSTED in Google's error envelope;
                                  Azure: 429 + Retry-After in ARM's or Graph's envelope
           {"kind": "5xx"}        503 ServiceUnavailable
           {"kind": "reset", "after": false}  drop the connection (after=true: once upstream answered)
           {"kind": "hang", "seconds": 120}   answer nothing for that long
           {"kind": "latency", "ms": 300}     delay, then forward
         plus "times": N (per action; omitted: every call) and "writes_only": true (with "*"), and
         "match": "TEXT": the fault applies only to calls whose body or raw query string contains
                                 TEXT as sent (form-encoded for AWS's query protocol, e.g.
                                 "UserName=team-b-user", JSON for ECS, ECR and Prefect), so that one
                                 pool's or one account's calls fail and the others' go through;
                                 "times" then counts only the matching calls.
  PUT    /groups/{name}/hold    {"after_writes": k}: after the k-th write of the group has been
                                 answered upstream, every request of the group (that answer too) hangs
  DELETE /channels/{port}       closes the channel
  GET    /health                "ok"
"""
import asyncio
import json
import re
import socket
import sys
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from yarl import URL

# Hop-by-hop headers belong to one connection, not to the message (RFC 9110 7.6.1). The body is
# re-sent whole, so aiohttp recomputes Content-Length and no Transfer-Encoding is passed on.
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
       "te", "trailer", "transfer-encoding", "upgrade", "content-length"}
READS = ("Describe", "List", "Get", "BatchGet", "Head")
GCP = ("iam", "cloudresourcemanager", "serviceusage", "artifactregistry")  # the GCP fake's path prefixes
AZURE = ("arm", "graph", "login", "acr")  # the Azure fake's path prefixes


def is_gcp(service):
    """Whether `service` (as classify names it) is one of the GCP fake's: "gcp.iam", not AWS's "iam"."""
    return service.startswith("gcp.")


def is_azure(service):
    """Whether `service` is one of the Azure fake's: "azure.arm", "azure.graph", "azure.login", "azure.acr"."""
    return service.startswith("azure.")


def azure_write(service, method):
    """The Azure fake's own rule (azure_fake.py): ARM writes are PUT, PATCH and DELETE (its one POST,
    checkNameAvailability, reads); Graph writes are POST, PATCH, PUT and DELETE; the token endpoint
    and ACR's token exchange write nothing."""
    if service == "azure.arm":
        return method in ("PUT", "PATCH", "DELETE")
    if service == "azure.graph":
        return method in ("POST", "PATCH", "PUT", "DELETE")
    return False
SCOPE = re.compile(r"Credential=[^/,\s]+/[^/]+/([^/]+)/([^/]+)/aws4_request")


def classify(method, path, query, headers, body):
    """(service, action, write) of one request."""
    first = path.lstrip("/").split("/", 1)[0]
    if first in GCP:  # the GCP fake (gcp_fake.py): every verb but GET, and getIamPolicy, writes
        return f"gcp.{first}", f"{method} {path}", method != "GET" and not path.endswith(":getIamPolicy")
    if first in AZURE:  # the Azure fake (azure_fake.py)
        return f"azure.{first}", f"{method} {path}", azure_write(f"azure.{first}", method)
    scope = SCOPE.search(headers.get("Authorization", ""))
    if not scope:  # no SigV4: the Prefect REST API
        searching = method == "POST" and path.rstrip("/").rsplit("/", 1)[-1] in ("filter", "count", "paginate")
        return "prefect", f"{method} {path}", method not in ("GET", "HEAD") and not searching
    action = None
    if "X-Amz-Target" in headers:  # JSON protocol (ECS, ECR): "AmazonEC2ContainerRegistry_V20150921.CreateRepository"
        action = headers["X-Amz-Target"].rsplit(".", 1)[-1]
    else:  # query protocol (IAM, EC2, STS): Action= in the query string or the form body
        params = parse_qs(query)
        if "Action" not in params and "x-www-form-urlencoded" in headers.get("Content-Type", ""):
            params = parse_qs(body.decode("utf-8", "replace"))
        action = params.get("Action", [None])[0]
    if action is None:  # some other protocol (REST-XML, REST-JSON): fall back to the HTTP verb
        return scope.group(2), f"{method} {path}", method not in ("GET", "HEAD")
    return scope.group(2), action, not action.startswith(READS)


def aws_error(headers, service, fault):
    """An error response as the action's protocol sends it: JSON (ECS, ECR) or XML (IAM, EC2, STS),
    Google's envelope for the GCP fake's services, Prefect's {"detail"}."""
    code, message, status = fault["code"], fault.get("message", "injected by the sandbox proxy"), fault.get("status", 400)
    if is_gcp(service):
        return web.json_response({"error": {"code": status, "message": message, "status": code}}, status=status,
                                 headers=fault.get("headers", {}))
    if is_azure(service):
        error = {"code": code, "message": message}
        if service == "azure.graph":
            error["innerError"] = {"request-id": "sandbox-proxy", "client-request-id": "sandbox-proxy"}
        return web.json_response({"error": error}, status=status, headers=fault.get("headers", {}))
    if service == "prefect":
        return web.json_response({"detail": message}, status=status, headers=fault.get("headers", {}))
    if "X-Amz-Target" in headers:
        return web.json_response({"__type": code, "message": message}, status=status,
                                 headers={"x-amzn-ErrorType": code}, content_type="application/x-amz-json-1.1")
    if service == "ec2":
        body = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>sandbox</RequestID></Response>"
    else:
        body = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>sandbox</RequestId></ErrorResponse>"
    return web.Response(status=status, text=body, content_type="text/xml")


def error_fault(kind, service, headers):
    """The error a throttle or 5xx fault answers with, in the caller's protocol."""
    if kind == "5xx":
        return {"status": 503, "code": "UNAVAILABLE" if is_gcp(service) else "ServiceUnavailable", "message": "injected 503"}
    if is_azure(service):
        code = "TooManyRequests" if service == "azure.graph" else "SubscriptionRequestsThrottled"
        return {"status": 429, "code": code, "message": "injected throttling", "headers": {"Retry-After": "1"}}
    if is_gcp(service):
        return {"status": 429, "code": "RESOURCE_EXHAUSTED", "message": "injected throttling"}
    if service == "prefect":
        return {"status": 429, "code": "TooManyRequests", "message": "injected throttling", "headers": {"Retry-After": "1"}}
    code = "ThrottlingException" if "X-Amz-Target" in headers else "Throttling"
    return {"status": 400, "code": code, "message": "Rate exceeded"}


# The AWS list and describe actions pushpool reads whole, and the lists of their answers:
# (protocol, the answer's list fields). Each protocol's request token, answer token and page-size
# parameters are in PAGING. A call's pages are of the lists joined, in this order.
AWS_PAGED = {
    "ListServices": ("json", ["serviceArns"]),
    "ListTasks": ("json", ["taskArns"]),
    "ListTaskDefinitions": ("json", ["taskDefinitionArns"]),
    "ListImages": ("json", ["imageIds"]),
    "DescribeLogGroups": ("json", ["logGroups"]),
    "DescribeVpcs": ("ec2", ["vpcSet"]),
    "DescribeSubnets": ("ec2", ["subnetSet"]),
    "DescribeRouteTables": ("ec2", ["routeTableSet"]),
    "DescribeInternetGateways": ("ec2", ["internetGatewaySet"]),
    "DescribeSecurityGroups": ("ec2", ["securityGroupInfo"]),
    "ListAccessKeys": ("iam", ["AccessKeyMetadata"]),
    "ListAttachedUserPolicies": ("iam", ["AttachedPolicies"]),
    "ListAttachedRolePolicies": ("iam", ["AttachedPolicies"]),
    "ListUserPolicies": ("iam", ["PolicyNames"]),
    "ListRolePolicies": ("iam", ["PolicyNames"]),
    "ListPolicyVersions": ("iam", ["Versions"]),
    "ListEntitiesForPolicy": ("iam", ["PolicyGroups", "PolicyUsers", "PolicyRoles"]),
    # moto answers every entity in one page, whatever MaxItems says.
    "GetAccountAuthorizationDetails": ("iam", ["UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"]),
}
# protocol -> (request token, answer token, page-size parameters)
PAGING = {"json": ("nextToken", "nextToken", ("maxResults", "limit")),
          "ec2": ("NextToken", "nextToken", ("MaxResults",)),
          "iam": ("Marker", "Marker", ("MaxItems",))}
TOKEN = "sandbox-proxy-page-"
DEFAULT_PAGE_SIZE = 2


class Paging:
    """One AWS list call the proxy pages: the request without its page token and size (so that the
    target answers whole), then the one page of the answer the token asked for."""

    def __init__(self, action, body, page_size):
        self.protocol, self.lists = AWS_PAGED[action]
        token_name, self.answer_token, sizes = PAGING[self.protocol]
        if self.protocol == "json":
            params = json.loads(body or b"{}")
        else:
            params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        token = str(params.pop(token_name, None) or "")
        self.ours = not token or token.startswith(TOKEN)  # a target's own token goes through untouched
        self.start = int(token[len(TOKEN):]) if token.startswith(TOKEN) else 0
        asked = [int(params.pop(size)) for size in sizes if params.get(size) not in (None, "")]
        self.size = min([page_size] + asked)
        # The body the client signed goes on as it is unless a parameter was taken out.
        if not (asked or token.startswith(TOKEN)):
            self.body = body
        elif self.protocol == "json":
            self.body = json.dumps(params).encode()
        else:
            self.body = urlencode(params).encode()

    def page(self, data):
        """The page of the whole answer `data` this call asked for, with the next page's token."""
        if self.protocol == "json":
            answer = json.loads(data)
            items = [(name, item) for name in self.lists for item in answer.get(name) or []]
            kept = items[self.start:self.start + self.size]
            for name in self.lists:
                if name in answer:
                    answer[name] = [item for list_name, item in kept if list_name == name]
            answer.pop(self.answer_token, None)
            if self.start + self.size < len(items):
                answer[self.answer_token] = f"{TOKEN}{self.start + self.size}"
            return json.dumps(answer).encode()
        root = ET.fromstring(data)
        namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
        q = (lambda name: f"{{{namespace}}}{name}") if namespace else (lambda name: name)
        # EC2 puts the item sets under the answer; IAM under its <ActionResult>.
        holder = root if self.protocol == "ec2" else next(child for child in root if child.tag.endswith("Result"))
        sets = [holder.find(q(name)) for name in self.lists]
        items = [(parent, item) for parent in sets if parent is not None for item in list(parent)]
        for parent, item in items[:self.start] + items[self.start + self.size:]:
            parent.remove(item)
        more = self.start + self.size < len(items)
        token = holder.find(q(self.answer_token))
        if token is None and more:
            token = ET.SubElement(holder, q(self.answer_token))
        if token is not None and not more:
            holder.remove(token)
        elif more:
            token.text = f"{TOKEN}{self.start + self.size}"
        if self.protocol == "iam":
            truncated = holder.find(q("IsTruncated"))
            if truncated is None:
                truncated = ET.SubElement(holder, q("IsTruncated"))
            truncated.text = "true" if more else "false"
        return ET.tostring(root, encoding="utf-8", default_namespace=namespace or None)


def clamp_limit(body, page_size):
    """A Prefect filter body with its `limit` at most `page_size` (the server's default applies
    when it has none, so one is set)."""
    params = json.loads(body or b"{}")
    params["limit"] = min(int(params.get("limit") or page_size), page_size)
    return json.dumps(params).encode()


class Group:
    """Channels that count writes together and can freeze together."""

    def __init__(self):
        self.writes, self.hold_after, self.frozen = 0, None, asyncio.Event()


GROUPS = {}


class Channel:
    def __init__(self, target, latency_ms, group, page_size=None):
        self.target, self.latency_ms, self.calls, self.faults = target.rstrip("/"), latency_ms, [], {}
        self.page_size = page_size
        self.counts, self.group = {}, GROUPS.setdefault(group, Group()) if group else None
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)

    async def open(self):
        await self.runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # any free port
        await web.SockSite(self.runner, sock).start()
        return sock.getsockname()[1]

    async def forward(self, request):
        started = time.monotonic()
        body = await request.read()
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        service, action, write = classify(request.method, request.path, request.rel_url.raw_query_string,
                                         request.headers, body)
        call = {"method": request.method, "path": request.path, "service": service, "action": action, "write": write,
                "start": started}
        scope = SCOPE.search(request.headers.get("Authorization", ""))
        if scope:  # the endpoint AWS would have served it from: one per service and region
            call["region"] = scope.group(1)
        if self.group and self.group.frozen.is_set():
            await asyncio.sleep(3600)  # frozen: the client is about to be killed
        fault = self.fault_for(action, write, request.rel_url.raw_query_string, body)
        kind = fault and fault.get("kind", "error")
        if kind:
            call["fault"] = kind
        if kind == "latency":
            await asyncio.sleep(fault["ms"] / 1000)
        elif kind == "hang":
            await asyncio.sleep(fault.get("seconds", 120))
        elif kind == "reset" and not fault.get("after"):
            call["status"], call["end"] = 0, time.monotonic()
            self.calls.append(call)
            request.transport.abort()
            return web.Response(status=499)
        elif kind in ("error", "throttle", "5xx"):
            out = aws_error(request.headers, service, fault if kind == "error" else error_fault(kind, service, request.headers))
            # An answered call has an end: without one, a count of calls in flight never lets it go.
            call["status"], call["end"] = out.status, time.monotonic()
            self.calls.append(call)
            return out
        # Host and every signed header go through unchanged: SigV4 signs them. A later page's
        # request loses the proxy's token from its body, and with it a valid signature: moto
        # checks none unless IAM enforcement is on (tests that turn it on page with size 0).
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP]
        paging = None
        if self.page_size and action in AWS_PAGED and service != "prefect":
            paging = Paging(action, body, self.page_size)
            if paging.ours:
                body = paging.body
            else:
                paging = None
        elif self.page_size and service == "prefect" and request.method == "POST" and request.path.endswith("/filter"):
            body = clamp_limit(body, self.page_size)
        try:
            async with SESSION.request(request.method, URL(self.target + request.raw_path, encoded=True),
                                       headers=headers, data=body or None, allow_redirects=False,
                                       skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type")) as up:
                data = await up.read()
                if paging and up.status == 200:
                    data = paging.page(data)
                out = web.Response(status=up.status, reason=up.reason, body=data,
                                   headers=[(k, v) for k, v in up.headers.items() if k.lower() not in HOP])
        except (ClientError, asyncio.TimeoutError) as e:
            out = web.Response(status=502, text=f"sandbox proxy: {self.target} unreachable: {e!r}")
        call["status"] = out.status
        call["end"] = time.monotonic()
        self.calls.append(call)  # recorded before the client can see the response
        if kind == "reset":  # after: the upstream did the work, the client never hears of it
            request.transport.abort()
            return out
        if write and self.group is not None and out.status < 400:
            self.group.writes += 1
            if self.group.hold_after is not None and self.group.writes >= self.group.hold_after:
                self.group.frozen.set()
                await asyncio.sleep(3600)
        return out

    def fault_for(self, action, write, query, body):
        """The fault to inject for this call, counting `times` per action (only the calls it
        matches, with "match")."""
        fault = self.faults.get(action) or self.faults.get("*")
        if fault is None or (fault.get("writes_only") and not write):
            return None
        if "match" in fault and fault["match"] not in query and fault["match"] not in body.decode("utf-8", "replace"):
            return None
        used = self.counts.get(action, 0)
        if "times" in fault and used >= fault["times"]:
            return None
        self.counts[action] = used + 1
        return fault


CHANNELS = {}
SESSION = None  # one upstream client: connection reuse, no proxy from the environment (trust_env=False)


async def create(request):
    spec = await request.json()
    target = spec.get("target", "")
    if urlsplit(target).hostname not in ("127.0.0.1", "localhost"):
        raise web.HTTPBadRequest(text="target must be http://127.0.0.1:PORT: the sandbox never leaves this machine")
    channel = Channel(target, int(spec.get("latency_ms", 0)), spec.get("group"), spec.get("page_size", DEFAULT_PAGE_SIZE))
    port = await channel.open()
    CHANNELS[port] = channel
    return web.json_response({"port": port})


def channel_of(request):
    channel = CHANNELS.get(int(request.match_info["port"]))
    if channel is None:
        raise web.HTTPNotFound(text="no such channel")
    return channel


async def calls(request):
    return web.json_response(channel_of(request).calls)


async def set_faults(request):
    channel = channel_of(request)
    channel.faults, channel.counts = await request.json(), {}
    return web.json_response({"faults": len(channel.faults)})


async def set_paging(request):
    channel = channel_of(request)
    channel.page_size = (await request.json()).get("page_size")
    return web.json_response({"page_size": channel.page_size})


async def hold(request):
    group = GROUPS.setdefault(request.match_info["name"], Group())
    group.hold_after = (await request.json())["after_writes"]
    return web.json_response({"writes": group.writes})


async def delete(request):
    channel = channel_of(request)
    del CHANNELS[int(request.match_info["port"])]
    await channel.runner.cleanup()
    return web.json_response({"closed": True})


async def health(_):
    return web.Response(text="ok")


async def lifecycle(_app):
    global SESSION
    SESSION = ClientSession(auto_decompress=False, timeout=ClientTimeout(total=300, sock_connect=10))
    yield
    for channel in list(CHANNELS.values()):
        await channel.runner.cleanup()
    await SESSION.close()


if __name__ == "__main__":
    admin = web.Application()
    admin.cleanup_ctx.append(lifecycle)
    admin.add_routes([web.post("/channels", create), web.get("/channels/{port}/calls", calls),
                      web.put("/channels/{port}/faults", set_faults),
                      web.put("/channels/{port}/paging", set_paging),
                      web.put("/groups/{name}/hold", hold),
                      web.delete("/channels/{port}", delete), web.get("/health", health)])
    web.run_app(admin, host="127.0.0.1", port=int(sys.argv[1]), access_log=None)
