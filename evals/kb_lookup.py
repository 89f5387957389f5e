"""What the graders need to know about a cited knowledge-base article: does it hold code, is it fresh."""

from __future__ import annotations

from pathlib import Path

from evals import graders as g

FRESHNESS_DAYS = 180  # the default KB_FRESHNESS_DAYS: citing an article verified longer ago is reported
_ARTICLES: dict | None = None


def _article(url: str):
    """The knowledge-base article (shipped or held out) whose source_url is `url`, if any."""
    global _ARTICLES
    if _ARTICLES is None:
        from services.retrieval.corpus import DEFAULT_KB_DIR, load_articles

        heldout = Path(__file__).resolve().parent / "heldout" / "kb"
        articles = load_articles(DEFAULT_KB_DIR)[0] + (load_articles(heldout)[0] if heldout.is_dir() else [])
        _ARTICLES = {a.source_url: a for a in articles}
    return _ARTICLES.get(url)


def source_has_code(url: str) -> bool:
    """Whether the knowledge-base article at `url` holds a C# example."""
    article = _article(url)
    return bool(article) and g.has_csharp_block(article.body)


def cites_stale(cited: list[str], *, today=None) -> bool:
    """Whether the answer cites an article whose `verified` date is older than the freshness limit (or missing)."""
    import datetime as dt

    limit = (today or dt.date.today()) - dt.timedelta(days=FRESHNESS_DAYS)
    for url in cited:
        article = _article(url)
        if article is not None and (article.verified is None or article.verified < limit):
            return True
    return False
