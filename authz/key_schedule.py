"""The signing keys' life cycle: published -> active -> retired -> gone, computed from the
keys' activation times and the clock alone, so every replica reading the same keys folder
agrees on it without talking to the others.

- A key's activation time is in its file name: `20261128T091500Z-<kid>.pem` (UTC). A file
  without one is active from the start (a keys folder written before the schedule existed).
- Keys are ordered by (activation, file name); the last one whose activation has come signs.
  Keys without an activation time come first, in file-name order.
- Before its activation a key is *published*: in the JWKS and accepted, not signing.
- A key stops signing when its successor activates; it stays *retired* (published and
  accepted) for `retention` after that (the longest token lifetime plus leeway), then it is
  *gone*. A key whose successor has no activation time either stays retired while its file
  is there (no time to count from).
- When no key has activated yet, the earliest one signs (a new folder, or clocks apart).
"""

from __future__ import annotations

import calendar
import math
import re
import time
from dataclasses import dataclass
from typing import Sequence

PUBLISHED, ACTIVE, RETIRED, GONE = "published", "active", "retired", "gone"

_STAMP = "%Y%m%dT%H%M%S"
_NAME = re.compile(r"^(\d{8}T\d{6})Z[-_.]")


def activation_from_name(name: str) -> float | None:
    """The activation time a file name carries, or None."""
    match = _NAME.match(name)
    if match is None:
        return None
    try:
        return float(calendar.timegm(time.strptime(match.group(1), _STAMP)))
    except ValueError:
        return None


def name_for(activation: float, kid: str) -> str:
    """The file name of a key activating at `activation` (whole seconds, rounded up so that
    the key never signs before the time it was promised for)."""
    return f"{time.strftime(_STAMP, time.gmtime(math.ceil(activation)))}Z-{kid}.pem"


def order(activation: float | None, name: str) -> tuple[float, str]:
    return (-math.inf if activation is None else activation, name)


@dataclass(frozen=True, slots=True)
class Plan:
    active: int  # index of the signing key
    states: tuple[str, ...]  # per key, in order
    retires_at: tuple[float | None, ...]  # per key: when it is gone (None: not retiring)
    next_change: float  # the next time any state changes (inf: never by the clock alone)
    early: bool  # no key has activated yet: the earliest signs ahead of its time


def plan(activations: Sequence[float | None], now: float, retention: float) -> Plan:
    """The state of each key at `now`; `activations` are in `order`."""
    acts = [-math.inf if a is None else a for a in activations]
    started = [i for i, a in enumerate(acts) if a <= now]
    active = started[-1] if started else 0
    states: list[str] = []
    ends: list[float | None] = []
    next_change = math.inf
    for i, act in enumerate(acts):
        if i >= active:
            states.append(ACTIVE if i == active else PUBLISHED)
            ends.append(None)
            if act > now:
                next_change = min(next_change, act)
            continue
        end = acts[i + 1] + retention  # -inf + x stays -inf: handled below
        if acts[i + 1] == -math.inf:
            end = math.inf
        ends.append(None if end == math.inf else end)
        if end <= now:
            states.append(GONE)
        else:
            states.append(RETIRED)
            next_change = min(next_change, end)
    return Plan(active, tuple(states), tuple(ends), next_change, not started)
