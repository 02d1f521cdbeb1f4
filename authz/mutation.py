"""The header mutation for an allowed request: trusted identity headers in, smuggled ones out."""

from __future__ import annotations

from typing import Any

from config.settings import HeaderNames

from authz.decision import Decision
from authz.identity import Identity


MAX_SHAPES = 4096  # distinct shared allows kept; past that the table starts over


class Mutator:
    def __init__(self, names: HeaderNames, remove_authorization: bool = False) -> None:
        self.names = names
        self.managed = (names.tenant, names.org, names.project, names.user, names.client, names.scopes)
        self._extra_remove = ("authorization",) if remove_authorization else ()
        self._allows: dict[tuple, Decision] = {}

    def allow(self, identity: Identity | None, project: str | None) -> Decision:
        """An allow; for a token, the one decision shared by every token of its shape."""
        if identity is None:
            return Decision(True, 200, "ok", mutator=self)
        shape = (identity.profile, project, identity.subject is None)
        decision = self._allows.get(shape)
        if decision is None:
            if len(self._allows) >= MAX_SHAPES:
                self._allows.clear()
            decision = self._allows[shape] = Decision(True, 200, "ok", identity=identity, project=project,
                                                      mutator=self, personal=True)
        return decision

    def headers(self, identity: Identity | None, project: str | None,
                own: bool = True) -> tuple[tuple[str, str], ...]:
        """The headers to set; without `own`, all but the token's own subject."""
        if identity is None:
            return ()
        n = self.names
        values = ((n.tenant, identity.tenant), (n.org, identity.org_id), (n.project, project),
                  (n.client, identity.client_id), (n.scopes, identity.scope_text))
        shared = tuple((name, value) for name, value in values if value)
        return shared + ((n.user, identity.subject),) if own and identity.subject else shared

    def remove(self, identity: Identity | None, project: str | None) -> tuple[str, ...]:
        # Every managed name that we do not set is removed, so a client can never smuggle one
        # in; those we set are overwritten (never appended), which removes the client's value.
        set_names = {name for name, _ in self.headers(identity, project)}
        return tuple(name for name in self.managed if name not in set_names) + self._extra_remove

    @staticmethod
    def metadata(identity: Identity | None, project: str | None, own: bool = True) -> dict[str, Any]:
        """Dynamic metadata; without `own`, all but the token's own `sub` and `jti`."""
        if identity is None:
            return {"anonymous": True}
        meta = {"tenant": identity.tenant, "org_id": identity.org_id, "project_id": project,
                "client_id": identity.client_id, "scope": identity.scope_text, "iss": identity.issuer}
        if own:
            meta.update(sub=identity.subject, jti=identity.jti)
        return {k: v for k, v in meta.items() if v}
