"""HTTP conditional requests on admin records (RFC 9110 §8.8.3, §13.1.1, §13.1.2): a record's
`ETag` is its revision (sidecar/store/revisions.py), a strong validator; `If-Match` on a PATCH
or DELETE names the ETags it may still have (`*`: any, so long as it exists); `If-None-Match`
on a GET names the ETags the caller already holds (→ 304 Not Modified)."""

from __future__ import annotations

import re
from typing import Sequence

ANY = "*"
# RFC 9110 §8.8.3, §5.6.1: If-Match = If-None-Match = "*" / #entity-tag, entity-tag = [ W/ ] DQUOTE *etagc DQUOTE,
# etagc = %x21 / %x23-7E / obs-text (obsolete, and in no ETag of ours: left out); a list may hold
# empty elements.
_TAG = r'(?:W/)?"[\x21\x23-\x7e]*"'
_PATTERN = rf"^(?:[ \t]*\*[ \t]*|(?:[ \t]*,)*[ \t]*{_TAG}(?:[ \t]*,(?:[ \t]*{_TAG})?)*[ \t]*)$"
_FIELD = re.compile(_PATTERN)
_TAGS = re.compile(r'(W/)?"([^"]*)"')


class BadIfMatch(ValueError):
    """An If-Match that is neither `*` nor a list of entity tags: it matches nothing (→ 412)."""


def etag(revision: str) -> str:
    return f'"{revision}"'


def _named(values: Sequence[str], weak: bool) -> frozenset[str] | None:
    """The revisions a list of entity tags names ({ANY} for `*`; weak tags too when `weak`);
    None without the field; BadIfMatch for a field that is neither."""
    if not values:
        return None
    joined = ", ".join(values)
    if not _FIELD.fullmatch(joined):
        raise BadIfMatch('If-Match: is neither * nor a list of entity tags such as "0123abcd" (as ETag gave '
                         'them): it matches no ETag')
    if joined.strip(" \t") == ANY:
        return frozenset({ANY})
    return frozenset(opaque for w, opaque in _TAGS.findall(joined) if weak or not w)


def if_match(values: Sequence[str]) -> frozenset[str] | None:
    """The revisions the request's If-Match fields allow (strong comparison: a weak tag
    allows none), {ANY} for `*`; None without the field."""
    return _named(values, weak=False)


def allows(wanted: frozenset[str] | None, revision: str) -> bool:
    return wanted is None or ANY in wanted or revision in wanted


def if_none_match(values: Sequence[str]) -> frozenset[str] | None:
    """The revisions the request's If-None-Match fields name, compared weakly (RFC 9110
    §13.1.2: `W/"x"` names "x" too), {ANY} for `*`; None without the field, and for a field
    that is neither `*` nor a list of entity tags: ignored, the full answer is never wrong."""
    try:
        return _named(values, weak=True)
    except BadIfMatch:
        return None


def not_modified(named: frozenset[str] | None, revision: str) -> bool:
    """If-None-Match is false for the record at `revision` (it exists: `*` names it): 304."""
    return named is not None and allows(named, revision)
