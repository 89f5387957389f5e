"""Writes a run's results: report.md, results.json, results.csv (pandas) and chart.png (matplotlib)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

from evals.runner import ChatResult, TagResult
from evals.summary import GRADERS, Check

TARGETS = {"hit_at_5": 0.90, "mrr": 0.75, "cited_in_sources": 1.0, "abstention_accuracy": 0.90}
ANSWER_CHARS = 1500


def new_run_dir(root: Path) -> Path:
    """`root/<UTC timestamp>/`, with a suffix when two runs start in the same second."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = root / stamp
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    path.mkdir(parents=True)
    return path


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def chat_row(r: ChatResult) -> dict:
    c, t = r.case, r.transcript
    return {"id": c.id, "kind": "chat", "category": c.category, "difficulty": c.difficulty, "status": r.status,
            "passed": r.passed, "question": c.question, "filters": json.dumps(c.filters.active()) if c.filters.active() else "",
            "history_turns": len(c.history), "expect_abstention": c.expect_abstention, **r.scores,
            "failures": "; ".join(r.failures), "note": r.note, "seconds": round(t.seconds, 3),
            "expected_sources": " ".join(c.expected_sources), "returned_sources": " ".join(t.source_urls),
            "tools_called": " ".join(x["name"] for x in t.tool_calls), "span_id": t.span_id or "",
            "judge_rationale": (r.judge or {}).get("rationale") or (r.judge or {}).get("error") or "",
            "answer": t.answer}


def tag_row(t: TagResult) -> dict:
    return {"id": t.case.id, "kind": "categorization", "category": t.case.category, "difficulty": t.case.difficulty,
            "status": "graded", "passed": t.passed, "question": t.case.text, "tag_precision": t.prf.precision,
            "tag_recall": t.prf.recall, "tag_f1": t.prf.f1, "expected_tags": "; ".join(t.case.expected_tags),
            "predicted_tags": "; ".join(t.predicted)}


def write_json(path: Path, *, run: dict, summary: dict, categories: list[dict], checks: list[Check],
               chat: list[ChatResult], tags: list[TagResult]) -> None:
    data = {
        "run": run, "summary": summary, "categories": categories,
        "thresholds": [c.__dict__ for c in checks],
        "chat": [{**chat_row(r), "missing_facts": r.missing_facts, "outside_citations": r.outside_citations,
                  "sources": r.transcript.sources, "tool_calls": r.transcript.tool_calls, "judge": r.judge}
                 for r in chat],
        "categorization": [tag_row(t) for t in tags],
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def write_csv(path: Path, chat: list[ChatResult], tags: list[TagResult]) -> None:
    import pandas as pd

    frame = pd.DataFrame([*(chat_row(r) for r in chat), *(tag_row(t) for t in tags)]).convert_dtypes()
    frame.to_csv(path, index=False)


def write_chart(path: Path, summary: dict, categories: list[dict], checks: list[Check], *, k: int = 5) -> None:
    """Left: headline metrics against their thresholds. Right: score per category and grader."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    import numpy as np

    headline = [(f"hit@{k}", f"hit_at_{k}"), (f"recall@{k}", f"recall_at_{k}"), ("MRR", "mrr"),
                ("cited in sources", "cited_in_sources"), ("cited when relevant", "cited_when_relevant"),
                ("facts", "facts"), ("abstention", "abstention_accuracy"), ("tag F1", "categorization_f1"),
                ("pass rate", "pass_rate")]
    headline = [(label, key) for label, key in headline if summary.get(key) is not None]
    minimum = {c.metric: c.threshold for c in checks if c.bound == "min"}
    labels = [label.replace("@k", f"@{k}") for _, label in GRADERS]
    matrix = np.array([[np.nan if row[key] is None else row[key] for key, _ in GRADERS] for row in categories], dtype=float)

    height = max(4.5, 0.42 * len(categories) + 1.8)
    fig, (bars, heat) = plt.subplots(1, 2, figsize=(16, height), gridspec_kw={"width_ratios": [1, 1.6]})
    values = [summary[key] for _, key in headline]
    colors = ["#2e7d32" if summary[key] >= minimum.get(key, -1) else "#c62828" for _, key in headline]
    y = np.arange(len(headline))
    bars.barh(y, values, color=colors)
    for i, (_, key) in enumerate(headline):
        bars.text(min(values[i], 1.0) + 0.01, i, f"{values[i]:.2f}", va="center", fontsize=9)
        if key in minimum:
            bars.plot([minimum[key]] * 2, [i - 0.4, i + 0.4], color="black", linewidth=2)
    bars.set_yticks(y, [label for label, _ in headline])
    bars.invert_yaxis()
    bars.set_xlim(0, 1.12)
    bars.set_title("Run metrics (black tick: threshold)")

    masked = np.ma.masked_invalid(matrix)
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#eeeeee")
    heat.imshow(masked, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    heat.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    heat.set_yticks(range(len(categories)), [f"{row['category']} ({row['cases']})" for row in categories])
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if not np.isnan(matrix[i, j]):
                heat.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=8)
    heat.set_title("Score per category and grader (grey: not applicable)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sources_md(r: ChatResult) -> list[str]:
    expected = set(r.case.expected_sources)
    lines = []
    for rank, s in enumerate(r.transcript.sources, start=1):  # the score is the first passage's of that URL
        mark = " ✅" if s["url"] in expected else ""
        score = f" (score {s['score']:.3f})" if isinstance(s.get("score"), (int, float)) else ""
        lines.append(f"  {rank}. [{s.get('title') or s['url']}]({s['url']}){score}{mark}")
    return lines or ["  (no sources returned)"]


def write_markdown(path: Path, *, run: dict, summary: dict, categories: list[dict], checks: list[Check],
                   chat: list[ChatResult], tags: list[TagResult], notes: list[str], k: int = 5) -> None:
    passed = all(c.ok for c in checks)
    out = [f"# Evaluation report — {run['started']}", "",
           f"**{'PASSED' if passed else 'FAILED'}** · target: {run['target']} · model: {run.get('model', '?')} · "
           f"{summary['cases_total']} cases · {run['seconds']:.1f} s", ""]
    out += [f"> {note}" for note in notes] + ([""] if notes else [])
    out += ["## Summary", "", "| metric | value | threshold | target | status |", "|---|---|---|---|---|"]
    by_metric = {c.metric: c for c in checks}
    for key in [f"hit_at_{k}", f"recall_at_{k}", "mrr", "cited_in_sources", "cited_when_relevant", "facts",
                "abstention_accuracy", "ood_abstention_rate", "false_abstention_rate", "tools_ok",
                "categorization_precision", "categorization_recall", "categorization_f1", "categorization_macro_f1",
                "judge_accuracy", "judge_helpfulness", "judge_code_correctness", "pass_rate", "stream_errors"]:
        check = by_metric.get(key)
        status = "" if check is None else ("✅" if check.ok else "❌") + (f" {check.note}" if check.note else "")
        bound = "" if check is None else ("≥ " if check.bound == "min" else "≤ ") + _fmt(check.threshold)
        target = f"≥ {TARGETS[key]:.2f}" if key in TARGETS else ""
        out.append(f"| {key} | {_fmt(summary.get(key))} | {bound} | {target} | {status} |")
    out += ["", f"Cases: {summary['chat_cases']} chat ({summary['chat_graded']} graded, {summary['chat_skipped']} skipped, "
            f"{summary['ood_cases']} out-of-domain), {summary['categorization_cases']} categorization. "
            f"Median answer time {_fmt(summary['median_seconds'])} s. "
            f"Answers citing an article verified over 180 days ago (reported, not a gate): "
            f"{summary.get('answers_citing_stale_articles', 0)}.", "", "![scores](chart.png)", "",
            "## Per category", "", "| category | cases | " + " | ".join(label.replace("@k", f"@{k}") for _, label in GRADERS) + " |",
            "|---|---|" + "---|" * len(GRADERS)]
    for row in categories:
        out.append(f"| {row['category']} | {row['cases']} | " + " | ".join(_fmt(row[key]) for key, _ in GRADERS) + " |")

    failures = [r for r in chat if r.status != "skipped" and not r.passed]
    out += ["", f"## Failures ({len(failures)} chat, {sum(not t.passed for t in tags)} categorization)", ""]
    for r in failures:
        c = r.case
        out += [f"### `{c.id}` · {c.category} · {c.difficulty}", "", f"**Question:** {c.question}"]
        if c.history:
            out.append(f"**History:** {len(c.history)} earlier message(s)")
        if c.filters.active():
            out.append(f"**Filters:** `{json.dumps(c.filters.active())}`")
        expected = ", ".join(c.expected_sources) or ("none: it should say I don't know" if c.expect_abstention else "–")
        out += ["", "**Why:** " + "; ".join(r.failures), "", f"**Expected sources:** {expected}", "",
                "**Returned sources:**", *_sources_md(r), "",
                "**Answer:**", "", "````text", r.transcript.answer[:ANSWER_CHARS].replace("````", "```") +
                ("…" if len(r.transcript.answer) > ANSWER_CHARS else ""), "````", ""]
    tag_failures = [t for t in tags if not t.passed]
    if tag_failures:
        out += ["### Categorization", "", "| case | expected | predicted | F1 |", "|---|---|---|---|"]
        out += [f"| `{t.case.id}` | {', '.join(t.case.expected_tags) or '–'} | {', '.join(t.predicted) or '–'} | "
                f"{t.prf.f1:.2f} |" for t in tag_failures]
    skipped = [r for r in chat if r.status == "skipped"]
    if skipped:
        out += ["", "## Skipped", ""] + [f"- `{r.case.id}`: {r.note}" for r in skipped]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def write_report(out_dir: Path, *, run: dict, summary: dict, categories: list[dict], checks: list[Check],
                 chat: list[ChatResult], tags: list[TagResult], notes: list[str], k: int = 5) -> Path:
    """Write every artefact of a run into `out_dir` (created); returns the report.md path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "results.json", run=run, summary=summary, categories=categories, checks=checks,
               chat=chat, tags=tags)
    write_csv(out_dir / "results.csv", chat, tags)
    write_chart(out_dir / "chart.png", summary, categories, checks, k=k)
    report = out_dir / "report.md"
    write_markdown(report, run=run, summary=summary, categories=categories, checks=checks, chat=chat, tags=tags,
                   notes=notes, k=k)
    return report
