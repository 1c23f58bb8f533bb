"""The sentiment classifier run by ONNX Runtime on the CPU (``sentiment.runtime: onnx``).

A loaded :class:`~reviewops.models.sentiment.SentimentClassifier`'s model is exported once to ONNX
(the legacy TorchScript exporter: no ``onnxscript``) and with ``inference: int8`` dynamically
quantized (:func:`quantize_onnx`). The file is cached
under ``<paths.models_dir>/onnx-cache`` by a sha256 of the weights and the export settings, so
every later load (each Ray actor, each Bento worker) reuses it. :class:`OnnxSentimentClassifier`
answers as the torch classifier does (same tokenization, length-sorted batches, labels in
:data:`~reviewops.schema.LABELS` order) and keeps no per-call state: an ONNX Runtime session's
``run`` is thread-safe, so serving threads share one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.models.recheck import RecheckedClassifier
from reviewops.models.sentiment import (
    INFERENCE_MODES,
    POOLING_ATTR,
    Inference,
    SentimentClassifier,
    _column_order,
    length_sorted_proba,
    most_probable,
)
from reviewops.models.tokens import encode_batch

logger = logging.getLogger(__name__)

# Part of every cache key: bump it when the export, fusion or quantization below changes.
EXPORT_VERSION = "2"
CACHE_SUBDIR = "onnx-cache"
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "logits"


def onnx_cache_dir(settings: Settings) -> Path:
    """Where exported models are kept: ``<paths.models_dir>/onnx-cache``."""
    return Path(settings.paths.models_dir) / CACHE_SUBDIR


def _onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a one-line error naming the fix."""
    try:
        import onnx  # noqa: F401 - the int8 quantizer and the fusion read and write ModelProtos
        import onnxruntime
    except ImportError as exc:
        raise ReviewOpsError(
            f"sentiment.runtime=onnx needs the onnxruntime and onnx packages ({exc}); "
            "run `make install`, or set sentiment.runtime=torch"
        ) from None
    return onnxruntime


def cache_key(model: Any, inference: Inference, fp32_layers: tuple[int, ...] = ()) -> str:
    """sha256 of ``model``'s weights, config and pooling, the inference mode (with int8's fp32 layers) and versions."""
    import onnxruntime
    import torch
    import transformers

    digest = hashlib.sha256()
    for part in (
        EXPORT_VERSION,
        inference + (f":fp32={','.join(map(str, fp32_layers))}" if inference == "int8" else ""),
        type(model).__name__,
        str(getattr(model.config, POOLING_ATTR, None)),
        model.config.to_json_string(),
        torch.__version__,
        transformers.__version__,
        onnxruntime.__version__,
    ):
        digest.update(part.encode() + b"\0")
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy() if flat.numel() else b"")
    return digest.hexdigest()


def _logits_module(model: Any, names: tuple[str, ...]) -> Any:
    """A module whose positional inputs are ``names`` and whose output is ``model``'s logits."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs, strict=True))).logits

    return Logits().eval()


def export_onnx(classifier: SentimentClassifier, target: Path) -> tuple[str, ...]:
    """Write ``classifier``'s model as ONNX to ``target``, batch and sequence axes dynamic; return its input names.

    The export runs on a copy in eager attention (SDPA's export adds NaN guards around every
    softmax), and the shared model is left as it was. The example
    batch is padded, so the attention-mask path is what the trace records.
    """
    import copy

    import torch

    model = copy.deepcopy(classifier.model).to(device="cpu", dtype=torch.float32).eval()
    model.config._attn_implementation = "eager"
    example = classifier.tokenizer(["a padded example batch", "short"], padding=True, return_tensors="pt")
    names = tuple(n for n in INPUT_NAMES if n in example)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(
            _logits_module(model, names),
            tuple(example[n] for n in names),
            str(target),
            dynamo=False,
            input_names=list(names),
            output_names=[OUTPUT_NAME],
            dynamic_axes={**axes, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
        )
    return names


def fp32_matmuls(model: Any, layers: tuple[int, ...]) -> list[str]:
    """Names of the FFN output MatMuls of encoder ``layers`` in an exported BERT-family graph."""
    wanted = tuple(f"/layer.{k}/output/dense/MatMul" for k in layers)
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name.endswith(wanted)]


def quantize_onnx(source: Path, target: Path, fp32_layers: tuple[int, ...] = ()) -> None:
    """Dynamic int8 MatMuls: weights int8 per output channel, activations uint8 per call from their range.

    No calibration data; nothing is kept between calls. The FFN output MatMuls of ``fp32_layers``
    stay fp32 (``sentiment.int8_fp32_layers``); the classification head (a Gemm) does too.
    The graph is left unfused: on MiniLM one thread scored 146.8 reviews per CPU-s unfused
    against 100.6 with ONNX Runtime's BERT fusion (Attention, SkipLayerNorm) before quantizing.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=fp32_matmuls(onnx.load(str(source), load_external_data=False), fp32_layers),
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _fp32_layers(classifier: SentimentClassifier) -> tuple[int, ...]:
    """``sentiment.int8_fp32_layers`` sorted, once each: [5, 4] and [4, 5] share one cached file."""
    return tuple(sorted(set(classifier.cfg.int8_fp32_layers)))


def build_onnx(classifier: SentimentClassifier, target: Path, inference: Inference) -> None:
    """Export and (``int8``) quantize ``classifier`` into ``target``, written atomically.

    Raises:
        ReviewOpsError: the export or a later step failed (the message says how to go on).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        work = Path(tmp)
        try:
            final = work / "exported.onnx"
            export_onnx(classifier, final)
            if inference == "int8":
                quantize_onnx(final, work / "int8.onnx", _fp32_layers(classifier))
                final = work / "int8.onnx"
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ReviewOpsError(
                f"exporting the sentiment model to ONNX failed ({type(exc).__name__}: {first}); "
                "set sentiment.runtime=torch"
            ) from exc
        os.replace(final, target)  # same directory: readers see the old file or the whole new one


def cached_onnx(classifier: SentimentClassifier, inference: Inference, cache_dir: Path) -> Path:
    """The ONNX file of ``classifier`` in ``inference`` mode, exported into ``cache_dir`` unless it is there.

    An unwritable ``cache_dir`` falls back to one in the temporary directory.
    """
    key = cache_key(classifier.model, inference, _fp32_layers(classifier))
    for directory in (Path(cache_dir), Path(tempfile.gettempdir()) / f"reviewops-{CACHE_SUBDIR}"):
        path = directory / f"{key}.onnx"
        if path.is_file():
            logger.info("sentiment ONNX model from the cache: %s", path)
            return path
        try:
            build_onnx(classifier, path, inference)
        except PermissionError as exc:
            logger.warning("cannot write the ONNX cache in %s (%s); trying the temporary directory", directory, exc)
            continue
        logger.info("sentiment model exported to ONNX (%s): %s", inference, path)
        return path
    raise ReviewOpsError(
        f"no writable directory for the sentiment ONNX cache ({cache_dir}); set sentiment.runtime=torch"
    )


def shared_initializers(classifier: SentimentClassifier) -> dict[str, Any]:
    """``{graph name: OrtValue}`` of the torch model's word-embedding table, over the torch tensor's own memory.

    Both exports (fp32 and int8, whose MatMuls alone are quantized) carry the table as the
    initializer ``model.<parameter name>`` (``_logits_module`` wraps the model as ``model``); a
    session given it reads the torch tensor instead of its own 384 MB copy (e5), so the torch
    model and the recheck's two sessions hold one table. ONNX Runtime only reads it. Empty where
    the table is not a contiguous float32 CPU tensor (nothing shared then).
    """
    weight = classifier.model.get_input_embeddings().weight
    if weight.device.type != "cpu" or str(weight.dtype) != "torch.float32" or not weight.is_contiguous():
        return {}
    name = next(n for n, p in classifier.model.named_parameters() if p is weight)
    return {f"model.{name}": _onnxruntime().OrtValue.ortvalue_from_numpy(weight.detach().numpy())}


def _session(path: Path, threads: int, shared: dict[str, Any] | None = None) -> Any:
    """An ONNX Runtime CPU session over ``path`` on ``threads`` threads, reading ``shared`` initializers from memory.

    A name in ``shared`` that the graph lacks is ignored (ONNX Runtime's rule); the caller keeps
    the values alive as long as the session.
    """
    ort = _onnxruntime()
    options = ort.SessionOptions()
    for name, value in (shared or {}).items():
        options.add_initializer(name, value)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads sleep rather than spin: spinning burns a core the machine's other workers
    # (Ray actors, BentoML threads) could use.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxSentimentClassifier:
    """:class:`SentimentClassifier`'s predictions computed by ONNX Runtime (CPU)."""

    runtime = "onnx"

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        cfg: Any,
        order: list[int],
        inference: Inference,
        path: Path | None = None,
        truncation: str = "head",
    ) -> None:
        self.session = session
        self.path = path  # the ONNX file the session runs
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.inference = inference
        self.truncation = truncation  # the torch model's (truncation_of): how it was trained
        self._order = order
        self._inputs = tuple(i.name for i in session.get_inputs())
        self._shared: dict[str, Any] = {}  # initializers the session reads from memory: kept alive with it

    @classmethod
    def from_classifier(
        cls,
        classifier: SentimentClassifier,
        *,
        cache_dir: Path,
        inference: Inference = "fp32",
        threads: int | None = None,
    ) -> OnnxSentimentClassifier:
        """An ONNX Runtime classifier answering as ``classifier`` (exported once per weights into ``cache_dir``).

        The session reads ``classifier``'s word-embedding table where it is (:func:`shared_initializers`).

        Args:
            classifier: a loaded torch classifier (fp32 weights; it is not changed).
            cache_dir: where exported files are kept (:func:`onnx_cache_dir`).
            inference: ``int8``: ONNX Runtime dynamic quantization; ``fp32``: as trained.
            threads: intra-op threads of the session (default: torch's thread count, which the
                scoring engine sets to ``score.threads_per_actor``).

        Raises:
            ReviewOpsError: onnxruntime is missing or the export failed.
            ValueError: an unknown ``inference``.
        """
        import torch

        if inference not in INFERENCE_MODES:
            raise ValueError(f"sentiment inference must be one of {', '.join(INFERENCE_MODES)}; got {inference!r}")
        _onnxruntime()
        path = cached_onnx(classifier, inference, Path(cache_dir))
        shared = shared_initializers(classifier)
        session = _session(path, threads or torch.get_num_threads(), shared)
        config = classifier.model.config
        order = _column_order(config.id2label, config.num_labels)
        onnx = cls(session, classifier.tokenizer, classifier.cfg, order, inference, path, classifier.truncation)
        onnx._shared = shared
        return onnx

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), 3)``; each row sums to 1.

        Length-sorted batches, as the torch classifier: the same padding, the same numbers.
        """
        return length_sorted_proba(texts, batch_size, self._score)

    def _score(self, texts: list[str]) -> np.ndarray:
        """Probabilities of one batch (padded to its longest text), in :data:`LABELS` order."""
        enc = encode_batch(self.tokenizer, texts, self.cfg.max_length, self.truncation, "np")
        feed = {name: np.asarray(enc[name], dtype=np.int64) for name in self._inputs}
        logits = self.session.run([OUTPUT_NAME], feed)[0].astype(np.float32)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (shifted / shifted.sum(axis=1, keepdims=True))[:, self._order]

    def predict(self, texts: list[str], batch_size: int = 32) -> list[str]:
        """The most probable label for each text."""
        return most_probable(self.predict_proba(texts, batch_size=batch_size))


def runtime_classifier(
    classifier: SentimentClassifier, settings: Settings
) -> SentimentClassifier | OnnxSentimentClassifier | RecheckedClassifier:
    """The classifier the service and bulk scoring run: ``sentiment.runtime`` and ``sentiment.inference`` applied.

    On the CPU: ONNX Runtime (``runtime: onnx``, int8 when ``inference: int8``), else torch's int8
    copy (``inference: int8``), else ``classifier`` itself. An int8 one is wrapped so that rows whose
    int8 top-two margin is below ``sentiment.int8_recheck_margin`` are scored again in fp32 by the
    same runtime (:class:`RecheckedClassifier`; 0 turns that off). A model on a GPU runs as it is.
    """
    cfg = settings.sentiment
    if classifier.model.device.type != "cpu" or (cfg.runtime == "torch" and cfg.inference == "fp32"):
        return classifier
    cache = onnx_cache_dir(settings)
    fast: SentimentClassifier | OnnxSentimentClassifier
    if cfg.runtime == "onnx":
        fast = OnnxSentimentClassifier.from_classifier(classifier, cache_dir=cache, inference=cfg.inference)
    else:
        fast = classifier.quantized()
    if cfg.inference != "int8" or cfg.int8_recheck_margin <= 0:
        return fast
    if isinstance(fast, OnnxSentimentClassifier):
        exact = OnnxSentimentClassifier.from_classifier(classifier, cache_dir=cache, inference="fp32")
        return RecheckedClassifier(fast, exact, cfg.int8_recheck_margin)
    return RecheckedClassifier(fast, classifier, cfg.int8_recheck_margin)  # fp32 tensors shared: quantize_int8
