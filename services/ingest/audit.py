"""`python main.py kb audit`: which articles are past their verification date, undated or duplicated."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from itertools import combinations

from services.retrieval.corpus import Article

NEAR_DUPLICATE_JACCARD = 0.5  # share of 5-word shingles two article bodies have in common
_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class AuditReport:
    stale: list[tuple[str, dt.date]] = field(default_factory=list)  # (doc_id, verified)
    undated: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)  # (doc_a, doc_b, why)
    oldest: dt.date | None = None

    @property
    def clean(self) -> bool:
        return not (self.stale or self.undated or self.duplicates)


def _shingles(text: str, size: int = 5) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + size]) for i in range(max(0, len(words) - size + 1))}


def audit_articles(articles: list[Article], *, today: dt.date, max_age_days: int) -> AuditReport:
    """Stale (verified more than `max_age_days` before `today`), undated, and duplicate or near-duplicate articles."""
    report = AuditReport()
    limit = today - dt.timedelta(days=max_age_days)
    for article in sorted(articles, key=lambda a: a.doc_id):
        if article.verified is None:
            report.undated.append(article.doc_id)
        elif article.verified < limit:
            report.stale.append((article.doc_id, article.verified))
    dates = [a.verified for a in articles if a.verified]
    report.oldest = min(dates) if dates else None
    shingles = {a.doc_id: _shingles(a.body) for a in articles}
    for a, b in combinations(sorted(articles, key=lambda x: x.doc_id), 2):
        if a.source_url.rstrip("/") == b.source_url.rstrip("/"):
            report.duplicates.append((a.doc_id, b.doc_id, "same source_url"))
        elif a.title.strip().lower() == b.title.strip().lower():
            report.duplicates.append((a.doc_id, b.doc_id, "same title"))
        else:
            sa, sb = shingles[a.doc_id], shingles[b.doc_id]
            if sa and sb:
                jaccard = len(sa & sb) / len(sa | sb)
                if jaccard >= NEAR_DUPLICATE_JACCARD:
                    report.duplicates.append((a.doc_id, b.doc_id, f"near-duplicate text ({jaccard:.0%} shared)"))
    return report
