"""Eval case files: the shipped suite is complete and valid; bad files fail with the file and case named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.models import CaseFileError, load_case_file, load_cases
from services.retrieval.corpus import DEFAULT_KB_DIR
from services.ingest.tagger import VOCABULARY


HELDOUT_KB_DIR = Path(__file__).resolve().parents[1] / "evals" / "heldout" / "kb"


def _kb_urls(folder: Path = DEFAULT_KB_DIR) -> set[str]:
    import frontmatter

    return {str(frontmatter.load(p).metadata["source_url"]) for p in folder.glob("*.md")}


async def test_shipped_suite_has_the_required_cases():
    cases = load_cases()
    main = [c for c in cases.chat if not c.expect_abstention]
    ood = [c for c in cases.chat if c.expect_abstention]
    assert len(main) >= 40 and len(ood) >= 10 and len(cases.categorization) >= 20
    assert all(c.expected_sources and c.category and c.difficulty for c in main)
    assert any(c.history for c in main) and any(c.filters.active() for c in main)
    assert {c.difficulty for c in cases.chat} == {"easy", "medium", "hard"}
    assert not any(c.draft for c in cases.chat)


async def test_expected_sources_are_knowledge_base_urls():
    urls = _kb_urls()
    cases = load_cases()
    # a held-out article (ingested with --heldout) may be named as also relevant beside a shipped one
    also = _kb_urls(HELDOUT_KB_DIR)
    unknown = {(c.id, u) for c in cases.chat for u in c.expected_sources if u not in urls | also}
    assert not unknown
    assert all(set(c.expected_sources) & urls for c in cases.chat if c.expected_sources)
    # the suite covers most of the knowledge base, not a few favourite articles
    covered = {u for c in cases.chat for u in c.expected_sources}
    assert len(covered) >= 0.8 * len(urls)


async def test_categorization_cases_use_the_vocabulary_and_include_negatives():
    cases = load_cases().categorization
    assert all(set(c.expected_tags) <= set(VOCABULARY) for c in cases)
    assert any(not c.expected_tags for c in cases)  # texts that must get no tag
    assert any(len(c.expected_tags) > 1 for c in cases)


def _write(tmp_path: Path, name: str, data) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("cases", "message"), [
    ([{"id": "no-question", "category": "x", "expected_sources": ["https://a.b/c"]}], "case 'no-question': question: Field required"),
    ([{"id": "bad-url", "question": "q", "category": "x", "expected_sources": ["learn.microsoft.com/x"]}],
     "case 'bad-url': expected_sources: expected source 'learn.microsoft.com/x' is not an http(s) URL"),
    ([{"id": "both", "question": "q", "category": "x", "expect_abstention": True, "expected_sources": ["https://a.b"]}],
     "case 'both': an abstention case (expect_abstention) cannot also expect sources or facts"),
    ([{"id": "nothing", "question": "q", "category": "x"}], "case 'nothing': give expected_sources"),
    ([{"id": "typo", "question": "q", "category": "x", "expected_source": ["https://a.b"]}], "case 'typo': expected_source: Extra inputs"),
    ([{"id": "filters", "question": "q", "category": "x", "expected_facts": ["f"], "filters": {"library": "SK"}}],
     "case 'filters': filters.library: Extra inputs"),
    ([{"id": "ok", "question": "q", "category": "x", "expected_facts": ["f"]}, {"question": "q2", "category": "x"}],
     "case #2 (no id): id: Field required"),
    ([{"id": "hist", "question": "q", "category": "x", "expected_facts": ["f"], "history": [{"role": "user", "content": "hi"}]}],
     "case 'hist': history must end with an assistant message"),
])
async def test_bad_chat_cases_name_the_file_and_case(tmp_path, cases, message):
    path = _write(tmp_path, "mine.json", {"kind": "chat", "cases": cases})
    with pytest.raises(CaseFileError) as error:
        load_case_file(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


async def test_bad_files(tmp_path):
    with pytest.raises(CaseFileError, match=r"not valid JSON at line 1"):
        load_case_file(_write(tmp_path, "broken.json", "{nope"))
    with pytest.raises(CaseFileError, match=r'expected an object with "kind"'):
        load_case_file(_write(tmp_path, "list.json", [{"id": "x"}]))
    with pytest.raises(CaseFileError, match=r"unknown tag\(s\) \['Semantic Kernal'\]"):
        load_case_file(_write(tmp_path, "tags.json", {"kind": "categorization", "cases": [
            {"id": "t1", "text": "x", "expected_tags": ["Semantic Kernal"]}]}))
    with pytest.raises(CaseFileError, match="no such file or folder"):
        load_cases([tmp_path / "missing.json"])


async def test_duplicate_ids_across_files_are_refused(tmp_path):
    case = {"id": "same", "question": "q", "category": "x", "expected_facts": ["f"]}
    first = _write(tmp_path, "a.json", {"kind": "chat", "cases": [case]})
    second = _write(tmp_path, "b.json", {"kind": "chat", "cases": [case]})
    with pytest.raises(CaseFileError, match=r"b.json: case 'same': id already used in .*a.json"):
        load_cases([first, second])


async def test_yaml_files_and_folders_load(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    _write(folder, "chat.yaml", """
kind: chat
cases:
  - id: yaml-1
    question: How do I count tokens?
    expected_facts: [[CountTokens, TiktokenTokenizer]]
    filters: {aiLibrary: Microsoft.ML.Tokenizers}
    category: tokens
    difficulty: easy
""")
    _write(folder, "tags.json", {"kind": "categorization", "cases": [{"id": "t", "text": "MLContext", "expected_tags": ["ML.NET"]}]})
    _write(folder, "notes.txt", "ignored")
    loaded = load_cases([folder])
    assert [c.id for c in loaded.chat] == ["yaml-1"] and loaded.chat[0].filters.active() == {"aiLibrary": "Microsoft.ML.Tokenizers"}
    assert [c.id for c in loaded.categorization] == ["t"] and loaded.size == 2
    with pytest.raises(CaseFileError, match=r"bad.yaml: not valid YAML at line"):
        load_case_file(_write(tmp_path, "bad.yaml", "kind: chat\ncases: [unclosed"))
