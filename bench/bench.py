"""Benchmark of issue 5: pushpool against Prefect's own `prefect work-pool provision-infra`.

Run it through scripts/bench.sh, which builds pushpool, starts a sandbox of its own (moto, a
Prefect server and the counting proxy on 127.0.0.1) and a virtualenv with matplotlib. This
script runs under the sandbox's Python (boto3 and prefect-aws are there) and:

- per scenario (fresh, rerun, plan), latency and repetition, prepares the same starting state
  for each tool, then runs it behind two fresh proxy channels (AWS and Prefect) that add the
  latency to every call and record it;
- alternates the tools run by run (pair i starts with the reference when i is even), so that a
  slow drift of the machine does not favour one of them;
- writes report.md, results.json and, through plot.py, times.png into the output directory.

Nothing is reached outside 127.0.0.1: every endpoint the tools are given is a local one, and
their HTTP(S)_PROXY is a local listener that refuses everything and counts the attempts (with
NO_PROXY for 127.0.0.1).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3

import critical_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BLUEPRINT = ROOT / "plans" / "ecs-push.toml"
POOL = "bench-ecs"
BLOCK = f"{POOL}-aws-credentials"
REGION = "us-east-1"
TOOLS = ("reference", "pushpool")
SCENARIOS = ("fresh", "rerun", "plan")
# The reference passes the registry password on argv (`docker login -p`), which the project's
# fake docker refuses on purpose; it gets this permissive fake instead (bench/fake-docker).
REFERENCE_FAKE_BIN = HERE / "fake-docker"
RUN_TIMEOUT = 900
# GNU time measures peak RSS and CPU time of the tool alone (see Run.execute).
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

# Never through a proxy of the caller's environment: the sandbox is all local.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, ok=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    for attempt in range(8):
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with HTTP.open(req, timeout=60) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        # The Prefect server answers 503 while SQLite is busy (right after a burst of writes).
        if status not in (429, 502, 503, 504):
            break
        time.sleep(0.2 * 2 ** attempt)
    if ok is not None and status not in ok:
        raise RuntimeError(f"{method} {url} -> {status}: {text[:300]!r}")
    return status, json.loads(text) if text else None


def cpu_busy(window=0.25):
    """The fraction of all CPUs busy over window seconds, from /proc/stat."""

    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(window)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def settle(threshold=0.10, limit=5.0):
    """Waits (up to limit s) until the machine is nearly idle: after a reset or a provisioning
    the servers keep working for a while (the Prefect server's event handling, SQLite), and a
    run that starts then pays for it. Returns the last busy fraction, recorded with each run."""
    deadline = time.perf_counter() + limit
    busy = cpu_busy()
    while busy > threshold and time.perf_counter() < deadline:
        busy = cpu_busy()
    return busy


class Sandbox:
    """The URLs of the running sandbox (scripts/sandbox.sh env)."""

    def __init__(self):
        env = os.environ
        self.moto = env["PUSHPOOL_SANDBOX_MOTO_URL"]
        self.prefect = env["PUSHPOOL_SANDBOX_PREFECT_URL"]  # .../api
        self.proxy = env["PUSHPOOL_SANDBOX_PROXY_URL"]
        self.python = env["PUSHPOOL_SANDBOX_PYTHON"]
        self.fake_bin = env["PUSHPOOL_SANDBOX_FAKE_BIN"]
        self.venv_bin = str(Path(self.python).parent)

    def client(self, service, endpoint=None):
        return boto3.client(service, endpoint_url=endpoint or self.moto, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    # --- starting states ---------------------------------------------------------------

    def reset_aws(self):
        """A fresh moto account with no default VPC in the region: both tools then build the
        whole network (the reference skips the VPC when any default VPC exists)."""
        http("POST", f"{self.moto}/moto-api/reset")
        ec2 = self.client("ec2")
        for vpc in ec2.describe_vpcs()["Vpcs"]:
            vid = vpc["VpcId"]
            for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vid]}])["Subnets"]:
                ec2.delete_subnet(SubnetId=s["SubnetId"])
            for g in ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vid]}])["InternetGateways"]:
                ec2.detach_internet_gateway(InternetGatewayId=g["InternetGatewayId"], VpcId=vid)
                ec2.delete_internet_gateway(InternetGatewayId=g["InternetGatewayId"])
            ec2.delete_vpc(VpcId=vid)
        assert not ec2.describe_vpcs()["Vpcs"], "the default VPC is still there"
        # moto builds each service's backend on first use (IAM loads ~1,000 managed policies):
        # do it here, so that neither tool pays for it inside its timed run.
        self.client("sts").get_caller_identity()
        self.client("iam").list_users()
        self.client("ecs").list_clusters()
        self.client("ecr").describe_repositories()

    def reset_prefect(self):
        """No pool, block or pushpool variable left by an earlier run; then the pool, created
        over REST as the issue says (the stock `create --type ecs:push` refuses on a
        self-hosted server), with the `ecs` worker's default base job template."""
        api = self.prefect
        http("DELETE", f"{api}/work_pools/{POOL}", ok=(204, 404))
        status, doc = http("GET", f"{api}/block_types/slug/aws-credentials/block_documents/name/{BLOCK}", ok=(200, 404))
        if status == 200:
            http("DELETE", f"{api}/block_documents/{doc['id']}", ok=(204, 404))
        _, variables = http("POST", f"{api}/variables/filter", {"variables": {"name": {"like_": "pushpool_"}}})
        for v in variables:
            http("DELETE", f"{api}/variables/name/{v['name']}", ok=(204, 404))
        http("POST", f"{api}/work_pools/", {"name": POOL, "type": "ecs:push", "base_job_template": ecs_template(), "is_paused": False})

    # --- proxy channels ----------------------------------------------------------------

    def channel(self, target, latency_ms):
        _, out = http("POST", f"{self.proxy}/channels", {"target": target, "latency_ms": latency_ms})
        return out["port"]

    def calls(self, port):
        return http("GET", f"{self.proxy}/channels/{port}/calls")[1]

    def close(self, port):
        http("DELETE", f"{self.proxy}/channels/{port}", ok=None)


class DeadProxy:
    """What both tools get as HTTP(S)_PROXY: a local listener that answers every request with
    a refusal and remembers what was asked, so that the report can say whether anything tried
    to leave the machine (the sandbox's own servers use the dead port 9 instead)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.attempts = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(2)
                try:
                    line = conn.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    line = "?"
                self.attempts.append(line)


DEAD_PROXY = None
_TEMPLATE = None


def ecs_template():
    """The `ecs` worker's default base job template, from the installed prefect-aws: the
    server's collections view could try to fetch it from the internet."""
    global _TEMPLATE
    if _TEMPLATE is None:
        from prefect_aws.workers.ecs_worker import ECSWorker
        _TEMPLATE = ECSWorker.get_default_base_job_template()
    return _TEMPLATE


class Run:
    """One tool's working directory and environment for one repetition."""

    def __init__(self, sandbox, tool, pushpool, aws_url, prefect_url):
        self.sandbox, self.tool, self.pushpool = sandbox, tool, pushpool
        self.home = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-"))
        (self.home / ".prefect").mkdir()
        self.aws_url, self.prefect_url = aws_url, prefect_url
        self.profile(prefect_url)

    def profile(self, prefect_url):
        """The Prefect profile both tools read (and write the build namespace into)."""
        path = self.home / ".prefect" / "profiles.toml"
        lines = path.read_text().splitlines() if path.exists() else ['active = "bench"', "", "[profiles.bench]", 'PREFECT_API_URL = ""']
        lines = [f'PREFECT_API_URL = "{prefect_url}"' if l.startswith("PREFECT_API_URL") else l for l in lines]
        path.write_text("\n".join(lines) + "\n")
        self.prefect_url = prefect_url

    def env(self):
        fake = str(REFERENCE_FAKE_BIN) if self.tool == "reference" else self.sandbox.fake_bin
        env = {
            "PATH": f"{fake}:{self.sandbox.venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "PREFECT_HOME": str(self.home / ".prefect"),
            "FAKE_DOCKER_LOG": str(self.home / "docker.log"),
            "PUSHPOOL_SANDBOX_PYTHON": self.sandbox.python,  # the project's fake docker runs it
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(self.home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[key] = DEAD_PROXY.url  # refuses everything: nothing leaves the machine
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        return env

    def argv(self, scenario):
        if self.tool == "reference":
            return [str(Path(self.sandbox.venv_bin) / "prefect"), "work-pool", "provision-infra", POOL]
        extra = ["--dry-run"] if scenario == "plan" else ["--yes"]
        return [self.pushpool, "work-pool", "provision-infra", POOL, *extra]

    def execute(self, argv):
        """Runs argv to completion: (seconds, exit code, {"peak_rss_kib", "cpu_s"}, output)."""
        out, usage_file = self.home / "out.txt", self.home / "usage.txt"
        # ru_maxrss counts the image a child was forked from until it execs: the tool must be
        # forked from a small process (GNU time), not from this one, which holds boto3 and prefect.
        if TIME:
            wrapped = [TIME, "-f", "%M %U %S", "-o", str(usage_file), *argv]
        else:
            wrapped = [sys.executable, "-I", "-S", str(HERE / "rusage.py"), str(usage_file), *argv]
        with open(out, "wb") as sink:
            self.spawned = time.monotonic()  # the proxy stamps calls with this clock (CLOCK_MONOTONIC)
            start = time.perf_counter()
            # A session of its own, so that a run past the timeout is killed with its children.
            child = subprocess.Popen(wrapped, env=self.env(), stdin=subprocess.DEVNULL, stdout=sink,
                                     stderr=subprocess.STDOUT, start_new_session=True)
            # Not wait(timeout=...): that polls, with sleeps growing to 50 ms, which would add up
            # to 50 ms to the measured time. A blocking wait returns as the child exits.
            killer = threading.Timer(RUN_TIMEOUT, os.killpg, (child.pid, 9))
            killer.start()
            code = child.wait()
            elapsed = time.perf_counter() - start
            killer.cancel()
            self.exited = time.monotonic()
        output = out.read_text(errors="replace")
        try:  # the last line (GNU time writes "Command exited with non-zero status N" before it)
            rss, user, system = usage_file.read_text().split()[-3:]
            usage = {"peak_rss_kib": int(rss), "cpu_s": float(user) + float(system)}
        except (OSError, ValueError):
            usage = {"peak_rss_kib": 0, "cpu_s": 0.0}
        return elapsed, code, usage, output

    def cleanup(self):
        shutil.rmtree(self.home, ignore_errors=True)


def timeline(calls, spawned, exited):
    """What the proxy's call times say about one run: the longest chain of calls that ran one
    after another (each starting after the previous one ended), the time from spawn to the
    first call, and from the last answer to exit."""
    timed = sorted((c for c in calls if "start" in c and "end" in c), key=lambda c: c["end"])
    if not timed:
        return {}
    chain = []
    for i, c in enumerate(timed):
        chain.append(1 + max((chain[j] for j in range(i) if timed[j]["end"] <= c["start"]), default=0))
    return {"sequential_calls": max(chain),
            "before_first_call_s": round(min(c["start"] for c in timed) - spawned, 4),
            "api_span_s": round(max(c["end"] for c in timed) - min(c["start"] for c in timed), 4),
            "after_last_call_s": round(exited - max(c["end"] for c in timed), 4)}


def summarize_calls(calls):
    out = {}
    for side in ("aws", "prefect"):
        mine = [c for c in calls if (c["service"] == "prefect") == (side == "prefect")]
        out[side] = {"reads": sum(not c["write"] for c in mine), "writes": sum(c["write"] for c in mine)}
    return out


def verify_provisioned(sandbox):
    """What a successful provisioning leaves, checked directly against moto and Prefect: the
    reference exits 0 after some failures (a ValueError is only printed)."""
    problems = []
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    try:
        iam.get_user(UserName="prefect-ecs-user")
        iam.get_role(RoleName="PrefectEcsTaskExecutionRole")
    except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
        problems.append(f"IAM: {e}")
    if not ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["prefect-ecs-vpc"]}])["Vpcs"]:
        problems.append("no VPC prefect-ecs-vpc")
    clusters = sandbox.client("ecs").describe_clusters(clusters=["prefect-ecs-cluster"])["clusters"]
    if not any(c["status"] == "ACTIVE" for c in clusters):
        problems.append("no ACTIVE cluster prefect-ecs-cluster")
    try:
        sandbox.client("ecr").describe_repositories(repositoryNames=["prefect-flows"])
    except Exception as e:  # noqa: BLE001
        problems.append(f"ECR: {e}")
    status, _ = http("GET", f"{sandbox.prefect}/block_types/slug/aws-credentials/block_documents/name/{BLOCK}", ok=None)
    if status != 200:
        problems.append(f"block {BLOCK}: {status}")
    _, pool = http("GET", f"{sandbox.prefect}/work_pools/{POOL}")
    props = pool["base_job_template"]["variables"]["properties"]
    for var in ("aws_credentials", "cluster", "vpc_id", "execution_role_arn"):
        if not props.get(var, {}).get("default"):
            problems.append(f"pool job variable {var} has no default")
    return problems


def one_run(sandbox, args, scenario, tool, latency, index):
    """Prepares the scenario's starting state for tool, then times the tool once."""
    sandbox.reset_aws()
    sandbox.reset_prefect()
    aws_port = sandbox.channel(sandbox.moto, latency)
    prefect_port = sandbox.channel(sandbox.prefect.removesuffix("/api"), latency)
    aws_url, prefect_url = f"http://127.0.0.1:{aws_port}", f"http://127.0.0.1:{prefect_port}/api"
    run = Run(sandbox, tool, args.pushpool, aws_url, prefect_url)
    try:
        if scenario in ("rerun", "plan"):
            # Provisioned by the same tool, through the same channels: pushpool records the AWS
            # endpoint in the block, so another URL would rightly be planned as a change.
            _, code, _, output = run.execute(run.argv("fresh"))
            if code != 0:
                raise RuntimeError(f"{tool}: provisioning before the {scenario} run failed ({code}):\n{output[-3000:]}")
        marks = (len(sandbox.calls(aws_port)), len(sandbox.calls(prefect_port)))
        busy = settle()
        elapsed, code, usage, output = run.execute(run.argv(scenario))
        calls = sandbox.calls(aws_port)[marks[0]:] + sandbox.calls(prefect_port)[marks[1]:]
        problems = [] if code == 0 else [f"exit code {code}"]
        if code == 0 and scenario == "fresh":
            problems += verify_provisioned(sandbox)
        if scenario == "plan" and any(c["write"] for c in calls):
            problems.append("a dry run wrote")
        record = {
            "scenario": scenario, "tool": tool, "latency_ms": latency, "index": index,
            "seconds": elapsed, "exit_code": code, **usage, "cpu_busy_before": round(busy, 3),
            "calls": summarize_calls(calls),
            "timeline": timeline(calls, run.spawned, run.exited), "spawned_mono": run.spawned,
            "call_log": [{k: c.get(k) for k in ("service", "action", "write", "status", "start", "end")} for c in calls],
            "problems": problems,
        }
        if problems:
            record["output_tail"] = output[-4000:]
        return record
    finally:
        run.cleanup()
        sandbox.close(aws_port)
        sandbox.close(prefect_port)


def plan_document(sandbox, args, scenario):
    """pushpool's plan (JSON) for the scenario's starting state, for the lower bound."""
    sandbox.reset_aws()
    sandbox.reset_prefect()
    run = Run(sandbox, "pushpool", args.pushpool, sandbox.moto, sandbox.prefect)
    try:
        if scenario in ("rerun", "plan"):
            _, code, _, output = run.execute(run.argv("fresh"))
            if code != 0:
                raise RuntimeError(f"pushpool provisioning failed ({code}):\n{output[-3000:]}")
        _, code, _, output = run.execute([args.pushpool, "work-pool", "provision-infra", POOL, "--dry-run", "--output", "json"])
        if code != 0:
            raise RuntimeError(f"pushpool --dry-run --output json failed ({code}):\n{output[-3000:]}")
        # The note about push pools on a self-hosted server comes before the document.
        return json.loads(output[output.index("{"):])
    finally:
        run.cleanup()


def startup(args, sandbox):
    """Startup cost: wall clock of `--help`, and the time to its first byte of output."""

    def measure(argv, n):
        walls, firsts = [], []
        env = {"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir(), "NO_COLOR": "1"}
        for _ in range(n):
            start = time.perf_counter()
            child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            child.stdout.read(1)
            firsts.append(time.perf_counter() - start)
            child.stdout.read()
            child.wait()
            walls.append(time.perf_counter() - start)
        return {"runs": n, "median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
                "first_output_median_s": statistics.median(firsts)}

    measure([args.pushpool, "--help"], 3)  # page cache warm-up, not counted
    return {
        "pushpool --help": measure([args.pushpool, "--help"], 20),
        "pushpool --version": measure([args.pushpool, "--version"], 20),
        "prefect --help": measure([str(Path(sandbox.venv_bin) / "prefect"), "--help"], 5),
    }


def machine_info(args, sandbox):
    def sh(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.strip()
        except OSError:
            return "?"

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    mem = next((l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")), "0")
    versions = sh(sandbox.python, "-c", "import importlib.metadata as m; print(' '.join(f'{p} {m.version(p)}' for p in ('prefect','prefect-aws','moto','boto3')))")
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sh(sandbox.python, "--version"),
        "pushpool": sh(args.pushpool, "--version"),
        "pushpool_binary": args.pushpool,
        "git": sh("git", "-C", str(ROOT), "describe", "--always", "--dirty"),
        "packages": versions,
        "load_before": Path("/proc/loadavg").read_text().split()[:3],
        "rss_method": "GNU time" if TIME else "bench/rusage.py (floor about 8 MiB)",
    }


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="repetitions per tool, scenario and latency (default 5)")
    p.add_argument("--latency", default="0,50", help="injected latencies in ms, comma-separated (default 0,50)")
    p.add_argument("--scenarios", default="fresh,rerun,plan", help="any of fresh,rerun,plan (default all)")
    p.add_argument("--pushpool", required=True, help="the pushpool binary")
    p.add_argument("--out", help="output directory (default bench/results/<date-time>)")
    p.add_argument("--plot-python", help="a Python with matplotlib, for times.png (skipped without)")
    args = p.parse_args()
    args.latencies = [int(x) for x in args.latency.split(",") if x.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    args.pushpool = str(Path(args.pushpool).resolve())
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    args.out = Path(args.out) if args.out else HERE / "results" / stamp
    return args


def main():
    global DEAD_PROXY
    args = parse_args()
    # The harness talks to 127.0.0.1 only (boto3 would honour a proxy of the caller's environment).
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    DEAD_PROXY = DeadProxy()
    sandbox = Sandbox()
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    results = {"machine": machine_info(args, sandbox), "runs": [], "bounds": {}, "plans": {}, "settings": {
        "runs": args.runs, "latencies_ms": args.latencies, "scenarios": args.scenarios}}
    print(f"bench: startup timings", flush=True)
    results["startup"] = startup(args, sandbox)
    for scenario in args.scenarios:
        doc = plan_document(sandbox, args, scenario)
        results["plans"][scenario] = [{k: c[k] for k in ("id", "kind", "action", "reason")} for c in doc["changes"]]
        b = critical_path.bound(doc, BLUEPRINT)
        b["as_coded"] = critical_path.as_coded(b)
        results["bounds"][scenario] = b
        tools = ("pushpool",) if scenario == "plan" else TOOLS
        for latency in args.latencies:
            for i in range(args.runs):
                order = tools if i % 2 == 0 else tuple(reversed(tools))
                for tool in order:
                    record = one_run(sandbox, args, scenario, tool, latency, i)
                    results["runs"].append(record)
                    flag = " PROBLEMS: " + "; ".join(record["problems"]) if record["problems"] else ""
                    print(f"bench: {scenario:5} {latency:3} ms run {i + 1}/{args.runs} {tool:9} {record['seconds']:7.3f} s{flag}", flush=True)
    results["elapsed_s"] = time.perf_counter() - began
    results["machine"]["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    results["outbound_attempts"] = DEAD_PROXY.attempts
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    import report  # noqa: E402 - the report module is only needed at the end
    (args.out / "report.md").write_text(report.render(results))
    if args.plot_python:
        subprocess.run([args.plot_python, str(HERE / "plot.py"), str(args.out / "results.json"), str(args.out / "times.png")], check=True)
    print(f"bench: done in {results['elapsed_s']:.0f} s; report in {args.out / 'report.md'}")
    failed = [r for r in results["runs"] if r["problems"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
