"""Fine-tune the summarizer and the sentiment classifier with the transformers Trainer, tracked in MLflow.

One code path for every profile (``train.profiles``: quick / cpu / gpu): the profile only
changes sample counts, steps, batch sizes, token lengths and learning rates. On CUDA the same
code turns on bf16, TF32, SDPA attention and length-grouped batches.

MLflow layout of :func:`train_all`: one parent run ``train`` holding all params (flattened
settings), data lineage, final metrics (``train/<model>_loss``, ``train/<model>_eval_loss``...)
and both pyfunc models; one nested run per model with the per-step curves (``train/loss``,
``train/learning_rate``, ``eval/loss``, ``eval/macro_f1``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reviewops.config import ProfileConfig, Settings
from reviewops.errors import ReviewOpsError
from reviewops.schema import LABEL2ID, LABELS

SUMMARIZER_DIR = "summarizer"
SENTIMENT_DIR = "sentiment"
CHECKPOINTS_DIR = "checkpoints"


@dataclass
class TrainResult:
    """What one fine-tuning produced (``model_dir`` loads with the ``reviewops.models`` classes)."""

    name: str
    model_dir: str
    base_model: str
    metrics: dict[str, float]
    global_step: int
    seconds: float
    n_train: int
    n_eval: int
    resumed_from: str | None = None
    # "checkpoint-N: reason" for each incomplete checkpoint set aside instead of resumed.
    skipped_checkpoints: list[str] = field(default_factory=list)
    log_history: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary without the per-step history."""
        out = asdict(self)
        out.pop("log_history")
        return out


# --------------------------------------------------------------------------- helpers


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _limit(df: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A seeded random subset of at most ``n`` rows (all rows when ``n`` is None)."""
    if n is not None and len(df) > n:
        df = df.sample(n=n, random_state=seed)
    return df.reset_index(drop=True)


def _with_summary_rows(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus one row per non-empty summary: the summary as text, with the review's label."""
    if "summary" not in df.columns:
        return df
    summary = df["summary"].astype("string").str.strip()
    extra = df.loc[summary.notna() & summary.ne(""), ["label_id"]].assign(text=summary)
    return pd.concat([df, extra], ignore_index=True)


class _Rows:
    """A list of feature dicts as a map-style dataset (no ``datasets`` dependency)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def _checkpoints(ckpt_dir: Path) -> list[Path]:
    """The ``checkpoint-<step>`` folders under ``ckpt_dir``, newest (highest step) first."""
    found = [p for p in ckpt_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True)


def _latest_checkpoint(ckpt_dir: Path) -> Path | None:
    found = _checkpoints(ckpt_dir)
    return found[0] if found else None


# A process killed while saving leaves these behind (``x.tmp``, ``tmpab12``, ``x.part``...).
_TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".incomplete")
INCOMPLETE_DIR = "incomplete"


def safetensors_problem(path: Path) -> str | None:
    """Why a ``.safetensors`` file is unusable (truncated, bad header), or None.

    The format is an 8-byte header length, a JSON header with each tensor's byte range, then
    the data: the file must be exactly as long as the header says.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if size < 8 or n <= 0 or 8 + n > size:
                return f"{path.name} is truncated"
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        return f"{path.name} is unreadable ({type(exc).__name__})"
    try:
        expected = 8 + n + max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return f"{path.name} has a malformed header"
    if expected != size:
        return f"{path.name} is truncated ({size} of {expected} bytes)"
    return None


def _checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be resumed from, or None when it is complete.

    Complete means: no temporary files, a readable ``trainer_state.json`` (the Trainer writes
    it last) and model weights (full, sharded or a LoRA adapter) whose safetensors files are
    whole.
    """
    from transformers.utils import (
        ADAPTER_SAFE_WEIGHTS_NAME,
        ADAPTER_WEIGHTS_NAME,
        SAFE_WEIGHTS_INDEX_NAME,
        SAFE_WEIGHTS_NAME,
        WEIGHTS_INDEX_NAME,
        WEIGHTS_NAME,
    )

    temps = sorted(
        p.name for p in path.rglob("*") if p.name.endswith(_TEMP_SUFFIXES) or p.name.startswith(("tmp", ".tmp"))
    )
    if temps:
        return f"temporary file(s) left by an interrupted save: {', '.join(temps[:3])}"
    state = path / "trainer_state.json"
    try:
        state_data = json.loads(state.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError):
        return "trainer_state.json is unreadable"
    if not isinstance(state_data, dict) or "global_step" not in state_data:
        return "trainer_state.json is unreadable"
    weights: list[Path] = []
    for index_name in (SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_INDEX_NAME):
        index = path / index_name
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return f"{index_name} is unreadable"
            missing = sorted(s for s in shards if not (path / s).is_file())
            if missing:
                return f"missing weight shard(s): {', '.join(missing[:3])}"
            weights += [path / s for s in shards]
    weights += [
        path / n
        for n in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME, ADAPTER_SAFE_WEIGHTS_NAME, ADAPTER_WEIGHTS_NAME)
        if (path / n).is_file()
    ]
    if not weights:
        return "no model weights"
    for file in weights:
        if file.suffix == ".safetensors":
            problem = safetensors_problem(file)
            if problem:
                return problem
    return None


def _set_aside_incomplete(ckpt_dir: Path) -> list[str]:
    """Move every incomplete checkpoint to ``ckpt_dir/incomplete/``, out of the Trainer's way.

    Left in place, the newest one would be picked for resuming (``Can't find a valid
    checkpoint``) and a later save of the same step would mix with its leftovers; an older one
    could be kept by checkpoint rotation instead of a good checkpoint.

    Returns:
        One ``"checkpoint-N: reason"`` line per moved checkpoint.
    """
    skipped: list[str] = []
    for path in _checkpoints(ckpt_dir):
        problem = _checkpoint_problem(path)
        if problem is None:
            continue
        dest = ckpt_dir / INCOMPLETE_DIR / path.name
        if dest.exists():  # an older leftover of the same step: the newer one is kept for inspection
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        path.rename(dest)
        skipped.append(f"{path.name}: {problem}")
        print(f"[train] skipped incomplete {path} ({problem}); moved to {dest}", file=sys.stderr, flush=True)
    return skipped


def _step_logger():
    """A Trainer callback that logs every Trainer log line into the *active* MLflow run.

    Own callback instead of transformers' MLflowCallback: it never starts or ends runs, and it
    namespaces metric names (``train/loss``, ``eval/loss``).
    """
    from transformers import TrainerCallback

    class MlflowStepLogger(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            import mlflow

            if not state.is_world_process_zero or mlflow.active_run() is None:
                return
            metrics: dict[str, float] = {}
            for key, value in (logs or {}).items():
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    continue
                if key.startswith("eval_"):
                    name = f"eval/{key[5:]}"
                elif key == "train_loss":  # the end-of-training average
                    name = "train/avg_loss"
                elif key.startswith("train_"):
                    name = f"train/{key[6:]}"
                else:
                    name = f"train/{key}"
                metrics[name] = float(value)
            if metrics:
                mlflow.log_metrics(metrics, step=int(state.global_step))

    return MlflowStepLogger()


def _stderr_printer():
    """Replaces the Trainer's stdout printer: ``--json`` keeps stdout for the one result object."""
    from transformers import TrainerCallback

    class StderrPrinter(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if not state.is_world_process_zero or not logs:
                return
            shown = {
                k: (float(f"{v:.4g}") if isinstance(v, float) else v)
                for k, v in logs.items()
                if k in ("loss", "learning_rate", "eval_loss", "eval_macro_f1", "train_runtime")
            }
            if shown:
                print(f"[train] step {state.global_step}/{state.max_steps} {shown}", file=sys.stderr, flush=True)

    return StderrPrinter()


def _quiet_stdout(trainer: Any) -> Any:
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_stderr_printer())
    return trainer


def _training_args(
    out: Path,
    profile: ProfileConfig,
    settings: Settings,
    lr: float,
    max_steps: int,
    has_eval: bool,
    batch_size: int | None = None,
    **extra: Any,
):
    from transformers import TrainingArguments

    cuda = _cuda()
    import torch

    eval_steps = max(1, min(profile.eval_steps, max_steps))
    kwargs: dict[str, Any] = dict(
        output_dir=str(out),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size or profile.batch_size,
        per_device_eval_batch_size=batch_size or profile.batch_size,
        gradient_accumulation_steps=profile.grad_accum,
        learning_rate=lr,
        warmup_steps=profile.warmup_ratio,
        lr_scheduler_type="linear",
        weight_decay=0.01,
        logging_strategy="steps",
        logging_steps=max(1, min(5, eval_steps)),
        logging_first_step=True,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        report_to="none",  # our own callback logs into our run; no other integration
        seed=settings.train.seed,
        data_seed=settings.train.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
        label_names=["labels"],
        use_cpu=not cuda,
        bf16=bool(cuda and torch.cuda.is_bf16_supported()),
        tf32=True if cuda and torch.cuda.get_device_capability()[0] >= 8 else None,  # Ampere+
        train_sampling_strategy="group_by_length" if cuda else "random",
    )
    if has_eval:
        kwargs.update(
            eval_strategy="steps",
            eval_steps=eval_steps,
            load_best_model_at_end=True,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
        )
    else:
        kwargs.update(eval_strategy="no")
    kwargs.update(extra)
    return TrainingArguments(**kwargs)


def _callbacks(settings: Settings, has_eval: bool, patience: int | None = None) -> list[Any]:
    from transformers import EarlyStoppingCallback

    callbacks: list[Any] = [_step_logger()]
    if has_eval:
        callbacks.append(
            EarlyStoppingCallback(early_stopping_patience=patience or settings.train.early_stopping_patience)
        )
    return callbacks


def _best_eval(
    log_history: list[dict[str, Any]], metric: str = "eval_loss", greater_is_better: bool = False
) -> dict[str, float]:
    """The eval metrics of the evaluation that model selection kept (best ``metric``)."""
    evals = [h for h in log_history if metric in h]
    if not evals:
        return {}
    best = (max if greater_is_better else min)(evals, key=lambda h: h[metric])
    noise = ("runtime", "per_second")
    return {
        f"eval/{k[5:]}": float(v)
        for k, v in best.items()
        if k.startswith("eval_") and isinstance(v, int | float) and not any(n in k for n in noise)
    }


def _fingerprint(
    base: Path | str, kind: str, prof: ProfileConfig, extra: dict[str, Any], rows: list[dict[str, Any]]
) -> str:
    """What a checkpoint must match to be resumed: base model, knobs that shape training, data.

    Step counts and eval cadence are left out on purpose, so raising ``max_steps`` continues a
    finished run instead of starting over.
    """
    digest = hashlib.sha256()
    knobs = prof.model_dump(
        mode="json", exclude={"summarizer_max_steps", "sentiment_max_steps", "eval_steps", "max_eval_samples"}
    )
    digest.update(
        json.dumps({"base": str(base), "kind": kind, "profile": knobs, **extra}, sort_keys=True, default=str).encode()
    )
    for row in rows:
        digest.update(repr((row["input_ids"], row["labels"])).encode())
    return digest.hexdigest()


def _train_loop(trainer: Any, ckpt_dir: Path, resume: bool, fingerprint: str) -> tuple[Any, str | None, list[str]]:
    """Run ``trainer.train``, resuming from the newest complete checkpoint of this same job.

    Checkpoints of a different job (other base model, data or knobs) are deleted rather than
    resumed: a retrain on new data must not silently continue the old run. Incomplete
    checkpoints (a kill while saving) are set aside, not resumed (:func:`_set_aside_incomplete`).

    Returns:
        The Trainer's output, the checkpoint resumed from (or None) and the skipped checkpoints.
    """
    marker = ckpt_dir / "reviewops_fingerprint.txt"
    same_job = marker.is_file() and marker.read_text(encoding="utf-8").strip() == fingerprint
    skipped: list[str] = []
    if ckpt_dir.is_dir() and not (resume and same_job):
        if _latest_checkpoint(ckpt_dir) is not None:
            shutil.rmtree(ckpt_dir)
    elif ckpt_dir.is_dir():
        skipped = _set_aside_incomplete(ckpt_dir)
    checkpoint = _latest_checkpoint(ckpt_dir) if resume and same_job and ckpt_dir.is_dir() else None
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint, encoding="utf-8")
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    return output, str(checkpoint) if checkpoint else None, skipped


def _load_kwargs() -> dict[str, Any]:
    import torch

    kwargs: dict[str, Any] = {"dtype": torch.float32}  # fp32 master weights; bf16 via autocast on GPU
    if _cuda():
        kwargs["attn_implementation"] = "sdpa"
    return kwargs


# --------------------------------------------------------------------------- summarizer


def _summarizer_rows(df: pd.DataFrame, tokenizer: Any, settings: Settings, kind: str) -> list[dict[str, Any]]:
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


def train_summarizer(
    settings: Settings, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: Path | str, resume: bool = True
) -> TrainResult:
    """Fine-tune ``settings.summarizer.model`` on (text, summary) pairs; save to ``out_dir/summarizer``.

    Checkpoints go to ``out_dir/checkpoints/summarizer``; with ``resume`` a later call continues
    from the newest one. Logs per-step metrics into the active MLflow run, if any.
    """
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        set_seed,
    )

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

    def usable(df: pd.DataFrame) -> pd.DataFrame:
        ok = df["summary"].notna() & df["summary"].astype(str).str.strip().ne("") & df["text"].notna()
        return df[ok]

    train_df = _limit(usable(train_df), prof.max_train_samples, settings.train.seed)
    val_df = _limit(usable(val_df), prof.max_eval_samples, settings.train.seed)
    if train_df.empty:
        raise ReviewOpsError("no training rows with a non-empty summary; check data/processed/train.parquet")

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # training pads on the right; Summarizer pads left to generate
    auto = AutoModelForSeq2SeqLM if kind == "seq2seq" else AutoModelForCausalLM
    model = auto.from_pretrained(str(base), **_load_kwargs())
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if cfg.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        task = TaskType.SEQ_2_SEQ_LM if kind == "seq2seq" else TaskType.CAUSAL_LM
        model = get_peft_model(
            model,
            LoraConfig(
                task_type=task, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.05, target_modules="all-linear"
            ),
        )

    train_rows = _summarizer_rows(train_df, tokenizer, settings, kind)
    val_rows = _summarizer_rows(val_df, tokenizer, settings, kind)
    collator = DataCollatorForSeq2Seq(
        tokenizer,
        model=model if kind == "seq2seq" else None,
        label_pad_token_id=-100,
        padding=True,
        pad_to_multiple_of=8 if _cuda() else None,
    )
    args = _training_args(
        ckpt_dir,
        prof,
        settings,
        prof.learning_rate_summarizer,
        prof.summarizer_max_steps,
        has_eval=bool(val_rows),
        prediction_loss_only=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=_Rows(train_rows),
        eval_dataset=_Rows(val_rows) if val_rows else None,
        processing_class=tokenizer,
        callbacks=_callbacks(settings, bool(val_rows)),
    )
    _quiet_stdout(trainer)
    fingerprint = _fingerprint(base, kind, prof, cfg.model_dump(mode="json"), train_rows)
    output, resumed, skipped = _train_loop(trainer, ckpt_dir, resume, fingerprint)

    final = trainer.model
    if cfg.lora:
        final = final.merge_and_unload()  # serving loads a plain model, no peft needed
    final_dir = out_dir / SUMMARIZER_DIR
    final.config.pad_token_id = tokenizer.pad_token_id
    if getattr(final, "generation_config", None) is not None:
        final.generation_config.pad_token_id = tokenizer.pad_token_id
    final = final.to(torch.float32)
    final.save_pretrained(str(final_dir))
    tokenizer.padding_side = "left" if kind == "causal" else "right"
    tokenizer.save_pretrained(str(final_dir))

    history = trainer.state.log_history
    metrics = {"train/loss": float(output.training_loss), **_best_eval(history)}
    return TrainResult(
        name=SUMMARIZER_DIR,
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


# --------------------------------------------------------------------------- sentiment


def class_weights(label_ids: np.ndarray | list[int], num_labels: int = len(LABELS)) -> np.ndarray:
    """Balanced weights ``n / (k * count_c)``, clipped to [0.1, 10]; 1.0 for absent classes."""
    counts = np.bincount(np.asarray(label_ids, dtype=int), minlength=num_labels).astype(float)
    total = counts.sum()
    weights = np.where(counts > 0, total / (num_labels * np.maximum(counts, 1)), 1.0)
    return np.clip(weights, 0.1, 10.0)


def _weighted_trainer_cls():
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
    from sklearn.metrics import f1_score

    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    y_pred = np.asarray(logits).argmax(axis=-1)
    y_true = np.asarray(pred.label_ids)
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=list(range(len(LABELS))), zero_division=0)),
    }


SENTIMENT_MIN_EVAL = 500


def train_sentiment(
    settings: Settings, train_df: pd.DataFrame, val_df: pd.DataFrame, out_dir: Path | str, resume: bool = True
) -> TrainResult:
    """Fine-tune ``settings.sentiment.model`` as a 3-class classifier; save to ``out_dir/sentiment``.

    Labels come from ``label_id`` (``schema.LABEL2ID``); with ``sentiment.class_weights`` the loss
    is weighted by inverse label frequency of the training subset.
    """
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        set_seed,
    )

    from reviewops.models.pretrained import resolve_model_path

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    cfg, prof = settings.sentiment, settings.train.active
    set_seed(settings.train.seed)
    base = resolve_model_path(cfg.model, settings)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / CHECKPOINTS_DIR / SENTIMENT_DIR

    def usable(df: pd.DataFrame) -> pd.DataFrame:
        if "label_id" not in df.columns:
            df = df.assign(label_id=df["label"].map(LABEL2ID))
        return df[df["text"].notna() & df["label_id"].notna()]

    train_df = _limit(usable(train_df), prof.max_train_samples, settings.train.seed)
    n_reviews = len(train_df)
    if cfg.augment_with_summaries:
        train_df = _with_summary_rows(train_df)
    # Scoring the encoder on validation is cheap, and early stopping on a couple of dozen rows
    # stopped training long before it converged: keep at least SENTIMENT_MIN_EVAL rows.
    n_eval = None if prof.max_eval_samples is None else max(prof.max_eval_samples, SENTIMENT_MIN_EVAL)
    val_df = _limit(usable(val_df), n_eval, settings.train.seed)
    if train_df.empty:
        raise ReviewOpsError("no labelled training rows; check data/processed/train.parquet")

    from reviewops.models.sentiment import apply_pooling, pooling_for_base

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    pooling = pooling_for_base(AutoConfig.from_pretrained(str(base)), cfg.pooling)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id=dict(LABEL2ID), **_load_kwargs()
    )
    try:
        apply_pooling(model, pooling)
    except ValueError as exc:
        raise ReviewOpsError(str(exc)) from exc
    max_len = cfg.max_length

    def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
        enc = tokenizer(df["text"].astype(str).tolist(), truncation=True, max_length=max_len)
        return [
            {"input_ids": ids, "attention_mask": mask, "labels": int(label)}
            for ids, mask, label in zip(enc["input_ids"], enc["attention_mask"], df["label_id"], strict=True)
        ]

    train_rows, val_rows = rows(train_df), rows(val_df)
    weights = class_weights(train_df["label_id"].astype(int).to_numpy()) if cfg.class_weights else None
    # Keep the checkpoint with the best validation macro-F1 (what the gate judges), not the lowest
    # loss: with class weights the two disagree, and the loss favours the majority class.
    best = {"metric_for_best_model": "eval_macro_f1", "greater_is_better": True} if val_rows else {}
    args = _training_args(
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
        train_dataset=_Rows(train_rows),
        eval_dataset=_Rows(val_rows) if val_rows else None,
        processing_class=tokenizer,
        compute_metrics=_sentiment_metrics,
        callbacks=_callbacks(settings, bool(val_rows), prof.sentiment_patience),
        class_weights=weights,
    )
    _quiet_stdout(trainer)
    fingerprint = _fingerprint(base, "sentiment", prof, cfg.model_dump(mode="json"), train_rows)
    output, resumed, skipped = _train_loop(trainer, ckpt_dir, resume, fingerprint)

    final_dir = out_dir / SENTIMENT_DIR
    trainer.model.save_pretrained(str(final_dir))
    tokenizer.save_pretrained(str(final_dir))
    history = trainer.state.log_history
    metrics = {
        "train/loss": float(output.training_loss),
        **_best_eval(history, "eval_macro_f1", True),
        "train/summary_rows_added": float(len(train_rows) - n_reviews),
    }
    if weights is not None:
        metrics.update({f"train/class_weight_{label}": float(w) for label, w in zip(LABELS, weights, strict=True)})
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


# --------------------------------------------------------------------------- MLflow + orchestration


def setup_mlflow(settings: Settings, root: Path | str | None = None) -> str:
    """Point MLflow at ``$MLFLOW_TRACKING_URI`` or ``sqlite:///<root>/mlflow.db`` and select the experiment.

    Kept for callers of the training module; see :func:`reviewops.registry.tracking.setup_experiment`
    (server probe, bounded retries, artifacts in ``mlartifacts/`` beside a SQLite database).
    Returns the tracking URI.
    """
    from reviewops.registry.tracking import setup_experiment

    return setup_experiment(settings, root)


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: ``{"train.profiles.cpu.batch_size": "8", ...}``."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        out[prefix[:-1]] = str(data)[:6000]
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_lineage(processed_dir: Path | str, root: Path | str | None = None) -> dict[str, str]:
    """``data/dvc_md5`` (from ``data.dvc``), ``git_commit`` and sha256 of the processed splits."""

    from reviewops.data import versioning

    root = Path(root or Path.cwd())
    processed_dir = Path(processed_dir)
    lineage: dict[str, str] = {}
    try:
        md5 = versioning.data_version(root / "data.dvc")
    except Exception:  # noqa: BLE001 - lineage is best effort, never blocks training
        md5 = None
    if md5:
        lineage["data/dvc_md5"] = md5
    commit = versioning.git_commit(root)
    if commit:
        lineage["git_commit"] = commit
    for split in ("train", "val", "test"):
        path = processed_dir / f"{split}.parquet"
        if path.is_file():
            lineage[f"data/{split}_sha256"] = _sha256(path)
    lineage["data/processed_dir"] = str(processed_dir)
    return lineage


def _read_split(processed_dir: Path, split: str) -> pd.DataFrame:
    path = processed_dir / f"{split}.parquet"
    if not path.is_file():
        raise ReviewOpsError(f"{path} not found; run the data stages first (`make run`, or `dvc repro split`)")
    return pd.read_parquet(path)


def train_all(
    settings: Settings,
    processed_dir: Path | str | None = None,
    out_dir: Path | str | None = None,
    only: str | None = None,
    resume: bool = True,
    log_models: bool = True,
    report_path: Path | str | None = None,
) -> dict[str, Any]:
    """Train both models (or ``only`` one) and track everything in one MLflow parent run.

    Args:
        settings: project settings; ``train.profile`` selects the size knobs.
        processed_dir: folder with ``train.parquet`` / ``val.parquet`` (default ``paths.processed_dir``).
        out_dir: where final models go (default ``<paths.models_dir>/trained``).
        only: ``"summarizer"`` or ``"sentiment"`` to train just one.
        resume: continue from checkpoints under ``out_dir/checkpoints`` when present.
        log_models: log pyfunc models (set False for a quick dry run).
        report_path: where the result is written as JSON for evaluate/gate/registry
            (default ``<paths.reports_dir>/train.json``).

    Returns:
        ``run_id``, ``experiment_id``, ``tracking_uri``, ``model_uris`` ({name: models:/...}),
        ``model_dirs``, ``metrics``, ``timings`` (seconds), ``child_run_ids``, ``profile``,
        ``report_path``, ``failed_stale_runs`` (runs of killed trainings marked FAILED at this
        start) and one summary per trained model (``skipped_checkpoints`` names incomplete
        checkpoints that were set aside instead of resumed).

    Raises:
        ReviewOpsError: missing splits, an unreachable tracking server (within
            ``tracking.timeout_s``), or a store whose artifacts live outside the project.
    """
    from reviewops.registry.tracking import tracking_errors

    if only not in (None, SUMMARIZER_DIR, SENTIMENT_DIR):
        raise ReviewOpsError(f"--only must be 'summarizer' or 'sentiment', not {only!r}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    processed_dir = Path(processed_dir or settings.paths.processed_dir)
    out_dir = Path(out_dir or Path(settings.paths.models_dir) / "trained")
    train_df, val_df = _read_split(processed_dir, "train"), _read_split(processed_dir, "val")
    tracking_uri = setup_mlflow(settings)
    with tracking_errors(tracking_uri):
        return _train_tracked(
            settings, processed_dir, out_dir, train_df, val_df, tracking_uri, only, resume, log_models, report_path
        )


def _train_tracked(
    settings: Settings,
    processed_dir: Path,
    out_dir: Path,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    tracking_uri: str,
    only: str | None,
    resume: bool,
    log_models: bool,
    report_path: Path | str | None,
) -> dict[str, Any]:
    """:func:`train_all` once the store is reachable: one parent run, one nested run per model."""
    import mlflow

    from reviewops.models.pyfunc import log_sentiment, log_summarizer
    from reviewops.registry.tracking import fail_dead_runs, process_tags

    # Runs left RUNNING by a killed training would otherwise stay "running" in the UI forever.
    experiment = mlflow.get_experiment_by_name(settings.train.experiment)
    failed = fail_dead_runs(
        experiment.experiment_id, log=lambda msg: print(f"[train] {msg}", file=sys.stderr, flush=True)
    )
    todo = [only] if only else [SUMMARIZER_DIR, SENTIMENT_DIR]
    trainers = {SUMMARIZER_DIR: train_summarizer, SENTIMENT_DIR: train_sentiment}

    result: dict[str, Any] = {
        "profile": settings.train.profile,
        "tracking_uri": tracking_uri,
        "model_uris": {},
        "model_dirs": {},
        "metrics": {},
        "timings": {},
        "child_run_ids": {},
        "failed_stale_runs": failed,
    }
    start = time.perf_counter()
    with mlflow.start_run(run_name="train", tags=process_tags(**{"reviewops.stage": "train"})) as parent:
        result["run_id"] = parent.info.run_id
        result["experiment_id"] = parent.info.experiment_id
        params = flatten(settings.model_dump(mode="json"))
        params.update(flatten(settings.train.active.model_dump(mode="json"), "train.active."))
        lineage = data_lineage(processed_dir)
        params.update(lineage)
        params.update(
            {"data/n_train_rows": str(len(train_df)), "data/n_val_rows": str(len(val_df)), "train/only": only or "all"}
        )
        items = list(params.items())
        for i in range(0, len(items), 100):  # MLflow caps params per batch call
            mlflow.log_params(dict(items[i : i + 100]))
        if "git_commit" in lineage:
            mlflow.set_tag("mlflow.source.git.commit", lineage["git_commit"])

        for name in todo:
            with mlflow.start_run(run_name=f"train-{name}", nested=True, tags=process_tags()) as child:
                result["child_run_ids"][name] = child.info.run_id
                mlflow.log_params({"model": name, "profile": settings.train.profile})
                res = trainers[name](settings, train_df, val_df, out_dir, resume=resume)
                mlflow.log_params(
                    {
                        "base_model": res.base_model,
                        "n_train": res.n_train,
                        "n_eval": res.n_eval,
                        "resumed_from": res.resumed_from or "none",
                    }
                )
                if res.skipped_checkpoints:
                    mlflow.set_tag("reviewops.skipped_checkpoints", "; ".join(res.skipped_checkpoints)[:5000])
            parent_metrics = {
                f"train/{name}_{k.split('/', 1)[1]}"
                if k.startswith("train/")
                else f"train/{name}_{k.replace('/', '_')}": v
                for k, v in res.metrics.items()
            }
            parent_metrics[f"train/{name}_seconds"] = res.seconds
            parent_metrics[f"train/{name}_global_step"] = float(res.global_step)
            mlflow.log_metrics(parent_metrics)
            result["metrics"].update(parent_metrics)
            result["model_dirs"][name] = res.model_dir
            result["timings"][f"{name}_train_s"] = res.seconds
            result[name] = res.summary()

            if log_models:
                t0 = time.perf_counter()
                example = [str(t)[:500] for t in val_df["text"].head(2)] or None
                if name == SUMMARIZER_DIR:
                    info = log_summarizer(res.model_dir, settings.summarizer, example=example)
                else:
                    info = log_sentiment(res.model_dir, settings.sentiment, example=example)
                result["model_uris"][name] = info.model_uri
                result["timings"][f"{name}_log_model_s"] = round(time.perf_counter() - t0, 1)
        result["timings"]["total_s"] = round(time.perf_counter() - start, 1)
        mlflow.log_metric("train/total_seconds", result["timings"]["total_s"])
    report = Path(report_path or Path(settings.paths.reports_dir) / "train.json")
    report.parent.mkdir(parents=True, exist_ok=True)
    tmp = report.with_name(f".{report.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    tmp.replace(report)
    result["report_path"] = str(report)
    return result
