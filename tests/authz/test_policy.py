"""Per-route rules from Envoy's context_extensions: every key reaches its rule."""

from __future__ import annotations

from envoy.service.auth.v3 import external_auth_pb2 as pb

from authz.policy import NO_RULES, RuleBook, Rules


def test_each_context_extension_sets_its_rule_and_paths_apply_without_them():
    book = RuleBook([("/api", Rules.make("read"))])
    req = pb.CheckRequest()  # a protobuf map, as the gRPC face passes it
    req.attributes.context_extensions.update({"required_scopes": "a  b", "audience": " aud ", "allow_anonymous": "True",
                                              "tenant": "t1"})
    rules = book.for_request("/api/x", req.attributes.context_extensions)
    assert rules == Rules(frozenset({"a", "b"}), "aud", True, "t1")
    assert book.for_request("/other", req.attributes.context_extensions) is rules  # interned
    assert book.for_request("/api/x", {"tenant": "t2"}) == Rules(tenant="t2")
    assert book.for_request("/api/x", {"unrelated": "x"}) == Rules.make("read")  # no rule key: the path's rules
    assert book.for_request("/other", {}) is NO_RULES
