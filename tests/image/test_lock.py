"""constraints.txt (the image's locked dependencies) keeps up with pyproject.toml.

The image build fails on a stale lock (`pip check` after `--no-deps`); this says so in the
ordinary test run, without a build, and names the fix.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# The image's Python (Debian bookworm's, the lock's): markers are evaluated for it.
IMAGE_ENV = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
             "platform_system": "Linux", "implementation_name": "cpython", "os_name": "posix"}


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[A-Za-z0-9._+!-]+", version), f"not an exact pin: {line!r}"
            out[canonicalize_name(name)] = version
    return out


def test_every_dependency_is_pinned_at_a_version_pyproject_accepts():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = pins()
    stale = []
    for spec in project["dependencies"]:
        req = Requirement(spec)
        if req.marker and not req.marker.evaluate(IMAGE_ENV):
            continue
        version = locked.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            stale.append(f"{spec} (locked: {version})")
    assert not stale, f"constraints.txt is stale, run `bash .ci/lock`: {stale}"


def test_the_lock_holds_neither_the_project_nor_the_installers():
    assert not {"auth-sidecar", "pip", "setuptools", "wheel"} & set(pins())
