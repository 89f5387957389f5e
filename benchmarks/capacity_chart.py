"""Chart of `bench_capacity.py` results: p99 added wait to first content and server CPU per chat, by concurrency.

Reads benchmarks/results/capacity-<label>.json (every label, or those named) and writes
benchmarks/results/capacity.png; `--publish` also copies it to benchmarks/capacity.png (committed).

    python benchmarks/capacity_chart.py [--labels r0-original,final] [--publish]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil

from common import RESULTS, ROOT

STAMPED = re.compile(r"-\d{8}T\d{6}Z$")  # write_results' timestamped copies


def load(labels: list[str] | None) -> list[dict]:
    runs = []
    for path in sorted(RESULTS.glob("capacity-*.json")):
        label = path.stem[len("capacity-"):]
        if STAMPED.search(label) or (labels and label not in labels):
            continue
        runs.append(json.loads(path.read_text()))
    if labels:
        runs.sort(key=lambda run: labels.index(run["label"]))
    return runs


def render(runs: list[dict], out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (wait, cpu) = plt.subplots(1, 2, figsize=(12, 4.6))
    for run in runs:
        levels = run["levels"]
        x = [level["clients"] for level in levels]
        wait.plot(x, [max(1.0, level["added_first_p99_ms"]) for level in levels], marker="o", label=run["label"])
        cpu.plot(x, [level["service"]["server_cpu_ms_per_chat"] for level in levels], marker="o", label=run["label"])
    if runs:
        upstream = [level["baseline"]["upstream_cpu_ms_per_chat"] for run in runs for level in run["levels"]]
        cpu.axhline(sum(upstream) / len(upstream), color="grey", linestyle=":", label="upstream's own CPU per chat")
    wait.axhline(runs[0]["target_added_p99_ms"] if runs else 250, color="red", linestyle="--", label="250 ms target")
    wait.set(yscale="log", xlabel="steady concurrent chats (one core)", ylabel="p99 added wait to first content (ms)",
             title="Wait the service adds (service - upstream alone)")
    cpu.set(xlabel="steady concurrent chats (one core)", ylabel="server CPU per chat (ms)", title="Server CPU per chat",
            ylim=(0, None))
    for axis in (wait, cpu):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle("POST /api/chat with a hosted model (stand-in: tool call at 0.3 s, 60 deltas from 0.6 s to 3.6 s)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default="", help="comma-separated labels, in legend order (default: all)")
    parser.add_argument("--publish", action="store_true", help="copy the chart to benchmarks/capacity.png")
    args = parser.parse_args()
    runs = load([label for label in args.labels.split(",") if label] or None)
    out = RESULTS / "capacity.png"
    render(runs, out)
    print(f"chart: {out.relative_to(ROOT)} ({len(runs)} runs)")
    if args.publish:
        shutil.copyfile(out, ROOT / "benchmarks" / "capacity.png")
        print("published: benchmarks/capacity.png")


if __name__ == "__main__":
    main()
