"""Evaluation: CJK-aware ROUGE, sentiment macro-F1, per-slice metrics, baselines, behaviour checks.

Every number lands in one flat dict with namespaced keys (``eval/rougeL``,
``baseline/lead8/rougeL``, ``slice/language=zh/rougeL``, ``behaviour/directional_negation``...),
written as JSON and logged to MLflow. Any key containing ``/`` is a float metric; ``meta`` and
``predictions`` carry the sampling facts and the per-row table.

rouge-score's default tokenizer keeps only ``[a-z0-9]``, so Chinese would score 0 against
anything; :class:`CJKRougeTokenizer` uses :func:`reviewops.text.tokenize` (one token per CJK
character, Latin words whole) and Porter-stems Latin words only.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rouge_score import rouge_scorer, tokenizers

from reviewops.config import Settings
from reviewops.errors import ReviewOpsError
from reviewops.schema import LABELS
from reviewops.text import CJK_CHAR, char_length, detect_language, tokenize

Predict = Callable[[list[str]], list[str]]
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
# Rows with more characters than this are cut in the logged predictions table (not in scoring).
_TABLE_TEXT_CHARS = 500


# --------------------------------------------------------------------------- ROUGE


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem import porter

    return porter.PorterStemmer()


@lru_cache(maxsize=65536)
def _stem(token: str) -> str:
    # Same rule as rouge-score's DefaultTokenizer: only stem ASCII words longer than 3 chars.
    if len(token) > 3 and token.isascii() and token.isalpha():
        return _stemmer().stem(token)
    return token


class CJKRougeTokenizer(tokenizers.Tokenizer):
    """rouge-score tokenizer: each CJK char is a token, Latin words are lowercased and stemmed."""

    def __init__(self, use_stemmer: bool = True) -> None:
        self.use_stemmer = use_stemmer

    def tokenize(self, text: str) -> list[str]:
        tokens = tokenize(text or "")
        return [_stem(t) for t in tokens] if self.use_stemmer else tokens


@lru_cache(maxsize=2)
def _scorer(use_stemmer: bool = True) -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=CJKRougeTokenizer(use_stemmer))


def rouge_per_example(predictions: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """ROUGE-1/2/L F-measures (0–1) for each prediction/reference pair."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    scorer = _scorer()
    out = []
    for pred, ref in zip(predictions, references, strict=True):
        scores = scorer.score(str(ref or ""), str(pred or ""))
        out.append({k: float(scores[k].fmeasure) for k in ROUGE_TYPES})
    return out


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure over the pairs, as floats in 0–1.

    Chinese is scored per character, English per (Porter-stemmed) word.

    >>> rouge_scores(["味道很好"], ["味道很好"])["rougeL"]
    1.0

    Raises:
        ValueError: the lists differ in length or are empty.
    """
    rows = rouge_per_example(predictions, references)
    if not rows:
        raise ValueError("rouge_scores needs at least one prediction/reference pair")
    return {k: float(np.mean([r[k] for r in rows])) for k in ROUGE_TYPES}


# --------------------------------------------------------------------------- baselines


def _join_tokens(tokens: Sequence[str]) -> str:
    """Join tokens back into text: no space next to a CJK char, one space between words."""
    out = ""
    for tok in tokens:
        if out and not (CJK_CHAR.match(tok) or CJK_CHAR.match(out[-1])):
            out += " "
        out += tok
    return out


def lead_n(texts: Iterable[str], n: int = 8, cjk_chars_per_word: float = 1.5) -> list[str]:
    """The lead-N baseline: the first ``n`` words of each text.

    A Chinese word is about 1.5 characters, so a Chinese text (``detect_language == "zh"``)
    keeps ``round(n * cjk_chars_per_word)`` tokens (characters): 12 for ``n=8``. Tokens come
    from :func:`reviewops.text.tokenize` (case kept) and are rejoined without spaces around
    CJK characters, so punctuation is dropped, which ROUGE ignores anyway.
    """
    out = []
    for text in texts:
        text = text or ""
        limit = round(n * cjk_chars_per_word) if detect_language(text) == "zh" else n
        out.append(_join_tokens(tokenize(text, lowercase=False)[:limit]))
    return out


def majority_baseline(y_true: Sequence[str], train_labels: Sequence[str] | None = None) -> list[str]:
    """Predict the most frequent label (of ``train_labels`` when given, else of ``y_true``)."""
    source = list(train_labels) if train_labels is not None else list(y_true)
    if not source:
        return []
    top = pd.Series(source).value_counts().index[0]
    return [top] * len(y_true)


# --------------------------------------------------------------------------- sentiment


def sentiment_metrics(y_true: Sequence[str], y_pred: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro-F1 and per-class F1 for the three sentiment labels.

    Per-class keys (``f1_negative``, ``f1_neutral``, ``f1_positive``) always exist, in
    :data:`reviewops.schema.LABELS` order; a class absent from both truth and predictions
    scores 0 there. ``macro_f1`` averages over the classes that occur in the truth or the
    predictions (sklearn's default), so a language slice with no neutral reviews is not
    penalised for a class it cannot get right or wrong.

    Raises:
        ValueError: lengths differ, the input is empty, or a label is not one of LABELS.
    """
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = [str(y) for y in y_true], [str(y) for y in y_pred]
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    if not y_true:
        raise ValueError("sentiment_metrics needs at least one example")
    unknown = sorted((set(y_true) | set(y_pred)) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown sentiment labels {unknown}; expected {LABELS}")
    per_class = f1_score(y_true, y_pred, labels=LABELS, average=None, zero_division=0)
    present = [lab for lab in LABELS if lab in set(y_true) | set(y_pred)]
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }
    out.update({f"f1_{lab}": float(v) for lab, v in zip(LABELS, per_class, strict=True)})
    return out


# --------------------------------------------------------------------------- slices


def _slice_value(value: Any) -> str:
    # Slice values become part of a metric name; a "/" would add a path level.
    return str(value).replace("/", "_").strip() or "_"


def slice_metrics(
    df: pd.DataFrame,
    by: Sequence[str] = ("language", "category"),
    prediction_col: str = "prediction",
    reference_col: str = "summary",
    label_col: str = "label",
    pred_label_col: str = "pred_label",
    min_rows: int = 1,
) -> dict[str, float]:
    """ROUGE and sentiment metrics per value of each slicing column that exists in ``df``.

    ROUGE uses only rows with both a prediction and a reference (generation may run on a
    sample); sentiment uses rows with both a label and a predicted label.

    Returns:
        Flat metrics such as ``slice/language=zh/rougeL``, ``slice/language=zh/n_summaries``,
        ``slice/category=toys/sentiment_macro_f1``, ``slice/category=toys/n``.
    """
    out: dict[str, float] = {}
    for col in by:
        if col not in df.columns or df[col].isna().all():
            continue
        for value, part in df.groupby(df[col].fillna("unknown").astype(str), sort=True):
            if len(part) < min_rows:
                continue
            prefix = f"slice/{col}={_slice_value(value)}"
            out[f"{prefix}/n"] = float(len(part))
            if prediction_col in part and reference_col in part:
                gen = part[part[prediction_col].notna() & part[reference_col].notna()]
                out[f"{prefix}/n_summaries"] = float(len(gen))
                if len(gen):
                    for k, v in rouge_scores(gen[prediction_col].tolist(), gen[reference_col].tolist()).items():
                        out[f"{prefix}/{k}"] = v
            if label_col in part and pred_label_col in part:
                cls = part[part[label_col].notna() & part[pred_label_col].notna()]
                if len(cls):
                    m = sentiment_metrics(cls[label_col].tolist(), cls[pred_label_col].tolist())
                    out[f"{prefix}/sentiment_accuracy"] = m["accuracy"]
                    out[f"{prefix}/sentiment_macro_f1"] = m["macro_f1"]
    return out


# --------------------------------------------------------------------------- behaviour checks


@dataclass
class BehaviourResult:
    """Outcome of one behaviour check: how many cases passed, split by language."""

    name: str
    passed: int = 0
    total: int = 0
    by_language: dict[str, list[int]] = field(default_factory=dict)  # lang -> [passed, total]
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else float("nan")

    def add(self, ok: bool, language: str, case: dict[str, Any]) -> None:
        self.total += 1
        self.passed += int(ok)
        counts = self.by_language.setdefault(language, [0, 0])
        counts[0] += int(ok)
        counts[1] += 1
        if not ok:
            self.failures.append(case)

    def metrics(self) -> dict[str, float]:
        """``behaviour/<name>`` plus ``behaviour/<name>/<lang>`` pass rates (0–1)."""
        out = {f"behaviour/{self.name}": self.pass_rate}
        for lang, (ok, n) in sorted(self.by_language.items()):
            out[f"behaviour/{self.name}/{lang}"] = ok / n
        return out


PRODUCT_NAME_CASES: dict[str, tuple[list[str], list[str]]] = {
    "en": (
        [
            "I bought the {p} last week and the battery is great, really happy with it.",
            "The {p} stopped working after two days. Very disappointed, total waste of money.",
            "The {p} is okay. It does the job, nothing special.",
        ],
        ["AcmePhone X2", "Zentro Blender 500", "Lumio desk lamp"],
    ),
    "zh": (
        [
            "上周买的{p}，电池很耐用，非常满意。",
            "{p}用了两天就坏了，太失望了，浪费钱。",
            "{p}还行吧，能用，一般般。",
        ],
        ["小米手环", "华为耳机", "美的电饭煲"],
    ),
}

PII_MASK_CASES: dict[str, tuple[list[str], list[str]]] = {
    "en": (
        [
            "The seller answered me at {m} within an hour. Great service, would buy again.",
            "I contacted support via {m} three times and never got a reply. Awful.",
        ],
        ["[EMAIL]", "[PHONE]", "[URL]"],
    ),
    "zh": (
        [
            "通过{m}联系了客服，一小时内就回复了，服务很好，还会再买。",
            "我通过{m}联系客服三次都没人回复，太差了。",
        ],
        ["[EMAIL]", "[PHONE]", "[URL]"],
    ),
}

# (clearly positive, the same sentence negated and clearly negative)
NEGATION_PAIRS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("The battery is great.", "The battery is not great at all, terrible."),
        ("I love this blender, it works perfectly.", "I do not love this blender, it does not work, awful."),
        (
            "The sound quality is excellent and I am very happy.",
            "The sound quality is not excellent, it is terrible and I am very unhappy.",
        ),
    ],
    "zh": [
        ("电池很好用，非常满意。", "电池一点也不好用，太差了，非常不满意。"),
        ("这个耳机音质很好，我很喜欢。", "这个耳机音质不好，我一点也不喜欢，很失望。"),
        ("质量很好，值得购买。", "质量很差，不值得购买。"),
    ],
}

SUMMARY_CASES: list[str] = [
    "I bought this kettle for my office. It boils water in under two minutes, the handle stays "
    "cool and it is very quiet. The only downside is the short power cord.",
    "The headphones broke after one week of normal use. The left side stopped working and the "
    "seller ignored my emails. I would not recommend them to anyone.",
    "这款电饭煲煮出来的米饭很香，操作也很简单，外观漂亮。唯一的缺点是内胆有点容易刮花，总体来说很满意。",
    "耳机用了一个星期左边就没声音了，联系卖家也不理人，质量太差，不推荐购买。",
]


def _invariance(name: str, predict: Predict, cases: dict[str, tuple[list[str], list[str]]]) -> BehaviourResult:
    result = BehaviourResult(name)
    for lang, (templates, fillers) in cases.items():
        for template in templates:
            # Filler placeholders are {p} or {m}; format with both names so either works.
            texts = [template.format(p=f, m=f) for f in fillers]
            labels = list(predict(texts))
            ok = len(set(labels)) == 1
            result.add(ok, lang, {"texts": texts, "labels": labels})
    return result


def check_invariance_product_names(predict: Predict) -> BehaviourResult:
    """Sentiment must not change when only the product name changes (en + zh templates)."""
    return _invariance("invariance_product_name", predict, PRODUCT_NAME_CASES)


def check_invariance_pii_masks(predict: Predict) -> BehaviourResult:
    """Sentiment must not change when ``[EMAIL]`` becomes ``[PHONE]`` or ``[URL]`` (en + zh)."""
    return _invariance("invariance_pii_mask", predict, PII_MASK_CASES)


def check_directional_negation(predict: Predict) -> BehaviourResult:
    """A clear negation must flip the label: original not negative, negated negative (en + zh)."""
    result = BehaviourResult("directional_negation")
    for lang, pairs in NEGATION_PAIRS.items():
        originals, negated = [p[0] for p in pairs], [p[1] for p in pairs]
        labels = list(predict(originals + negated))
        for i, (orig, neg) in enumerate(pairs):
            lab_o, lab_n = labels[i], labels[len(pairs) + i]
            ok = lab_o != "negative" and lab_n == "negative"
            result.add(ok, lang, {"original": orig, "negated": neg, "labels": [lab_o, lab_n]})
    return result


def check_summaries(summarize: Predict, texts: Sequence[str] | None = None) -> list[BehaviourResult]:
    """Summaries must be non-empty and shorter (in characters) than their input.

    Args:
        summarize: texts -> summaries.
        texts: inputs to check; defaults to :data:`SUMMARY_CASES` (two English, two Chinese).

    Returns:
        ``[summary_nonempty, summary_shorter]`` results, split by detected language.
    """
    texts = list(SUMMARY_CASES if texts is None else texts)
    summaries = list(summarize(texts)) if texts else []
    nonempty, shorter = BehaviourResult("summary_nonempty"), BehaviourResult("summary_shorter")
    for text, summary in zip(texts, summaries, strict=True):
        lang = detect_language(text)
        summary = summary or ""
        case = {"text": text[:200], "summary": summary}
        nonempty.add(bool(summary.strip()), lang, case)
        shorter.add(char_length(summary) < char_length(text), lang, case)
    return [nonempty, shorter]


def behaviour_checks(
    classify: Predict | None, summarize: Predict | None = None, summary_texts: Sequence[str] | None = None
) -> tuple[dict[str, float], dict[str, Any]]:
    """Run every behaviour check that has a predictor.

    Returns:
        ``(metrics, details)``: pass rates under ``behaviour/...`` and, per check, the counts
        and failing cases (for the JSON report).
    """
    results: list[BehaviourResult] = []
    if classify is not None:
        results += [
            check_invariance_product_names(classify),
            check_invariance_pii_masks(classify),
            check_directional_negation(classify),
        ]
    if summarize is not None:
        results += check_summaries(summarize, summary_texts)
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    for r in results:
        metrics.update(r.metrics())
        details[r.name] = {"passed": r.passed, "total": r.total, "failures": r.failures[:10]}
    return metrics, details


# --------------------------------------------------------------------------- orchestration


def split_fingerprint(df: pd.DataFrame) -> str:
    """A short hash of the test rows' ids, to tell whether two scores share a test split."""
    key = "review_id" if "review_id" in df.columns else "text"
    ids = sorted(df[key].astype(str))
    return hashlib.sha1("\n".join(ids).encode("utf-8")).hexdigest()[:12]


def sample_for_generation(df: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """The rows that generation-heavy metrics use: all, or a fixed-seed sample of ``max_rows``."""
    if max_rows is None or len(df) <= max_rows:
        return df
    return df.sample(n=max_rows, random_state=seed).sort_index()


def _cached(predict: Predict, cache: dict[str, str]) -> Predict:
    """Wrap a summarizer so texts already summarized are not generated twice."""

    def run(texts: list[str]) -> list[str]:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, predict(missing), strict=True))
        return [cache[t] for t in texts]

    return run


def evaluate_predictors(
    settings: Settings,
    test_df: pd.DataFrame,
    summarize: Predict | None,
    classify: Predict | None,
    base_summarize: Predict | None = None,
    champion_summarize: Predict | None = None,
    champion_classify: Predict | None = None,
    out_json: Path | None = None,
    notes: list[str] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Compute every metric from prediction callables (the model-free core of evaluation).

    Sentiment is scored on every test row; summarization (model, untuned base, champion,
    lead-N) on the same fixed-seed sample (seed = ``settings.seed``) of at most
    ``evaluate.max_generate_samples`` rows that have a reference summary (when that is None,
    ``train.active.max_eval_samples``), recorded under ``meta``.

    Args:
        settings: for ``evaluate.*``, ``train.active.max_eval_samples`` and the seed.
        test_df: processed test rows (``text``, ``summary``, ``label``, ``language``, optional
            ``category``, ``review_id``).
        summarize / classify: the candidate models (either may be None to skip that part).
        base_summarize: the untuned summarizer for ``baseline/untuned/*``.
        champion_summarize / champion_classify: the registry champion, re-scored on the same
            rows as ``champion/eval/*`` so the gate compares like with like.
        out_json: where to write the result (parent dirs are created).
        notes: free-text notes carried into ``meta.notes`` (e.g. a skipped baseline).
        log: progress callback.

    Returns:
        Flat metrics (``eval/…``, ``baseline/…``, ``champion/…``, ``slice/…``,
        ``behaviour/…``) plus ``meta`` (sampling, counts, fingerprint, notes),
        ``behaviour`` (failing cases) and ``predictions`` (one record per test row).
    """
    if len(test_df) == 0:
        raise ReviewOpsError("the test set is empty; run `reviewops data split` first")
    missing = [c for c in ("text",) if c not in test_df.columns]
    if missing:
        raise ReviewOpsError(f"test data lacks column(s) {missing}; expected processed parquet")
    cfg = settings.evaluate
    df = test_df.reset_index(drop=True).copy()
    # Pre-create the prediction columns: pandas' loc-setting a *new* column on a subset of
    # rows fills the other rows with garbage instead of missing values.
    for col in ("pred_label", "prediction", "lead", "untuned"):
        df[col] = pd.Series([None] * len(df), dtype=object)
    df["rougeL"] = np.nan
    max_eval = settings.train.active.max_eval_samples
    max_gen = cfg.max_generate_samples if cfg.max_generate_samples is not None else max_eval
    has_refs = "summary" in df.columns and df["summary"].notna().any()
    # Sample among rows that can be scored, so the sample size is the number of ROUGE pairs.
    pool = df[df["summary"].notna() & df["summary"].astype(str).str.strip().ne("")] if has_refs else df
    gen_df = sample_for_generation(pool, max_gen, settings.seed)
    has_labels = "label" in df.columns and df["label"].notna().any()
    result: dict[str, Any] = {}
    notes = list(notes or [])

    # ---- sentiment: cheap, every row
    if classify is not None and has_labels:
        log(f"sentiment on {len(df)} rows")
        lab = df[df["label"].notna()]
        df.loc[lab.index, "pred_label"] = list(classify(lab["text"].tolist()))
        m = sentiment_metrics(lab["label"].tolist(), df.loc[lab.index, "pred_label"].tolist())
        result.update({f"eval/sentiment_{k}": v for k, v in m.items()})
        maj = majority_baseline(lab["label"].tolist())
        result["baseline/majority/sentiment_macro_f1"] = sentiment_metrics(lab["label"].tolist(), maj)["macro_f1"]
        if champion_classify is not None:
            cm = sentiment_metrics(lab["label"].tolist(), list(champion_classify(lab["text"].tolist())))
            result.update({f"champion/eval/sentiment_{k}": v for k, v in cm.items()})
    elif classify is not None:
        notes.append("sentiment not scored: test rows have no label")

    # ---- summarization: the sample only
    cache: dict[str, str] = {}
    summarize_c = _cached(summarize, cache) if summarize is not None else None
    if has_refs:
        gen = gen_df[gen_df["summary"].notna()]
        texts, refs = gen["text"].tolist(), gen["summary"].astype(str).tolist()
        df.loc[gen.index, "lead"] = lead_n(texts, cfg.lead_n)
        result.update(
            {
                f"baseline/lead{cfg.lead_n}/{k}": v
                for k, v in rouge_scores(df.loc[gen.index, "lead"].tolist(), refs).items()
            }
        )
        if summarize_c is not None:
            log(f"summarizing {len(texts)} rows")
            df.loc[gen.index, "prediction"] = summarize_c(texts)
            rows = rouge_per_example(df.loc[gen.index, "prediction"].tolist(), refs)
            df.loc[gen.index, "rougeL"] = [r["rougeL"] for r in rows]
            result.update({f"eval/{k}": float(np.mean([r[k] for r in rows])) for k in ROUGE_TYPES})
            lengths = [char_length(p) for p in df.loc[gen.index, "prediction"]]
            result["eval/summary_chars_mean"] = float(np.mean(lengths))
        if base_summarize is not None:
            log(f"untuned baseline on {len(texts)} rows")
            df.loc[gen.index, "untuned"] = list(base_summarize(texts))
            result.update(
                {
                    f"baseline/untuned/{k}": v
                    for k, v in rouge_scores(df.loc[gen.index, "untuned"].tolist(), refs).items()
                }
            )
        if champion_summarize is not None:
            log(f"champion summarizer on {len(texts)} rows")
            result.update(
                {f"champion/eval/{k}": v for k, v in rouge_scores(list(champion_summarize(texts)), refs).items()}
            )
    elif summarize is not None:
        notes.append("ROUGE not scored: test rows have no reference summary")

    # ---- slices
    result.update(slice_metrics(df))

    # ---- behaviour
    behaviour: dict[str, Any] = {}
    if cfg.behaviour_checks:
        log("behaviour checks")
        texts_for_check = gen_df["text"].tolist() + SUMMARY_CASES if summarize_c is not None else None
        bm, behaviour = behaviour_checks(classify, summarize_c, texts_for_check)
        result.update(bm)

    result = {k: result[k] for k in sorted(result)}
    result["meta"] = {
        "test_rows": int(len(df)),
        "summarization_rows": int(len(gen_df)),
        "summarization_sampled": bool(len(gen_df) < len(pool)),
        "max_generate_samples": max_gen,
        "max_eval_samples": max_eval,
        "sample_seed": settings.seed,
        "profile": settings.train.profile,
        "test_fingerprint": split_fingerprint(df),
        "rouge": "F-measure 0-1; CJK per character, Latin words Porter-stemmed",
        "notes": notes,
    }
    result["behaviour"] = behaviour
    result["predictions"] = _predictions_table(df)
    if out_json is not None:
        write_result(result, out_json)
    return result


def _predictions_table(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [
        c
        for c in (
            "review_id",
            "product_id",
            "language",
            "category",
            "text",
            "summary",
            "prediction",
            "lead",
            "untuned",
            "rougeL",
            "label",
            "pred_label",
        )
        if c in df.columns
    ]
    table = df[cols].copy()
    table["text"] = table["text"].astype(str).str.slice(0, _TABLE_TEXT_CHARS)
    table = table.rename(columns={"summary": "reference"})
    # NaN is not valid JSON; None is.
    return json.loads(table.to_json(orient="records", force_ascii=False))


def write_result(result: dict[str, Any], path: Path) -> Path:
    """Write an evaluation result as UTF-8 JSON (NaN written as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}
    path.write_text(json.dumps(clean, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return path


def metrics_of(result: dict[str, Any]) -> dict[str, float]:
    """The float metrics of a result (every key with a ``/``), NaN/None dropped."""
    return {
        k: float(v)
        for k, v in result.items()
        if "/" in k and isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v))
    }


def _load_error(path: Path | str, what: str, exc: Exception) -> ReviewOpsError:
    """One line for a model directory that exists but does not load (corrupt or incomplete).

    A truncated safetensors file is named as such: the library only says "incomplete metadata".
    """
    from reviewops.training.train import safetensors_problem

    folder = Path(path)
    problems = [p for f in sorted(folder.glob("*.safetensors")) if (p := safetensors_problem(f))]
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = problems[0] if problems else (lines[0][:300] if lines else type(exc).__name__)
    return ReviewOpsError(
        f"{what} model directory {folder} could not be loaded: {reason} "
        "(re-run `reviewops train`, or pass the path of an intact model)"
    )


def _load_model(cls: Any, path: Path | str, section: Any, what: str) -> Any:
    """``cls.load(path, section)``, any failure but our own turned into one line naming the folder."""
    try:
        return cls.load(path, section)
    except ReviewOpsError:
        raise
    except Exception as exc:  # noqa: BLE001 - transformers/safetensors/json raise many types for a bad folder
        raise _load_error(path, what, exc) from exc


def _load_summarizer(path: Path | str, settings: Settings, what: str = "summarizer") -> Predict:
    from reviewops.models.summarizer import Summarizer

    model = _load_model(Summarizer, path, settings.summarizer, what)
    bs = settings.evaluate.batch_size
    return lambda texts: model.summarize(list(texts), batch_size=bs)


def _load_classifier(path: Path | str, settings: Settings, what: str = "sentiment") -> Predict:
    from reviewops.models.sentiment import SentimentClassifier

    model = _load_model(SentimentClassifier, path, settings.sentiment, what)
    return lambda texts: list(model.predict(list(texts)))


def _require_dir(path: Path | str, what: str) -> None:
    p = Path(path)
    if not p.is_dir():
        raise ReviewOpsError(
            f"{what} model directory {p} does not exist; run `reviewops train` first "
            "(or pass the path of a trained model)"
        )


def evaluate_models(
    settings: Settings,
    test_df: pd.DataFrame,
    summarizer_path: Path | str | None,
    sentiment_path: Path | str | None,
    base_summarizer_path: Path | str | None = None,
    out_json: Path | None = None,
    champion_summarizer_path: Path | str | None = None,
    champion_sentiment_path: Path | str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Load the trained models (and baselines) and evaluate them on ``test_df``.

    When ``base_summarizer_path`` is None and ``evaluate.untuned_baseline`` is on, the base
    model named by ``summarizer.model`` is resolved with
    :func:`reviewops.models.pretrained.resolve_model_path`; if it is not installed the
    baseline is skipped and ``meta.notes`` says so. See :func:`evaluate_predictors` for the
    result layout and sampling.
    """
    notes: list[str] = []
    summarize = classify = base = champ_s = champ_c = None
    if summarizer_path is not None:
        _require_dir(summarizer_path, "summarizer")
        summarize = _load_summarizer(summarizer_path, settings)
    if sentiment_path is not None:
        _require_dir(sentiment_path, "sentiment")
        classify = _load_classifier(sentiment_path, settings)
    if summarize is not None and settings.evaluate.untuned_baseline:
        if base_summarizer_path is None:
            from reviewops.models.pretrained import resolve_model_path

            try:
                base_summarizer_path = resolve_model_path(settings.summarizer.model, settings)
            except ReviewOpsError as exc:
                notes.append(f"untuned baseline skipped: {exc}")
        if base_summarizer_path is not None:
            base = _load_summarizer(base_summarizer_path, settings, "untuned (baseline) summarizer")
    if champion_summarizer_path is not None and summarize is not None:
        champ_s = _load_summarizer(champion_summarizer_path, settings, "champion summarizer")
    if champion_sentiment_path is not None and classify is not None:
        champ_c = _load_classifier(champion_sentiment_path, settings, "champion sentiment")
    result = evaluate_predictors(
        settings, test_df, summarize, classify, base, champ_s, champ_c, out_json=None, notes=notes, log=log
    )
    result["meta"]["models"] = {
        "summarizer": str(summarizer_path) if summarizer_path else None,
        "sentiment": str(sentiment_path) if sentiment_path else None,
        "untuned_summarizer": str(base_summarizer_path) if base is not None else None,
        "champion_summarizer": str(champion_summarizer_path) if champ_s is not None else None,
        "champion_sentiment": str(champion_sentiment_path) if champ_c is not None else None,
    }
    if out_json is not None:
        write_result(result, out_json)
    return result


_MLFLOW_BAD = re.compile(r"[^/\w.\- ]")


def mlflow_metric_name(key: str) -> str:
    """MLflow forbids ``=`` in metric names: ``slice/language=zh/rougeL`` -> ``slice/language_zh/rougeL``."""
    return _MLFLOW_BAD.sub("_", key)


def log_to_mlflow(result: dict[str, Any], run_id: str | None = None, json_name: str = "eval/eval.json") -> str:
    """Log an evaluation result to MLflow and return the run id.

    Logs every metric (names through :func:`mlflow_metric_name`), the predictions as an
    MLflow table (``eval/predictions.json``) and the whole result as ``eval/eval.json``.
    Uses ``run_id`` when given (e.g. the training run), the active run, or starts a new run
    named ``evaluate``. Call :func:`reviewops.registry.tracking.configure_mlflow` first.
    """
    import mlflow

    from reviewops.registry.tracking import use_run

    with use_run(run_id, run_name="evaluate") as rid:
        metrics = {mlflow_metric_name(k): v for k, v in metrics_of(result).items()}
        mlflow.log_metrics(metrics, run_id=rid)
        if result.get("predictions"):
            mlflow.log_table(pd.DataFrame(result["predictions"]), artifact_file="eval/predictions.json", run_id=rid)
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}
        mlflow.log_dict(clean, json_name, run_id=rid)
        meta = result.get("meta", {})
        client = mlflow.MlflowClient()
        client.set_tag(rid, "eval.test_fingerprint", str(meta.get("test_fingerprint")))
        client.set_tag(rid, "eval.summarization_rows", str(meta.get("summarization_rows")))
    return rid


# --------------------------------------------------------------------------- the pipeline stage


def read_train_report(path: Path | str) -> dict[str, Any]:
    """Read ``reports/train.json`` and normalise it to ``summarizer_uri``, ``sentiment_uri``,
    ``run_id`` and ``model_dirs`` ({"summarizer": dir, "sentiment": dir}).

    Accepts the flat keys or the ``model_uris: {summarizer, sentiment}`` mapping that
    :func:`reviewops.training.train.train_all` returns.

    Raises:
        ReviewOpsError: the file is missing or not JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise ReviewOpsError(f"{path} not found; run `reviewops train` first (it writes the model URIs there)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReviewOpsError(f"{path}: not valid JSON ({exc})") from None
    uris = data.get("model_uris") or {}
    out = dict(data)
    out["summarizer_uri"] = data.get("summarizer_uri") or uris.get("summarizer")
    out["sentiment_uri"] = data.get("sentiment_uri") or uris.get("sentiment")
    out["run_id"] = data.get("run_id")
    out["model_dirs"] = data.get("model_dirs") or {}
    return out


def _champion_dirs(settings: Settings, log: Callable[[str], None]) -> tuple[Path | None, Path | None, list[str]]:
    """Download the registry champions (if any) so they can be re-scored on the same rows."""
    from reviewops.registry import registry

    notes: list[str] = []
    dirs: list[Path | None] = []
    for name in (settings.gate.summarizer_name, settings.gate.sentiment_name):
        if registry.get_alias_version(name, registry.CHAMPION) is None:
            dirs.append(None)
            continue
        log(f"downloading {name}@champion")
        try:
            dirs.append(registry.download_model_dir(name, registry.CHAMPION))
        except ReviewOpsError as exc:
            notes.append(f"champion {name} not re-scored: {exc}")
            dirs.append(None)
    return dirs[0], dirs[1], notes


def run_evaluation(
    settings: Settings,
    processed_dir: Path | str | None = None,
    summarizer_path: Path | str | None = None,
    sentiment_path: Path | str | None = None,
    base_summarizer_path: Path | str | None = None,
    out_json: Path | str | None = None,
    train_report: Path | str | None = None,
    log_mlflow: bool = True,
    compare_champion: bool | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The ``evaluate`` stage: read ``test.parquet``, evaluate, write JSON, log to MLflow.

    Defaults: ``paths.processed_dir``, the model dirs named in the training report (else
    ``<paths.models_dir>/trained/{summarizer,sentiment}``), ``<paths.reports_dir>/eval.json``
    and ``<paths.reports_dir>/train.json``. Metrics are logged to the training run named in
    the report when it exists, else to a new ``evaluate`` run. With
    ``evaluate.compare_champion`` the registry champions are re-scored on the same rows.
    """
    reports = Path(settings.paths.reports_dir)
    processed_dir = Path(processed_dir or settings.paths.processed_dir)
    test_path = processed_dir / "test.parquet"
    if not test_path.is_file():
        raise ReviewOpsError(f"{test_path} not found; run the data stages first (`make run`, or `dvc repro split`)")
    test_df = pd.read_parquet(test_path)
    report_path = Path(train_report or reports / "train.json")
    report = read_train_report(report_path) if report_path.is_file() else {"model_dirs": {}, "run_id": None}
    trained = Path(settings.paths.models_dir) / "trained"
    summarizer_path = summarizer_path or report["model_dirs"].get("summarizer") or trained / "summarizer"
    sentiment_path = sentiment_path or report["model_dirs"].get("sentiment") or trained / "sentiment"
    compare = settings.evaluate.compare_champion if compare_champion is None else compare_champion
    champ_s = champ_c = None
    notes: list[str] = []
    if log_mlflow or compare:
        from reviewops.registry.tracking import configure_mlflow

        configure_mlflow(settings)
    if compare:
        champ_s, champ_c, notes = _champion_dirs(settings, log)
    out_json = Path(out_json or reports / "eval.json")
    result = evaluate_models(
        settings,
        test_df,
        summarizer_path,
        sentiment_path,
        base_summarizer_path,
        out_json=None,
        champion_summarizer_path=champ_s,
        champion_sentiment_path=champ_c,
        log=log,
    )
    result["meta"]["notes"].extend(notes)
    result["meta"]["test_path"] = str(test_path)
    if log_mlflow:
        result["meta"]["mlflow_run_id"] = log_to_mlflow(result, run_id=report.get("run_id"))
    write_result(result, out_json)
    result["meta"]["out"] = str(out_json)
    return result
