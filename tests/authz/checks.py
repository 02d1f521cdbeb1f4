"""What the transports answer for one request, in the engine's terms: Engine.check_now (as
every adapter calls it), then the Mutator's headers and metadata for the requesting token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authz.decision import Decision
from authz.engine import Engine
from authz.now_or_later import settled
from authz.request import AuthRequest


@dataclass
class Answer:
    decision: Decision
    headers: dict[str, str]  # set upstream, the token's own user header included
    metadata: dict[str, Any]

    def __getattr__(self, name: str) -> Any:  # allowed, status, error, description, ...
        return getattr(self.decision, name)


async def answer(engine: Engine, req: AuthRequest) -> Answer:
    decision, identity = await settled(engine.check_now(req))
    return Answer(decision, dict(engine.mutator.headers(decision, identity)),
                  engine.mutator.metadata(decision, identity))
