"""Fine-tune the summarizer (causal LM or seq2seq, optionally LoRA) on (text, summary) pairs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.training.callbacks import quiet_stdout, trainer_callbacks
from reviewops.training.checkpoints import train_with_resume
from reviewops.training.common import (
    CHECKPOINTS_DIR,
    SUMMARIZER_DIR,
    Rows,
    TrainResult,
    best_eval,
    cuda_available,
    eval_keeps_rng,
    fingerprint,
    limit_rows,
    load_kwargs,
    training_args,
)
from reviewops.training.distributed import mean_metrics, on_main


def summarizer_rows(df: pd.DataFrame, tokenizer: Any, settings: Settings, kind: str) -> list[dict[str, Any]]:
    """Tokenized training rows; a causal LM's labels mask the prompt (``-100``) so only the summary is learnt."""
    from reviewops.models.summarizer import build_source

    prof = settings.train.active
    prompt = settings.summarizer.prompt
    rows = []
    for text, summary in zip(df["text"].astype(str), df["summary"].astype(str), strict=True):
        source = build_source(prompt, text, tokenizer, prof.max_source_tokens)
        if kind == "seq2seq":
            enc = tokenizer(source, truncation=True, max_length=prof.max_source_tokens + 64)
            labels = tokenizer(text_target=summary.strip(), truncation=True, max_length=prof.max_target_tokens)[
                "input_ids"
            ]
            rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
            continue
        # Causal LM: prompt + " summary" + EOS; the loss only sees the summary and EOS.
        src = tokenizer(source)["input_ids"]
        tgt = tokenizer(" " + summary.strip(), add_special_tokens=False)["input_ids"][: prof.max_target_tokens]
        tgt = tgt + [tokenizer.eos_token_id]
        ids = src + tgt
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * len(src) + tgt})
    return rows


def _with_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that have a text and a non-blank summary."""
    ok = df["summary"].notna() & df["summary"].astype(str).str.strip().ne("") & df["text"].notna()
    return df[ok]


def balance_by_label(df: pd.DataFrame, seed: int, strength: float = 1.0) -> pd.DataFrame:
    """``df`` with the minority sentiment labels' rows repeated (``summarizer.label_balance``).

    Each label's count ``n`` becomes ``round(n_max**strength * n**(1 - strength))``: 1 = every
    label as many rows as the largest, 0 = unchanged. Each label keeps all its rows once; the
    shortfall is drawn from them (whole copies first, then a seeded sample without replacement),
    so no row is dropped and the result does not depend on the row order of ``df``. Rows without
    a label are kept once, as they are.
    """
    if "label" not in df.columns or df.empty or strength <= 0:
        return df.reset_index(drop=True)
    labelled = df[df["label"].notna()]
    counts = labelled["label"].value_counts()
    if counts.empty:
        return df.reset_index(drop=True)
    largest = int(counts.max())
    parts = [df[df["label"].isna()]]
    for i, label in enumerate(sorted(counts.index)):
        rows = labelled[labelled["label"] == label]
        if "review_id" in rows.columns:
            rows = rows.sort_values("review_id", kind="stable")
        target = max(len(rows), round(largest**strength * len(rows) ** (1 - strength)))
        whole, rest = divmod(target, len(rows))
        parts.extend([rows] * whole)
        if rest:
            parts.append(rows.sample(n=rest, random_state=seed + i))
    return pd.concat(parts, ignore_index=True)


def _load_base(base: Path | str, kind: str, settings: Settings) -> tuple[Any, Any]:
    """The tokenizer (padding on the right, for training) and the model, wrapped in LoRA when configured."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    cfg = settings.summarizer
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # training pads on the right; Summarizer pads left to generate
    auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    model = auto.from_pretrained(str(base), **load_kwargs())
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    freeze_lower_layers(model, cfg.freeze_layers)
    if cfg.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        task = TaskType.SEQ_2_SEQ_LM if kind == "seq2seq" else TaskType.CAUSAL_LM
        model = get_peft_model(
            model,
            LoraConfig(
                task_type=task, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.05, target_modules="all-linear"
            ),
        )
    return tokenizer, model


def freeze_lower_layers(model: Any, n: int) -> int:
    """Keep the input embeddings and the ``n`` lowest decoder layers fixed; returns how many were frozen.

    Backpropagation then stops above them: no gradients through the bottom of the stack, no
    AdamW update of their weights. With tied input/output embeddings the output layer stays
    fixed too. ``n`` above the depth freezes every layer (the final norm still trains).
    """
    if n <= 0:
        return 0
    layers = _decoder_layers(model)
    if layers is None:
        raise ReviewOpsError(f"summarizer.freeze_layers={n}: cannot find the decoder layers of {type(model).__name__}")
    model.get_input_embeddings().weight.requires_grad_(False)
    frozen = layers[: min(n, len(layers))]
    for layer in frozen:
        layer.requires_grad_(False)
    return len(frozen)


def _decoder_layers(model: Any) -> Any:
    """The decoder's layer list (``model.model.layers`` for Llama/Gemma-style causal LMs), or None."""
    get_decoder = getattr(model, "get_decoder", None)
    decoder = get_decoder() if get_decoder is not None else None
    layers = getattr(decoder, "layers", None)
    return layers if layers is not None and len(layers) else None


def _trainer(
    settings: Settings,
    model: Any,
    tokenizer: Any,
    kind: str,
    rows: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    ckpt_dir: Path,
) -> Any:
    """A plain ``Trainer`` (token-level loss only) over the train and validation rows."""
    from transformers import DataCollatorForSeq2Seq, Trainer

    from reviewops.training.lm_loss import target_loss_trainer_class

    prof = settings.train.active
    train_rows, val_rows = rows
    collator = DataCollatorForSeq2Seq(
        tokenizer,
        model=model if kind == "seq2seq" else None,
        label_pad_token_id=-100,
        padding=True,
        pad_to_multiple_of=8 if cuda_available() else None,
    )
    args = training_args(
        ckpt_dir,
        prof,
        settings,
        prof.learning_rate_summarizer,
        prof.summarizer_max_steps,
        has_eval=bool(val_rows),
        prediction_loss_only=True,
        # Batches of similar length: less padding through 30 decoder layers (random order within groups).
        train_sampling_strategy="group_by_length",
    )
    trainer_cls = eval_keeps_rng(target_loss_trainer_class() if kind == "causal" else Trainer)
    trainer = trainer_cls(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=Rows(train_rows),
        eval_dataset=Rows(val_rows) if val_rows else None,
        processing_class=tokenizer,
        callbacks=trainer_callbacks(settings, bool(val_rows)),
    )
    return quiet_stdout(trainer)


def _save_final(model: Any, tokenizer: Any, kind: str, lora: bool, final_dir: Path) -> None:
    """Save a plain fp32 model (LoRA merged) and a tokenizer padding the way generation needs."""
    import torch

    final = model.merge_and_unload() if lora else model  # serving loads a plain model, no peft needed
    final.config.pad_token_id = tokenizer.pad_token_id
    if getattr(final, "generation_config", None) is not None:
        final.generation_config.pad_token_id = tokenizer.pad_token_id
    final = final.to(torch.float32)
    final.save_pretrained(str(final_dir))
    tokenizer.padding_side = "left" if kind == "causal" else "right"
    tokenizer.save_pretrained(str(final_dir))


def train_summarizer(
    settings: Settings, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: Path | str, resume: bool = True
) -> TrainResult:
    """Fine-tune ``settings.summarizer.model`` on (text, summary) pairs; save to ``out_dir/summarizer``.

    Checkpoints go to ``out_dir/checkpoints/summarizer``; with ``resume`` a later call continues
    from the newest one. Logs per-step metrics into the active MLflow run, if any. Under torchrun
    every process trains on its shard (DDP); rank 0 saves the model; the metrics are averaged
    over the processes.

    Raises:
        ReviewOpsError: no training row has a summary, or the base model is not installed.
    """
    from transformers import set_seed

    from reviewops.models.pretrained import resolve_model_path
    from reviewops.models.summarizer import detect_kind

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    cfg, prof = settings.summarizer, settings.train.active
    set_seed(settings.train.seed)
    base = resolve_model_path(cfg.model, settings)
    kind = detect_kind(base, cfg.kind)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / CHECKPOINTS_DIR / SUMMARIZER_DIR

    train_df = limit_rows(_with_summary(train_df), prof.max_train_samples, settings.train.seed)
    if cfg.label_balance > 0:
        train_df = balance_by_label(train_df, settings.train.seed, cfg.label_balance)
    val_df = limit_rows(_with_summary(val_df), prof.max_eval_samples, settings.train.seed)
    if train_df.empty:
        raise ReviewOpsError("no training rows with a non-empty summary; check data/processed/train.parquet")

    tokenizer, model = _load_base(base, kind, settings)
    train_rows = summarizer_rows(train_df, tokenizer, settings, kind)
    val_rows = summarizer_rows(val_df, tokenizer, settings, kind)
    trainer = _trainer(settings, model, tokenizer, kind, (train_rows, val_rows), ckpt_dir)
    job = fingerprint(base, kind, prof, cfg.model_dump(mode="json"), train_rows)
    output, resumed, skipped = train_with_resume(trainer, ckpt_dir, resume, job)

    final_dir = out_dir / SUMMARIZER_DIR
    on_main(lambda: _save_final(trainer.model, tokenizer, kind, cfg.lora, final_dir))  # the others wait for it
    history = trainer.state.log_history
    return TrainResult(
        name=SUMMARIZER_DIR,
        model_dir=str(final_dir),
        base_model=str(base),
        metrics=mean_metrics({"train/loss": float(output.training_loss), **best_eval(history)}),
        global_step=int(trainer.state.global_step),
        seconds=round(time.perf_counter() - start, 1),
        n_train=len(train_rows),
        n_eval=len(val_rows),
        resumed_from=resumed,
        skipped_checkpoints=skipped,
        log_history=list(history),
    )
