"""`--from-feedback`: stored thumbs-down ratings (with their conversation) become draft eval cases.

Drafts are valid chat cases marked `"draft": true` so they run at once, but their expectations are
left for a person to fill in: the sources the disliked answer used are kept under `feedback` for
reference, never copied into `expected_sources` (they may be exactly what was wrong).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from evals.models import CaseFileError, ChatCase, load_case_file
from services.storage.database import CONVERSATIONS, FEEDBACK

log = logging.getLogger(__name__)
FILTER_KEYS = ("dotnetVersion", "aiLibrary", "aiProvider")
REVIEW_NOTE = ("Draft from thumbs-down feedback. Review it: set expected_sources/expected_facts to what a good "
               "answer needs (feedback.sources is what the disliked answer used), or set expect_abstention; "
               "then remove \"draft\".")


async def _conversation(database, row: dict) -> dict | None:
    conversations = database[CONVERSATIONS]
    if row.get("conversation_id"):
        found = await conversations.find_one({"_id": row["conversation_id"]})
        if found:
            return found
    return (await conversations.find_one({"span_ids": row["span_id"]})
            or await conversations.find_one({"turns.span_id": row["span_id"]}))


def _history(turns: list[dict]) -> list[dict]:
    history = []
    for turn in turns:
        history.append({"role": "user", "content": str(turn.get("user") or "").strip() or "(empty)"})
        history.append({"role": "assistant", "content": str(turn.get("assistant") or "").strip() or "(no answer)"})
    return history


def draft_case(row: dict, conversation: dict) -> dict | None:
    """A draft case for one thumbs-down row, or None when its turn is not in the conversation."""
    turns = conversation.get("turns") or []
    index = next((i for i, t in enumerate(turns) if t.get("span_id") == row["span_id"]), None)
    if index is None or not str(turns[index].get("user") or "").strip():
        return None
    turn = turns[index]
    filters = {k: v for k, v in (turn.get("filters") or {}).items() if k in FILTER_KEYS and v}
    case = {
        "id": f"feedback-{row['span_id']}",
        "question": str(turn["user"]).strip(),
        "history": _history(turns[:index]),
        "filters": filters,
        "expected_sources": [],
        "expected_facts": [],
        "category": "feedback",
        "difficulty": "medium",
        "draft": True,
        "notes": REVIEW_NOTE,
        "feedback": {
            "span_id": row["span_id"], "conversation_id": conversation.get("_id"),
            "comment": row.get("comment") or "", "timestamp": str(row.get("timestamp") or ""),
            "answer": str(turn.get("assistant") or "")[:4000],
            "sources": [{"title": s.get("title"), "url": s.get("url")} for s in turn.get("sources") or []
                        if isinstance(s, dict) and s.get("url")],
        },
    }
    ChatCase.model_validate(case)  # a draft must load as a case file entry
    return case


async def drafts_from_feedback(database) -> tuple[list[dict], list[str]]:
    """(draft cases, problems) for every thumbs-down row, oldest first."""
    rows = await database[FEEDBACK].find({"feedback_type": "thumbs_down"}).to_list()
    rows.sort(key=lambda row: str(row.get("timestamp") or ""))
    drafts, problems = [], []
    for row in rows:
        row.setdefault("span_id", row.get("_id"))
        conversation = await _conversation(database, row)
        if conversation is None:
            problems.append(f"span {row['span_id']}: no stored conversation holds this answer; skipped")
            continue
        case = draft_case(row, conversation)
        if case is None:
            problems.append(f"span {row['span_id']}: its turn is not in conversation {conversation.get('_id')}; skipped")
            continue
        drafts.append(case)
    return drafts, problems


def write_drafts(path: Path, drafts: list[dict]) -> tuple[int, int]:
    """Merge drafts into the case file at `path` (kept cases win); returns (added, total)."""
    existing: list[dict] = []
    if path.exists():
        try:
            load_case_file(path)
        except CaseFileError as exc:
            raise CaseFileError(f"{exc} (refusing to overwrite it)") from None
        existing = json.loads(path.read_text(encoding="utf-8")).get("cases", [])
    known = {case.get("id") for case in existing}
    new = [case for case in drafts if case["id"] not in known]
    data = {"kind": "chat",
            "description": "Draft cases from thumbs-down feedback (python -m evals.run_evaluations --from-feedback).",
            "cases": existing + new}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(new), len(data["cases"])
