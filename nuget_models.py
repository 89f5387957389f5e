"""What `nuget_search.NuGetClient` returns, and how NuGet's JSON becomes it (lenient: odd fields are dropped)."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

NUGET_GALLERY_URL = "https://www.nuget.org/packages/"


class NuGetPackage(BaseModel):
    """One search hit."""

    id: str
    version: str = ""
    description: str = ""
    summary: str = ""
    authors: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list)
    total_downloads: int = 0
    verified: bool = False
    tags: list[str] = Field(default_factory=list)
    project_url: str | None = None
    license_url: str | None = None
    icon_url: str | None = None
    versions: list[str] = Field(default_factory=list)
    package_types: list[str] = Field(default_factory=list)
    nuget_url: str = ""


class NuGetSearchResult(BaseModel):
    """A page of search hits and the endpoint that answered."""

    total_hits: int = 0
    packages: list[NuGetPackage] = Field(default_factory=list)
    source_url: str


class NuGetDependency(BaseModel):
    id: str
    range: str | None = None


class NuGetDependencyGroup(BaseModel):
    target_framework: str | None = None  # None: applies to any framework
    dependencies: list[NuGetDependency] = Field(default_factory=list)


class NuGetPackageDetails(BaseModel):
    """Metadata of one package version from the registration index."""

    id: str
    version: str
    versions: list[str] = Field(default_factory=list)
    description: str = ""
    authors: list[str] = Field(default_factory=list)
    license_expression: str | None = None
    license_url: str | None = None
    project_url: str | None = None
    published: datetime | None = None
    listed: bool = True
    dependency_groups: list[NuGetDependencyGroup] = Field(default_factory=list)
    nuget_url: str


def text(value: Any) -> str | None:
    """A stripped, non-empty string, else None (NuGet's fields may be missing, null or of another type)."""
    return (value.strip() or None) if isinstance(value, str) else None


def str_list(value: Any, sep: str = ",") -> list[str]:
    # NuGet serves authors/owners/tags either as a delimited string or as a list.
    items = re.split(sep, value) if isinstance(value, str) else value if isinstance(value, list) else []
    return [t for t in (text(v) for v in items) if t]


def to_int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def to_datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def nuget_url(package_id: str, version: str | None = None) -> str:
    """nuget.org gallery URL for a package, optionally pinned to a version."""
    return f"{NUGET_GALLERY_URL}{package_id}/{version}" if version else f"{NUGET_GALLERY_URL}{package_id}"


def parse_package(item: Any) -> NuGetPackage | None:
    if not isinstance(item, dict) or not text(item.get("id")):
        return None
    pkg_id, version = item["id"].strip(), text(item.get("version")) or ""
    versions = [text(v.get("version") if isinstance(v, dict) else v) for v in item.get("versions") or []]
    types = [text(t.get("name")) for t in item.get("packageTypes") or [] if isinstance(t, dict)]
    return NuGetPackage(
        id=pkg_id,
        version=version,
        description=text(item.get("description")) or "",
        summary=text(item.get("summary")) or "",
        authors=str_list(item.get("authors")),
        owners=str_list(item.get("owners")),
        total_downloads=to_int(item.get("totalDownloads")),
        verified=item.get("verified") is True,
        tags=str_list(item.get("tags"), r"[,\s]+"),
        project_url=text(item.get("projectUrl")),
        license_url=text(item.get("licenseUrl")),
        icon_url=text(item.get("iconUrl")),
        versions=[v for v in versions if v],
        package_types=[t for t in types if t],
        nuget_url=nuget_url(pkg_id, version),
    )


def parse_dependency_groups(groups: Any) -> list[NuGetDependencyGroup]:
    return [
        NuGetDependencyGroup(
            target_framework=text(g.get("targetFramework")),
            dependencies=[
                NuGetDependency(id=d["id"].strip(), range=text(d.get("range")))
                for d in g.get("dependencies") or []
                if isinstance(d, dict) and text(d.get("id"))
            ],
        )
        for g in (groups if isinstance(groups, list) else [])
        if isinstance(g, dict)
    ]


def parse_details(entry: dict, *, package_id: str, versions: list[str]) -> NuGetPackageDetails:
    """The details of a registration catalog entry; `versions`: the listed ones, oldest first."""
    pkg_id, ver = text(entry.get("id")) or package_id, entry["version"].strip()
    return NuGetPackageDetails(
        id=pkg_id,
        version=ver,
        versions=versions,
        description=text(entry.get("description")) or "",
        authors=str_list(entry.get("authors")),
        license_expression=text(entry.get("licenseExpression")),
        license_url=text(entry.get("licenseUrl")),
        project_url=text(entry.get("projectUrl")),
        published=to_datetime(entry.get("published")),
        listed=entry.get("listed") is not False,
        dependency_groups=parse_dependency_groups(entry.get("dependencyGroups")),
        nuget_url=nuget_url(pkg_id, ver),
    )
