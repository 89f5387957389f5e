"""Eval case files: pydantic models, and loading with errors that name the file and the case.

A case file is JSON (or YAML) of the form `{"kind": "chat" | "categorization", "cases": [...]}`.
Chat cases put a question to the assistant; categorization cases give the ingestion tagger a text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.ingest.tagger import VOCABULARY

DEFAULT_CASES_DIR = Path(__file__).resolve().parent / "test_cases"
CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$"
Difficulty = Literal["easy", "medium", "hard"]
# A fact is a phrase the answer must contain, or a list of alternatives (any one is enough).
Fact = Union[Annotated[str, Field(min_length=1)], Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]]


class CaseFileError(ValueError):
    """A case file cannot be used; the message names the file, the case and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class HistoryMessage(_Strict):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class CaseFilters(_Strict):
    """The chat filters, spelled as the website sends them."""

    dotnetVersion: str | None = None
    aiLibrary: str | None = None
    aiProvider: str | None = None

    def active(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v}


class ChatCase(_Strict):
    """One question to the assistant and what a good answer retrieves, cites and says."""

    id: str = Field(pattern=CASE_ID_PATTERN)
    question: str = Field(min_length=1, max_length=4000)
    history: list[HistoryMessage] = Field(default_factory=list)
    filters: CaseFilters = Field(default_factory=CaseFilters)
    expected_sources: list[str] = Field(default_factory=list)
    expected_facts: list[Fact] = Field(default_factory=list)
    expect_abstention: bool = False
    expected_tools: list[str] = Field(default_factory=list)
    requires_tools: list[str] = Field(default_factory=list)  # skipped when the agent lacks one
    category: str = Field(min_length=1)
    difficulty: Difficulty = "medium"
    notes: str = ""
    draft: bool = False  # made by --from-feedback; a person still has to review it
    feedback: dict | None = None  # the thumbs-down that produced a draft

    @field_validator("expected_sources")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected source {url!r} is not an http(s) URL")
        if len(set(value)) != len(value):
            raise ValueError("expected_sources lists the same URL twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ChatCase":
        if self.expect_abstention and (self.expected_sources or self.expected_facts):
            raise ValueError("an abstention case (expect_abstention) cannot also expect sources or facts")
        if not self.draft and not self.expect_abstention and not (
                self.expected_sources or self.expected_facts or self.expected_tools):
            raise ValueError("give expected_sources, expected_facts or expected_tools, or set expect_abstention")
        if self.history and self.history[-1].role != "assistant":
            raise ValueError("history must end with an assistant message (the question is the next user turn)")
        return self


class CategorizationCase(_Strict):
    """A text and the AI-library tags the ingestion tagger should give it."""

    id: str = Field(pattern=CASE_ID_PATTERN)
    text: str = Field(min_length=1)
    expected_tags: list[str] = Field(default_factory=list)
    category: str = "categorization"
    difficulty: Difficulty = "medium"
    notes: str = ""

    @field_validator("expected_tags")
    @classmethod
    def _known_tags(cls, value: list[str]) -> list[str]:
        unknown = [tag for tag in value if tag not in VOCABULARY]
        if unknown:
            raise ValueError(f"unknown tag(s) {unknown}; use the ai_library vocabulary: {', '.join(VOCABULARY)}")
        return value


class ChatCaseFile(_Strict):
    kind: Literal["chat"]
    description: str = ""
    cases: list[dict]


class CategorizationCaseFile(_Strict):
    kind: Literal["categorization"]
    description: str = ""
    cases: list[dict]


class CaseSet(BaseModel):
    """Every case loaded from the given files, with the file each came from."""

    chat: list[ChatCase] = Field(default_factory=list)
    categorization: list[CategorizationCase] = Field(default_factory=list)
    origin: dict[str, str] = Field(default_factory=dict)  # case id -> file

    @property
    def size(self) -> int:
        return len(self.chat) + len(self.categorization)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item.get("loc", ()) if p != "__root__")
        message = item.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)


def _read(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseFileError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise CaseFileError(f"{path}: not valid YAML{where}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaseFileError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def load_case_file(path: Path) -> tuple[list[ChatCase], list[CategorizationCase]]:
    """Validate one file; the first problem raises `CaseFileError` naming the file and case id."""
    data = _read(path)
    if not isinstance(data, dict) or data.get("kind") not in ("chat", "categorization"):
        raise CaseFileError(f"{path}: expected an object with \"kind\": \"chat\" or \"categorization\" and a \"cases\" list")
    file_model = ChatCaseFile if data["kind"] == "chat" else CategorizationCaseFile
    try:
        parsed = file_model.model_validate(data)
    except ValidationError as exc:
        raise CaseFileError(f"{path}: {_describe(exc)}") from None
    case_model = ChatCase if data["kind"] == "chat" else CategorizationCase
    cases = []
    for index, raw in enumerate(parsed.cases):
        case_id = raw.get("id") if isinstance(raw, dict) else None
        label = f"case {case_id!r}" if isinstance(case_id, str) and case_id else f"case #{index + 1} (no id)"
        if not isinstance(raw, dict):
            raise CaseFileError(f"{path}: case #{index + 1}: expected an object")
        try:
            cases.append(case_model.model_validate(raw))
        except ValidationError as exc:
            raise CaseFileError(f"{path}: {label}: {_describe(exc)}") from None
    if data["kind"] == "chat":
        return cases, []
    return [], cases


def case_paths(paths: list[Path] | None) -> list[Path]:
    """Files to load: each given file, every *.json/*.yaml in each given folder (default: the shipped cases)."""
    found: list[Path] = []
    for path in paths or [DEFAULT_CASES_DIR]:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in (".json", ".yaml", ".yml")))
        elif path.exists():
            found.append(path)
        else:
            raise CaseFileError(f"{path}: no such file or folder")
    if not found:
        raise CaseFileError(f"no case files found in {', '.join(str(p) for p in paths or [DEFAULT_CASES_DIR])}")
    return found


def load_cases(paths: list[Path] | None = None) -> CaseSet:
    """Load and validate every case file; ids must be unique across all of them."""
    case_set = CaseSet()
    for path in case_paths(paths):
        chat, categorization = load_case_file(path)
        for case in [*chat, *categorization]:
            if case.id in case_set.origin:
                raise CaseFileError(f"{path}: case {case.id!r}: id already used in {case_set.origin[case.id]}")
            case_set.origin[case.id] = str(path)
        case_set.chat.extend(chat)
        case_set.categorization.extend(categorization)
    return case_set
