"""HTTP conditional requests on admin records (RFC 9110 §8.8.3, §13.1.1): a record's `ETag`
is its revision (sidecar/store/revisions.py), a strong validator; `If-Match` on a PATCH or
DELETE names the ETags it may still have (`*`: any, so long as it exists)."""

from __future__ import annotations

import re
from typing import Sequence

ANY = "*"
# RFC 9110 §8.8.3: entity-tag = [ W/ ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_LIST = re.compile(rf"[ \t]*(?:{_TAG}[ \t]*)?(?:,[ \t]*(?:{_TAG}[ \t]*)?)*")
_STRONG = re.compile(r'(W/)?"([^"]*)"')


class BadIfMatch(ValueError):
    """An If-Match that is neither `*` nor a list of entity tags (→ 400)."""


def etag(revision: str) -> str:
    return f'"{revision}"'


def if_match(values: Sequence[str]) -> frozenset[str] | None:
    """The revisions the request's If-Match fields allow (strong comparison: a weak tag
    allows none), {ANY} for `*`; None without the field."""
    if not values:
        return None
    joined = ", ".join(values)
    if joined.strip(" \t") == ANY:
        return frozenset({ANY})
    if not joined.strip(" \t,") or not _LIST.fullmatch(joined):
        raise BadIfMatch('If-Match: must be * or a list of entity tags such as "0123abcd" (as ETag gave them)')
    return frozenset(opaque for weak, opaque in _STRONG.findall(joined) if not weak)


def allows(wanted: frozenset[str] | None, revision: str) -> bool:
    return wanted is None or ANY in wanted or revision in wanted
