"""Three-class review sentiment (negative / neutral / positive) over any encoder checkpoint."""

from __future__ import annotations

import logging
import types
from pathlib import Path
from typing import Any, Literal

import numpy as np

from reviewops.config import SentimentConfig
from reviewops.models.int8 import ffn_output_linears, quantize_int8
from reviewops.models.tokens import encode_batch, truncation_of
from reviewops.schema import LABELS

logger = logging.getLogger(__name__)

Inference = Literal["fp32", "int8"]
INFERENCE_MODES: tuple[str, ...] = ("fp32", "int8")


def _column_order(id2label: dict[Any, str] | None, num_labels: int) -> list[int]:
    """Model output index for each of :data:`LABELS`.

    Uses the checkpoint's ``id2label`` when it names our labels; otherwise the model is assumed
    to have been trained with ``schema.LABEL2ID`` order (generic ``LABEL_0`` names).
    """
    if num_labels != len(LABELS):
        raise ValueError(f"sentiment model has {num_labels} outputs; expected {len(LABELS)} ({LABELS})")
    names = {str(v).lower(): int(k) for k, v in (id2label or {}).items()}
    if all(label in names for label in LABELS):
        return [names[label] for label in LABELS]
    return list(range(len(LABELS)))


POOLING_ATTR = "reviewops_pooling"  # written into the checkpoint's config.json by training


def length_sorted_proba(texts: list[Any], batch_size: int, score: Any) -> np.ndarray:
    """Class probabilities for ``texts`` in :data:`LABELS` order, scored in length-sorted batches.

    ``score(batch_texts)`` returns one probability row per text; sorting by length wastes less
    compute on padding, and the rows go back in input order. ``None`` texts count as empty.
    """
    texts = [str(t) if t is not None else "" for t in texts]
    out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), max(1, batch_size)):
        idx = order[start : start + max(1, batch_size)]
        out[idx] = score([texts[i] for i in idx])
    return out


def most_probable(proba: np.ndarray) -> list[str]:
    """The label of each row's largest probability."""
    return [LABELS[i] for i in proba.argmax(axis=1)]


def masked_mean(hidden_states: Any, attention_mask: Any | None) -> Any:
    """The attention-masked mean of ``hidden_states`` ``(batch, seq, hidden)`` over the sequence.

    Sentence-transformer checkpoints (all-MiniLM-L6-v2 among them) were trained to be read by
    mean pooling; their ``[CLS]`` pooler output is a poor feature (a logistic-regression probe on
    it scored macro-F1 0.28–0.44 on the Amazon sample vs 0.48–0.51 on the mean). Padding tokens
    are excluded; without a mask every position counts.
    """
    if attention_mask is None:
        return hidden_states.mean(dim=1)
    weights = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
    return (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _classification_loss(model: Any, logits: Any, labels: Any) -> Any:
    """The loss ``BertForSequenceClassification`` computes for ``labels``, so a plain Trainer still works."""
    import torch

    config, num_labels = model.config, model.config.num_labels
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        if num_labels == 1:
            return torch.nn.functional.mse_loss(logits.squeeze(), labels.squeeze())
        return torch.nn.functional.mse_loss(logits, labels)
    if config.problem_type == "single_label_classification":
        return torch.nn.functional.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)


def _mean_pooled_forward(
    self: Any,
    input_ids: Any = None,
    attention_mask: Any = None,
    token_type_ids: Any = None,
    position_ids: Any = None,
    inputs_embeds: Any = None,
    labels: Any = None,
    **kwargs: Any,
) -> Any:
    """``forward`` of a BERT-family sequence classifier that reads the masked mean of the token states.

    Bound to one model instance by :func:`apply_pooling`. The attention mask travels as an argument
    of this call only: a served model is shared by request threads, so nothing per call may be
    stored on it. The architecture's ``[CLS]`` pooler still runs inside ``base_model`` (its weights
    stay in the checkpoint under the same names); its output is ignored.
    """
    from transformers.modeling_outputs import SequenceClassifierOutput

    return_dict = kwargs.pop("return_dict", None)
    if return_dict is None:
        return_dict = getattr(self.config, "return_dict", True)
    outputs = self.base_model(
        input_ids,
        attention_mask=attention_mask,
        token_type_ids=token_type_ids,
        position_ids=position_ids,
        inputs_embeds=inputs_embeds,
        return_dict=True,
        **kwargs,
    )
    pooled = masked_mean(outputs.last_hidden_state, attention_mask)
    logits = self.classifier(self.dropout(pooled))
    loss = None if labels is None else _classification_loss(self, logits, labels)
    output = SequenceClassifierOutput(
        loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
    )
    return output if return_dict else output.to_tuple()


def _mean_pooling_applied(model: Any) -> bool:
    """True when :func:`apply_pooling` has bound :func:`_mean_pooled_forward` to ``model``."""
    forward = vars(model).get("forward")
    return getattr(forward, "__func__", None) is _mean_pooled_forward


def pooling_for_base(base_config: Any, requested: str) -> str:
    """The pooling to train with, given the base checkpoint's config.

    A sentiment classifier this project fine-tuned before the pooling was recorded (its
    ``id2label`` names our labels, no :data:`POOLING_ATTR`) read ``[CLS]``: with ``auto`` a
    re-tune starting from it keeps ``cls``. Otherwise ``requested`` is returned unchanged.
    """
    if requested != "auto" or getattr(base_config, POOLING_ATTR, None):
        return requested
    names = {str(v).lower() for v in (getattr(base_config, "id2label", None) or {}).values()}
    return "cls" if names == set(LABELS) else requested


def supports_mean_pooling(model: Any) -> bool:
    """True for BERT-family classifiers: a ``base_model.pooler`` read through ``dropout`` + ``classifier``."""
    import torch

    return (
        getattr(getattr(model, "base_model", None), "pooler", None) is not None
        and isinstance(getattr(model, "dropout", None), torch.nn.Dropout)
        and isinstance(getattr(model, "classifier", None), torch.nn.Linear)
    )


def apply_pooling(model: Any, pooling: str) -> str:
    """Set the sequence classifier's pooling (``auto`` | ``cls`` | ``mean``); return the one used.

    ``auto`` keeps the pooling a fine-tuned checkpoint records (a re-tune starting from a
    champion must read it the way it was trained); for a base encoder it is ``mean`` where the
    architecture allows it, else ``cls``. The choice is recorded in ``model.config`` so
    :meth:`SentimentClassifier.load` applies it again after saving. ``mean`` gives this model
    instance its own ``forward`` (:func:`masked_mean` of the encoder's token states, then the
    model's dropout and classifier); ``cls`` restores the class's forward. Weight names do not
    change either way, and the model keeps no per-call state, so threads may share it.

    Raises:
        ValueError: ``mean`` on an architecture whose head does not read a pooler module.
    """
    if pooling == "auto":
        architecture = "mean" if supports_mean_pooling(model) else "cls"
        recorded = getattr(model.config, POOLING_ATTR, None)
        pooling = recorded if recorded in ("cls", "mean") else architecture
    if pooling == "mean":
        if not supports_mean_pooling(model):
            raise ValueError(
                f"sentiment.pooling=mean needs a BERT-family encoder with a pooler; "
                f"{type(model).__name__} has none: use sentiment.pooling=cls"
            )
        # A per-instance forward rather than a patched pooler: BERT hands its pooler only the token
        # states, and smuggling the mask in through module state raced between serving threads.
        if not _mean_pooling_applied(model):
            model.forward = types.MethodType(_mean_pooled_forward, model)
    elif _mean_pooling_applied(model):
        del model.forward  # back to the class's own forward: the [CLS] pooler head
    setattr(model.config, POOLING_ATTR, pooling)
    return pooling


class SentimentClassifier:
    """Predict sentiment probabilities in :data:`reviewops.schema.LABELS` column order."""

    def __init__(self, model: Any, tokenizer: Any, cfg: SentimentConfig) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.truncation = truncation_of(model)  # as trained, whatever cfg.truncation says now
        self._order = _column_order(model.config.id2label, model.config.num_labels)

    @classmethod
    def load(
        cls, path: Path | str, cfg: SentimentConfig | None = None, inference: Inference = "fp32"
    ) -> SentimentClassifier:
        """Load a fine-tuned sequence classifier and its tokenizer from a local HF directory.

        Args:
            path: the model directory (``save_pretrained`` layout) with its tokenizer.
            cfg: tokenization settings (default: :class:`SentimentConfig`).
            inference: ``int8`` runs the Linear layers in int8 when the model lands on the CPU
                (:meth:`quantized`: about 2x the reviews/s on one thread, see benchmarks/int8.py);
                on a GPU the model stays as it is. ``fp32``: as trained.

        Raises:
            ValueError: an unknown ``inference``.
        """
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if inference not in INFERENCE_MODES:
            raise ValueError(f"sentiment inference must be one of {', '.join(INFERENCE_MODES)}; got {inference!r}")
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForSequenceClassification.from_pretrained(str(path))
        apply_pooling(model, getattr(model.config, POOLING_ATTR, None) or "cls")
        model = model.to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        classifier = cls(model, tokenizer, cfg or SentimentConfig())
        if inference == "int8" and device.type == "cpu":
            return classifier.quantized()
        if inference == "int8":
            logger.info("sentiment inference int8 is a CPU path; the model on %s runs as loaded", device)
        return classifier

    def quantized(self) -> SentimentClassifier:
        """A new classifier over an int8 copy of this one's model (:func:`quantize_int8`); this one is unchanged.

        Raises:
            ValueError: the model is not on the CPU.
        """
        keep = ("classifier", *ffn_output_linears(self.model, self.cfg.int8_fp32_layers))
        return SentimentClassifier(quantize_int8(self.model, keep=keep), self.tokenizer, self.cfg)

    @property
    def inference(self) -> Inference:
        """``int8`` when the model's Linear layers are dynamically quantized, else ``fp32``."""
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

        return "int8" if any(isinstance(m, DynamicLinear) for m in self.model.modules()) else "fp32"

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, shape ``(len(texts), 3)``; each row sums to 1."""
        return length_sorted_proba(texts, batch_size, self._score)

    def _score(self, texts: list[str]) -> np.ndarray:
        """Probabilities of one batch (padded to its longest text), in :data:`LABELS` order."""
        import torch

        enc = encode_batch(self.tokenizer, texts, self.cfg.max_length, self.truncation, "pt").to(self.model.device)
        with torch.no_grad():
            logits = self.model(**enc).logits.float()
        return torch.softmax(logits, dim=-1)[:, self._order].cpu().numpy()

    def predict(self, texts: list[str], batch_size: int = 32) -> list[str]:
        """The most probable label for each text."""
        return most_probable(self.predict_proba(texts, batch_size=batch_size))
