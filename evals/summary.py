"""Aggregate graded cases into run metrics and per-category scores, and check the thresholds."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from evals import graders as g
from evals.runner import ChatResult, TagResult

DEFAULT_THRESHOLDS = Path(__file__).resolve().parent / "thresholds.json"
# Columns of the per-category table and the chart, in order: (key, label).
GRADERS = [("hit", "hit@k"), ("recall", "recall@k"), ("mrr", "MRR"), ("grounded", "grounded"), ("facts", "facts"),
           ("abstention", "abstention"), ("tag_f1", "tag F1"), ("pass", "pass rate")]


class ThresholdsError(ValueError):
    """The thresholds file cannot be used."""


def _values(results: list[ChatResult], key: str) -> list[float]:
    return [r.scores[key] for r in results if r.status == "graded" and r.scores.get(key) is not None]


def _grounded(result: ChatResult) -> float:
    s = result.scores
    return float(not s.get("citations_outside") and s.get("cited_when_relevant", 1.0) == 1.0)


def summarize(chat: list[ChatResult], tags: list[TagResult], *, k: int = 5) -> dict:
    """Every run-level metric; a metric that no case measured is None."""
    graded = [r for r in chat if r.status == "graded"]
    answerable = [r for r in graded if not r.case.expect_abstention]
    ood = [r for r in graded if r.case.expect_abstention]
    cited = sum(r.scores.get("citations", 0) for r in graded)
    outside = sum(r.scores.get("citations_outside", 0) for r in graded)
    seconds = [r.transcript.seconds for r in chat if r.status != "skipped"]
    micro = g.micro_tag_scores([(t.predicted, t.case.expected_tags) for t in tags]) if tags else None
    summary = {
        "cases_total": len(chat) + len(tags),
        "chat_cases": len(chat),
        "chat_graded": len(graded),
        "chat_skipped": sum(r.status == "skipped" for r in chat),
        "stream_errors": sum(r.status == "error" for r in chat),
        "retrieval_cases": len(_values(chat, "hit_at_k")),
        f"hit_at_{k}": g.mean(_values(chat, "hit_at_k")),
        f"recall_at_{k}": g.mean(_values(chat, "recall_at_k")),
        "mrr": g.mean(_values(chat, "reciprocal_rank")),
        "cited_urls": int(cited),
        "cited_in_sources": (cited - outside) / cited if cited else None,
        "cited_when_relevant": g.mean(_values(chat, "cited_when_relevant")),
        "facts": g.mean(_values(chat, "facts")),
        "code_when_asked": g.mean(_values(chat, "code_when_asked")),
        "answers_citing_stale_articles": int(sum(_values(chat, "cites_stale"))),
        "abstention_accuracy": g.mean(_values(chat, "abstention_correct")),
        "ood_cases": len(ood),
        "ood_abstention_rate": g.mean([r.scores["abstained"] for r in ood]),
        "false_abstention_rate": g.mean([r.scores["abstained"] for r in answerable]),
        "tools_ok": g.mean(_values(chat, "tools_ok")),
        "pass_rate": g.mean([float(r.passed) for r in chat if r.status != "skipped"]),
        "categorization_cases": len(tags),
        "categorization_precision": micro.precision if micro else None,
        "categorization_recall": micro.recall if micro else None,
        "categorization_f1": micro.f1 if micro else None,
        "categorization_macro_f1": g.mean([t.prf.f1 for t in tags]),
        "categorization_exact": g.mean([float(t.passed) for t in tags]),
        "judge_accuracy": g.mean(_values(chat, "judge_accuracy")),
        "judge_helpfulness": g.mean(_values(chat, "judge_helpfulness")),
        "judge_code_correctness": g.mean(_values(chat, "judge_code_correctness")),
        "median_seconds": statistics.median(seconds) if seconds else None,
        "max_seconds": max(seconds) if seconds else None,
    }
    return summary


def per_category(chat: list[ChatResult], tags: list[TagResult]) -> list[dict]:
    """One row per category: case count and the mean of each grader that applies (None otherwise)."""
    rows = []
    for category in sorted({r.case.category for r in chat}):
        results = [r for r in chat if r.case.category == category]
        graded = [r for r in results if r.status == "graded"]
        rows.append({
            "category": category, "cases": len(results), "skipped": sum(r.status == "skipped" for r in results),
            "hit": g.mean(_values(results, "hit_at_k")), "recall": g.mean(_values(results, "recall_at_k")),
            "mrr": g.mean(_values(results, "reciprocal_rank")),
            "grounded": g.mean([_grounded(r) for r in graded]), "facts": g.mean(_values(results, "facts")),
            "abstention": g.mean(_values(results, "abstention_correct")), "tag_f1": None,
            "pass": g.mean([float(r.passed) for r in results if r.status != "skipped"]),
        })
    for category in sorted({t.case.category for t in tags}):
        items = [t for t in tags if t.case.category == category]
        micro = g.micro_tag_scores([(t.predicted, t.case.expected_tags) for t in items])
        rows.append({"category": category, "cases": len(items), "skipped": 0, "hit": None, "recall": None,
                     "mrr": None, "grounded": None, "facts": None, "abstention": None, "tag_f1": micro.f1,
                     "pass": g.mean([float(t.passed) for t in items])})
    return rows


def load_thresholds(path: Path | None = None) -> dict:
    """`{"min": {metric: value}, "max": {metric: value}}`; unknown metrics are refused by `check_thresholds`."""
    path = path or DEFAULT_THRESHOLDS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThresholdsError(f"{path}: cannot read the thresholds ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ThresholdsError(f"{path}: not valid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict) or not any(isinstance(data.get(key), dict) for key in ("min", "max")):
        raise ThresholdsError(f"{path}: expected {{\"min\": {{metric: value}}, \"max\": {{metric: value}}}}")
    for bound in ("min", "max"):
        for metric, value in (data.get(bound) or {}).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ThresholdsError(f"{path}: {bound}.{metric} must be a number")
    return data


@dataclass
class Check:
    metric: str
    bound: str  # min | max
    threshold: float
    value: float | None
    ok: bool
    note: str = ""


def check_thresholds(summary: dict, thresholds: dict) -> list[Check]:
    """Compare each configured bound with the run's metric; unmeasured metrics pass with a note."""
    checks = []
    for bound in ("min", "max"):
        for metric, threshold in (thresholds.get(bound) or {}).items():
            if metric not in summary:
                raise ThresholdsError(f"thresholds name an unknown metric {metric!r}; known: {', '.join(summary)}")
            value = summary[metric]
            if value is None:
                checks.append(Check(metric, bound, threshold, None, True, "not measured in this run"))
                continue
            ok = value >= threshold if bound == "min" else value <= threshold
            checks.append(Check(metric, bound, threshold, value, ok))
    return checks
