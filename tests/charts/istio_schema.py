"""Validate rendered Istio objects against Istio's own CRD schemas (tests/charts/data/istio/).

Kubernetes semantics, not plain JSON Schema: an unknown field is an error (as with
`kubectl apply --validate=strict`) unless the schema preserves unknown fields, and the CEL
rules (`x-kubernetes-validations`) are evaluated (cel-python, plus the Kubernetes string
extension's `substring` that Istio's rules use).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import celpy
import jsonschema
from celpy import celtypes

DATA = Path(__file__).parent / "data" / "istio"
_CEL = celpy.Environment()


@cache
def crd(kind: str) -> dict:
    """{"group", "version", "kind", "openAPIV3Schema"} of the kept CRD version."""
    return json.loads((DATA / f"{kind.lower()}-v1.json").read_text())


def _strict(node: dict) -> dict:
    """A copy where objects with declared properties refuse others (Kubernetes' strict field validation)."""
    node = dict(node)
    if "properties" in node:
        node["properties"] = {k: _strict(v) for k, v in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in node:
            node["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            node[key] = _strict(node[key])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            node[key] = [_strict(n) for n in node[key]]
    return node


@cache
def _root_schema(kind: str) -> dict:
    spec = crd(kind)
    schema = _strict(copy.deepcopy(spec["openAPIV3Schema"]))
    schema["properties"]["apiVersion"] = {"const": f"{spec['group']}/{spec['version']}"}
    schema["properties"]["kind"] = {"const": kind}
    schema["properties"]["metadata"] = {"type": "object", "required": ["name"],
                                        "properties": {"name": {"type": "string", "minLength": 1}}}
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return schema


def _substring(value: celtypes.StringType, start: celtypes.IntType, end: celtypes.IntType | None = None):
    return celtypes.StringType(str(value)[int(start):None if end is None else int(end)])


@cache
def _program(rule: str):
    return _CEL.program(_CEL.compile(rule), functions={"substring": _substring})


def _cel_errors(schema: dict, value, path: str) -> list[str]:
    errors = []
    for check in schema.get("x-kubernetes-validations", []):
        result = _program(check["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        if result is not True and result != celtypes.BoolType(True):
            errors.append(f"{path or '.'}: {check.get('message', check['rule'])}")
    if isinstance(value, dict):
        for key, child in value.items():
            sub = schema.get("properties", {}).get(key) or (schema.get("additionalProperties")
                                                            if isinstance(schema.get("additionalProperties"), dict)
                                                            else None)
            if sub:
                errors += _cel_errors(sub, child, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, child in enumerate(value):
            errors += _cel_errors(schema["items"], child, f"{path}[{i}]")
    return errors


def errors(doc: dict) -> list[str]:
    """Every problem Istio's CRD schema finds in `doc`; empty when it validates."""
    kind = doc.get("kind", "")
    validator = jsonschema.Draft7Validator(_root_schema(kind))
    found = [f"{'.'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in validator.iter_errors(doc)]
    return found or _cel_errors(crd(kind)["openAPIV3Schema"], doc, "")


KINDS = ("AuthorizationPolicy", "ServiceEntry")
