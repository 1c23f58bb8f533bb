"""What both trainers share: the result record, data limits, Trainer arguments, resume fingerprints, lineage.

One code path for every profile (``train.profiles``: quick / cpu / gpu): the profile only
changes sample counts, steps, batch sizes, token lengths and learning rates. On CUDA the same
code turns on bf16, TF32, SDPA attention and length-grouped batches (:func:`training_args`,
:func:`load_kwargs`). Under torchrun the batch sizes are per process (the effective batch is
``batch_size x grad_accum x world_size``, :func:`effective_batch_size`) and ``max_steps`` counts
optimizer steps, the same in every process (the Trainer's own meaning).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reviewops.config import ProfileConfig, Settings
from reviewops.errors import ReviewOpsError
from reviewops.reports import sha256_file
from reviewops.training import distributed

SUMMARIZER_DIR = "summarizer"
SENTIMENT_DIR = "sentiment"
CHECKPOINTS_DIR = "checkpoints"
RETUNE_DIR = "retune"  # <interim_dir>/retune/<batch>: the processed folder of a drift re-tune
SPLIT_CONTEXTS = (("train", "training"), ("val", "validation"), ("test", "testing"))


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


# --------------------------------------------------------------------------- data


def limit_rows(df: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A seeded random subset of at most ``n`` rows (all rows when ``n`` is None)."""
    if n is not None and len(df) > n:
        df = df.sample(n=n, random_state=seed)
    return df.reset_index(drop=True)


class Rows:
    """A list of feature dicts as a map-style dataset (no ``datasets`` dependency)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def read_split(processed_dir: Path, split: str) -> pd.DataFrame:
    """The processed ``split`` (``train``/``val``) as a DataFrame.

    Raises:
        ReviewOpsError: the file is missing; the message names the command that makes it.
    """
    path = processed_dir / f"{split}.parquet"
    if not path.is_file():
        raise ReviewOpsError(f"{path} not found; run the data stages first (`make run`, or `dvc repro split`)")
    return pd.read_parquet(path)


# --------------------------------------------------------------------------- Trainer set-up


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (torch is imported only when asked)."""
    import torch

    return torch.cuda.is_available()


def load_kwargs() -> dict[str, Any]:
    """``from_pretrained`` keyword arguments: fp32 master weights, SDPA attention on CUDA."""
    import torch

    kwargs: dict[str, Any] = {"dtype": torch.float32}  # fp32 master weights; bf16 via autocast on GPU
    if cuda_available():
        kwargs["attn_implementation"] = "sdpa"
    return kwargs


def training_args(
    out: Path,
    profile: ProfileConfig,
    settings: Settings,
    lr: float,
    max_steps: int,
    has_eval: bool,
    batch_size: int | None = None,
    eval_every: int | None = None,
    **extra: Any,
) -> Any:
    """``TrainingArguments`` for one model: the profile's knobs plus CUDA speed-ups; ``extra`` wins.

    ``eval_every``: steps between evaluations and checkpoints (default: the profile's ``eval_steps``).
    """
    import torch
    from transformers import TrainingArguments

    cuda = cuda_available()
    eval_steps = max(1, min(eval_every or profile.eval_steps, max_steps))
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
    kwargs.update(distributed.trainer_kwargs())  # torchrun: the process group's backend (gloo/nccl)
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


def eval_keeps_rng(trainer_cls: type) -> type:
    """``trainer_cls`` whose evaluations leave torch's random state as they found it.

    Each evaluation starts a DataLoader iterator, which draws its base seed from torch's global
    generator: without this, every evaluation shifted the dropout masks of all later steps, so the
    evaluation cadence changed the trained model (stop 35: val macro-F1 0.868 at ``eval_steps`` 25
    vs 0.897 at 300, same steps). With it, evaluating more or less often costs time only.
    """
    import torch

    class EvalKeepsRng(trainer_cls):
        def evaluate(self, *args: Any, **kwargs: Any) -> Any:
            devices = [torch.cuda.current_device()] if cuda_available() else []
            with torch.random.fork_rng(devices=devices):
                return super().evaluate(*args, **kwargs)

    EvalKeepsRng.__name__ = EvalKeepsRng.__qualname__ = trainer_cls.__name__
    return EvalKeepsRng


def effective_batch_size(per_device: int, grad_accum: int) -> int:
    """Samples per optimizer step over all processes: ``per_device x grad_accum x world_size``."""
    return per_device * grad_accum * distributed.world_size()


def best_eval(
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


def fingerprint(
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


# --------------------------------------------------------------------------- what the run records


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: ``{"train.profiles.cpu.batch_size": "8", ...}``."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
    else:
        out[prefix[:-1]] = str(data)[:6000]
    return out


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
            lineage[f"data/{split}_sha256"] = sha256_file(path)
    lineage["data/processed_dir"] = str(processed_dir)
    return lineage


def retune_root(settings: Settings) -> Path:
    """``<interim_dir>/retune``: each drift re-tune trains on the processed folder ``<batch>`` inside."""
    return Path(settings.paths.interim_dir) / RETUNE_DIR


def retune_batch(settings: Settings, processed_dir: Path | str) -> str | None:
    """The batch whose re-tune trains on ``processed_dir`` (``<interim_dir>/retune/<batch>``), else None."""
    folder = Path(processed_dir).resolve()
    return folder.name if folder.parent == retune_root(settings).resolve() else None


def run_name(settings: Settings, processed_dir: Path | str) -> str:
    """What the MLflow training run is called: ``train``, or ``retune <batch>`` for a drift re-tune."""
    batch = retune_batch(settings, processed_dir)
    return f"retune {batch}" if batch else "train"


def log_datasets(processed_dir: Path, frames: dict[str, pd.DataFrame], lineage: dict[str, str]) -> None:
    """Log the train/val/test splits as the active run's dataset inputs (the run page's "Datasets").

    Each is a pandas dataset named after its split, with the Parquet file as its source, the
    first 16 hex digits of the file's sha256 as its digest, and the DVC data version
    (``data/dvc_md5``) and full sha256 as input tags. ``frames`` holds the splits already read;
    the others are read from ``processed_dir`` (a missing file is skipped).
    """
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    for split, context in SPLIT_CONTEXTS:
        path = processed_dir / f"{split}.parquet"
        if split not in frames and not path.is_file():
            continue
        df = frames[split] if split in frames else pd.read_parquet(path)
        sha = lineage.get(f"data/{split}_sha256") or (sha256_file(path) if path.is_file() else "")
        tags = {"split": split, "sha256": sha, "dvc_md5": lineage.get("data/dvc_md5", "unknown")}
        with warnings.catch_warnings():  # two notes per split that say nothing about our data
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
            dataset = from_pandas(df, source=str(path.resolve()), name=split, digest=sha[:16] or None)
            mlflow.log_input(dataset, context=context, tags=tags)
