"""NuGet results as the short text the agent reads (the JSON beside it carries the links)."""

from __future__ import annotations

from nuget_search import NuGetPackageDetails, NuGetSearchResult, is_prerelease


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_search_for_agent(result: NuGetSearchResult) -> str:
    """Compact text lines describing search hits, for LLM tool output."""
    if not result.packages:
        return "No NuGet packages found."
    lines = [f"{result.total_hits} package(s) matched; showing {len(result.packages)}, verified first:"]
    for i, p in enumerate(result.packages, 1):
        pre = " (prerelease)" if is_prerelease(p.version) else ""
        badge = "verified" if p.verified else "not verified"
        lines.append(f"{i}. {p.id} {p.version}{pre} | {p.total_downloads:,} downloads | {badge} | {p.nuget_url}")
        if desc := _one_line(p.description or p.summary):
            lines.append(f"   {desc}")
    return "\n".join(lines)


def format_details_for_agent(details: NuGetPackageDetails, max_versions: int = 10) -> str:
    """Compact text description of one package version, for LLM tool output."""
    d = details
    pre = " (prerelease)" if is_prerelease(d.version) else ""
    published = f", published {d.published.date().isoformat()}" if d.published else ""
    lines = [f"{d.id} {d.version}{pre} ({'listed' if d.listed else 'UNLISTED'}{published})", f"URL: {d.nuget_url}"]
    lines.append(f"Authors: {', '.join(d.authors) or 'unknown'}")
    lines.append(f"License: {d.license_expression or d.license_url or 'unknown'}")
    if d.project_url:
        lines.append(f"Project: {d.project_url}")
    if d.description:
        lines.append(f"Description: {_one_line(d.description, 400)}")
    recent = d.versions[::-1][:max_versions]
    older = f" (+{len(d.versions) - len(recent)} older)" if len(d.versions) > len(recent) else ""
    lines.append(f"Versions, newest first: {', '.join(recent) or 'none listed'}{older}")
    lines.append("Dependencies:" if d.dependency_groups else "Dependencies: none")
    for g in d.dependency_groups:
        deps = "; ".join(f"{x.id} {x.range or ''}".strip() for x in g.dependencies) or "none"
        lines.append(f"  {g.target_framework or 'any framework'}: {deps}")
    return "\n".join(lines)
