"""Only http(s) links leave the service: a `javascript:` or `data:` URL in content must never reach a page.

Used where links are ingested (feeds, seed files, sample files) and again where they are served,
because rows written before this check (or by another tool) may still hold anything.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Browsers drop these from a URL before reading its scheme, so "java\tscript:" is still javascript:.
_IGNORED_BY_BROWSERS = re.compile(r"[\x00-\x20\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:")


def http_url(value: object) -> str | None:
    """`value` stripped when it is an absolute http(s) URL with a host, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or _IGNORED_BY_BROWSERS.search(text):
        return None
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return text


def text_or_http_url(value: object) -> str:
    """Free text (a code preview, say) as is, unless it is a URL of another scheme than http(s): then "".

    A URL is one word with a scheme ("ftp://x", "javascript:..."); text that merely starts like one
    ("Note: ...") is kept, except for the script schemes, which are refused however they are spaced.
    """
    if not isinstance(value, str):
        return ""
    squeezed = _IGNORED_BY_BROWSERS.sub("", value)
    one_word = not re.search(r"\s", value.strip())
    if squeezed.lower().startswith(_SCRIPT_SCHEMES) or (one_word and _SCHEME.match(squeezed) and http_url(value) is None):
        return ""
    return value
