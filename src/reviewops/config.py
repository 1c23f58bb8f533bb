"""Typed settings for every stage, loaded from params.yaml and overridable from the CLI.

One source of truth: ``params.yaml`` holds the knobs, DVC stages name the same keys under
``params:``, and Prefect flows take the :class:`Settings` object built here. Every model is
``extra="forbid"`` so a misspelt key fails early with a message that names it.

Why this module is long: it is the one schema of ``params.yaml``, one small class per section
(each field with its default and bounds); splitting it would scatter the source of truth.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, field_validator, model_validator

DEFAULT_PARAMS = Path("params.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Strict):
    """Where each stage reads and writes, relative to the project root."""

    raw_dir: Path = Path("data/raw")
    interim_dir: Path = Path("data/interim")
    processed_dir: Path = Path("data/processed")
    quarantine_dir: Path = Path("data/quarantine")
    reports_dir: Path = Path("reports")
    models_dir: Path = Path("models")
    gx_dir: Path = Path("great_expectations")


class GenerateConfig(_Strict):
    """Synthetic review generator (the embedded default data set)."""

    rows: int = Field(3000, ge=1)
    seed: int = 42
    scenario: str = "base"
    zh_share: float = Field(0.2, ge=0, le=1)


class IngestConfig(_Strict):
    """How raw files map onto the canonical schema (used by the DVC validate stage)."""

    columns: str = Field("", description="canonical=source pairs, e.g. 'text=Text,rating=Score'")
    # "auto": BOM, then UTF-8, UTF-16, GB18030 (strict, whole file); or a Python codec name.
    encoding: str = "auto"


class ValidationConfig(_Strict):
    """Great Expectations suite parameters and the batch failure threshold."""

    max_failure_rate: float = Field(0.2, ge=0, le=1)
    min_text_chars: int = Field(3, ge=0)
    max_text_chars: int = Field(20000, ge=1)
    max_summary_chars: int = Field(300, ge=1)
    allowed_languages: list[str] = ["en", "zh"]
    rating_min: int = 1
    rating_max: int = 5


class PreprocessConfig(_Strict):
    """Cleaning, PII masking and deduplication."""

    mask_pii: bool = True
    dedup: bool = True
    max_text_chars: int = Field(4000, ge=16)


class SplitConfig(_Strict):
    """Train/validation/test split: stratified by sentiment, grouped by product."""

    val_size: float = Field(0.1, gt=0, lt=0.5)
    test_size: float = Field(0.15, gt=0, lt=0.5)
    # No single product may make up more than this share of the validation or test split when
    # a fold without one exists: a held-out split that is one big product measures that product.
    max_product_share: float = Field(0.25, gt=0, le=1)
    seed: int = 42


class ProfileConfig(_Strict):
    """Size knobs for one training profile (quick / cpu / gpu).

    ``max_source_tokens`` caps the review inside the summarizer prompt during training; the
    sentiment encoder truncates at ``sentiment.max_length``. ``sentiment_batch_size`` defaults
    to ``batch_size``. ``warmup_ratio`` is the share of steps with a linear LR warm-up.
    The sentiment batches are grouped by length (reviews and their short titles mix).
    """

    max_train_samples: int | None = Field(None, ge=1)
    max_eval_samples: int | None = Field(None, ge=1)
    summarizer_max_steps: int = Field(50, ge=1)
    sentiment_max_steps: int = Field(100, ge=1)
    batch_size: int = Field(8, ge=1)
    sentiment_batch_size: int | None = Field(None, ge=1)
    grad_accum: int = Field(1, ge=1)
    eval_steps: int = Field(25, ge=1)
    max_source_tokens: int = Field(128, ge=8)
    max_target_tokens: int = Field(24, ge=1)
    learning_rate_summarizer: float = Field(5e-5, gt=0)
    learning_rate_sentiment: float = Field(5e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    # Evaluations without improvement before the sentiment run stops (None = train.early_stopping_patience).
    # Its validation macro-F1 on a few dozen rows is noisy: a short patience stops it too early.
    sentiment_patience: int | None = Field(None, ge=1)
    # Steps between the sentiment model's evaluations and checkpoints (None = eval_steps). Each scores
    # all of its >= 500 validation rows and saves model + optimizer state: on 2 CPU cores about as
    # long as 9 training steps. Evaluation leaves training as it was (same weights at any cadence,
    # training/common.eval_keeps_rng): under checkpoint ``last`` it only reports and sets resume points;
    # ``best`` and ``average`` choose among evaluations (measured at 25).
    sentiment_eval_steps: int | None = Field(None, ge=1)


class SummarizerConfig(_Strict):
    """Abstractive summarizer: any causal LM or seq2seq checkpoint via the Auto classes."""

    model: str = "smollm2-135m-instruct"
    kind: Literal["auto", "causal", "seq2seq"] = "auto"
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    max_new_tokens: int = 24
    max_source_tokens: int = Field(256, ge=8)
    num_beams: int = 1
    # Fine-tuning keeps the input embeddings and this many of the lowest decoder layers fixed:
    # backpropagation stops above them (0 = train every layer).
    freeze_layers: int = Field(0, ge=0)
    # How far fine-tuning evens out the sentiment labels of its rows: each label's count n becomes
    # n_max**b * n**(1-b) (the minority labels' rows repeated, seeded; nothing dropped): 0 = as the
    # data is, 1 = as many negative and neutral rows as positive, 0.5 = the geometric mean. Real
    # review sets are mostly positive, and a summarizer trained on them as they are writes upbeat
    # titles for negative reviews too. 0.5 by benchmarks/quality.py on the Fine Food sample (same
    # 197 test rows, same judge): titles contradicting their review, negative 16 -> 11 of 27 and
    # positive 2 -> 3 of 155 (macro rate 0.303 -> 0.213, micro 0.099 -> 0.077), ROUGE-L 0.149 -> 0.155;
    # 1.0 gave 1 of 27 but 23 of 155 (macro 0.093, micro 0.132).
    label_balance: float = Field(0.5, ge=0.0, le=1.0)
    prompt: str = "Write a short title for this product review.\nReview: {text}\nTitle:"


class SentimentConfig(_Strict):
    """Three-class sentiment classifier on any encoder."""

    model: str = "multilingual-e5-small"
    class_weights: bool = True
    max_length: int = 128
    # How training cuts a review longer than max_length (recorded in the model, which is read the same
    # way at inference): "head" keeps the first tokens; "head_tail" the first quarter of the budget and
    # the last three quarters, where reviews state their verdict (models/sentiment.py:encode_texts).
    truncation: Literal["head", "head_tail"] = "head"
    # Which weights training keeps: "last" = train the profile's sentiment_max_steps and keep the
    # final weights (validation still scored and logged); "best" = the checkpoint with the best
    # validation macro-F1, with early stopping after the profile's sentiment_patience evaluations
    # without a gain. "last" by the grouped 5-fold CV on the Fine Food sample (benchmarks/
    # sentiment_recipes.py): pooled macro-F1 0.657 vs 0.642, better on 4 of 5 folds; with ~64
    # validation rows (~5 neutral) the selection picked noise.
    # "average" = "last" plus the mean of the trainable weights at every evaluation step from
    # average_from of max_steps on (stochastic weight averaging; training/averaging.py).
    checkpoint: Literal["best", "last", "average"] = "last"
    average_from: float = Field(0.5, ge=0.0, lt=1.0)
    # Also train on each review's title (summary) with the review's label. Off by default: in a
    # grouped 5-fold cross-validation on the Amazon sample (benchmarks/sentiment_recipes.py) the
    # extra rows lowered macro-F1 on every fold (pooled 0.588 vs 0.627 without), the neutral class most.
    augment_with_summaries: bool = False
    # How the classifier head reads the encoder: "mean" of the token states (what sentence-
    # transformer checkpoints were trained for), "cls" (the architecture's own [CLS] pooler), or
    # "auto" = mean where the architecture has a pooler module (BERT family), else cls.
    pooling: Literal["auto", "cls", "mean"] = "auto"
    # Neutral-class aids (issue #14), off until the grouped CV of benchmarks/sentiment_recipes.py
    # shows they help: label smoothing of the targets; "ordinal" = cross-entropy plus the expected
    # distance between classes (negative<->positive costs twice a neighbour); per-class logit biases
    # fitted on validation for macro-F1 and folded into the output layer's bias (inference unchanged).
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    # Ordinal soft targets from the stars: a 2-star (negative) or 4-star (positive) review's training
    # target gives the neutral class this much (0.3: 0.7 negative + 0.3 neutral for 2 stars); 1, 3
    # and 5 stars and rows without a rating keep one-hot targets. 0 = off.
    star_neutral_mass: float = Field(0.0, ge=0, le=0.5)
    loss: Literal["ce", "ordinal"] = "ce"
    tune_thresholds: bool = False
    # CPU inference of the service and bulk scoring: "int8" runs the encoder's Linear layers in int8
    # (torch dynamic quantization; oneDNN on AMX CPUs) but ``int8_fp32_layers``, and rechecks close
    # calls in fp32 (``int8_recheck_margin``): on multilingual-e5-small, three Fine Food splits, macro-F1
    # within 0.003 of fp32; speed 2-4x torch fp32 on one thread depending on the CPU (benchmarks/int8.py;
    # README "int8 and ONNX Runtime"). fp32 stays the default. A GPU keeps its dtype.
    inference: Literal["fp32", "int8"] = "fp32"
    # Encoder layers whose feed-forward output Linear stays fp32 under ``inference: int8`` (torch and
    # ONNX Runtime): there a few input channels are hundreds of times the rest (max |x| / rms on
    # Fine Food training texts, fine-tuned e5: layer 4 233, 0 157, 5 142, the next 82), and one
    # per-tensor int8 scale rounds the rest away. 4 and 5 lead the per-layer KL ranking of another
    # split (stop 24). e5, 497 held-out rows: torch int8 -0.018 macro-F1 all int8, -0.006 with 4, 5
    # fp32; ONNX -0.042 -> -0.008; 0, 4, 5: -0.011 / -0.013 (README "int8 and ONNX Runtime"). MiniLM's
    # outlier layer is 0. Matched: ``layer.<k>.output.dense``; gemma has none (all Linears int8).
    int8_fp32_layers: list[NonNegativeInt] = Field(default_factory=lambda: [4, 5])
    # Under ``inference: int8``: rows whose int8 top-two probability margin is below this are scored
    # again in fp32 by the same runtime and keep fp32's probabilities (models/recheck.py); 0 turns it
    # off. int8's few flips are mostly such close calls: e5, int8_fp32_layers [4, 5], 0.5 rechecks 3-6 %
    # of Fine Food held-out rows and brings agreement with fp32 from 0.98 to 0.996-1.0
    # (benchmarks/int8.py --int8-recheck-margin; README "int8 and ONNX Runtime").
    int8_recheck_margin: float = Field(default=0.5, ge=0.0, le=1.0)
    # Which engine runs the sentiment model's CPU forward in the service and bulk scoring: "torch"
    # (as trained), or "onnx": the model exported once to ONNX and run by ONNX Runtime (with
    # ``inference: int8``, ONNX Runtime's dynamic int8 quantization, ``int8_fp32_layers`` kept fp32).
    # A GPU always runs torch.
    runtime: Literal["torch", "onnx"] = "torch"
    # Keep the encoder's word-embedding matrix fixed while fine-tuning. A multilingual encoder's
    # vocabulary is most of its weights (multilingual-e5-small: 96M of 118M parameters in a 250k x 384
    # matrix); freezing it takes them out of AdamW's update, the larger part of a CPU step there.
    freeze_word_embeddings: bool = True


class TrainConfig(_Strict):
    """Fine-tuning settings shared by both models."""

    profile: Literal["quick", "cpu", "gpu"] = "cpu"
    profiles: dict[str, ProfileConfig] = {
        # Tests: seconds on tiny models.
        "quick": ProfileConfig(
            max_train_samples=64,
            max_eval_samples=32,
            summarizer_max_steps=4,
            sentiment_max_steps=6,
            batch_size=8,
            eval_steps=2,
        ),
        # Default `make run` on 2 CPU cores: both models plus evaluation in about 12 minutes.
        "cpu": ProfileConfig(
            max_eval_samples=24,
            summarizer_max_steps=60,
            sentiment_max_steps=300,
            sentiment_patience=4,
            sentiment_eval_steps=100,
            batch_size=8,
            sentiment_batch_size=16,
            eval_steps=20,
            max_source_tokens=96,
            max_target_tokens=16,
            learning_rate_summarizer=1e-4,
            learning_rate_sentiment=1e-4,
        ),
        "gpu": ProfileConfig(
            max_eval_samples=512,
            summarizer_max_steps=2000,
            sentiment_max_steps=2000,
            batch_size=32,
            eval_steps=200,
            max_source_tokens=256,
            max_target_tokens=32,
            learning_rate_summarizer=5e-5,
            learning_rate_sentiment=5e-5,
        ),
    }
    seed: int = 42
    early_stopping_patience: int = 3
    experiment: str = "reviewops"

    @property
    def active(self) -> ProfileConfig:
        """The size knobs of the selected profile."""
        return self.profiles[self.profile]

    @model_validator(mode="after")
    def _profile_exists(self) -> TrainConfig:
        if self.profile not in self.profiles:
            raise ValueError(f"train.profile={self.profile!r} is not one of {sorted(self.profiles)}")
        return self


class TrackingConfig(_Strict):
    """How the stages talk to MLflow (``$MLFLOW_TRACKING_URI`` or the project's ``mlflow.db``).

    A tracking server is probed for ``timeout_s`` seconds before any work starts, and each
    HTTP request waits at most ``timeout_s`` and is retried ``max_retries`` times (MLflow's own
    defaults retry for about four minutes). ``MLFLOW_HTTP_REQUEST_*`` variables exported by
    the user win over these two.
    """

    timeout_s: int = Field(15, ge=1)
    max_retries: int = Field(2, ge=0, le=10)
    # A SQLite store whose experiment keeps artifacts outside the store's folder is refused
    # (a copied project would write into the original's mlartifacts/); true allows it.
    allow_external_artifacts: bool = False


class GateConfig(_Strict):
    """Quality gate: absolute floors and no regression versus the champion."""

    min_rougeL: float = 0.05
    min_macro_f1: float = 0.4
    max_regression: float = 0.02
    # Ceiling on eval/contradiction_rate_macro: the share of generated summaries whose sentiment
    # opposes their review's, averaged over negative and positive reviews
    # (reviewops.evaluation.faithfulness). None turns the check off.
    max_contradiction_rate: float | None = Field(0.25, ge=0, le=1)
    auto_promote: bool = True
    summarizer_name: str = "review-summarizer"
    sentiment_name: str = "review-sentiment"


class EvaluateConfig(_Strict):
    """Evaluation extras: baselines, behaviour checks and the champion re-score."""

    lead_n: int = Field(8, ge=1)
    untuned_baseline: bool = True
    behaviour_checks: bool = True
    compare_champion: bool = True
    batch_size: int = Field(8, ge=1)
    # Test rows summarized per model (a fixed-seed sample of rows with a reference). Decoupled from
    # train.active.max_eval_samples, the validation rows for eval loss (24 on cpu: too few for a
    # stable ROUGE); None couples the two again. The default is params.yaml's (one source of truth).
    max_generate_samples: int | None = Field(100, ge=1)


class ServeConfig(_Strict):
    """BentoML service limits, adaptive batching, backpressure and model-failure handling.

    ``max_batch_size``/``max_latency_ms`` drive the sentiment batcher; generation is two orders
    of magnitude slower on CPU, so the summarizer has its own, looser pair (a request whose
    predicted wait exceeds the max latency is answered 503 by BentoML's dispatcher).
    ``batching`` can be overridden per process with ``REVIEWOPS_BATCHING=0|1``.

    Backpressure (the API in front of the models): at most ``sentiment_max_inflight`` /
    ``summarizer_max_inflight`` texts are in the models service at once; further requests wait
    in a FIFO queue of at most ``max_queued_requests`` per model for at most ``max_queue_wait_s``,
    and are answered 503 with ``Retry-After`` beyond that. ``request_deadline_s`` bounds a request
    end to end (queue waits and generation stop there) and stays below BentoML's ``timeout_s``.
    """

    max_items: int = Field(64, ge=1)
    max_text_chars: int = Field(5000, ge=1)
    on_too_long: Literal["truncate", "reject"] = "truncate"
    max_body_bytes: int = Field(8_000_000, ge=1024)
    batching: bool = True
    max_batch_size: int = Field(32, ge=1)
    max_latency_ms: int = Field(2000, ge=1)
    summarizer_max_batch_size: int = Field(8, ge=1)
    summarizer_max_latency_ms: int = Field(60000, ge=1)
    timeout_s: int = Field(180, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    auth_token_env: str = "REVIEWOPS_API_TOKEN"
    summarizer_tag: str = "review-summarizer:latest"
    sentiment_tag: str = "review-sentiment:latest"
    sentiment_max_inflight: int = Field(64, ge=1)
    summarizer_max_inflight: int = Field(8, ge=1)
    max_queued_requests: int = Field(512, ge=0)
    max_queue_wait_s: float = Field(60, gt=0)
    request_deadline_s: float = Field(150, gt=0)
    model_call_retries: int = Field(5, ge=0)
    max_summarize_tokens_per_request: int = Field(4096, ge=1)
    summarizer_max_batch_tokens: int = Field(2048, ge=1)
    max_model_load_failures: int = Field(3, ge=1)
    model_load_failure_exit_s: float = Field(30, ge=0)
    # GET /products/{product_id} reads this scored dataset (`reviewops score --out`); "" turns it off (503).
    scored_dir: str = "data/scored"
    # Processes and threads per service (BentoML workers/threads; a pod's CPU share decides them).
    api_workers: int = Field(1, ge=1)
    model_workers: int = Field(1, ge=1)
    model_threads: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _deadline_before_timeout(self) -> ServeConfig:
        # The service must give up (and stop generating) before BentoML answers 504 and cancels
        # the request behind its back.
        if self.request_deadline_s >= self.timeout_s:
            raise ValueError(
                f"serve.request_deadline_s={self.request_deadline_s} must be below serve.timeout_s={self.timeout_s}"
            )
        return self


class DriftConfig(_Strict):
    """Evidently drift check thresholds and sampling."""

    sample_size: int = Field(2000, ge=10)
    seed: int = 42
    share_drifted_threshold: float = Field(0.3, ge=0, le=1)
    embedding_threshold: float = 0.55
    cooldown_minutes: int = 60
    negative_share_jump: float = 0.15
    # Column drift uses distances with fixed thresholds on every row (p-values flag anything at 1M rows).
    num_method: str = "wasserstein"
    cat_method: str = "jensenshannon"
    column_threshold: float = Field(0.1, gt=0)
    label_shift_threshold: float = Field(0.1, gt=0)
    segment_shift_threshold: float = Field(0.1, gt=0)
    min_period_count: int = Field(20, ge=1)
    embedding_model: str | None = None
    embedding_batch_size: int = Field(64, ge=1)
    embedding_plot_rows: int = Field(500, ge=10)
    retune_profile: Literal["quick", "cpu", "gpu"] = "quick"
    # Share of *older* rows in the re-tuning train/val sets: replayed = new x f / (1 - f),
    # capped at what exists (0 = new rows only, 0.5 = as many old rows as new, 1 = all old rows).
    replay_fraction: float = Field(0.5, ge=0, le=1)
    # Champion predictions in the drift check: "sentiment" (cheap), "all" (+ summary lengths:
    # one generation per sampled row, slow on CPU) or "none".
    champion_predictions: Literal["none", "sentiment", "all"] = "sentiment"
    inbox_dir: Path = Path("data/inbox")
    inbox_interval_minutes: int = Field(10, ge=1)
    # An inbox claim still "processing" this long after it was taken is a dead worker's (killed
    # mid-batch): the file is offered again and the next run takes it over. 0 = never.
    inbox_claim_timeout_minutes: int = Field(360, ge=0)
    retrain_cron: str = "0 3 * * *"


class ScoreConfig(_Strict):
    """Bulk scoring (``reviewops score``, ``flows/score.py``): every review summarized and classified on Ray."""

    out_dir: Path = Path("data/scored")  # the partitioned Parquet dataset (one folder per batch)
    # Summaries cost ~100x a classification on CPU: "none", "all" or "sample:N" (N rows per batch,
    # chosen by a hash of review_id, so a rerun picks the same rows).
    summaries: str = "sample:50"
    chunk_rows: int = Field(50_000, ge=100)  # rows per partition: the unit of streaming and of resume
    batch_size: int = Field(256, ge=1)  # rows per map_batches call (on CPU the forward runs 16 rows at a time)
    actors: int = Field(2, ge=1)  # predictor actors in the pool
    actor_cpus: float = Field(0.5, gt=0)  # per actor: below 1 so Ray's read tasks keep a CPU (2 cores)
    actor_gpus: float = Field(0.0, ge=0)  # >0 on a GPU cluster: actors get a GPU, bf16, batched generation
    threads_per_actor: int = Field(1, ge=1)  # torch intra-op threads in each actor
    ray_address: str = ""  # "" = $RAY_ADDRESS, else a local Ray started for the run; "auto" = a running cluster
    ray_num_cpus: int | None = Field(None, ge=1)  # local Ray only: CPUs it may use (None = all)

    @field_validator("summaries")
    @classmethod
    def _summaries_mode(cls, value: str) -> str:
        if value in ("none", "all"):
            return value
        head, _, count = value.partition(":")
        if head != "sample" or not count.isdigit() or int(count) < 1:
            raise ValueError(f"{value!r}: use none, all or sample:N (N >= 1)")
        return value


class OrchestrationConfig(_Strict):
    """Prefect beyond one process: a work pool, shared state in Prefect, DVC serialized across workers.

    ``state``: where the retrain cooldown and the inbox ledger live. ``local``: JSON files under
    ``<reports_dir>/monitor`` (one machine); ``prefect``: Prefect variables on the server named by
    ``PREFECT_API_URL``, so every worker sees them; ``auto``: ``prefect`` when ``PREFECT_API_URL`` is set.
    ``dvc_limit``: the Prefect global concurrency limit (1 slot) every DVC call takes when the
    state is in Prefect; "" = in-process lock only. ``state_lock``: the global concurrency limit (1 slot)
    held around each read-modify-write of the cooldown, so two workers never both start a re-tune.
    ``retrain_on_drift``: ``subflow`` runs the re-tune
    inside the monitor run; ``event`` emits ``reviewops.drift.detected`` and the re-tune deployment's
    trigger runs it, possibly on another worker. ``auto`` reads the environment variable only (a
    worker or ``serve`` process has it); with the URL in a Prefect profile, set ``state: prefect``.
    Variable names start with ``work_pool`` (``reviewops_cooldown``, ``reviewops_inbox_<key>``).
    """

    work_pool: str = "reviewops"
    state: Literal["auto", "local", "prefect"] = "auto"
    dvc_limit: str = "reviewops-dvc"
    state_lock: str = "reviewops-state"
    retrain_on_drift: Literal["subflow", "event"] = "subflow"


class Settings(_Strict):
    """Every knob of ReviewOps, as read from params.yaml."""

    seed: int = 42
    paths: PathsConfig = PathsConfig()
    generate: GenerateConfig = GenerateConfig()
    ingest: IngestConfig = IngestConfig()
    validation: ValidationConfig = ValidationConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    split: SplitConfig = SplitConfig()
    summarizer: SummarizerConfig = SummarizerConfig()
    sentiment: SentimentConfig = SentimentConfig()
    train: TrainConfig = TrainConfig()
    tracking: TrackingConfig = TrackingConfig()
    gate: GateConfig = GateConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    serve: ServeConfig = ServeConfig()
    drift: DriftConfig = DriftConfig()
    score: ScoreConfig = ScoreConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()


class ConfigError(ValueError):
    """A params file or override that does not fit :class:`Settings`."""


def _parse_scalar(raw: str) -> Any:
    """Parse an override value the way YAML would ("0.3" -> 0.3, "true" -> True, "[en]" -> list)."""
    return yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a nested dict (returns a new dict)."""
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = _parse_scalar(raw)
    return out


def load_settings(path: Path | str | None = None, overrides: list[str] | None = None) -> Settings:
    """Load settings from a params file (default ``params.yaml`` or ``$REVIEWOPS_PARAMS``).

    Args:
        path: YAML file; a missing default file yields the built-in defaults.
        overrides: ``key.sub=value`` strings applied on top of the file.

    Raises:
        ConfigError: the file is not valid YAML or a key/value does not fit the schema;
            the message names the offending key.
    """
    explicit = path is not None or "REVIEWOPS_PARAMS" in os.environ
    path = Path(path or os.environ.get("REVIEWOPS_PARAMS") or DEFAULT_PARAMS)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    elif explicit:
        raise ConfigError(f"{path}: params file not found")
    data = apply_overrides(data, overrides or [])
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
