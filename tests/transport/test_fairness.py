"""Issue 14, finding 1: no connection's input holds the event loop. Each attack runs from
its own process against the real `auth-sidecar serve` (reconnecting whenever it is cut
off) while a prober asks gRPC health, an ext_authz Check and HTTP /readyz on other
connections: every answer within 1 s, and the attacker is told ENHANCE_YOUR_CALM."""

from __future__ import annotations

import pytest

from tests.support.h2_attacker import ATTACKS
from tests.support.h2_attacks import measure
from transport.h2 import frames as w


@pytest.mark.parametrize("name", list(ATTACKS))
def test_an_attacking_connection_does_not_stall_the_others(h2_sidecar, name):
    attack, probe = measure(h2_sidecar, name, duration=1.5)
    assert not probe.failures, probe.failures
    assert probe.stall < 1.0, probe.longest
    assert probe.rss_max - probe.rss_before < 50, (probe.rss_before, probe.rss_max)
    # cut off past its budget (an attacker that never reads cannot see the GOAWAY: it sees
    # the connection closed, and has to come back)
    assert attack["connections"] > 1
    if ATTACKS[name].reads:
        assert attack["goaways"] == [w.ENHANCE_YOUR_CALM]
