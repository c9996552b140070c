"""Renders results.json (written by bench.py) as the Markdown report."""

import json
import statistics
import sys
from collections import Counter

import critical_path

TARGET_LATENCY = 50  # the targets are stated at 50 ms per call


def runs_of(results, scenario, tool, latency):
    return sorted((r for r in results["runs"] if (r["scenario"], r["tool"], r["latency_ms"]) == (scenario, tool, latency)),
                  key=lambda r: r["index"])


def median(values):
    return statistics.median(values) if values else float("nan")


def ms(seconds):
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def calls_cell(runs, side):
    """Median reads/writes over the runs, with the range when they vary."""
    reads = [r["calls"][side]["reads"] for r in runs]
    writes = [r["calls"][side]["writes"] for r in runs]

    def one(values):
        m = median(values)
        text = f"{m:g}"
        return text if min(values) == max(values) else f"{text} ({min(values)}-{max(values)})"

    return f"{one(reads)} r / {one(writes)} w"


def pair_ratios(results, scenario, latency):
    ref = {r["index"]: r["seconds"] for r in runs_of(results, scenario, "reference", latency)}
    pp = {r["index"]: r["seconds"] for r in runs_of(results, scenario, "pushpool", latency)}
    return [ref[i] / pp[i] for i in sorted(ref) if i in pp]


def start_s(results):
    return results["startup"]["pushpool --help"]["median_s"]


def bound_s(results, scenario, latency):
    return results["bounds"][scenario]["total"] * latency / 1000


def server_time(runs):
    """Median over the runs of the mean time a call took beyond the injected latency: the
    servers' own processing (moto, the Prefect server) and the proxy's, which the bound leaves out."""
    per_run = []
    for r in runs:
        timed = [c for c in r["call_log"] if c.get("start") is not None and c.get("end") is not None]
        if timed:
            per_run.append(statistics.mean(c["end"] - c["start"] for c in timed) - r["latency_ms"] / 1000)
    return median(per_run)


def chain_rt(results, scenario, tool, latency):
    """Median longest chain of one-after-another calls (proxy call times), else the Δt estimate."""
    runs = [r for r in runs_of(results, scenario, tool, latency) if r.get("timeline")]
    if runs:
        return median([r["timeline"]["sequential_calls"] for r in runs])
    return effective_rt(results, scenario, tool, latency)


def effective_rt(results, scenario, tool, latency):
    """(median at latency - median at 0 ms) / latency: the round trips the run actually waited
    for one after another, whatever their number in all."""
    base = runs_of(results, scenario, tool, 0)
    here = runs_of(results, scenario, tool, latency)
    if not base or not here or latency == 0:
        return None
    return (median([r["seconds"] for r in here]) - median([r["seconds"] for r in base])) * 1000 / latency


def scenario_section(results, scenario):
    out = []
    b = results["bounds"][scenario]
    titles = {"fresh": "Fresh account (moto reset, default VPC deleted)",
              "rerun": "Re-run on an account the same tool provisioned",
              "plan": "Plan (`--dry-run`) on a provisioned account: pushpool only, the reference has none"}
    out.append(f"## {titles[scenario]}\n")
    plan = results["plans"][scenario]
    actions = Counter(c["action"] for c in plan)
    out.append(f"pushpool's plan: {', '.join(f'{n} {a}' for a, n in sorted(actions.items()))}. "
               f"Lower bound: **{b['total']} round trips** = preamble {b['preamble']} + observe {b['observe']}"
               + (f" + apply {b['apply']}" if b["writes"] else "") + " (see *What the lower bound counts*).\n")
    out.append(f"- observe critical path: {' → '.join(b['observe_path'])}")
    if b["writes"]:
        out.append(f"- apply critical path: {' → '.join(b['apply_path'])}")
    out.append("")
    tools = ("pushpool",) if scenario == "plan" else ("reference", "pushpool")
    for latency in results["settings"]["latencies_ms"]:
        out.append(f"### {latency} ms per call\n")
        out.append("| tool | runs | median | min | max | AWS calls | Prefect calls | peak RSS | CPU | sequential RT (Δt) | sequential calls (proxy) | server time per call | before 1st call | after last call |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for tool in tools:
            runs = runs_of(results, scenario, tool, latency)
            if not runs:
                continue
            secs = [r["seconds"] for r in runs]
            rss = median([r["peak_rss_kib"] for r in runs]) / 1024
            cpu = median([r["cpu_s"] for r in runs])
            eff = effective_rt(results, scenario, tool, latency)
            tl = lambda key: median([r["timeline"][key] for r in runs if r.get("timeline")])
            out.append(f"| {tool} | {len(runs)} | {ms(median(secs))} | {ms(min(secs))} | {ms(max(secs))} | "
                       f"{calls_cell(runs, 'aws')} | {calls_cell(runs, 'prefect')} | {rss:.1f} MiB | {ms(cpu)} | "
                       f"{'-' if eff is None else f'{eff:.1f}'} | {tl('sequential_calls'):g} | {ms(server_time(runs))} | "
                       f"{ms(tl('before_first_call_s'))} | {ms(tl('after_last_call_s'))} |")
        out.append("")
        if scenario != "plan":
            ratios = pair_ratios(results, scenario, latency)
            if ratios:
                out.append(f"reference/pushpool per pair: {', '.join(f'{x:.1f}x' for x in ratios)}; "
                           f"**median {median(ratios):.1f}x**.\n")
        pp = runs_of(results, scenario, "pushpool", latency)
        if pp and latency:
            bound = bound_s(results, scenario, latency)
            m = median([r["seconds"] for r in pp])
            out.append(f"Lower bound {b['total']} RT x {latency} ms = {ms(bound)}; plus process start "
                       f"({ms(start_s(results))}) = {ms(bound + start_s(results))}; pushpool's median is "
                       f"{m / (bound + start_s(results)):.2f}x that, {(m - bound - start_s(results)) * 1000 / latency:+.1f} RT.\n")
        here = [r for r in results["runs"] if r["scenario"] == scenario and r["latency_ms"] == latency]
        busy = [r.get("cpu_busy_before", 0) for r in here]
        if busy:
            out.append(f"Machine busy just before these runs (all CPUs, after waiting up to 5 s for it to settle below 10%): "
                       f"median {median(busy):.0%}, max {max(busy):.0%}.\n")
        problems = [r for r in here if r["problems"]]
        for r in problems:
            out.append(f"- **problem** in {r['tool']} run {r['index'] + 1}: {'; '.join(r['problems'])}")
        if problems:
            out.append("")
    out.append("<details><summary>pushpool's sequential chain as coded, around the same plan</summary>\n")
    out.append("| step | RT |\n|---|---|")
    total = 0
    for step, rt in b["as_coded"]:
        out.append(f"| {step} | {rt} |")
        total += rt
    out.append(f"| **total** | **{total}** |\n\n</details>\n")
    return "\n".join(out)


def targets(results):
    """The issue's targets, checked at 50 ms when it was measured (else the highest latency)."""
    lats = results["settings"]["latencies_ms"]
    lat = TARGET_LATENCY if TARGET_LATENCY in lats else max(lats)
    rows = []
    scen = results["settings"]["scenarios"]
    if "fresh" in scen and runs_of(results, "fresh", "reference", lat):
        r = median(pair_ratios(results, "fresh", lat))
        rows.append(("fresh ≥5x faster than the reference (median of per-pair ratios)", f"{r:.1f}x", r >= 5))
    if "fresh" in scen and lat:
        m = median([x["seconds"] for x in runs_of(results, "fresh", "pushpool", lat)])
        limit = 1.5 * (bound_s(results, "fresh", lat) + start_s(results))
        rows.append((f"fresh within 1.5x of lower bound + process start (≤ {ms(limit)})", f"{ms(m)} ({m / (limit / 1.5):.2f}x)", m <= limit))
        eff, b = chain_rt(results, "fresh", "pushpool", lat), results["bounds"]["fresh"]["total"]
        if eff is not None:
            rows.append((f"the same, latency only: sequential calls within 1.5x of the bound's {b} RT (≤ {1.5 * b:g})",
                         f"{eff:.1f} RT ({eff / b:.2f}x)", eff <= 1.5 * b))
    if "rerun" in scen and runs_of(results, "rerun", "reference", lat):
        r = median(pair_ratios(results, "rerun", lat))
        writes = max(x["calls"]["aws"]["writes"] + x["calls"]["prefect"]["writes"] for x in runs_of(results, "rerun", "pushpool", lat))
        rows.append(("re-run ≥10x faster than the reference", f"{r:.1f}x", r >= 10))
        rows.append(("re-run makes zero writes", f"{writes} writes (most in a run)", writes == 0))
    if "plan" in scen and lat:
        m = median([x["seconds"] for x in runs_of(results, "plan", "pushpool", lat)])
        limit = bound_s(results, "plan", lat) + 2 * lat / 1000 + start_s(results)
        rows.append((f"plan within 2 round trips of the lower bound (≤ {ms(limit)}, process start included)",
                     f"{ms(m)} ({(m - limit) * 1000 / lat + 2:+.1f} RT over the bound)", m <= limit))
        eff, b = chain_rt(results, "plan", "pushpool", lat), results["bounds"]["plan"]["total"]
        if eff is not None:
            rows.append((f"the same, latency only: sequential calls within 2 of the bound's {b} RT (≤ {b + 2})", f"{eff:g} RT", eff <= b + 2))
    if "fresh" in scen and runs_of(results, "fresh", "reference", lat):
        total = lambda runs: median([r["calls"]["aws"]["reads"] + r["calls"]["aws"]["writes"] + r["calls"]["prefect"]["reads"] + r["calls"]["prefect"]["writes"] for r in runs])
        pp, ref = total(runs_of(results, "fresh", "pushpool", lat)), total(runs_of(results, "fresh", "reference", lat))
        rows.append(("API calls on a fresh run ≤ the reference's", f"{pp:g} against {ref:g}", pp <= ref))
    help_ = results["startup"]["pushpool --help"]
    rows.append(("`pushpool --help` under 20 ms (median of 20)", ms(help_["median_s"]), help_["median_s"] < 0.020))
    rows.append(("startup to first output under 20 ms (median of 20 `--help`)", ms(help_["first_output_median_s"]), help_["first_output_median_s"] < 0.020))
    out = [f"## Targets (at {lat} ms per call)\n",
           "The wall-clock targets include the servers' processing time (moto and the Prefect server, Python, on the same 2 cores), "
           "which the bound does not; the *latency only* rows compare the longest chain of calls pushpool made one "
           "after another (from the proxy's call times; calls that merely happen not to overlap count too, so on a "
           "loaded machine it can exceed the true dependency depth) with the bound: that is what pushpool's design controls.\n",
           "| target | measured | |", "|---|---|---|"]
    out += [f"| {t} | {m} | {'met' if ok else '**missed**'} |" for t, m, ok in rows]
    return "\n".join(out) + "\n"


def call_lists(results):
    """One run's calls per tool and scenario at the highest latency, grouped by action in
    the order they were first made, to spot repeated reads."""
    lat = max(results["settings"]["latencies_ms"])
    out = ["## Appendix: the calls of one run (highest latency, first repetition)\n"]
    for scenario in results["settings"]["scenarios"]:
        for tool in ("pushpool", "reference"):
            runs = runs_of(results, scenario, tool, lat)
            if not runs:
                continue
            log = runs[0]["call_log"]
            counts = Counter((c["service"], c["action"], c["write"], c["status"]) for c in log)
            out.append(f"<details><summary>{scenario}, {tool}: {len(log)} calls</summary>\n")
            out.append("| service | action | write | status | count |\n|---|---|---|---|---|")
            for (service, action, write, status), n in counts.items():
                out.append(f"| {service} | `{action}` | {'yes' if write else ''} | {status} | {n} |")
            out.append("\n</details>\n")
            if tool == "pushpool" and runs[0].get("spawned_mono") and all(c.get("start") for c in log):
                t0 = runs[0]["spawned_mono"]
                out.append(f"<details><summary>{scenario}, pushpool: every call in time order (ms from spawn)</summary>\n")
                out.append("| start | end | service | action | status |\n|---|---|---|---|---|")
                for c in sorted(log, key=lambda c: c["start"]):
                    out.append(f"| {(c['start'] - t0) * 1000:.0f} | {(c['end'] - t0) * 1000:.0f} | {c['service']} | `{c['action']}` | {c['status']} |")
                out.append(f"\nexit at {runs[0]['seconds'] * 1000:.0f} ms\n\n</details>\n")
    return "\n".join(out)


def render(results):
    m = results["machine"]
    s = results["settings"]
    out = ["# pushpool benchmark (issue 5)\n",
           f"{m['date']}; {s['runs']} run(s) per tool, scenario and latency ({', '.join(map(str, s['latencies_ms']))} ms added to "
           f"every AWS and Prefect call by the sandbox proxy); the whole benchmark took {results['elapsed_s'] / 60:.1f} min.\n",
           f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}",
           f"- {m['pushpool']} (`{m['pushpool_binary']}`, tree {m['git']}); reference: {m['packages']}; {m['python']}",
           "- reference: `prefect work-pool provision-infra bench-ecs` (stdin from /dev/null: it provisions with the defaults); "
           "pushpool: `pushpool work-pool provision-infra bench-ecs --yes` (`--dry-run` for the plan); "
           "both on an `ecs:push` pool created over REST with the `ecs` worker's default template, "
           "both pointing only at 127.0.0.1 with a fake `docker` first on PATH",
           f"- requests to anywhere but 127.0.0.1 (caught by the refusing proxy both tools were given): "
           f"{len(results.get('outbound_attempts', []))}{': ' + ', '.join(sorted(set(results['outbound_attempts']))) if results.get('outbound_attempts') else ''}",
           f"- load average (1, 5, 15 min) before: {' '.join(m.get('load_before', ['?']))}; after: {' '.join(m.get('load_after', ['?']))}",
           "- wall clock: spawn to exit; peak RSS and CPU (user + system): the tool's own, from its rusage "
           f"({m.get('rss_method', '?')}); the children it waited for count too (the fake docker: a small Python script); "
           "calls: counted by the proxy, reads and writes as it classifies them; "
           "sequential RT (Δt): (median at this latency - median at 0 ms) / latency, the round trips the run waited for one after another; "
           "sequential calls (proxy): the longest chain of calls each made after the previous one was answered, from the proxy's call times; "
           "server time per call: how long a call took beyond the injected latency (the servers' and the proxy's own time; mean per run, median of the runs); "
           "before 1st call / after last call: from spawn to the first call reaching the proxy, and from the last answer to exit (medians)\n",
           targets(results)]
    st = results["startup"]
    out.append("## Startup\n\n| command | runs | median | min | max | first output (median) |\n|---|---|---|---|---|---|")
    for name, v in st.items():
        out.append(f"| `{name}` | {v['runs']} | {v['median_s'] * 1000:.1f} ms | {v['min_s'] * 1000:.1f} ms | {v['max_s'] * 1000:.1f} ms | {v['first_output_median_s'] * 1000:.1f} ms |")
    out.append("")
    for scenario in s["scenarios"]:
        out.append(scenario_section(results, scenario))
    out.append("## What the lower bound counts\n")
    doc = critical_path.__doc__.split("\n\n", 1)[1]
    out.append(doc.strip() + "\n")
    out.append("Per-node weights: `bench/critical_path.py`. The dependency graph is `plans/ecs-push.toml`; "
               "the actions are pushpool's own plan of the scenario's starting state (`--dry-run --output json`).\n")
    out.append(call_lists(results))
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # re-render a report: report.py results.json > report.md
    print(render(json.load(open(sys.argv[1]))), end="")
