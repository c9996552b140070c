"""times.png: every run's wall clock, per scenario (rows) and latency (columns).

Usage: plot.py results.json times.png (run by bench.py with the bench venv's Python)."""

import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter  # noqa: E402

STYLE = {"reference": ("tab:orange", "o"), "pushpool": ("tab:blue", "s")}


def main(results_path, png_path):
    results = json.load(open(results_path))
    scenarios, latencies = results["settings"]["scenarios"], results["settings"]["latencies_ms"]
    fig, axes = plt.subplots(len(scenarios), len(latencies), figsize=(4.2 * len(latencies), 3.2 * len(scenarios)),
                             squeeze=False, sharey="row")
    bounds = results["bounds"]
    for row, scenario in enumerate(scenarios):
        for col, latency in enumerate(latencies):
            ax = axes[row][col]
            for tool, (color, marker) in STYLE.items():
                runs = sorted((r for r in results["runs"] if (r["scenario"], r["tool"], r["latency_ms"]) == (scenario, tool, latency)),
                              key=lambda r: r["index"])
                if runs:
                    ax.plot([r["index"] + 1 for r in runs], [r["seconds"] for r in runs], marker=marker, color=color,
                            linestyle="-", linewidth=0.8, label=tool)
            if latency:  # the lower bound (without process start) as a floor line
                ax.axhline(bounds[scenario]["total"] * latency / 1000, color="grey", linestyle="--", linewidth=0.8,
                           label="lower bound")
            ax.set_yscale("log")  # the two tools differ by an order of magnitude
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"{scenario}, {latency} ms per call", fontsize=10)
            ax.set_xlabel("run")
            if col == 0:
                ax.set_ylabel("wall clock (s, log)")
            ax.grid(True, which="both", linewidth=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
