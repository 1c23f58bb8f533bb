"""The stateful predictor Ray's ``map_batches`` runs on each actor: both models loaded once, one batch per call.

The same class runs in process (tests, a one-off call) and on an actor pool, so the Ray output
can be checked row for row against a direct call. Which rows get a summary is decided from the
whole batch before scoring starts (:class:`SampleCut` -> :class:`SummaryPlan`) and applied to
each row by its own key, so the choice does not depend on how Ray cuts the data into blocks.
:class:`StagedFilePredictor` is the same predictor for an actor that reads its staged files itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from reviewops.config import Settings
from reviewops.schema import LABELS
from reviewops.scoring.keys import hash_strings
from reviewops.scoring.models import ScoringModels
from reviewops.text import detect_language

PATH = "path"  # StagedFilePredictor's input column: staged Parquet files to read and score
SUMMARIZE = "summarize"  # optional boolean input column: overrides the plan row by row
CPU_FORWARD_BATCH = 16  # sentiment rows per forward pass on a CPU (see ReviewPredictor.__init__)
PROBA_COLUMNS = [f"p_{label}" for label in LABELS]
# The scored rows' columns, in order (the output dataset's contract).
SCORED_COLUMNS = [
    "review_id",
    "product_id",
    "batch",
    "timestamp",
    "rating",
    "text",
    "language",
    "sentiment",
    *PROBA_COLUMNS,
    "summary",
    "summary_contradicts",
    "sentiment_model",
    "summarizer_model",
    "sentiment_version",
    "summarizer_version",
    "scored_at",
]


def parse_summaries(mode: str) -> tuple[str, int | None]:
    """``("none"|"all"|"sample", N or None)`` from a summaries mode (validated by ``ScoreConfig``)."""
    if mode.startswith("sample:"):
        return "sample", int(mode.split(":", 1)[1])
    return mode, None


def _sample_keys(review_ids: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(hash, id)`` per row: the order the sample is drawn in (ids are unique after dedup)."""
    ids = np.asarray(pd.Series(review_ids).astype(str), dtype=object)
    return hash_strings(ids), ids


@dataclass(frozen=True)
class SummaryPlan:
    """Which rows of a batch get a summary: ``all``, ``none``, or ``sample:N``.

    For ``sample:N`` the chosen rows are the N of the whole batch with the smallest (hash of
    ``review_id``, ``review_id``) (see :class:`SampleCut`): stable across reruns, independent of
    row order and of how Ray cuts blocks, spread over products and dates unlike the first N.
    ``cut`` is the N-th smallest key; ``None`` with ``sample`` means the batch has at most N rows.
    """

    mode: str = "none"
    cut: tuple[int, str] | None = None

    def select(self, review_ids: pd.Series | np.ndarray) -> np.ndarray:
        """A boolean mask: True for the rows that get a summary."""
        kind, _ = parse_summaries(self.mode)
        n = len(review_ids)
        if kind == "none":
            return np.zeros(n, dtype=bool)
        if kind == "all" or self.cut is None or n == 0:
            return np.ones(n, dtype=bool)
        hashes, ids = _sample_keys(review_ids)
        cut_hash, cut_id = np.uint64(self.cut[0]), self.cut[1]
        return (hashes < cut_hash) | ((hashes == cut_hash) & (ids <= cut_id))


class SampleCut:
    """The N smallest sample keys seen so far: fed every partition, it gives the batch's :class:`SummaryPlan`.

    Holds at most N hashes and ids, however many rows go by.
    """

    def __init__(self, mode: str) -> None:
        """Start empty for ``mode`` (``none`` / ``all`` keep nothing)."""
        self.mode = mode
        self.count = parse_summaries(mode)[1]
        self.hashes = np.zeros(0, dtype=np.uint64)
        self.ids = np.zeros(0, dtype=object)

    def add(self, review_ids: pd.Series) -> None:
        """Take a partition's clean review ids into account."""
        if self.count is None or not len(review_ids):
            return
        hashes, ids = _sample_keys(review_ids)
        hashes, ids = np.concatenate([self.hashes, hashes]), np.concatenate([self.ids, ids])
        order = np.lexsort((ids, hashes))[: self.count]  # by hash, then by id
        self.hashes, self.ids = hashes[order], ids[order]

    def plan(self) -> SummaryPlan:
        """The plan for the rows added so far (all of the batch's, once every partition went by)."""
        if self.count is None or len(self.hashes) < self.count:
            return SummaryPlan(self.mode, None)
        return SummaryPlan(self.mode, (int(self.hashes[-1]), str(self.ids[-1])))


def _torch_device(use_gpu: bool) -> Any:
    import torch

    return torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")


class ReviewPredictor:
    """Sentiment (label + three probabilities), optional summary and language for a batch of reviews.

    Args:
        settings: ``sentiment`` / ``summarizer`` (tokenizer length, prompt, generation),
            ``score.threads_per_actor``; ``score.batch_size`` is one forward pass on a GPU, while
            a CPU runs :data:`CPU_FORWARD_BATCH` sentiment rows and ``evaluate.batch_size``
            generations at a time.
        models: the resolved models (paths, names, registry versions).
        use_gpu: put both models on CUDA when a GPU is visible (bfloat16 where it is supported),
            else they stay on the CPU in float32.
        plan: which rows get a summary (default: every row, when there is a summarizer); a
            ``summarize`` column in the batch overrides it.
        keep: input columns carried to the output after :data:`SCORED_COLUMNS` (the engine's
            partition and row numbers).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        models: ScoringModels,
        use_gpu: bool = False,
        plan: SummaryPlan | None = None,
        keep: tuple[str, ...] = (),
    ) -> None:
        import torch

        from reviewops.models.onnx_sentiment import runtime_classifier
        from reviewops.models.sentiment import SentimentClassifier
        from reviewops.models.summarizer import Summarizer

        torch.set_num_threads(settings.score.threads_per_actor)
        device = _torch_device(use_gpu)
        # bf16 where the GPU computes in it (Ampere and later), as Summarizer.load does; float32 elsewhere.
        dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        self.settings = settings
        self.models = models
        self.plan = plan or SummaryPlan("all")
        self.keep = list(keep)
        classifier = SentimentClassifier.load(models.sentiment.path, settings.sentiment)
        classifier.model = classifier.model.to(device=device, dtype=dtype)
        # on the CPU: sentiment.runtime (torch | onnx) and sentiment.inference (fp32 | int8)
        self.classifier = runtime_classifier(classifier, settings)
        self.summarizer = None
        if models.summarizer is not None:
            self.summarizer = Summarizer.load(models.summarizer.path, settings.summarizer)
            self.summarizer.model = self.summarizer.model.to(device=device, dtype=dtype)
        # A GPU wants the whole call in one forward; on a CPU padding and attention cost grow with the
        # batch: MiniLM on one thread, 256-row calls, scored 136 / 128 / 111 / 88 reviews/s with
        # forward batches of 8 / 16 / 32 / 64 (length-sorted first). Generation likewise.
        on_gpu = device.type == "cuda"
        self.forward_batch = settings.score.batch_size if on_gpu else CPU_FORWARD_BATCH
        self.generation_batch = settings.score.batch_size if on_gpu else settings.evaluate.batch_size

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        """``batch`` (cleaned rows) with the prediction columns, in :data:`SCORED_COLUMNS` order.

        Nothing is stored on ``self``: calls are independent, whatever order Ray makes them in.
        Runs under ``torch.inference_mode()``: no autograd bookkeeping, the same numbers.
        """
        import torch

        with torch.inference_mode():
            return self._predict(batch)

    def _predict(self, batch: pd.DataFrame) -> pd.DataFrame:
        """The body of :meth:`__call__`."""
        out = batch.reset_index(drop=True).copy()
        texts = out["text"].fillna("").astype(str).tolist()
        proba = self.classifier.predict_proba(texts, batch_size=self.forward_batch)
        out["sentiment"] = [LABELS[i] for i in proba.argmax(axis=1)] if len(texts) else []
        for j, column in enumerate(PROBA_COLUMNS):
            out[column] = proba[:, j].astype(np.float32)
        out["summary"] = self._summaries(texts, out)
        out["summary_contradicts"] = self._contradictions(proba, out["summary"].tolist())
        out["language"] = _languages(out, texts)
        sentiment, summarizer = self.models.sentiment, self.models.summarizer
        out["sentiment_model"], out["sentiment_version"] = sentiment.name, sentiment.version
        out["summarizer_model"] = summarizer.name if summarizer else None
        out["summarizer_version"] = summarizer.version if summarizer else None
        out["scored_at"] = pd.Timestamp.now(tz="UTC")
        for column in ("product_id", "batch", "timestamp", "rating"):
            if column not in out:
                out[column] = None
        # Ingest gives ISO ``...Z`` strings (or None): typed here so every writer stores the same types.
        out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True, errors="coerce", format="ISO8601")
        out["rating"] = pd.to_numeric(out["rating"], errors="coerce").astype("float64")
        return out[SCORED_COLUMNS + self.keep]

    def _summaries(self, texts: list[str], batch: pd.DataFrame) -> list[str | None]:
        """One summary per selected row (the ``summarize`` column, else the plan), else None."""
        if self.summarizer is None:
            return [None] * len(texts)
        if SUMMARIZE in batch:
            wanted = batch[SUMMARIZE].fillna(False).astype(bool).to_numpy()
        else:
            wanted = self.plan.select(batch["review_id"])
        picked = np.flatnonzero(wanted).tolist()
        results: list[str | None] = [None] * len(texts)
        if picked:
            made = self.summarizer.summarize([texts[i] for i in picked], batch_size=self.generation_batch)
            for i, summary in zip(picked, made, strict=True):
                results[i] = summary
        return results

    def _contradictions(self, proba: np.ndarray, summaries: list[str | None]) -> list[bool | None]:
        """Whether each summary contradicts its review (predicted labels, positive vs negative); None without one."""
        from reviewops.evaluation.faithfulness import check_summaries

        picked = [i for i, s in enumerate(summaries) if s is not None]
        flags: list[bool | None] = [None] * len(summaries)
        if picked:
            check = check_summaries(
                self.classifier,
                [str(summaries[i]) for i in picked],
                review_proba=proba[picked],
                batch_size=self.forward_batch,
            )
            for i, flag in zip(picked, check.contradiction, strict=True):
                flags[i] = flag
        return flags


class StagedFilePredictor:
    """:class:`ReviewPredictor` over staged files: each call gets paths, reads each file, scores it in batches.

    Keyword arguments are :class:`ReviewPredictor`'s; a file's rows go to it ``score.batch_size``
    at a time, as ``map_batches`` cuts a read block, so the output is the same row for row.
    """

    def __init__(self, **kwargs: Any) -> None:
        """Load the models (once per actor)."""
        self.predictor = ReviewPredictor(**kwargs)
        self.batch_size = kwargs["settings"].score.batch_size

    def __call__(self, batch: pd.DataFrame) -> Iterator[pd.DataFrame]:
        """Scored rows of every file named in ``batch[PATH]``, one predictor batch at a time."""
        for path in batch[PATH]:
            table = pq.ParquetFile(path).read()
            for start in range(0, table.num_rows, self.batch_size):
                yield self.predictor(table.slice(start, self.batch_size).to_pandas())


def _languages(batch: pd.DataFrame, texts: list[str]) -> list[str]:
    """The given ``language`` where there is one (mapped at ingest), else :func:`detect_language` of the text."""
    given = batch["language"] if "language" in batch else pd.Series([None] * len(texts))
    return [
        str(lang) if isinstance(lang, str) and lang.strip() else detect_language(text[:2000])
        for lang, text in zip(given.tolist(), texts, strict=True)
    ]
