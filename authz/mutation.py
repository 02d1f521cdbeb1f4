"""The header mutation for an allowed request: trusted identity headers in, smuggled ones out."""

from __future__ import annotations

from typing import Any

from config.settings import HeaderNames

from authz.decision import Decision
from authz.identity import Identity


class Mutator:
    def __init__(self, names: HeaderNames, remove_authorization: bool = False) -> None:
        self.names = names
        self.managed = (names.tenant, names.org, names.project, names.user, names.client, names.scopes)
        self._extra_remove = ("authorization",) if remove_authorization else ()

    def allow(self, identity: Identity | None, project: str | None) -> Decision:
        return Decision(True, 200, "ok", identity=identity, project=project, mutator=self)

    def headers(self, identity: Identity | None, project: str | None) -> tuple[tuple[str, str], ...]:
        if identity is None:
            return ()
        n = self.names
        values = ((n.tenant, identity.tenant), (n.org, identity.org_id), (n.project, project),
                  (n.user, identity.subject), (n.client, identity.client_id), (n.scopes, identity.scope_text))
        return tuple((name, value) for name, value in values if value)

    def remove(self, identity: Identity | None, project: str | None) -> tuple[str, ...]:
        # Every managed name that we do not set is removed, so a client can never smuggle one
        # in; those we set are overwritten (never appended), which removes the client's value.
        set_names = {name for name, _ in self.headers(identity, project)}
        return tuple(name for name in self.managed if name not in set_names) + self._extra_remove

    @staticmethod
    def metadata(identity: Identity | None, project: str | None) -> dict[str, Any]:
        if identity is None:
            return {"anonymous": True}
        meta = {"sub": identity.subject, "tenant": identity.tenant, "org_id": identity.org_id,
                "project_id": project, "client_id": identity.client_id, "scope": identity.scope_text,
                "iss": identity.issuer, "jti": identity.jti}
        return {k: v for k, v in meta.items() if v}
