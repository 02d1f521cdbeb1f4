"""The gRPC face: envoy.service.auth.v3.Authorization/Check.

The handler is registered with no response serializer: it returns bytes, so the encoded
CheckResponse of a cached decision is built once and reused for every later hit.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from envoy.config.core.v3.base_pb2 import HeaderValue, HeaderValueOption
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.type.v3.http_status_pb2 import HttpStatus
from google.protobuf.message import DecodeError
from google.protobuf.struct_pb2 import Struct
from google.rpc.status_pb2 import Status

from authz.decision import Decision, forbidden, remember
from authz.engine import Checked, Engine
from authz.identity import Identity
from authz.mutation import Mutator
from authz.now_or_later import Later, NowOrLater, settled
from authz.request import AuthRequest, Origin
from transport.grpc.unary import INVALID_ARGUMENT, GrpcError

if TYPE_CHECKING:
    import grpc

log = logging.getLogger("transport.grpc")

SERVICE = "envoy.service.auth.v3.Authorization"
_OVERWRITE = HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_GRPC_CODE = {401: 16, 403: 7, 503: 14}  # UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE
ENCODED = "grpc"  # this adapter's key in Decision.encoded


def encode(decision: Decision, mutator: Mutator | None) -> bytes:
    """The wire form of a decision's CheckResponse (a personal one's without the token's own
    part, see `OwnPart`); `mutator` derives an allow's headers and metadata."""
    metadata: dict = {}
    if decision.allowed:
        assert mutator is not None
        ok = pb.OkHttpResponse(
            headers=[HeaderValueOption(header=HeaderValue(key=k, value=v), append_action=_OVERWRITE)
                     for k, v in mutator.headers(decision)],
            headers_to_remove=list(mutator.remove(decision)))
        response = pb.CheckResponse(status=Status(code=0), ok_response=ok)
        metadata = mutator.metadata(decision)
    else:
        denied = pb.DeniedHttpResponse(
            status=HttpStatus(code=decision.status),
            headers=[HeaderValueOption(header=HeaderValue(key="www-authenticate", value=decision.www_authenticate),
                                       append_action=_OVERWRITE),
                     HeaderValueOption(header=HeaderValue(key="content-type", value="application/json"),
                                       append_action=_OVERWRITE)],
            body=decision.body.decode())
        if decision.nonce:  # RFC 9449 §9: the nonce a DPoP proof must carry
            denied.headers.add(header=HeaderValue(key="dpop-nonce", value=decision.nonce), append_action=_OVERWRITE)
        response = pb.CheckResponse(status=Status(code=_GRPC_CODE.get(decision.status, 7)), denied_response=denied)
    if metadata:
        meta = Struct()
        meta.update(metadata)
        response.dynamic_metadata.CopyFrom(meta)
    return response.SerializeToString()


def _origin(attrs: pb.AttributeContext) -> Origin:
    """The Origin of a CheckRequest: scheme and host as Envoy received them, and the client
    certificate it saw (`include_peer_certificate: true`)."""
    http = attrs.request.http
    return Origin(http.scheme or "http", http.host or http.headers.get(":authority", ""), attrs.source.certificate)


class OwnPart:
    """A token's own part of an allow: its `sub` header (and `sub`/`jti` metadata when
    `dynamic_metadata` names them), encoded as a CheckResponse to append to the shape's shared
    part (protobuf merges concatenated messages: repeated headers add up, metadata maps merge).
    Built from a template, not kept in the token cache; `answer` remembers whole answers for a
    bounded number of tokens."""

    def __init__(self, mutator: Mutator, remembered: int = 4096) -> None:
        self._user_header = mutator.names.user
        self._sub = "sub" in mutator.metadata_fields
        self._jti = "jti" in mutator.metadata_fields
        self.answers: dict[tuple[bytes, str | None, str | None], bytes] = {}
        self._remembered = remembered
        self._template = pb.CheckResponse()
        header = self._template.ok_response.headers.add()
        header.header.key, header.append_action = self._user_header, _OVERWRITE
        self._user = header.header
        self._fields = self._template.dynamic_metadata.fields

    def __call__(self, identity: Identity) -> bytes:
        sub, jti = identity.subject, identity.jti
        if sub and (jti or not self._jti):  # the template's fields are all this token's
            self._user.value = sub
            if self._sub:
                self._fields["sub"].string_value = sub
            if self._jti:
                self._fields["jti"].string_value = jti
            return self._template.SerializeToString()
        response = pb.CheckResponse()  # rare shapes: no sub, or a sub and no jti
        if sub:
            response.ok_response.headers.add(header=HeaderValue(key=self._user_header, value=sub),
                                             append_action=_OVERWRITE)
            if self._sub:
                response.dynamic_metadata.fields["sub"].string_value = sub
        if jti and self._jti:
            response.dynamic_metadata.fields["jti"].string_value = jti
        return response.SerializeToString()

    def answer(self, shared: bytes, identity: Identity) -> bytes:
        """A personal allow's whole answer: the shape's shared part, then this token's own.
        Remembered for the tokens seen lately (bounded, cleared when full): a cache hit then
        costs a dict lookup instead of a protobuf encode and a copy."""
        # everything the answer is made of (`__call__` reads sub and jti only); `shared` is the
        # decision's memo, one bytes object, so its hash is computed once
        key = (shared, identity.subject, identity.jti)
        wire = self.answers.get(key)
        if wire is None:
            if len(self.answers) >= self._remembered:
                self.answers.clear()
            wire = self.answers[key] = shared + self(identity)
        return wire


FALLBACK = encode(forbidden("authorization could not be decided", "internal_error"), None)


class AuthorizationService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._own_part = OwnPart(engine.mutator)

    def refresh(self) -> None:
        """The engine's header names changed (a reload)."""
        self._own_part = OwnPart(self.engine.mutator)

    async def check(self, request: pb.CheckRequest, context: object = None) -> bytes:
        return await settled(self.answer(request))

    def answer(self, request: pb.CheckRequest) -> NowOrLater[bytes]:
        """The encoded CheckResponse: now when no I/O is needed (a cached token, no token, a bad
        one), else later."""
        try:
            found = self.engine.check_now(self._request(request), "grpc")
        except Exception:  # never a gRPC error: Envoy would apply its own failure mode
            log.exception("Check failed; denying")
            return FALLBACK
        return self._encode_later(found) if type(found) is Later else self._encode(*found)  # type: ignore[misc]

    async def _encode_later(self, pending: Later) -> bytes:
        checked: Checked = await pending
        return self._encode(*checked)

    @staticmethod
    def _request(request: pb.CheckRequest) -> AuthRequest:
        attrs = request.attributes
        http = attrs.request.http
        # protobuf maps are read in place: no copy of the headers per request
        return AuthRequest(http.headers, http.path or "/", http.method, attrs.context_extensions, attrs, _origin)

    def _encode(self, decision: Decision, identity: Identity | None) -> bytes:
        try:
            try:
                wire = decision.encoded[ENCODED]  # type: ignore[index]
            except (TypeError, KeyError):  # the first gRPC answer of this decision
                wire = remember(decision, ENCODED, encode(decision, self.engine.mutator))
            if decision.personal:
                own = self._own_part  # `OwnPart.answer`'s lookup first: a remembered answer needs no call
                return own.answers.get((wire, identity.subject, identity.jti)) or own.answer(wire, identity)
            return wire
        except Exception:
            log.exception("Check answer could not be encoded; denying")
            return FALLBACK

    def check_message(self, message: bytes) -> NowOrLater[bytes]:
        """Check for the h2 transport: the encoded CheckRequest in, the encoded CheckResponse
        out, now when no I/O is needed (no task per cache hit)."""
        try:
            request = pb.CheckRequest.FromString(message)
        except DecodeError:
            raise GrpcError(INVALID_ARGUMENT, "not a CheckRequest") from None
        return self.answer(request)

    def handler(self) -> grpc.GenericRpcHandler:
        """The grpc.aio handler (`grpc_server: grpcio`); grpcio is imported only then."""
        import grpc

        return grpc.method_handlers_generic_handler(SERVICE, {
            "Check": grpc.unary_unary_rpc_method_handler(
                self.check, request_deserializer=pb.CheckRequest.FromString, response_serializer=None),
        })
