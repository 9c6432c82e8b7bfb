"""The light Lambda image installs what its entry modules import (infra/lambda-requirements.txt).

The image is built elsewhere (``sam build`` needs Docker), so drift is caught here: the project
modules the api, ingest and notify entries load are parsed for the third-party imports they make
when imported, and each must belong to a distribution that the requirements file installs,
directly or through a dependency.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LIGHT_ENTRIES = (
    "functions.api.lambda_function",
    "functions.ingest.lambda_function",
    "functions.notify.lambda_function",
)
PROJECT = ("events", "functions")

_LOADED = """
import importlib, json, sys
for name in sys.argv[2:]:
    importlib.import_module(name)
packages = sys.argv[1].split(",")
mine = {n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n.split(".")[0] in packages}
print(json.dumps({n: f for n, f in mine.items() if f}))
"""


def _project_modules_loaded_by(entries: tuple[str, ...]) -> dict[str, str]:
    command = [sys.executable, "-c", _LOADED, ",".join(PROJECT), *entries]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout))


def _import_time_nodes(node: ast.AST) -> list[ast.AST]:
    """The statements that run when the module is imported: not function bodies (imports there
    are lazy, for paths such as the streaming endpoints that Lambda does not serve) nor
    ``if TYPE_CHECKING`` blocks."""
    found: list[ast.AST] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        found.append(child)
        found.extend(_import_time_nodes(child))
    return found


def _third_party_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in _import_time_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in PROJECT and n != "__future__"}


def _installed_closure(requirements: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [Requirement(line).name for line in requirements]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            specs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:  # image-only (awslambdaric): a leaf here
            specs = []
        for spec in specs:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def test_the_light_image_requirements_cover_what_its_entries_import() -> None:
    lines = (ROOT / "infra" / "lambda-requirements.txt").read_text().splitlines()
    requirements = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    installed = _installed_closure(requirements)
    providers = metadata.packages_distributions()
    missing = {}
    for module, file in _project_modules_loaded_by(LIGHT_ENTRIES).items():
        for name in _third_party_imports(Path(file)):
            dists = {canonicalize_name(d) for d in providers.get(name, [name])}
            if not dists & installed:
                missing[f"{module}: import {name}"] = sorted(dists)
    assert not missing, f"add to infra/lambda-requirements.txt: {missing}"
    assert "awslambdaric" in installed and "mangum" in installed


# The heavy images serve everything their function does, so every import counts there, lazy
# ones included: the project modules the function package reaches through any import, and the
# third-party packages those import.
HEAVY_IMAGES = {
    "transcribe": (ROOT / "infra" / "Dockerfile.transcribe", "functions.transcribe"),
    "train": (ROOT / "infra" / "Dockerfile.train", "functions.train"),
}


def _dockerfile_requirements(dockerfile: Path) -> list[str]:
    """What a Dockerfile pip-installs: torch's pins it takes from the lock, the light
    requirements file, and the names after ``-r lambda-requirements.txt``."""
    text = dockerfile.read_text().replace("\\\n", " ")
    names: list[str] = []
    for line in text.splitlines():
        if "grep -E" in line and "requirements.lock" in line:
            names += line.split("'^(")[1].split(")")[0].split("|")
        if "pip install" in line and "-r lambda-requirements.txt" in line:
            extra = line.split("-r lambda-requirements.txt", 1)[1].split("&&")[0].split()
            names += [name.strip("'\"") for name in extra]
    lines = (ROOT / "infra" / "lambda-requirements.txt").read_text().splitlines()
    return names + [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _all_imports(path: Path) -> set[str]:
    """Every module a file imports, at import time or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _reachable(package: str) -> tuple[set[str], set[str]]:
    """The project modules a function package reaches, and the third-party top-level names."""
    files = ROOT.joinpath(*package.split(".")).glob("**/*.py")
    todo = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in files]
    seen: set[str] = set()
    third: set[str] = set()
    while todo:
        module = todo.pop()
        file = _module_file(module)
        if module in seen or file is None:
            continue
        seen.add(module)
        for name in _all_imports(file):
            top = name.split(".")[0]
            if top in PROJECT:
                todo.append(name)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third.add(top)
    return seen, third


def test_the_heavy_images_install_everything_their_function_imports() -> None:
    providers = {**metadata.packages_distributions(), "dlib": ["dlib-bin"]}  # a wheel without top_level
    missing: dict[str, list[str]] = {}
    for image, (dockerfile, package) in HEAVY_IMAGES.items():
        installed = _installed_closure(_dockerfile_requirements(dockerfile))
        _, names = _reachable(package)
        for name in sorted(names):
            dists = {canonicalize_name(d) for d in providers.get(name, [name])}
            if not dists & installed:
                missing[f"{image}: import {name}"] = sorted(dists)
    assert not missing, f"install these in the images' Dockerfiles: {missing}"
