"""torch's int8 CPU path: dynamic quantization of a model's Linear layers, packed for the CPU at hand.

:func:`quantize_int8` is what ``sentiment.inference: int8`` runs on the torch runtime (and what
``benchmarks/int8.py`` tries on the summarizer); the rest decides how the weights are packed
(oneDNN on AMX CPUs) and whether activations may use all 8 bits (VNNI CPUs). README "int8 and
ONNX Runtime" has the figures.
"""

from __future__ import annotations

import copy
import functools
import threading
import warnings
from pathlib import Path
from typing import Any

# torch.ao's eager dynamic quantization is deprecated (torchao is its successor) but ships and works in
# the pinned torch; these two warnings come from converting the Linear layers, never from running them.
_CONVERSION_WARNINGS = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor"),
)
# The quantized engine is process-wide state that only matters while weights are packed: loads that
# quantize take turns, and each puts the engine back.
_ENGINE_LOCK = threading.Lock()


# CPU flags whose int8 dot products (u8 x s8) accumulate straight into 32 bits: no 16-bit
# intermediate to saturate, so activations can use all 8 bits (see full_range_activations_ok).
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@functools.cache
def read_cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo``, read once (empty where it cannot be read)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return frozenset()
    flags = next((ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("flags")), "")
    return frozenset(flags.partition(":")[2].split())


def full_range_activations_ok(engine: str, flags: set[str] | frozenset[str] | None = None) -> bool:
    """Whether int8 weights packed for ``engine`` may take activations quantized to all 8 bits.

    torch asks for 7-bit activations (``reduce_range``) because fbgemm's AVX2 kernels multiply u8 x s8
    pairs into saturating 16-bit sums. oneDNN does not need it, nor do the x86/fbgemm kernels on a
    CPU with VNNI (``VNNI_FLAGS``), whose dot products accumulate in 32 bits. On e5 fine-tuned on
    Fine Food (500 reviews, an AVX-512 VNNI host without AMX, x86 packing) argmax agreement with
    fp32 went from 0.958 to 0.972.
    """
    if engine == "onednn":
        return True
    if engine in ("x86", "fbgemm"):
        return bool((read_cpu_flags() if flags is None else flags) & VNNI_FLAGS)
    return False


def int8_engine(cpu_flags: set[str] | frozenset[str] | None = None) -> str | None:
    """The quantized engine to pack int8 weights for: ``onednn`` on CPUs with AMX int8, else torch's default.

    Packed weights keep the engine they were packed for, whatever the process engine is later. On
    a Xeon with AMX, MiniLM on one thread scored 2.59x fp32 with oneDNN-packed weights against
    1.65x with the default x86 (fbgemm) packing (128 Fine Food reviews, see benchmarks/int8.py).
    Returns None (keep the default) where oneDNN is not built in or the flags cannot be read.
    """
    import torch

    if "onednn" not in torch.backends.quantized.supported_engines:
        return None
    flags = read_cpu_flags() if cpu_flags is None else cpu_flags
    return "onednn" if "amx_int8" in flags else None


def quantize_int8(model: Any, keep: tuple[str, ...] = ("classifier",), engine: str | None = "auto") -> Any:
    """A copy of ``model`` (left untouched) whose ``nn.Linear`` layers compute in int8; CPU only.

    Dynamic quantization: weights are stored int8 with one scale per output channel, activations
    are quantized per call from their own range, so no calibration data is needed and a forward
    keeps no state between calls (threads may share the copy). The layers named in ``keep`` (and
    their children) stay fp32: the 3-way classification head is a negligible share of the work.
    Everything else (embeddings, LayerNorm, attention's matmuls) runs as before in fp32, on the
    very parameter tensors of ``model``: the copy shares every fp32 parameter instead of
    duplicating it (e5's 250k-row word-embedding table alone is 384 MB), so a kept fp32 model (the
    int8 recheck) costs nothing twice. Inference only reads them; casting either model afterwards
    (``.to(dtype)``) would cast the shared tensors for both, which serving and scoring never do.
    ``engine``: the quantized engine the weights are packed for (``auto``: :func:`int8_engine`;
    None: the process's current one).

    Raises:
        ValueError: ``model`` is not on the CPU (int8 kernels are CPU kernels; a GPU keeps bf16).
    """
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    device = next(model.parameters()).device
    if device.type != "cpu":
        raise ValueError(f"int8 inference runs on the CPU; the model is on {device}")
    spec = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not any(name == k or name.startswith(k + ".") for k in keep)
    }
    engine = int8_engine() if engine == "auto" else engine
    with _ENGINE_LOCK, warnings.catch_warnings():
        for category, message in _CONVERSION_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        before = torch.backends.quantized.engine
        packed_for = engine or before
        torch.backends.quantized.engine = packed_for
        try:
            # Modules copied, parameters shared; quantize_dynamic then swaps the copy's Linears.
            shared = copy.deepcopy(model, memo={id(p): p for p in model.parameters()})
            quantized = quantize_dynamic(shared, spec, dtype=torch.qint8, inplace=True)
        finally:
            torch.backends.quantized.engine = before
    if full_range_activations_ok(packed_for):
        _full_range_activations(quantized)
    return quantized


def ffn_output_linears(model: Any, layers: list[int]) -> tuple[str, ...]:
    """Names of the feed-forward output Linears (``layer.<k>.output.dense``, not attention's) of ``layers``."""
    import torch

    wanted = tuple(f"layer.{k}.output.dense" for k in layers)
    return tuple(
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and (name in wanted or name.endswith(tuple("." + w for w in wanted)))
    )


def _full_range_activations(model: Any) -> None:
    """Let dynamic Linear layers quantize activations to all 8 bits (oneDNN packing, or VNNI CPUs).

    torch's module (version 4) always asks for ``reduce_range`` (7-bit activations), which only
    fbgemm's AVX2 kernels need against overflow; a version-3 module calls the same op without it.
    On the fine-tuned MiniLM (497 Fine Food test rows, benchmarks/int8.py's model) argmax agreement
    with fp32 rose from 0.966 to 0.986 and the largest probability difference fell from 0.46 to 0.24.
    """
    for module in model.modules():
        if hasattr(module, "_packed_params") and getattr(module, "version", None) == 4:
            module.version = 3
