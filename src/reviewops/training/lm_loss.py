"""Causal-LM fine-tuning that computes the vocabulary projection only where the loss looks.

A summarizer learns from (prompt + review, title) pairs whose labels mask the prompt: the loss
sees only the title's few tokens, yet the model's own forward projects every position of the
batch onto the whole vocabulary (SmolLM2: 49,152 logits per token, a fifth of the forward's
multiply-adds plus a batch x length x vocabulary float tensor and its gradient). Here the
decoder runs once, and only the hidden states of labelled positions go through the output
layer: the same loss, the same gradients, less work.

It applies when the model exposes ``get_decoder()`` and ``get_output_embeddings()`` and its
logits are exactly ``lm_head(decoder(...).last_hidden_state)``; :func:`target_loss_matches`
checks that once on a real batch (no soft-capping or scaling hides in the model's forward)
and the trainer falls back to the model's own loss otherwise. Training on several processes
(DDP) always uses the model's own loss: DDP averages gradients only through its wrapper's
forward, which calling the decoder and the output layer directly would skip.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

IGNORE = -100
TOLERANCE = 1e-4  # |fast - full| loss difference accepted by the one-off check


def _parts(model: Any) -> tuple[Any, Any] | None:
    """The decoder stack and the output layer of a causal LM (through a PEFT wrapper), if it has both."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    get_decoder = getattr(base, "get_decoder", None)
    get_head = getattr(base, "get_output_embeddings", None)
    if get_decoder is None or get_head is None:
        return None
    decoder, head = get_decoder(), get_head()
    if decoder is None or head is None or decoder is base:
        return None
    return decoder, head


def target_token_loss(model: Any, inputs: dict[str, Any], num_items: Any = None) -> Any:
    """Next-token cross-entropy over labelled positions, with the output layer applied to those only.

    ``num_items``: the labelled-token count of the whole (accumulated) batch, as the Trainer
    passes it: the loss is then the sum divided by it; None: the mean over this batch.
    """
    import torch.nn.functional as F

    parts = _parts(model)
    if parts is None:
        raise ValueError("model has no separate decoder and output layer")
    decoder, head = parts
    hidden = decoder(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")).last_hidden_state
    labels = inputs["labels"][:, 1:]
    keep = labels != IGNORE
    logits = head(hidden[:, :-1][keep]).float()
    if num_items is None:
        return F.cross_entropy(logits, labels[keep])
    return F.cross_entropy(logits, labels[keep], reduction="sum") / num_items


def target_loss_matches(model: Any, inputs: dict[str, Any]) -> bool:
    """Whether :func:`target_token_loss` equals the model's own loss on ``inputs`` (eval mode, no grad)."""
    import torch

    if _parts(model) is None:
        return False
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            full = model(**inputs).loss
            fast = target_token_loss(model, inputs)
    finally:
        model.train(was_training)
    diff = abs(float(full) - float(fast))
    if diff > TOLERANCE:
        logger.info("target-only loss differs from the model's by %.2e: using the model's full loss", diff)
    return diff <= TOLERANCE


def target_loss_trainer_class() -> type:
    """A ``transformers.Trainer`` subclass whose causal-LM loss projects labelled positions only.

    The first batch it sees is checked with :func:`target_loss_matches`; on a mismatch it uses
    ``Trainer.compute_loss`` (the model's full loss) from then on.
    """
    from transformers import Trainer

    class TargetLossTrainer(Trainer):
        """Trainer with the output layer applied to labelled positions only (see the module)."""

        loss_is_scaled_for_ga = True  # the loss below is divided by num_items_in_batch when given
        _fast: bool | None = None

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            if self._fast is None:
                probe = {k: v[:2] for k, v in inputs.items()}
                # Under DDP the decoder and head called directly would bypass the wrapper's forward,
                # and with it the gradient all-reduce: several processes use the model's own loss.
                self._fast = self.args.world_size == 1 and target_loss_matches(model, probe)
            loss: Any
            if not self._fast:
                loss = super().compute_loss(model, inputs, return_outputs=False, num_items_in_batch=num_items_in_batch)
            else:
                loss = target_token_loss(model, inputs, num_items_in_batch)
                if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                    loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # as Trainer.compute_loss
            if num_items_in_batch is None and model.training:
                loss = loss / self.current_gradient_accumulation_steps
            return (loss, {"loss": loss}) if return_outputs else loss

    return TargetLossTrainer
