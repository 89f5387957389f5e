"""Async client for NuGet's v3 search, registration and flat-container APIs; what it returns is in nuget_models."""
from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp

from nuget_models import (NUGET_GALLERY_URL, NuGetDependency, NuGetDependencyGroup, NuGetPackage,  # noqa: F401
                          NuGetPackageDetails, NuGetSearchResult, nuget_url, parse_details, parse_package, text, to_int)

DEFAULT_SEARCH_URLS: tuple[str, ...] = (
    "https://azuresearch-usnc.nuget.org/query",
    "https://azuresearch-ussc.nuget.org/query",
)
DEFAULT_REGISTRATION_BASE_URL = "https://api.nuget.org/v3/registration5-gz-semver2/"
DEFAULT_FLAT_CONTAINER_URL = "https://api.nuget.org/v3-flatcontainer/"

# IDs and versions end up in URL paths, so anything outside NuGet's grammar is rejected
# before any request (this also stops "../"-style paths coming from LLM tool arguments).
_ID_RE = re.compile(r"^\w+(?:[.-]\w+)*$")
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")


class NuGetError(Exception):
    """Base error for NuGet lookups; the message is meant for a person."""


class NuGetUnavailableError(NuGetError):
    """NuGet could not be reached, timed out or kept failing."""

    def __init__(self, message: str, attempts: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.attempts = attempts or []  # (url, reason) pairs for logs; URLs stay out of the message


class NuGetNotFoundError(NuGetError):
    """The package or version does not exist."""


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8-sig"))
    except ValueError:  # also covers UnicodeDecodeError
        return None


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    data = _json_or_none(body)
    if not isinstance(data, dict):
        raise NuGetError(f"NuGet returned an invalid response (not the expected JSON) while loading {what}.")
    return data


def is_prerelease(version: str) -> bool:
    return "-" in version.split("+", 1)[0]


def _version_key(version: str) -> tuple:
    """Sort key following NuGet/SemVer 2 precedence, ignoring build metadata."""
    core, _, pre = version.strip().split("+", 1)[0].partition("-")
    nums = tuple(int(p) if p.isascii() and p.isdigit() else 0 for p in core.split("."))
    labels = tuple((0, int(p), "") if p.isascii() and p.isdigit() else (1, 0, p.lower()) for p in pre.split("."))
    # Padding makes 1.0 == 1.0.0 == 1.0.0.0; a release ranks above its prereleases.
    return (nums + (0, 0, 0, 0))[:4], not pre, labels if pre else ()


class NuGetClient:
    """NuGet v3 client running on a caller-owned aiohttp session."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        search_urls: list[str] | None = None,
        registration_base_url: str = DEFAULT_REGISTRATION_BASE_URL,
        flat_container_url: str = DEFAULT_FLAT_CONTAINER_URL,
        timeout_seconds: float = 5.0,
    ):
        self._session = session
        self._search_urls = list(DEFAULT_SEARCH_URLS if search_urls is None else search_urls)
        if not self._search_urls:
            raise ValueError("search_urls must contain at least one URL")
        # URLs are built by appending "{id}/...", so the bases must end with a slash.
        self._registration = registration_base_url.rstrip("/") + "/"
        self._flat = flat_container_url.rstrip("/") + "/"
        self._timeout_seconds = timeout_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def _fetch(self, url: str, params: dict[str, str] | None = None) -> tuple[int, bytes, str]:
        """GET a URL; returns (status, body, reason), status 0 when nothing usable came back."""
        try:
            async with self._session.get(url, params=params, timeout=self._timeout) as resp:
                reason = f"server error (HTTP {resp.status})" if resp.status >= 500 else f"HTTP {resp.status}"
                return resp.status, await resp.read(), reason
        except asyncio.TimeoutError:  # before ClientError: aiohttp's timeout errors are both
            return 0, b"", f"timed out after {self._timeout_seconds:g}s"
        except aiohttp.ClientError:
            return 0, b"", "connection failed"

    async def _get(self, url: str, what: str) -> bytes | None:
        """GET from a single endpoint; None means 404."""
        status, body, reason = await self._fetch(url)
        if status in (200, 404):
            return body if status == 200 else None
        raise NuGetUnavailableError(
            f"NuGet is unavailable right now: {reason} while loading {what}. Please try again later.", [(url, reason)]
        )

    async def search(
        self, query: str, *, take: int = 10, skip: int = 0, prerelease: bool = False, package_type: str | None = None
    ) -> NuGetSearchResult:
        """Search packages (verified first, then by downloads), falling back across search endpoints."""
        params = {"q": query, "take": str(take), "skip": str(skip), "prerelease": str(prerelease).lower()}
        params["semVerLevel"] = "2.0.0"
        if package_type:
            params["packageType"] = package_type
        attempts: list[tuple[str, str]] = []
        for url in self._search_urls:
            status, body, reason = await self._fetch(url, params)
            if status == 0 or status >= 500 or status == 429:
                attempts.append((url, reason))
                continue
            if status != 200:  # other 4xx: the query itself is wrong, another endpoint would agree
                raise NuGetError(f"NuGet search rejected the query (HTTP {status}).")
            data = _json_or_none(body)
            if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                attempts.append((url, "returned an invalid response (not the expected JSON)"))
                continue
            packages = [p for p in map(parse_package, data["data"]) if p]
            # Re-ranks this page only; sort is stable, so NuGet's relevance order breaks ties.
            packages.sort(key=lambda p: (not p.verified, -p.total_downloads))
            total = to_int(data["totalHits"]) if "totalHits" in data else len(packages)
            return NuGetSearchResult(total_hits=total, packages=packages, source_url=url)
        raise NuGetUnavailableError(
            f"NuGet search is unavailable right now (tried {len(attempts)} endpoint(s): "
            f"{'; '.join(reason for _, reason in attempts)}). Please try again later.",
            attempts,
        )

    async def get_package(self, package_id: str, version: str | None = None) -> NuGetPackageDetails:
        """Details of one version: the requested one, else the latest listed stable (else prerelease)."""
        package_id = package_id.strip()
        if not _ID_RE.match(package_id) or len(package_id) > 100:
            raise NuGetNotFoundError(f"'{package_id}' is not a valid NuGet package ID.")
        what = f"package '{package_id}'"
        body = await self._get(f"{self._registration}{package_id.lower()}/index.json", what)
        if body is None:
            raise NuGetNotFoundError(f"Package '{package_id}' was not found on NuGet.")
        pages = [p for p in _json_object(body, what).get("items") or [] if isinstance(p, dict)]
        # Packages with many versions ship pages without "items"; those are fetched via their @id.
        remote = [p["@id"] for p in pages if "items" not in p and isinstance(p.get("@id"), str)]
        pages += [_json_object(b, what) for b in await asyncio.gather(*(self._get(u, what) for u in remote)) if b]
        leaves = [leaf for p in pages if isinstance(p.get("items"), list) for leaf in p["items"]]
        entries = [leaf.get("catalogEntry") for leaf in leaves if isinstance(leaf, dict)]
        entries = sorted(
            (e for e in entries if isinstance(e, dict) and text(e.get("version"))),
            key=lambda e: _version_key(e["version"]),
        )
        if not entries:
            raise NuGetNotFoundError(f"Package '{package_id}' was not found on NuGet.")
        listed = [e for e in entries if e.get("listed") is not False]
        if version:
            wanted = _version_key(version) if _VERSION_RE.match(version.strip()) else None
            entry = next((e for e in entries if _version_key(e["version"]) == wanted), None)
            if entry is None:
                recent = ", ".join(e["version"] for e in listed[::-1][:5]) or "none"
                raise NuGetNotFoundError(f"Package '{package_id}' has no version '{version}'. Recent: {recent}.")
        else:
            # Unlisted versions are hidden on nuget.org, so they are never picked as "latest".
            stable = [e for e in listed if not is_prerelease(e["version"])]
            entry = (stable or listed or entries)[-1]
        return parse_details(entry, package_id=package_id, versions=[e["version"].strip() for e in listed])

    async def _flat_file(self, package_id: str, version: str, name: str) -> str | None:
        package_id, version = package_id.strip(), version.strip()
        if not _ID_RE.match(package_id) or not _VERSION_RE.match(version):
            return None  # cannot exist on NuGet: same answer as a 404
        # Flat-container paths use the lowercased version without build metadata.
        url = f"{self._flat}{package_id.lower()}/{version.split('+', 1)[0].lower()}/{name}"
        body = await self._get(url, f"the {name} of '{package_id}' {version}")
        return None if body is None else body.decode("utf-8-sig", errors="replace")

    async def get_readme(self, package_id: str, version: str) -> str | None:
        """README text of a package version, or None if it has none."""
        return await self._flat_file(package_id, version, "readme")

    async def get_license(self, package_id: str, version: str) -> str | None:
        """Embedded license file text of a package version, or None if it has none."""
        return await self._flat_file(package_id, version, "license")
