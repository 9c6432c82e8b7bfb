"""The train Lambda image (infra/Dockerfile.train) installs what train imports, lazily or not.

Like the light image's check (test_aws_images.py), but every import in functions/train counts,
function bodies included: the Lambda runs those paths (image, face and video features).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.unit.test_aws_images import PROJECT, ROOT, _installed_closure, _project_modules_loaded_by

DOCKERFILE = ROOT / "infra" / "Dockerfile.train"


def _image_requirements() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    torch = re.search(r"grep -E '\^\(([^)]*)\)==' requirements\.lock", text)
    assert torch, "the torch wheels come from requirements.lock"
    names = torch.group(1).split("|")
    installs = [line for line in text.splitlines() if "pip install -c requirements.lock" in line]
    assert len(installs) == 1
    extra = installs[0].split("-r lambda-requirements.txt", 1)[1].split("&&")[0].split()
    names += [word for word in extra if not word.startswith("-")]
    lines = (ROOT / "infra" / "lambda-requirements.txt").read_text().splitlines()
    return names + [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _all_third_party_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in PROJECT and n != "__future__"}


def _providers(name: str, known: Mapping[str, list[str]]) -> set[str]:
    """The distributions installing top-level module ``name``. ``top_level.txt`` can be
    incomplete (dlib-bin names only its extension module, not its ``dlib`` package): then the
    installed files (RECORD) decide."""
    if name in known:
        return set(known[name])
    marks = (f"{name}/__init__.py,", f"{name}.py,")
    found = {
        str(dist.metadata["Name"])
        for dist in metadata.distributions()
        if any(mark in (dist.read_text("RECORD") or "") for mark in marks)
    }
    return found or {name}


def test_the_train_image_installs_what_train_imports() -> None:
    installed = _installed_closure(_image_requirements())
    known = metadata.packages_distributions()
    files = {str(p) for p in (ROOT / "functions" / "train").rglob("*.py")}
    files |= set(_project_modules_loaded_by(("functions.train.lambda_function",)).values())
    missing = {}
    for file in sorted(files):
        for name in _all_third_party_imports(Path(file)):
            dists = {canonicalize_name(d) for d in _providers(name, known)}
            if not dists & installed:
                missing[f"{Path(file).relative_to(ROOT)}: import {name}"] = sorted(dists)
    assert not missing, f"add to infra/Dockerfile.train: {missing}"
    assert {"torch", "lightgbm", "awslambdaric"} <= installed
