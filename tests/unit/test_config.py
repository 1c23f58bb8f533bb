"""Typed settings: params.yaml, overrides, clear errors."""

from pathlib import Path

import pytest
import yaml

from reviewops.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_params_yaml_matches_schema_and_defaults():
    settings = load_settings(ROOT / "params.yaml")
    assert settings.validation.allowed_languages == ["en", "zh"]
    assert settings.train.active is settings.train.profiles[settings.train.profile]


def _differences(defaults: object, params: object, key: str = "") -> list[str]:
    if isinstance(defaults, dict) and isinstance(params, dict):
        keys = sorted(set(defaults) | set(params))
        return [d for k in keys for d in _differences(defaults.get(k), params.get(k), f"{key}.{k}".lstrip("."))]
    return [] if defaults == params else [f"{key}: typed default {defaults!r}, params.yaml {params!r}"]


def test_params_yaml_states_the_typed_defaults():
    """One source of defaults: params.yaml spells out the typed defaults of config.py, no value differs.

    A Bento (no params.yaml inside) and code that builds ``Settings()`` then behave like ``make run``.
    """
    defaults = Settings().model_dump()
    params = load_settings(ROOT / "params.yaml").model_dump()
    assert _differences(defaults, params) == []


def test_dvc_yaml_params_exist_in_settings():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    fields = set(Settings.model_fields)
    for stage in stages.values():
        for key in stage.get("params", []):
            assert key.split(".")[0] in fields


def test_override_parses_yaml_scalars(tmp_path):
    settings = load_settings(ROOT / "params.yaml", ["validation.max_failure_rate=0.5", "split.seed=7"])
    assert settings.validation.max_failure_rate == 0.5
    assert settings.split.seed == 7


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("validation:\n  max_failure_rat: 0.1\n")
    with pytest.raises(ConfigError, match="validation.max_failure_rat"):
        load_settings(path)


def test_bad_value_is_named(tmp_path):
    with pytest.raises(ConfigError, match="split.test_size"):
        load_settings(ROOT / "params.yaml", ["split.test_size=2"])


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")
