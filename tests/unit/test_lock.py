"""requirements.lock: what `make install` installs must satisfy pyproject.toml and be what runs here."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _lock() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"lock line {line!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def test_lock_satisfies_every_declared_requirement():
    pins = _lock()
    problems = []
    for req in _declared():
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req.name} is not in requirements.lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req.name}: lock has {pins[name]}, pyproject wants {req.specifier}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_lock_pins_torch_to_the_cpu_build_the_makefile_names():
    assert _lock()["torch"].public == "2.13.0"


def test_this_environment_is_the_locked_one():
    mismatched = []
    for name, pinned in _lock().items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            mismatched.append(f"{name} missing")
            continue
        if installed != pinned:
            mismatched.append(f"{name} {installed} != {pinned}")
    assert not mismatched, "the environment differs from requirements.lock (run `make install`): " + "; ".join(
        mismatched[:10]
    )


def test_floors_exclude_versions_with_known_problems():
    # bentoml < 1.4.39 and mlflow < 3.10 have published advisories; transformers < 5.2 lacks
    # TrainingArguments.train_sampling_strategy, which training uses.
    floors = {"bentoml": "1.4.38", "mlflow": "3.9.99", "transformers": "5.1.99"}
    declared = {canonicalize_name(r.name): r for r in _declared()}
    for name, too_old in floors.items():
        assert not declared[name].specifier.contains(too_old, prereleases=True), (name, str(declared[name].specifier))


def test_the_s3_extra_is_dvcs_own_s3_extra_on_the_locked_dvc():
    """`pip install -e ".[s3]"` adds DVC's S3 remote (dvc-s3) to the DVC the lock installs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (req,) = [Requirement(r) for r in project["optional-dependencies"]["s3"]]
    assert canonicalize_name(req.name) == "dvc" and req.extras == {"s3"}
    assert req.specifier.contains(_lock()["dvc"])
