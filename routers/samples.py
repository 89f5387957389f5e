"""GET /api/samples (the gallery), /api/samples/tags and /api/samples/{id}."""

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from models import ErrorResponse
from routers.deps import ContentDep, DatabaseDep
from services.content.cache import MAX_SEARCH_CHARS
from services.core.errors import NotFound
from services.content.samples import MAX_ID_CHARS, MAX_TAGS, get_sample, list_samples, sample_tags

router = APIRouter(prefix="/api/samples", tags=["samples"])


class Sample(BaseModel):
    id: str
    title: str
    description: str = ""
    preview: str = ""
    authorUrl: str = ""
    author: str = ""
    source: str = ""
    tags: list[str] = Field(default_factory=list)


class SamplesPage(BaseModel):
    samples: list[Sample]
    total: int
    page: int
    pages: int
    page_size: int


class TagList(BaseModel):
    tags: list[str]


@router.get("", response_model=SamplesPage)
async def read_samples(
    database: DatabaseDep,
    content: ContentDep,
    page: int = Query(1, ge=1, description="1-based page number; pages past the end are empty."),
    page_size: int = Query(20, ge=1, le=100),
    search: str | None = Query(None, description=f"Case-insensitive literal text in title, description, author "
                                                 f"or tags (only the first {MAX_SEARCH_CHARS} characters are used)."),
    tags: str | None = Query(None, max_length=2000,
                             description=f"Comma-separated tags; a sample matches any of them (first {MAX_TAGS} used)."),
) -> dict:
    """A page of samples in title order, filtered by literal search and any-of tags."""
    return await list_samples(database=database, view=content.samples, page=page,
                              page_size=page_size, search=search, tags=tags)


@router.get("/tags", response_model=TagList)
async def read_tags(database: DatabaseDep, content: ContentDep) -> dict:
    """Every tag used by a sample, sorted and unique."""
    return {"tags": await sample_tags(database=database, view=content.samples)}


@router.get("/{sample_id:path}", response_model=Sample, responses={404: {"model": ErrorResponse}})
async def read_sample(database: DatabaseDep, content: ContentDep, sample_id: str = Path(min_length=1, max_length=MAX_ID_CHARS)) -> dict:
    """One sample by its id (ids may contain `/`, e.g. `owner/repo`)."""
    sample = await get_sample(database=database, view=content.samples, sample_id=sample_id)
    if sample is None:
        raise NotFound("Sample not found")
    return sample
