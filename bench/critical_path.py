"""The lower bound of a pushpool run: its longest chain of dependent API round trips.

Every API call costs at least one injected latency, and calls that depend on one another's
answers cannot overlap, so no implementation of the same plan can be faster than

    (preamble + observe chain + apply chain) x latency

where, in round trips (RT):

- preamble: 1 RT. The credential check (sts:GetCallerIdentity) and the read of the pool (its
  type picks the blueprint) need nothing from one another, so they run side by side.
- observe chain: every node is observed at once, but a node whose decision needs another's
  observation waits for it (a policy's PassRole statement needs the role's ARN; the network
  nodes need the VPC's id; the pool's job variables need every resource they name). A node's
  observation ends at max(its own independent reads, the observations it waits for) plus the
  reads it can only make once those are known (the gateway attached to *that* VPC).
- apply chain: a node's create/update starts once every node in its `after` list (explicit
  plus the `@node.attr` references of its data, as src/blueprint.rs adds them) is applied;
  reused nodes are done from the start. Its weight is the number of sequential calls its
  create/update makes (CreateRole, then AttachRolePolicy and PutRolePolicy side by side: 2).
  The plan must be complete before the first write (it is shown and confirmed), so the apply
  chain starts after the observe chain.

The weights are read off the node implementations (src/clouds/aws/*.rs, src/prefect/nodes/*.rs)
and are the minimum each needs when nothing fails or is retried: when
those change, this file must follow. What the bound leaves out: process start, CPU time, the
servers' own processing time, and pushpool's bookkeeping around an apply (the apply marker
created before it and marked done after it, the access-key mark removed once the block holds
the key, which runs inside the apply off its critical path, the ECR token for `docker login`,
read during the apply): as_coded() lists those as pushpool runs them.
"""

import json
import tomllib
from pathlib import Path


def _observe(kind, params, change, plan, end):
    """(RT at which node's observation ends, the dependency that decided it or None), given
    end(dep) for the observations it waits for. change is the node's planned change (create:
    the object is missing); plan maps every node id to its change."""
    exists = change["action"] != "create"
    dep = lambda key: params[key]  # the node a param names, e.g. vpc = "vpc"

    def after(*waits, own=0, then=0):
        """Ends at max(own independent reads, the waited-for observations) + then."""
        best = max(((end(d), d) for d in waits), default=(0, None))
        return (best[0] + then, best[1]) if best[0] >= own else (own + then, None)

    if kind.startswith("aws.") and kind not in ("aws.iam_role", "aws.iam_user", "aws.iam_policy", "aws.iam_access_key",
                                                "aws.ecs_cluster", "aws.ecr_repository", "aws.vpc"):
        vpc = plan[dep("vpc")]
        default = bool(vpc["attributes"].get("default"))
        own_vpc = vpc["action"] != "create" and not default  # pushpool's VPC, with an id
    if kind == "aws.iam_role":  # GetRole; if it exists, its attached and inline policies side by side
        return (2 if exists else 1), None
    if kind == "aws.iam_user":  # GetUser
        return 1, None
    if kind == "aws.iam_policy":  # GetPolicy (then GetPolicyVersion) beside the attachment; needs what its
        return after(*_node_refs(params.get("document"), plan), own=2 if exists else 1)  # document names (the role's ARN)
    if kind == "aws.iam_access_key":  # the block beside ListAccessKeys; needs the user's observation
        return after(dep("user"), own=1)
    if kind == "prefect.block":  # the document; a missing one then needs its type, then the type's schemas
        return after(*_node_refs(params.get("data"), plan), own=1 if exists else 3)
    if kind in ("aws.ecs_cluster", "aws.ecr_repository"):  # DescribeClusters / DescribeRepositories
        return 1, None
    if kind == "aws.vpc":  # DescribeVpcs; the default VPC's tables and subnets only when it is a candidate
        return 1 + _default_vpc_reads(change), None
    if kind == "aws.internet_gateway":  # after the VPC (if it exists): the gateway attached to it,
        if default or not own_vpc:      # and when there is none, a detached one by name
            return after(dep("vpc"))
        return after(dep("vpc"), then=1 + (1 if change["action"] != "reuse" else 0))
    if kind == "aws.subnets":  # after the VPC: its subnets (if it has an id), then the region's
        if default:                # zones only when some are missing; the default VPC's: known
            return after(dep("vpc"))
        return after(dep("vpc"), then=(1 if own_vpc else 0) + (1 if change["action"] != "reuse" else 0))
    if kind == "aws.route_table":  # the table by name once the VPC is known, beside gateway and subnets
        table_end = end(dep("vpc")) + (1 if own_vpc else 0)
        return after(dep("internet_gateway"), dep("subnets"), own=table_end)
    if kind == "aws.security_group":  # after the VPC: the group by name in it (any VPC with an id)
        return after(dep("vpc"), then=1 if vpc["action"] != "create" else 0)
    if kind == "prefect.profile_setting":  # a local file; needs the repository's registry
        return after(*_node_refs(params.get("registry"), plan))
    if kind == "prefect.work_pool":  # read in the preamble (memoised); needs what its job variables name
        return after(*_node_refs(params.get("job_variables"), plan))
    raise KeyError(f"no observation weights for kind {kind}")


def _node_refs(value, plan):
    return sorted(r for r in _refs(value, set()) if r in plan)


def _default_vpc_reads(change):
    """1 when the default VPC's route tables and subnets are read (it is a candidate: no VPC of
    pushpool's exists), else 0."""
    if change["attributes"].get("default"):
        return 1
    if change["action"] == "create":
        return 0 if change["reason"].startswith("the account has no default VPC") else 1
    return 0


def _apply(kind, change):
    """Sequential calls of one node's create/update (0 for a reuse)."""
    # Since plan format 2 the flags an observation leaves for its apply are `hints`.
    action, attrs = change["action"], {**change["attributes"], **change.get("hints", {})}
    if action == "reuse":
        return 0
    create = action == "create"
    table = {
        # CreateRole, then AttachRolePolicy and PutRolePolicy side by side. An update: the
        # trust policy first if it drifted, then the same pair.
        "aws.iam_role": 2 if create or attrs.get("trust_drift") else 1,
        "aws.iam_user": 1,  # CreateUser
        # CreatePolicy then AttachUserPolicy; an update: ListPolicyVersions, CreatePolicyVersion
        # (a DeletePolicyVersion between them at IAM's limit of 5), AttachUserPolicy if detached.
        "aws.iam_policy": 2 if create else (2 if attrs.get("drifted") else 0) + (0 if attrs.get("attached") else 1),
        # TagUser (the pending-key mark) then CreateAccessKey; an update clears an old mark.
        # (Since the commit after 955ced0 a user created in the same run carries the mark from
        # CreateUser, so that create is 1; the IAM chain is not the critical path either way.)
        "aws.iam_access_key": 2 if create else 1,
        "prefect.block": 1,  # POST or PATCH the document
        "aws.ecs_cluster": 1,  # CreateCluster
        "aws.ecr_repository": 1,  # CreateRepository
        "aws.vpc": 1,  # CreateVpc
        # CreateInternetGateway then AttachInternetGateway; an update only attaches.
        "aws.internet_gateway": 2 if create else 1,
        # CreateSubnet per zone, side by side.
        "aws.subnets": 1,
        # CreateRouteTable, then CreateRoute and the AssociateRouteTable calls side by side; an
        # update re-reads the table first instead of creating it.
        "aws.route_table": 2,
        "aws.security_group": 1,  # CreateSecurityGroup
        "prefect.profile_setting": 0,  # a local file
        "prefect.work_pool": 1,  # POST or PATCH the pool (its read is memoised)
    }
    return table[kind]


def _refs(value, found):
    """Node ids named by "@node.attr" strings inside value (as src/engine/reference.rs)."""
    if isinstance(value, str) and value.startswith("@") and "." in value:
        found.add(value[1:].split(".", 1)[0])
    elif isinstance(value, dict):
        for v in value.values():
            _refs(v, found)
    elif isinstance(value, list):
        for v in value:
            _refs(v, found)
    return found


def load_blueprint(path):
    """Node id -> (kind, params, after) of a blueprint, `after` completed with the references
    of the node's data as src/blueprint.rs does."""
    data = tomllib.loads(Path(path).read_text())
    ids = {n["id"] for n in data["node"]}
    nodes = {}
    for n in data["node"]:
        params = {k: v for k, v in n.items() if k not in ("id", "kind", "name", "says", "after")}
        if n["kind"] == "aws.iam_policy":  # the document file, whose "@node.attr" strings are references too
            document = Path(path).resolve().parent.parent / "policies" / "aws" / params["document"]
            params["document"] = json.loads(document.read_text())
        after = list(n.get("after", []))
        after += sorted(r for r in _refs(params, set()) if r in ids and r not in after)
        nodes[n["id"]] = (n["kind"], params, after)
    return nodes


def bound(plan_doc, blueprint_path):
    """The lower bound of applying plan_doc (pushpool's --output json), in round trips, with
    the critical paths: {"preamble", "observe", "apply", "total", "observe_path", "apply_path",
    "writes"}."""
    nodes = load_blueprint(blueprint_path)
    plan = {c["id"]: c for c in plan_doc["changes"]}
    missing = set(plan) ^ set(nodes)
    if missing:
        raise ValueError(f"plan and blueprint disagree on nodes: {sorted(missing)}")

    observed = {}  # id -> (RT at which its observation ends, path)

    def observe_end(node):
        if node not in observed:
            kind, params, _ = nodes[node]
            rt, via = _observe(kind, params, plan[node], plan, lambda d: observe_end(d)[0])
            path = observe_end(via)[1] if via else []
            observed[node] = (rt, path + [f"{node} (ends at {rt} RT)"])
        return observed[node]

    applied = {}

    def apply_end(node):
        if node not in applied:
            weight = _apply(nodes[node][0], plan[node])
            if weight == 0:  # reused: done from the start
                applied[node] = (0, [])
            else:
                deps = [apply_end(d) for d in nodes[node][2]]
                dep_end, dep_path = max(deps, default=(0, []), key=lambda x: x[0])
                applied[node] = (dep_end + weight, dep_path + [f"{node} {plan[node]['action']} ({weight} RT)"])
        return applied[node]

    obs_rt, obs_path = max((observe_end(n) for n in nodes), key=lambda x: x[0])
    app_rt, app_path = max((apply_end(n) for n in nodes), key=lambda x: x[0])
    writes = any(c["action"] != "reuse" for c in plan_doc["changes"])
    return {
        "preamble": 1,
        "observe": obs_rt,
        "apply": app_rt if writes else 0,
        "total": 1 + obs_rt + (app_rt if writes else 0),
        "observe_path": obs_path,
        "apply_path": app_path if writes else [],
        "writes": writes,
    }


def as_coded(b):
    """pushpool's own sequential chain around the same plan (src/provision/mod.rs, prefect/lock.rs),
    for comparison with the bound: what its bookkeeping adds, one step after another."""
    steps = [("pool read beside sts:GetCallerIdentity and the apply markers' read", 1), ("observe", b["observe"])]
    if b["writes"]:
        steps += [
            ("apply marker: POST /variables/ (refused if another run applied since the plan)", 1),
            ("apply (iam:UntagUser and ecr:GetAuthorizationToken inside it, off its critical path)", b["apply"]),
            ("side by side: marker marked done (PATCH /variables/name/...), `docker login`", 1),
        ]
    return steps
