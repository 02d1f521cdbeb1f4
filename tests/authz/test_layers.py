"""The decision engine depends on no transport and on nothing of the sidecar around it:
transports and the composition root depend on it, never the other way."""

from __future__ import annotations

import ast
from pathlib import Path

AUTHZ = Path(__file__).resolve().parents[2] / "authz"


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_authz_imports_neither_transport_nor_sidecar():
    found = {f"{path.name}: {name}" for path in sorted(AUTHZ.glob("*.py")) for name in imported(path)
             if name.split(".")[0] in ("transport", "sidecar")}
    assert not found
