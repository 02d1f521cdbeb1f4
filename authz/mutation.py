"""The header mutation for an allowed request: trusted identity headers in, smuggled ones out.
The Mutator makes the allows and derives from a Decision what the transports encode."""

from __future__ import annotations

import json
from typing import Any, Iterable

from config.settings import HeaderNames

from authz.decision import Decision
from authz.identity import Identity


MAX_SHAPES = 4096  # distinct shared allows kept; past that the table starts over


class Mutator:
    def __init__(self, names: HeaderNames, remove_authorization: bool = False,
                 metadata_fields: Iterable[str] = ()) -> None:
        self.names = names
        self.metadata_fields = frozenset(metadata_fields)  # the `dynamic_metadata` setting
        self.managed = (names.tenant, names.org, names.project, names.user, names.client, names.scopes, names.actor)
        self._extra_remove = ("authorization",) if remove_authorization else ()
        self._allows: dict[tuple, Decision] = {}

    def allow(self, identity: Identity | None, project: str | None) -> Decision:
        """An allow; for a token, the one decision shared by every token of its shape."""
        if identity is None:
            return Decision(True, 200, "ok")
        shape = (identity.profile, project, identity.subject is None)
        decision = self._allows.get(shape)
        if decision is None:
            if len(self._allows) >= MAX_SHAPES:
                self._allows.clear()
            decision = self._allows[shape] = Decision(True, 200, "ok", identity=identity, project=project,
                                                      personal=True)
        return decision

    def headers(self, decision: Decision, identity: Identity | None = None) -> tuple[tuple[str, str], ...]:
        """The headers an allow sets (overwrite semantics): those its shape shares, and with
        `identity` (the requesting token's) also the token's own user header."""
        shape = decision.identity
        if not decision.allowed or shape is None:
            return ()
        n = self.names
        values = ((n.tenant, shape.tenant), (n.org, shape.org_id), (n.project, decision.project),
                  (n.client, shape.client_id), (n.scopes, shape.scope_text), (n.actor, shape.actor))
        shared = tuple((name, value) for name, value in values if value)
        return shared + ((n.user, identity.subject),) if identity is not None and identity.subject else shared

    def remove(self, decision: Decision) -> tuple[str, ...]:
        """The headers an allow removes upstream."""
        # Every managed name that we do not set is removed, so a client can never smuggle one
        # in; those we set are overwritten (never appended), which removes the client's value.
        # Tokens of one shape all have a subject or none (the shape says which).
        set_names = {name for name, _ in self.headers(decision, decision.identity)}
        return tuple(name for name in self.managed if name not in set_names) + self._extra_remove

    def metadata(self, decision: Decision, identity: Identity | None = None) -> dict[str, Any]:
        """Dynamic metadata of an allow, the fields `dynamic_metadata` names: its shape's (with a
        delegated token's whole `act`), and with `identity` also the token's own `sub` and `jti`."""
        fields = self.metadata_fields
        if not decision.allowed or not fields:
            return {}
        shape = decision.identity
        if shape is None:
            return {"anonymous": True} if "anonymous" in fields else {}
        meta = {"tenant": shape.tenant, "org_id": shape.org_id, "project_id": decision.project,
                "client_id": shape.client_id, "scope": shape.scope_text, "iss": shape.issuer,
                "act": json.loads(shape.profile.act) if shape.profile.act else None}
        if identity is not None:
            meta.update(sub=identity.subject, jti=identity.jti)
        return {k: v for k, v in meta.items() if v and k in fields}
