"""Fine-tune the 3-class sentiment classifier: class-weighted loss, final or best-macro-F1 weights, neutral-class aids.

``sentiment.checkpoint``: ``last`` (default) trains every step of the profile and keeps the final
weights; ``average`` trains as ``last`` and keeps the mean of the weights over the end of training
(:mod:`reviewops.training.averaging`); ``best`` keeps the checkpoint with the best validation
macro-F1 and stops early.

The optional aids for the rare, in-between neutral class (label smoothing, the ordinal loss,
validation-fitted class biases) live in :mod:`reviewops.training.neutral`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.models.tokens import TRUNCATION_ATTR, encode_texts
from reviewops.schema import LABEL2ID, LABELS
from reviewops.training.averaging import weight_averager
from reviewops.training.callbacks import quiet_stdout, trainer_callbacks
from reviewops.training.checkpoints import train_with_resume
from reviewops.training.common import (
    CHECKPOINTS_DIR,
    SENTIMENT_DIR,
    Rows,
    TrainResult,
    best_eval,
    eval_keeps_rng,
    fingerprint,
    limit_rows,
    load_kwargs,
    training_args,
)
from reviewops.training.distributed import mean_metrics, on_main
from reviewops.training.neutral import (
    class_weights,
    fit_class_bias,
    fold_class_bias,
    macro_f1_of,
    neutral_knobs,
    ordinal_costs,
    sentiment_loss,
    star_target_ids,
    star_target_matrix,
)

# Scoring the encoder on validation is cheap, and early stopping on a couple of dozen rows
# stopped training long before it converged: keep at least SENTIMENT_MIN_EVAL rows.
SENTIMENT_MIN_EVAL = 500

Encoded = list[dict[str, Any]]


def _weighted_trainer_cls() -> Any:
    """The ``Trainer`` subclass with a class-weighted loss (built lazily: torch is heavy)."""
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Cross-entropy with per-class weights (rare neutral/negative reviews count), optional
        label smoothing, optionally plus the expected ordinal distance (``loss="ordinal"``)."""

        def __init__(
            self,
            *args: Any,
            class_weights: np.ndarray | None = None,
            label_smoothing: float = 0.0,
            loss: str = "ce",
            targets: np.ndarray | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
            self.label_smoothing = label_smoothing
            self.costs = torch.tensor(ordinal_costs()) if loss == "ordinal" else None
            self.targets = None if targets is None else torch.tensor(targets)  # star soft targets (neutral.py)
            # compute_loss returns a per-batch mean: let the Trainer scale it for grad accumulation.
            self.model_accepts_loss_kwargs = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits.float()
            weight = None if self.class_weights is None else self.class_weights.to(logits.device)
            loss = sentiment_loss(logits, labels, weight, self.label_smoothing, self.costs, self.targets)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


def _sentiment_metrics(pred: Any) -> dict[str, float]:
    """Accuracy and macro-F1 of an evaluation pass (``eval_macro_f1`` selects the kept checkpoint)."""
    from sklearn.metrics import f1_score

    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    y_pred = np.asarray(logits).argmax(axis=-1)
    y_true = np.asarray(pred.label_ids)
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=list(range(len(LABELS))), zero_division=0)),
    }


def _with_summary_rows(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus one row per non-empty summary: the summary as text, with the review's label."""
    if "summary" not in df.columns:
        return df
    summary = df["summary"].astype("string").str.strip()
    extra = df.loc[summary.notna() & summary.ne(""), ["label_id"]].assign(text=summary)
    return pd.concat([df, extra], ignore_index=True)


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a text and a label id (derived from ``label`` when the column is missing)."""
    if "label_id" not in df.columns:
        df = df.assign(label_id=df["label"].map(LABEL2ID))
    return df[df["text"].notna() & df["label_id"].notna()]


def _select_rows(
    settings: Settings, train_df: pd.DataFrame, val_df: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The limited training rows (plus summaries when configured), validation rows and the review count."""
    cfg, prof, seed = settings.sentiment, settings.train.active, settings.train.seed
    train_df = limit_rows(_labelled(train_df), prof.max_train_samples, seed)
    n_reviews = len(train_df)
    if cfg.augment_with_summaries:
        train_df = _with_summary_rows(train_df)
    n_eval = None if prof.max_eval_samples is None else max(prof.max_eval_samples, SENTIMENT_MIN_EVAL)
    val_df = limit_rows(_labelled(val_df), n_eval, seed)
    if train_df.empty:
        raise ReviewOpsError("no labelled training rows; check data/processed/train.parquet")
    return train_df, val_df, n_reviews


def _load_base(base: Path | str, settings: Settings) -> tuple[Any, Any]:
    """The tokenizer and a 3-label classification head on the base encoder, with the configured pooling."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from reviewops.models.sentiment import apply_pooling, pooling_for_base

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    pooling = pooling_for_base(AutoConfig.from_pretrained(str(base)), settings.sentiment.pooling)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id=dict(LABEL2ID), **load_kwargs()
    )
    try:
        apply_pooling(model, pooling)
    except ValueError as exc:
        raise ReviewOpsError(str(exc)) from exc
    if settings.sentiment.freeze_word_embeddings:  # the Trainer's optimizer skips frozen parameters
        model.get_input_embeddings().weight.requires_grad_(False)
    return tokenizer, model


def _encode(df: pd.DataFrame, tokenizer: Any, max_len: int, truncation: str = "head") -> Encoded:
    """Tokenized rows with their integer label (cut as the classifier cuts them: ``encode_texts``)."""
    enc = encode_texts(tokenizer, df["text"].astype(str).tolist(), max_len, truncation)
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": int(label)}
        for ids, mask, label in zip(enc["input_ids"], enc["attention_mask"], df["label_id"], strict=True)
    ]


def _trainer(
    settings: Settings,
    model: Any,
    tokenizer: Any,
    rows: tuple[Encoded, Encoded],
    weights: np.ndarray | None,
    ckpt_dir: Path,
) -> Any:
    """The weighted Trainer: final weights (``checkpoint: last``) or the best validation macro-F1 (``best``)."""
    from transformers import DataCollatorWithPadding

    prof = settings.train.active
    smoothing, loss, _ = neutral_knobs(settings.sentiment)
    train_rows, val_rows = rows
    # Keep the checkpoint with the best validation macro-F1 (what the gate judges), not the lowest
    # loss: with class weights the two disagree, and the loss favours the majority class.
    # sentiment.checkpoint=last: no selection, no early stopping; the final weights are kept
    # (average: their mean over the end of training, training/averaging.py).
    policy = checkpoint_policy(settings.sentiment)
    last = policy in ("last", "average")
    if not val_rows:
        best: dict[str, Any] = {}
    elif last:
        best = {"load_best_model_at_end": False}
    else:
        best = {"metric_for_best_model": "eval_macro_f1", "greater_is_better": True}
    args = training_args(
        ckpt_dir,
        prof,
        settings,
        prof.learning_rate_sentiment,
        prof.sentiment_max_steps,
        has_eval=bool(val_rows),
        batch_size=prof.sentiment_batch_size,
        eval_every=prof.sentiment_eval_steps,
        train_sampling_strategy="group_by_length",
        **best,
    )
    callbacks = trainer_callbacks(settings, bool(val_rows), prof.sentiment_patience, early_stopping=not last)
    if policy == "average":  # snapshots on the checkpoint steps, so each checkpoint has its running sum
        callbacks.append(weight_averager(ckpt_dir, int(args.save_steps), settings.sentiment.average_from))
    trainer = eval_keeps_rng(_weighted_trainer_cls())(
        model=model,
        args=args,
        data_collator=DataCollatorWithPadding(tokenizer),
        train_dataset=Rows(train_rows),
        eval_dataset=Rows(val_rows) if val_rows else None,
        processing_class=tokenizer,
        compute_metrics=_sentiment_metrics,
        callbacks=callbacks,
        class_weights=weights,
        label_smoothing=smoothing,
        loss=loss,
        targets=_star_targets(settings),
    )
    return quiet_stdout(trainer)


def _targets_and_weights(cfg: Any, train_df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Class weights of the labels (with ``class_weights``), and the rows with their training target ids.

    Under ``star_neutral_mass`` > 0, 2- and 4-star reviews get the soft-target ids 3 and 4
    (:func:`reviewops.training.neutral.star_target_ids`); the weights count them as their label.
    """
    label_ids = train_df["label_id"].astype(int).to_numpy()
    weights = class_weights(label_ids) if cfg.class_weights else None
    mass = float(getattr(cfg, "star_neutral_mass", 0.0))
    return train_df.assign(label_id=star_target_ids(label_ids, train_df.get("rating"), mass)), weights


def _star_targets(settings: Settings) -> np.ndarray | None:
    """The soft-target matrix of ``sentiment.star_neutral_mass``, or None (one-hot targets) when it is 0."""
    mass = float(getattr(settings.sentiment, "star_neutral_mass", 0.0))
    return star_target_matrix(mass) if mass > 0 else None


def _tune_thresholds(trainer: Any, val_rows: Encoded) -> dict[str, float]:
    """Fit per-class biases on validation (the kept model's logits), fold them in, report the gain."""
    if not val_rows:
        return {}
    out = trainer.predict(Rows(val_rows))
    logits = out.predictions[0] if isinstance(out.predictions, tuple) else out.predictions
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(out.label_ids, dtype=int)
    bias = fit_class_bias(logits, labels)
    fold_class_bias(trainer.model, bias)
    return {
        "train/threshold_val_macro_f1_before": macro_f1_of(labels, logits.argmax(axis=1)),
        "train/threshold_val_macro_f1_after": macro_f1_of(labels, (logits + bias).argmax(axis=1)),
        **{f"train/threshold_bias_{label}": float(b) for label, b in zip(LABELS, bias, strict=True)},
    }


def checkpoint_policy(cfg: Any) -> str:
    """``sentiment.checkpoint`` of config ``cfg``: ``best`` (default where absent), ``last`` or ``average``."""
    return str(getattr(cfg, "checkpoint", "best"))


def last_eval(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The metrics of the last evaluation in ``log_history`` (the kept one under ``checkpoint: last``)."""
    evals = [h for h in log_history if "eval_macro_f1" in h]
    return best_eval(evals[-1:], "eval_macro_f1", True)


def _final_metrics(
    training_loss: float,
    history: list[dict[str, Any]],
    n_added: int,
    weights: np.ndarray | None,
    checkpoint: str = "best",
) -> dict[str, float]:
    """Final loss, the kept evaluation's metrics, summary rows added and the class weights used."""
    kept = last_eval(history) if checkpoint in ("last", "average") else best_eval(history, "eval_macro_f1", True)
    metrics = {
        "train/loss": float(training_loss),
        **kept,
        "train/summary_rows_added": float(n_added),
    }
    if weights is not None:
        metrics.update({f"train/class_weight_{label}": float(w) for label, w in zip(LABELS, weights, strict=True)})
    return metrics


def _save_final(model: Any, tokenizer: Any, final_dir: Path) -> None:
    """Save the kept model and its tokenizer to ``final_dir`` (rank 0's job under torchrun)."""
    model.save_pretrained(str(final_dir))
    tokenizer.save_pretrained(str(final_dir))


def train_sentiment(
    settings: Settings, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: Path | str, resume: bool = True
) -> TrainResult:
    """Fine-tune ``settings.sentiment.model`` as a 3-class classifier; save to ``out_dir/sentiment``.

    Labels come from ``label_id`` (``schema.LABEL2ID``); with ``sentiment.class_weights`` the loss
    is weighted by inverse label frequency of the training subset; ``sentiment.label_smoothing``,
    ``sentiment.loss`` and ``sentiment.tune_thresholds`` as the module docstring says (read with
    defaults, so configs without them train as before). Under torchrun every process trains on
    its shard (DDP); rank 0 saves the model; the metrics are averaged over the processes.

    Raises:
        ReviewOpsError: no labelled training rows, a pooling the encoder cannot use, the base
            model is not installed, a bad loss/smoothing knob, or thresholds on a bias-less head.
    """
    from transformers import set_seed

    from reviewops.models.pretrained import resolve_model_path

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    cfg, prof = settings.sentiment, settings.train.active
    set_seed(settings.train.seed)
    base = resolve_model_path(cfg.model, settings)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / CHECKPOINTS_DIR / SENTIMENT_DIR

    smoothing, loss, tune = neutral_knobs(cfg)
    train_df, val_df, n_reviews = _select_rows(settings, train_df, val_df)
    tokenizer, model = _load_base(base, settings)
    setattr(model.config, TRUNCATION_ATTR, cfg.truncation)  # saved with the model; its classifier reads it
    train_df, weights = _targets_and_weights(cfg, train_df)
    train_rows, val_rows = (_encode(df, tokenizer, cfg.max_length, cfg.truncation) for df in (train_df, val_df))
    trainer = _trainer(settings, model, tokenizer, (train_rows, val_rows), weights, ckpt_dir)
    knobs = {**cfg.model_dump(mode="json"), "label_smoothing": smoothing, "loss": loss}
    job = fingerprint(base, "sentiment", prof, knobs, train_rows)
    output, resumed, skipped = train_with_resume(trainer, ckpt_dir, resume, job)
    if checkpoint_policy(cfg) == "average" and val_rows:
        trainer.evaluate()  # the averaged weights' validation metrics: the last evaluation in the history
    tuned = _tune_thresholds(trainer, val_rows) if tune else {}

    final_dir = out_dir / SENTIMENT_DIR
    on_main(lambda: _save_final(trainer.model, tokenizer, final_dir))  # the others wait until it is written
    history = trainer.state.log_history
    final = _final_metrics(output.training_loss, history, len(train_rows) - n_reviews, weights, checkpoint_policy(cfg))
    n_soft = int((train_df["label_id"] > 2).sum())  # rows with star soft targets; metrics: mean over processes
    metrics = mean_metrics({**final, **tuned, **({"train/star_soft_rows": float(n_soft)} if n_soft else {})})
    return TrainResult(
        name=SENTIMENT_DIR,
        model_dir=str(final_dir),
        base_model=str(base),
        metrics=metrics,
        global_step=int(trainer.state.global_step),
        seconds=round(time.perf_counter() - start, 1),
        n_train=len(train_rows),
        n_eval=len(val_rows),
        resumed_from=resumed,
        skipped_checkpoints=skipped,
        log_history=list(history),
    )
