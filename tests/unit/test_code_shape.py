"""The shape the codebase keeps (issue 15): small modules and functions, simple control flow, and
the layers import-linter checks (contracts in pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("functions", "events", "infra", "shenava_cli")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50
MAX_COMPLEXITY = 15


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n for p in sources() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules: {long}"


def test_no_function_is_over_50_lines() -> None:
    long = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert not long, f"split these functions: {long}"


def test_no_block_is_more_complex_than_15() -> None:
    complex_ = {
        f"{path.relative_to(ROOT)} {block.name}": block.complexity
        for path in sources()
        for block in cc_visit(path.read_text())
        if block.complexity > MAX_COMPLEXITY
    }
    assert not complex_, f"simplify (radon cyclomatic complexity): {complex_}"


def test_the_layers_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
