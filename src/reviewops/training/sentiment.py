"""Fine-tune the 3-class sentiment classifier, with class-weighted loss and best-macro-F1 model selection."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.schema import LABEL2ID, LABELS
from reviewops.training.callbacks import quiet_stdout, trainer_callbacks
from reviewops.training.checkpoints import train_with_resume
from reviewops.training.common import (
    CHECKPOINTS_DIR,
    SENTIMENT_DIR,
    Rows,
    TrainResult,
    best_eval,
    fingerprint,
    limit_rows,
    load_kwargs,
    training_args,
)

# Scoring the encoder on validation is cheap, and early stopping on a couple of dozen rows
# stopped training long before it converged: keep at least SENTIMENT_MIN_EVAL rows.
SENTIMENT_MIN_EVAL = 500

Encoded = list[dict[str, Any]]


def class_weights(label_ids: np.ndarray | list[int], num_labels: int = len(LABELS)) -> np.ndarray:
    """Balanced weights ``n / (k * count_c)``, clipped to [0.1, 10]; 1.0 for absent classes."""
    counts = np.bincount(np.asarray(label_ids, dtype=int), minlength=num_labels).astype(float)
    total = counts.sum()
    weights = np.where(counts > 0, total / (num_labels * np.maximum(counts, 1)), 1.0)
    return np.clip(weights, 0.1, 10.0)


def _weighted_trainer_cls() -> Any:
    """The ``Trainer`` subclass with a class-weighted loss (built lazily: torch is heavy)."""
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Cross-entropy with per-class weights, so rare neutral/negative reviews count."""

        def __init__(self, *args: Any, class_weights: np.ndarray | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
            # compute_loss returns a per-batch mean: let the Trainer scale it for grad accumulation.
            self.model_accepts_loss_kwargs = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits.float()
            weight = None if self.class_weights is None else self.class_weights.to(logits.device)
            loss = torch.nn.functional.cross_entropy(logits, labels, weight=weight)
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
    return tokenizer, model


def _encode(df: pd.DataFrame, tokenizer: Any, max_len: int) -> Encoded:
    """Tokenized rows with their integer label."""
    enc = tokenizer(df["text"].astype(str).tolist(), truncation=True, max_length=max_len)
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
    """The weighted Trainer, keeping the checkpoint with the best validation macro-F1."""
    from transformers import DataCollatorWithPadding

    prof = settings.train.active
    train_rows, val_rows = rows
    # Keep the checkpoint with the best validation macro-F1 (what the gate judges), not the lowest
    # loss: with class weights the two disagree, and the loss favours the majority class.
    best = {"metric_for_best_model": "eval_macro_f1", "greater_is_better": True} if val_rows else {}
    args = training_args(
        ckpt_dir,
        prof,
        settings,
        prof.learning_rate_sentiment,
        prof.sentiment_max_steps,
        has_eval=bool(val_rows),
        batch_size=prof.sentiment_batch_size,
        train_sampling_strategy="group_by_length",
        **best,
    )
    trainer = _weighted_trainer_cls()(
        model=model,
        args=args,
        data_collator=DataCollatorWithPadding(tokenizer),
        train_dataset=Rows(train_rows),
        eval_dataset=Rows(val_rows) if val_rows else None,
        processing_class=tokenizer,
        compute_metrics=_sentiment_metrics,
        callbacks=trainer_callbacks(settings, bool(val_rows), prof.sentiment_patience),
        class_weights=weights,
    )
    return quiet_stdout(trainer)


def _final_metrics(
    training_loss: float, history: list[dict[str, Any]], n_added: int, weights: np.ndarray | None
) -> dict[str, float]:
    """Final loss, the kept evaluation's metrics, summary rows added and the class weights used."""
    metrics = {
        "train/loss": float(training_loss),
        **best_eval(history, "eval_macro_f1", True),
        "train/summary_rows_added": float(n_added),
    }
    if weights is not None:
        metrics.update({f"train/class_weight_{label}": float(w) for label, w in zip(LABELS, weights, strict=True)})
    return metrics


def train_sentiment(
    settings: Settings, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: Path | str, resume: bool = True
) -> TrainResult:
    """Fine-tune ``settings.sentiment.model`` as a 3-class classifier; save to ``out_dir/sentiment``.

    Labels come from ``label_id`` (``schema.LABEL2ID``); with ``sentiment.class_weights`` the loss
    is weighted by inverse label frequency of the training subset.

    Raises:
        ReviewOpsError: no labelled training rows, a pooling the encoder cannot use, or the base
            model is not installed.
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

    train_df, val_df, n_reviews = _select_rows(settings, train_df, val_df)
    tokenizer, model = _load_base(base, settings)
    train_rows, val_rows = _encode(train_df, tokenizer, cfg.max_length), _encode(val_df, tokenizer, cfg.max_length)
    weights = class_weights(train_df["label_id"].astype(int).to_numpy()) if cfg.class_weights else None
    trainer = _trainer(settings, model, tokenizer, (train_rows, val_rows), weights, ckpt_dir)
    job = fingerprint(base, "sentiment", prof, cfg.model_dump(mode="json"), train_rows)
    output, resumed, skipped = train_with_resume(trainer, ckpt_dir, resume, job)

    final_dir = out_dir / SENTIMENT_DIR
    trainer.model.save_pretrained(str(final_dir))
    tokenizer.save_pretrained(str(final_dir))
    history = trainer.state.log_history
    return TrainResult(
        name=SENTIMENT_DIR,
        model_dir=str(final_dir),
        base_model=str(base),
        metrics=_final_metrics(output.training_loss, history, len(train_rows) - n_reviews, weights),
        global_step=int(trainer.state.global_step),
        seconds=round(time.perf_counter() - start, 1),
        n_train=len(train_rows),
        n_eval=len(val_rows),
        resumed_from=resumed,
        skipped_checkpoints=skipped,
        log_history=list(history),
    )
