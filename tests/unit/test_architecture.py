"""The layout the README's architecture section describes, checked on the source itself.

One package per lifecycle area; short modules and functions; flows that only wire; the Bento
ships no test helpers; stage entry points share one naming scheme.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "reviewops"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
# A module may be longer when its first lines say why (e.g. a table of templates).
LONG_REASON = re.compile(r"^Why this module is long:", re.M)
AREAS = {
    "data",
    "models",
    "training",
    "evaluation",
    "registry",
    "serving",
    "scoring",
    "monitoring",
    "cli",
    "testing",
    "servers",
    "orchestration",
}
TOP_LEVEL = {"__init__", "__main__", "config", "schema", "text", "errors", "reports"}


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_package_holds_only_areas_and_shared_modules() -> None:
    entries = {p.stem for p in SRC.glob("*.py")} | {
        p.name for p in SRC.iterdir() if p.is_dir() and p.name != "__pycache__"
    }
    assert entries - TOP_LEVEL - AREAS == set()
    for area in AREAS:
        assert (SRC / area / "__init__.py").is_file(), f"{area}/ is not a package"


def test_no_function_is_longer_than_a_screen() -> None:
    long = []
    for path in _modules():
        for fn in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            start = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
            lines = fn.end_lineno - start + 1
            if lines > MAX_FUNCTION_LINES:
                long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({lines} lines)")
    assert long == []


def test_long_modules_say_why() -> None:
    long = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > MAX_MODULE_LINES and not LONG_REASON.search(doc):
            long.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert long == []


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(p.relative_to(ROOT))
        for p in _modules()
        if p.name != "__init__.py" and not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))
    ]
    assert missing == []


def test_flows_only_wire() -> None:
    heavy = {"pandas", "torch", "numpy", "transformers", "mlflow", "evidently", "great_expectations"}
    offenders = []
    for path in sorted((ROOT / "flows").glob("*.py")):
        roots = {name.split(".")[0] for name in _imports(ast.parse(path.read_text(encoding="utf-8")))}
        offenders += [f"{path.name} imports {name}" for name in sorted(roots & heavy)]
    assert offenders == []


def test_shipped_code_does_not_import_test_helpers() -> None:
    offenders = []
    for path in _modules():
        if "testing" in path.relative_to(SRC).parts:
            continue
        imports = _imports(ast.parse(path.read_text(encoding="utf-8")))
        offenders += [f"{path.relative_to(ROOT)}: {n}" for n in imports if n.startswith("reviewops.testing")]
    assert offenders == []


def test_the_bento_excludes_test_helpers() -> None:
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text(encoding="utf-8"))
    assert "reviewops/testing/**" in bentofile["exclude"]
    assert bentofile["service"].startswith("reviewops.serving.service:")


@pytest.mark.parametrize(
    ("module", "function"),
    [
        ("reviewops.data.stages", "run_ingest"),
        ("reviewops.data.stages", "run_validate"),
        ("reviewops.data.stages", "run_preprocess"),
        ("reviewops.data.stages", "run_split"),
        ("reviewops.training.train", "run_train"),
        ("reviewops.evaluation.evaluate", "run_evaluate"),
        ("reviewops.evaluation.gate", "run_gate"),
        ("reviewops.serving.packaging", "run_package"),
        ("reviewops.monitoring.drift", "run_drift"),
        ("reviewops.scoring.score", "run_score"),
    ],
)
def test_stage_entry_points_share_one_signature(module: str, function: str) -> None:
    """``run_<stage>(settings, *, ...)``: the settings first, every other parameter by keyword."""
    import importlib
    import inspect

    fn = getattr(importlib.import_module(module), function)
    params = list(inspect.signature(fn).parameters.values())
    assert params[0].name == "settings"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), [p.name for p in params[1:]]
