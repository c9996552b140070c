"""The fleet benchmark of issue 23: a pools file of many `ecs:push` pools over several AWS
accounts (AWS CLI profiles with role_arn + source_profile, which moto serves through
sts:AssumeRole) and regions, planned, applied and applied again, at each added latency.

Run it through scripts/bench.sh (`--scenarios fleet`), which starts a sandbox of its own; this
script runs under the sandbox's Python. Per latency it resets moto and pushpool's Prefect
variables, writes the AWS config and the pools file into a fresh HOME, and runs, each behind
the same two counting proxy channels (AWS and Prefect) that add the latency to every call and
answer lists whole, as the servers give them:

- plan_one: pushpool plan --file one-pool.toml (the first pool alone: the round trips the
            fleet's plan is held to)
- plan:   pushpool plan --file pools.toml
- apply:  pushpool apply --file pools.toml --yes
- rerun:  the same apply again (it must write nothing)

With --fail-one, per latency two more phases follow, on a reset moto and new pool names:

- fail_apply:  the apply with one pool's CreateUser refused (AccessDenied, the proxy's fault
               matched to that pool's user, so one pool in one account): it must exit non-zero
               and name exactly that pool as failed, the others applied in full
- fail_rerun:  the fault cleared, the same apply again: it must converge (exit 0)

For each it records the wall clock, the peak RSS and CPU time (GNU time), every call (reads,
writes, and the most in flight at once on each channel, from the proxy's start and end times;
AWS's per endpoint, by the service and region a call is signed for), the calls in sequence
(the longest chain of calls each started after the one before it ended),
and, across latencies, the sequential round trips: (time at the highest latency - time at 0 ms)
/ that latency. It writes results.json and report.md into the output directory.
"""

import argparse
import collections
import datetime
import json
import re
import sys
from pathlib import Path

import boto3

import bench
from bench import ROOT, Run, Sandbox, http

PREFIX = "fleet"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pushpool", required=True, help="the pushpool binary")
    p.add_argument("--pools", type=int, default=100, help="ecs:push pools in the pools file (default 100)")
    p.add_argument("--accounts", type=int, default=10, help="AWS accounts, one profile each (default 10)")
    p.add_argument("--regions", default="us-east-1,us-west-2", help="regions, comma-separated (default us-east-1,us-west-2)")
    p.add_argument("--latency", default="0,50", help="ms added to every AWS and Prefect call, comma-separated (default 0,50)")
    p.add_argument("--parallelism", type=int, help="pushpool's --parallelism (default: its own, 10)")
    p.add_argument("--out", help="output directory (default bench/results/fleet-<date-time>)")
    p.add_argument("--fail-one", action="store_true",
                   help="then apply once more with one pool's write refused, and resume (phases fail_apply, fail_rerun)")
    # bench.sh's own options, accepted so that one command line serves both harnesses.
    p.add_argument("--scenarios", default="fleet", help=argparse.SUPPRESS)
    p.add_argument("--runs", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--plot-python", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    args.latencies = sorted({int(x) for x in args.latency.split(",") if x.strip()})
    if args.pools < 1 or args.accounts < 1 or not args.regions:
        p.error("--pools, --accounts and --regions need at least one each")
    if args.fail_one and args.pools < 2:
        p.error("--fail-one needs --pools 2 or more: one pool fails, the others must not")
    return args


def account_id(n):
    """Account n's id: twelve digits, fixed so that runs compare."""
    return f"{100000000000 + n + 1:012d}"


def write_aws_config(home, accounts):
    """A profile per account (role_arn into it, source_profile `base`), as a platform team's
    AWS Organization looks from the CLI."""
    aws = home / ".aws"
    aws.mkdir(exist_ok=True)
    (aws / "credentials").write_text("[base]\naws_access_key_id = bench-base\naws_secret_access_key = bench-base-secret\n")
    profiles = [f"[profile acct-{n}]\nrole_arn = arn:aws:iam::{account_id(n)}:role/platform\nsource_profile = base\n" for n in range(accounts)]
    (aws / "config").write_text("\n".join(profiles))


def pool_name(tag, i):
    """Pool i's name, which its IAM user and policy take too."""
    return f"{PREFIX}{tag}-{i:03d}"


def write_pools_file(path, tag, args):
    """Pool i lives in account i mod A and region (i div A) mod R. Each pool mints a key of its
    own, so each has its own IAM user and policy (IAM allows a user two keys); the cluster, the
    network, the execution role and the repository are shared by the pools of an account and
    region, as with the defaults."""
    lines = []
    for i in range(args.pools):
        account, region = i % args.accounts, args.regions[(i // args.accounts) % len(args.regions)]
        name = pool_name(tag, i)
        lines.append(f'[[pool]]\nname = "{name}"\ntype = "ecs:push"\nprofile = "acct-{account}"\nregion = "{region}"\n'
                     f'set = {{ user = "{name}", policy = "{name}" }}\n')
    path.write_text("\n".join(lines))


class FleetRun(Run):
    """A pushpool run whose AWS side comes from the profiles of its HOME."""

    def env(self):
        env = super().env()
        env["AWS_CONFIG_FILE"] = str(self.home / ".aws" / "config")
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.home / ".aws" / "credentials")
        return env


def reset(sandbox, args):
    """moto as new, each account's backends warmed up, and no pushpool variable (records,
    apply markers) left in Prefect."""
    http("POST", f"{sandbox.moto}/moto-api/reset")
    warm_up(sandbox, args)
    while True:
        _, variables = http("POST", f"{sandbox.prefect}/variables/filter", {"variables": {"name": {"like_": "pushpool_"}}, "limit": 200})
        if not variables:
            return
        for v in variables:
            http("DELETE", f"{sandbox.prefect}/variables/name/{v['name']}", ok=(204, 404))


def warm_up(sandbox, args):
    """moto builds each account's backends on first use (IAM loads about 1,000 managed policies
    per account, seconds each): done here, so that the timed runs measure pushpool and the
    servers' answers, not moto's start-up. Through boto3 straight to moto, not the channels."""
    sts = sandbox.client("sts")
    for n in range(args.accounts):
        credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id(n)}:role/platform", RoleSessionName="bench-warm-up")["Credentials"]
        keys = {"aws_access_key_id": credentials["AccessKeyId"], "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"]}
        boto3.client("iam", endpoint_url=sandbox.moto, region_name=args.regions[0], **keys).list_users()
        for region in args.regions:
            for service, call in (("ec2", "describe_vpcs"), ("ecs", "list_clusters"), ("ecr", "describe_repositories")):
                getattr(boto3.client(service, endpoint_url=sandbox.moto, region_name=region, **keys), call)()


def peak_in_flight(calls):
    """The most calls in flight at once: ends before starts at equal times."""
    events = sorted([(c["start"], 1) for c in calls if "start" in c] + [(c["end"], -1) for c in calls if "end" in c])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def peak_per_endpoint(calls):
    """The most calls in flight at once at one endpoint, and which: AWS's by the service and
    region they are signed for (the endpoint AWS would serve them from; the sandbox serves every
    one from one address), Prefect's at its one."""
    endpoints = collections.defaultdict(list)
    for c in calls:
        endpoints[f"{c['service']} {c.get('region', '')}".strip()].append(c)
    if not endpoints:
        return 0, ""
    peak, endpoint = max((peak_in_flight(group), name) for name, group in endpoints.items())
    return peak, endpoint


def longest_chain(calls):
    """The most calls of `calls` one after the other, each started after the one before had
    ended: the sequential round trips as the proxy saw them, which moto's own CPU time (calls
    queueing on it) does not blur as it does the wall clock's."""
    calls = sorted((c["start"], c["end"]) for c in calls if "start" in c and "end" in c)
    depth = []
    for i, (start, end) in enumerate(calls):
        depth.append(1 + max((depth[j] for j in range(i) if calls[j][1] <= start), default=0))
    return max(depth, default=0)


def measure(run, sandbox, channels, argv):
    marks = {name: len(sandbox.calls(port)) for name, port in channels.items()}
    seconds, code, usage, output = run.execute(argv)
    result = {"seconds": round(seconds, 3), "exit": code, **usage}
    every = []
    for name, port in channels.items():
        calls = sandbox.calls(port)[marks[name]:]
        every += calls
        peak, busiest = peak_per_endpoint(calls)
        result[name] = {
            "calls": len(calls),
            "writes": sum(1 for c in calls if c["write"] and not (c["service"] == "sts" and c["action"] == "AssumeRole")),
            "assume_role": sum(1 for c in calls if c["service"] == "sts" and c["action"] == "AssumeRole"),
            "errors": sum(1 for c in calls if c["status"] >= 400),
            "peak_in_flight": peak_in_flight(calls),
            "peak_per_endpoint": peak,
            "busiest_endpoint": busiest,
            "by_action": dict(collections.Counter(f"{c['service']} {c['action']}" for c in calls).most_common()),
        }
    result["chain"] = longest_chain(every)
    if code != 0:  # what failed and why, what exists, the fix: the whole output of a failed run
        result["output"] = output
    return result


def one_latency(sandbox, args, latency):
    reset(sandbox, args)
    channels = {"aws": sandbox.channel(sandbox.moto, latency), "prefect": sandbox.channel(sandbox.prefect.removesuffix("/api"), latency)}
    # Lists answered as moto and the server give them (tests page by 2 to prove paging; real
    # AWS pages by 100 or more and Prefect by 200): the calls counted are a real run's.
    for port in channels.values():
        http("PUT", f"{sandbox.proxy}/channels/{port}/paging", {"page_size": 0})
    run = FleetRun(sandbox, "pushpool", args.pushpool, f"http://127.0.0.1:{channels['aws']}", f"http://127.0.0.1:{channels['prefect']}/api")
    try:
        write_aws_config(run.home, args.accounts)
        pools = run.home / "pools.toml"
        write_pools_file(pools, latency, args)
        # The first pool alone: the plan whose round trips the fleet's are held to.
        one = run.home / "one-pool.toml"
        write_pools_file(one, latency, argparse.Namespace(**{**vars(args), "pools": 1}))
        flags = [] if args.parallelism is None else ["--parallelism", str(args.parallelism)]
        phases = {
            "plan_one": [args.pushpool, *flags, "plan", "--file", str(one)],
            "plan": [args.pushpool, *flags, "plan", "--file", str(pools)],
            "apply": [args.pushpool, *flags, "apply", "--file", str(pools), "--yes"],
            "rerun": [args.pushpool, *flags, "apply", "--file", str(pools), "--yes"],
        }
        results = {}
        for phase, argv in phases.items():
            results[phase] = measure(run, sandbox, channels, argv)
            announce(latency, phase, results[phase])
        if args.fail_one:
            results.update(fail_one(run, sandbox, channels, args, latency, flags))
        return results
    finally:
        for port in channels.values():
            sandbox.close(port)
        run.cleanup()


def announce(latency, phase, r):
    print(f"fleet: {latency} ms {phase}: {r['seconds']} s, exit {r['exit']}, AWS {r['aws']['calls']} calls (peak {r['aws']['peak_per_endpoint']} per endpoint), "
          f"Prefect {r['prefect']['calls']} (peak {r['prefect']['peak_in_flight']})", flush=True)


# What a failed apply of several pools prints (src/provision/failure.rs, src/ui/pool_progress.rs).
FAILED_POOL = re.compile(r"^  - work pool '([^']+)':$", re.MULTILINE)
APPLIED_IN_FULL = re.compile(r"^  the other pools? w(?:ere|as) applied in full: ", re.MULTILINE)
TALLY = re.compile(r"\((\d+)/(\d+) pools done(?:, (\d+) failed)?\)")


def failed_pools(output):
    """The pools a failed apply's error names as failed, the tally of its last progress line
    ("done/total, failed"), and whether it says the others were applied in full."""
    tallies = TALLY.findall(output)
    tally = [int(n or 0) for n in tallies[-1]] if tallies else None
    return FAILED_POOL.findall(output), tally, bool(APPLIED_IN_FULL.search(output))


def fail_one(run, sandbox, channels, args, latency, flags):
    """Phases fail_apply and fail_rerun (see the module's docstring): a fresh apply of new pools
    (tag `<latency>f`) with the middle pool's CreateUser refused, then the fault cleared and the
    apply again. The fault matches the request's `UserName=<pool>&` (pushpool tags each user it
    creates, and the tags follow the name), so no other pool's user is refused."""
    reset(sandbox, args)
    tag, victim = f"{latency}f", args.pools // 2
    name = pool_name(tag, victim)
    pools = run.home / "pools-fail-one.toml"
    write_pools_file(pools, tag, args)
    argv = [args.pushpool, *flags, "apply", "--file", str(pools), "--yes"]
    fault = {"status": 403, "code": "AccessDenied", "message": f"injected: iam:CreateUser refused for {name}", "match": f"UserName={name}&"}
    http("PUT", f"{sandbox.proxy}/channels/{channels['aws']}/faults", {"CreateUser": fault})
    try:
        failed = measure(run, sandbox, channels, argv)
    finally:
        http("PUT", f"{sandbox.proxy}/channels/{channels['aws']}/faults", {})
    found, tally, others_in_full = failed_pools(failed.get("output", ""))
    failed.update({"expected_failed": [name], "failed_pools": found, "tally": tally,
                   "isolated": failed["exit"] != 0 and found == [name] and others_in_full
                   and tally == [args.pools - 1, args.pools, 1]})
    announce(latency, "fail_apply", failed)
    print(f"fleet: {latency} ms fail_apply: failed pools {found} (expected [{name!r}]), progress {tally}, "
          f"isolated: {failed['isolated']}", flush=True)
    resumed = measure(run, sandbox, channels, argv)
    announce(latency, "fail_rerun", resumed)
    return {"fail_apply": failed, "fail_rerun": resumed}


def round_trips(by_latency):
    """Sequential round trips per phase: what latency adds, over the latency."""
    low, high = min(by_latency), max(by_latency)
    if high == low:
        return {}
    return {phase: round((by_latency[high][phase]["seconds"] - by_latency[low][phase]["seconds"]) / ((high - low) / 1000), 1)
            for phase in by_latency[low]}


def report(results):
    a = results["args"]
    lines = [f"# Fleet benchmark: {a['pools']} ecs:push pools, {a['accounts']} accounts, regions {', '.join(a['regions'])}", "",
             f"pushpool: `{a['pushpool']}`; --parallelism {a['parallelism'] or 'default (10)'}; {results['started']}", "",
             "| latency | phase | exit | wall s | AWS calls | AssumeRole | AWS writes | AWS peak per endpoint | AWS peak, all endpoints | Prefect calls | Prefect writes | Prefect peak in flight | calls in sequence | peak RSS MB | CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for latency, phases in results["latencies"].items():
        for phase, r in phases.items():
            lines.append(f"| {latency} ms | {phase} | {r['exit']} | {r['seconds']} | {r['aws']['calls']} | {r['aws']['assume_role']} | {r['aws']['writes']} | "
                         f"{r['aws']['peak_per_endpoint']} ({r['aws']['busiest_endpoint']}) | {r['aws']['peak_in_flight']} | {r['prefect']['calls']} | {r['prefect']['writes']} | {r['prefect']['peak_in_flight']} | {r['chain']} | "
                         f"{r['peak_rss_kib'] / 1024:.1f} | {r['cpu_s']:.1f} |")
    fail_one = {latency: phases for latency, phases in results["latencies"].items() if "fail_apply" in phases}
    if fail_one:
        lines += ["", "One pool's CreateUser refused (fail_apply), then the fault cleared (fail_rerun):", ""]
        for latency, phases in fail_one.items():
            f, r = phases["fail_apply"], phases["fail_rerun"]
            lines.append(f"- {latency} ms: failed pools {', '.join(f['failed_pools']) or 'none'} (expected {', '.join(f['expected_failed'])}); "
                         f"progress {f['tally']} (done, total, failed); isolated: {f['isolated']}; "
                         f"the re-run exited {r['exit']} with {r['aws']['writes']} AWS and {r['prefect']['writes']} Prefect writes")
    if results["round_trips"]:
        lines += ["", "Sequential round trips ((time at the highest latency - time at the lowest) / the difference):", ""]
        lines += [f"- {phase}: {n}" for phase, n in results["round_trips"].items()]
    lines += ["", "Issue 23's targets:", ""] + [f"- {'met' if ok else '**missed**'}: {what}" for what, ok in targets(results)]
    return "\n".join(lines) + "\n"


def targets(results):
    """(what, met) for each of issue 23's targets this run measured."""
    a, by_latency, trips = results["args"], results["latencies"], results["round_trips"]
    every = [(latency, phase, r) for latency, phases in by_latency.items() for phase, r in phases.items()]
    budget = 2 * a["pools"] + 25 * a["accounts"] * len(a["regions"])
    calls = max(r["aws"]["calls"] + r["prefect"]["calls"] for _, phase, r in every if phase == "plan")
    bound = a["parallelism"] or 10
    peak = max(max(r["aws"]["peak_per_endpoint"], r["prefect"]["peak_in_flight"]) for _, _, r in every)
    highest = max(by_latency, key=int)
    plan_seconds = by_latency[highest]["plan"]["seconds"]
    rss = max(r["peak_rss_kib"] for _, _, r in every) / 1024
    converged = all(phases["apply"]["exit"] == 0 for phases in by_latency.values())
    quiet = all(not (phases["rerun"]["aws"]["writes"] or phases["rerun"]["prefect"]["writes"]) for phases in by_latency.values())
    found = [
        (f"plan calls {calls} <= 2 per pool + 25 per account and region = {budget}", calls <= budget),
        (f"at most {bound} requests in flight per endpoint: saw {peak}", peak <= bound),
        (f"plan under 5 s at {highest} ms per call: {plan_seconds} s", plan_seconds < 5),
        ("every apply converged (exit 0) and its re-run wrote nothing", converged and quiet),
        (f"peak memory under 100 MB: {rss:.1f} MB", rss < 100),
    ]
    if "plan" in trips and "plan_one" in trips:
        found.insert(1, (f"plan round trips by the clock {trips['plan']} <= one pool's {trips['plan_one']} + 2", trips["plan"] <= trips["plan_one"] + 2))
    # At the highest latency, where a call that starts after another ended waited for it (at
    # 0 ms, calls fall one after the other by chance as often as by need).
    chains = {phase: by_latency[highest][phase]["chain"] for phase in ("plan", "plan_one")}
    found.insert(2, (f"plan calls in sequence at {highest} ms (at the proxy) {chains['plan']} <= one pool's {chains['plan_one']} + 2",
                     chains["plan"] <= chains["plan_one"] + 2))
    isolated = [phases["fail_apply"]["isolated"] for phases in by_latency.values() if "fail_apply" in phases]
    if isolated:
        found.append(("one pool's refused write failed that pool alone, named with what was built for it", all(isolated)))
    return found


def main():
    args = parse_args()
    sandbox = Sandbox()
    bench.DEAD_PROXY = bench.DeadProxy()
    started = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"fleet-{started}"
    out.mkdir(parents=True, exist_ok=True)
    by_latency = {latency: one_latency(sandbox, args, latency) for latency in args.latencies}
    results = {
        "started": started,
        "args": {"pools": args.pools, "accounts": args.accounts, "regions": args.regions, "parallelism": args.parallelism, "pushpool": args.pushpool,
                 "fail_one": args.fail_one},
        "latencies": {str(k): v for k, v in by_latency.items()},
        "round_trips": round_trips(by_latency),
        "outbound_attempts": bench.DEAD_PROXY.attempts,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "report.md").write_text(report(results))
    print(report(results))
    print(f"fleet: wrote {out}/report.md and results.json")
    failed = [f"{lat} ms {phase}" for lat, phases in by_latency.items() for phase, r in phases.items()
              if (not r["isolated"] if phase == "fail_apply" else r["exit"] != 0)]
    rerun_writes = [lat for lat, phases in by_latency.items() if phases["rerun"]["aws"]["writes"] or phases["rerun"]["prefect"]["writes"]]
    if failed or rerun_writes:
        print(f"fleet: failed runs {failed}; re-runs that wrote: {rerun_writes}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
