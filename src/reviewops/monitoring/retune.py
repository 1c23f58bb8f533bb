"""Monitoring and continual re-tuning: new batch -> drift check -> (on drift) grow raw data, re-tune.

The pieces :mod:`flows.monitor` wires together, each usable on its own:

* :func:`prepare_batch` — validate (Great Expectations, quarantine) and preprocess a new batch
  into batch-specific files, never touching the DVC stage outputs;
* :func:`check_batch_drift` — :func:`reviewops.monitoring.drift.run_drift` against the champion's training
  data, with the champion's sentiment predictions when a champion exists;
* cooldown state (``<reports_dir>/monitor/state.json``): :func:`cooldown_status`,
  :func:`cooldown_active`, :func:`record_retrain`;
* :func:`append_batch_to_raw` — copy the batch into the (immutable, append-only) raw folder and
  record the new ``data.dvc`` version;
* :func:`build_retune_split` — new rows plus a fixed-seed replay of older rows;
* :func:`retune_settings` — start from the registry champion, ``train.profile = drift.retune_profile``;
* :func:`forgetting_report` — metrics on the old test rows next to the whole test split
  (``eval_old/…``, ``eval_new/…``), logged to the re-tuning's MLflow run;
* the inbox ledger (:func:`pending_inbox_files`, :func:`record_inbox`), so a scheduled poller
  processes each dropped file once.

Replay, defined: ``drift.replay_fraction`` = f is the share of *older* rows in the re-tuning
train (and val) set. With ``n`` new rows, ``round(n * f / (1 - f))`` older rows are sampled
(seed ``drift.seed``), capped at what exists: 0 = new rows only, 0.5 = as many old rows as new,
1 = every older row (a full retrain on the grown data, starting from the champion).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from reviewops.config import ConfigError, Settings, apply_overrides
from reviewops.errors import ReviewOpsError

Log = Callable[[str], None]

STATE_FILE = "state.json"
LEDGER_FILE = "inbox_ledger.json"
NEW, OLD = "new", "old"


def _noop(_: str) -> None:
    pass


def _now(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, data: Any) -> Path:
    """Atomic UTF-8 JSON write (readers never see half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _read_json(path: Path, default: Any) -> Any:
    path = Path(path)
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReviewOpsError(f"{path}: not valid JSON ({exc}); fix or delete the file") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def monitor_dir(settings: Settings) -> Path:
    """``<reports_dir>/monitor``: cooldown state, inbox ledger and one summary per batch."""
    return Path(settings.paths.reports_dir) / "monitor"


# --------------------------------------------------------------------------- settings


def settings_with(settings: Settings, overrides: list[str]) -> Settings:
    """A copy of ``settings`` with ``key.sub=value`` overrides applied, re-validated.

    Raises:
        ConfigError: an override names an unknown key or a value that does not fit.
    """
    data = apply_overrides(settings.model_dump(mode="json"), list(overrides))
    try:
        return Settings.model_validate(data)
    except Exception as exc:  # pydantic ValidationError: name the keys like load_settings does
        errors = getattr(exc, "errors", None)
        if errors is None:
            raise
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors())
        raise ConfigError(f"overrides {overrides}: {problems}") from None


# --------------------------------------------------------------------------- batches


def batch_name(path: Path | str) -> str:
    """A report-safe name for a batch file: ``data/inbox/new reviews.csv`` -> ``new-reviews``."""
    stem = Path(path).stem if Path(path).suffix else Path(path).name
    return re.sub(r"[^\w.-]+", "-", stem).strip("-.") or "batch"


def generate_batch(
    out_dir: Path | str, rows: int, seed: int, scenario: str = "language_sentiment_shift", tag: str | None = None
) -> Path:
    """A synthetic batch with review ids that cannot collide with earlier batches.

    :func:`reviewops.data.generate.write_generated` numbers ``review_id`` from ``R-00000001`` in
    every file; appended to the raw folder, those ids would clash with the default data set's and
    the ``review_id_conflict`` rule would quarantine both copies. The ids are prefixed with ``tag``
    (default: UTC time), and the file is named ``batch-<tag>-<scenario>.csv``.
    """
    from reviewops.data.generate import write_generated

    tag = tag or datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out_dir = Path(out_dir)
    tmp_dir = out_dir / f".gen-{tag}"
    src = write_generated(tmp_dir, rows, seed, scenario)
    dest = out_dir / f"batch-{tag}-{scenario}.csv"
    tmp = out_dir / f".{dest.name}.tmp"
    with src.open(encoding="utf-8", newline="") as fin, tmp.open("w", encoding="utf-8", newline="") as fout:
        reader, writer = csv.reader(fin), csv.writer(fout, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        header = next(reader)
        writer.writerow(header)
        col = header.index("review_id")
        for row in reader:
            if row[col]:
                row[col] = f"{tag}-{row[col]}"
            writer.writerow(row)
    os.replace(tmp, dest)  # the inbox poller never sees a half-written file (dot files are skipped)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    return dest


def batch_dir(settings: Settings, name: str) -> Path:
    """Where one batch's validated and cleaned rows go: ``<interim_dir>/batches/<name>/``."""
    from reviewops.data.stages import batch_folder

    return batch_folder(settings, name)


def prepare_batch(
    settings: Settings, batch_path: Path | str, name: str | None = None, build_docs: bool = True
) -> dict[str, Any]:
    """Validate and preprocess a new batch into batch-specific files.

    Validation is :func:`reviewops.data.stages.stage_validate` into the batch's folder
    ``<interim_dir>/batches/<name>/`` (valid, quarantine and repeats Parquet files and
    ``report.json``); preprocessing is the same :func:`reviewops.data.clean.preprocess` as the
    DVC stage, written to the same folder (``pipeline.stage_preprocess`` would overwrite the DVC
    stage's own outputs and report).

    Raises:
        BatchFailedError: more than ``validation.max_failure_rate`` of the rows failed (the
            report and quarantine are written first).
        ReviewOpsError: unreadable file, or nothing left after cleaning.
    """
    from reviewops.data.clean import preprocess
    from reviewops.data.ingest import parse_column_map
    from reviewops.data.stages import stage_validate

    batch_path = Path(batch_path)
    name = name or batch_name(batch_path)
    out = batch_dir(settings, name)
    columns = parse_column_map(settings.ingest.columns) or None
    validation = stage_validate(settings, batch_path, columns, batch=name, build_docs=build_docs)
    result = preprocess(pd.read_parquet(validation["valid_path"]), settings.preprocess)
    if len(result.clean) == 0:
        raise ReviewOpsError(f"{batch_path}: no rows left after validation and cleaning")
    clean_path = out / "clean.parquet"
    result.clean.to_parquet(clean_path, index=False)
    result.duplicates.to_parquet(out / "duplicates.parquet", index=False)
    report = {k: v for k, v in result.report.items() if isinstance(v, int | float | str)}
    return {
        "name": name,
        "batch": str(batch_path),
        "validation": validation,
        "preprocess": report,
        "clean_rows": len(result.clean),
        "clean_path": str(clean_path),
    }


# --------------------------------------------------------------------------- drift


def _champion_model_dir(settings: Settings, registered_name: str, trained_subdir: str) -> Path | None:
    """The champion's HF directory: registry ``@champion``, else ``<models_dir>/trained/<subdir>``."""
    from reviewops.registry import registry

    try:
        if registry.get_alias_version(registered_name, registry.CHAMPION) is not None:
            return registry.download_model_dir(registered_name, registry.CHAMPION)
    except ReviewOpsError:
        pass
    trained = Path(settings.paths.models_dir) / "trained" / trained_subdir
    return trained if (trained / "config.json").is_file() else None


def champion_predictors(settings: Settings, log: Log = _noop) -> tuple[Callable | None, Callable | None, dict]:
    """``(predict_fn, summarize_len_fn, info)`` of the champion for the drift check.

    ``drift.champion_predictions`` picks what runs: ``sentiment`` (labels on the drift samples),
    ``all`` (plus summary lengths: one generation per sampled text) or ``none``. Without a
    champion (registry alias, or a trained model on disk) both are None: the check still runs
    on the data alone.
    """
    from reviewops.registry.tracking import configure_mlflow

    mode = settings.drift.champion_predictions
    info: dict[str, Any] = {"mode": mode, "sentiment": None, "summarizer": None}
    if mode == "none":
        return None, None, info
    configure_mlflow(settings)
    predict_fn = summarize_len_fn = None
    sent_dir = _champion_model_dir(settings, settings.gate.sentiment_name, "sentiment")
    if sent_dir is not None:
        from reviewops.models.sentiment import SentimentClassifier

        log(f"champion sentiment model: {sent_dir}")
        clf = SentimentClassifier.load(sent_dir, settings.sentiment)
        predict_fn = lambda texts: list(clf.predict(list(texts)))  # noqa: E731
        info["sentiment"] = str(sent_dir)
    if mode == "all":
        sum_dir = _champion_model_dir(settings, settings.gate.summarizer_name, "summarizer")
        if sum_dir is not None:
            from reviewops.models.summarizer import Summarizer

            log(f"champion summarizer: {sum_dir}")
            summarizer = Summarizer.load(sum_dir, settings.summarizer)
            bs = settings.evaluate.batch_size
            summarize_len_fn = lambda texts: summarizer.summarize(list(texts), batch_size=bs)  # noqa: E731
            info["summarizer"] = str(sum_dir)
    return predict_fn, summarize_len_fn, info


def check_batch_drift(
    settings: Settings, current: Path | str, name: str, reference: Path | str | None = None, log: Log = _noop
) -> dict[str, Any]:
    """Drift of a prepared batch vs the reference (default: the champion's training split, see
    :func:`reviewops.monitoring.drift.champion_reference`).

    Writes ``<reports_dir>/drift/<name>.html|.json``, adds the run to the Evidently workspace
    and logs a ``drift <name>`` MLflow run. Returns :meth:`DriftResult.to_dict` plus the
    signals, the reference/current info and which champion models predicted.
    """
    from reviewops.monitoring.drift import champion_reference, load_batch, run_drift

    lineage: dict[str, Any] = {"source": "argument", "path": str(reference)}
    if reference is None:
        reference, lineage = champion_reference(settings)
        log(f"reference: {lineage['path']} ({lineage['source']}{'; ' + lineage['note'] if 'note' in lineage else ''})")
    reference = Path(reference)
    if not reference.exists():
        raise ReviewOpsError(
            f"reference {reference} not found; run the retraining flow first "
            "(`python -m flows.retrain`) or pass a reference batch"
        )
    ref_df, ref_info = load_batch(reference, settings)
    cur_df, cur_info = load_batch(current, settings)
    predict_fn, summarize_len_fn, champion = champion_predictors(settings, log)
    result = run_drift(
        ref_df,
        cur_df,
        settings,
        predict_fn=predict_fn,
        summarize_len_fn=summarize_len_fn,
        name=name,
        track=True,
        log=log,
    )
    return {
        **result.to_dict(),
        "signals": result.summary["decision"]["signals"],
        "reference": {**ref_info, "path": str(reference), "lineage": lineage},
        "current": cur_info,
        "champion": champion,
    }


# --------------------------------------------------------------------------- cooldown


def state_path(settings: Settings) -> Path:
    """``<reports_dir>/monitor/state.json``."""
    return monitor_dir(settings) / STATE_FILE


def cooldown_status(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Whether a drift-triggered retrain ran less than ``drift.cooldown_minutes`` ago.

    Returns ``active``, ``last_retrain_at``, ``until`` (ISO times or None) and ``minutes``.
    """
    now = _now(now)
    state = _read_json(state_path(settings), {})
    minutes = settings.drift.cooldown_minutes
    last = state.get("last_retrain_at")
    out = {"active": False, "last_retrain_at": last, "until": None, "minutes": minutes}
    if last and minutes > 0:
        until = datetime.fromisoformat(last.replace("Z", "+00:00")) + timedelta(minutes=minutes)
        out.update(active=now < until, until=_iso(until))
    return out


def cooldown_active(settings: Settings, now: datetime | None = None) -> bool:
    """True while the last drift-triggered retrain is younger than ``drift.cooldown_minutes``."""
    return bool(cooldown_status(settings, now)["active"])


def record_retrain(settings: Settings, info: dict[str, Any] | None = None, now: datetime | None = None) -> Path:
    """Record a drift-triggered retrain (starts the cooldown); keeps the last 50 in ``history``."""
    path = state_path(settings)
    state = _read_json(path, {})
    entry = {"at": _iso(_now(now)), **(info or {})}
    state["last_retrain_at"] = entry["at"]
    state["last_retrain"] = entry
    state["history"] = ([*state.get("history", []), entry])[-50:]
    return _write_json(path, state)


# --------------------------------------------------------------------------- raw data


def _existing_ids(settings: Settings) -> set[str]:
    from reviewops.data.ingest import ingest, parse_column_map

    raw = Path(settings.paths.raw_dir)
    try:
        df = ingest(raw, parse_column_map(settings.ingest.columns) or None).df
    except ReviewOpsError:  # empty raw folder
        return set()
    return set(df["review_id"].dropna().astype(str))


def _unique_raw_name(raw_dir: Path, source: Path) -> Path:
    dest = raw_dir / source.name
    n = 1
    while dest.exists():
        dest = raw_dir / f"{source.stem}-{n}{source.suffix}"
        n += 1
    return dest


def append_batch_to_raw(settings: Settings, batch_path: Path | str, root: Path | str = ".") -> dict[str, Any]:
    """Copy a batch into ``paths.raw_dir`` and record the new raw version in ``data.dvc``.

    Raw data is append-only: the batch gets a name no existing file has (``x.csv``, ``x-1.csv``…)
    and nothing there is modified. The rows keep that file name as ``source_file`` through the
    DVC stages, which is how :func:`build_retune_split` finds them.

    Returns:
        ``raw_file`` (name), ``raw_path``, ``old_version`` / ``new_version`` (``data.dvc`` md5),
        ``changed``.

    Raises:
        ReviewOpsError: the same file content is already in the raw folder, or its review ids
            collide with existing ones (the ``review_id_conflict`` rule would quarantine both copies
            and fail the whole data set's validation).
    """
    from reviewops.data import versioning
    from reviewops.data.ingest import ingest, parse_column_map

    batch_path = Path(batch_path)
    raw_dir = Path(settings.paths.raw_dir)
    if not batch_path.is_file():
        raise ReviewOpsError(f"{batch_path}: not a file; pass one batch file to append")
    digest = _sha256(batch_path)
    if raw_dir.is_dir():
        for existing in raw_dir.iterdir():
            if (
                existing.is_file()
                and existing.stat().st_size == batch_path.stat().st_size
                and _sha256(existing) == digest
            ):
                raise ReviewOpsError(f"{batch_path} is already in the raw data as {existing}; nothing to append")
    ids = set(
        ingest(batch_path, parse_column_map(settings.ingest.columns) or None).df["review_id"].dropna().astype(str)
    )
    clash = sorted(ids & _existing_ids(settings))
    if clash:
        raise ReviewOpsError(
            f"{batch_path}: {len(clash)} review id(s) already exist in {raw_dir} (e.g. {', '.join(clash[:3])}); "
            "ids must be unique across batches — drop the rows already ingested or give them new ids"
        )
    root = Path(root)
    versioning.ensure_repo(root)
    old = versioning.data_version(root / versioning.RAW_DVC_FILE)
    raw_dir.mkdir(parents=True, exist_ok=True)
    dest = _unique_raw_name(raw_dir, batch_path)
    tmp = raw_dir / f".{dest.name}.tmp"  # dot files are ignored by ingest and by DVC's listing
    shutil.copyfile(batch_path, tmp)
    os.replace(tmp, dest)
    tracked = versioning.track_raw(root=root, raw_dir=raw_dir)
    return {
        "raw_file": dest.name,
        "raw_path": str(dest),
        "sha256": digest,
        "old_version": old,
        "new_version": tracked["md5"],
        "changed": tracked["changed"],
        "dvc_file": tracked["dvc_file"],
    }


# --------------------------------------------------------------------------- re-tune split


def replay_count(n_new: int, n_old: int, fraction: float) -> int:
    """Older rows to replay next to ``n_new`` new ones: ``round(n_new * f / (1 - f))``, capped at ``n_old``."""
    if fraction <= 0 or n_old == 0:
        return 0
    if fraction >= 1:
        return n_old
    return min(n_old, round(n_new * fraction / (1 - fraction)))


def _mark(df: pd.DataFrame, new_files: set[str]) -> pd.Series:
    if "source_file" not in df.columns:
        raise ReviewOpsError("processed rows have no 'source_file' column (docs/CONTRACTS.md); re-run `dvc repro`")
    return df["source_file"].astype(str).isin(new_files)


def build_retune_split(
    settings: Settings, new_source_files: list[str], out_dir: Path | str, processed_dir: Path | str | None = None
) -> dict[str, Any]:
    """The re-tuning data: rows of the new batch file(s) plus a fixed-seed replay of older rows.

    Reads the processed split (after ``dvc repro`` on the grown raw data), and for ``train`` and
    ``val`` keeps every row whose ``source_file`` is in ``new_source_files`` plus
    :func:`replay_count` older rows sampled with ``drift.seed``. A split with no new rows (whole
    products move between splits) keeps all of its older rows: val only picks checkpoints.
    ``test.parquet`` is copied whole, so ``out_dir`` is a complete processed folder for
    :func:`reviewops.training.train.train_all` and :func:`reviewops.evaluation.evaluate.run_evaluation`; the gate
    therefore compares candidate and champion on the whole (re-split) test set.

    Returns:
        Per split ``rows``, ``new``, ``replay`` (and ``old_available``); ``test`` with ``new``/``old``
        counts; ``replay_fraction``, ``new_source_files``, ``out_dir``.

    Raises:
        ReviewOpsError: no row of the new file(s) reached the train split.
    """
    processed_dir = Path(processed_dir or settings.paths.processed_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    new_files = {str(f) for f in new_source_files}
    fraction, seed = settings.drift.replay_fraction, settings.drift.seed
    report: dict[str, Any] = {
        "replay_fraction": fraction,
        "seed": seed,
        "new_source_files": sorted(new_files),
        "out_dir": str(out_dir),
    }
    for split in ("train", "val"):
        path = processed_dir / f"{split}.parquet"
        if not path.is_file():
            raise ReviewOpsError(f"{path} not found; run `dvc repro` (the data stages) first")
        df = pd.read_parquet(path)
        is_new = _mark(df, new_files)
        new, old = df[is_new], df[~is_new]
        if split == "train" and len(new) == 0:
            raise ReviewOpsError(
                f"no row of {sorted(new_files)} is in {path}: the batch's rows were all quarantined, "
                "deduplicated against older rows, or their products fell into val/test"
            )
        n_replay = replay_count(len(new), len(old), fraction) if len(new) else len(old)
        replay = old.sample(n=n_replay, random_state=seed) if n_replay < len(old) else old
        part = pd.concat([new, replay]).sort_values("review_id", kind="stable").reset_index(drop=True)
        part.to_parquet(out_dir / f"{split}.parquet", index=False)
        report[split] = {"rows": len(part), "new": len(new), "replay": len(replay), "old_available": len(old)}
    test_path = processed_dir / "test.parquet"
    test = pd.read_parquet(test_path)
    shutil.copyfile(test_path, out_dir / "test.parquet")
    n_new_test = int(_mark(test, new_files).sum())
    report["test"] = {"rows": len(test), "new": n_new_test, "old": len(test) - n_new_test}
    _write_json(out_dir / "retune_split.json", report)
    return report


def retune_dir(settings: Settings, name: str) -> Path:
    """``<interim_dir>/retune/<name>``: the processed folder of one re-tuning."""
    return Path(settings.paths.interim_dir) / "retune" / name


def retune_settings(settings: Settings, processed_dir: Path | str, log: Log = _noop) -> tuple[Settings, dict]:
    """Settings for a drift-triggered re-tune, and where it starts from.

    The registry champion of each model (downloaded with
    :func:`reviewops.registry.registry.download_model_dir`) becomes ``summarizer.model`` /
    ``sentiment.model`` when it exists, else the configured base model stays. Always sets
    ``train.profile = drift.retune_profile`` and ``paths.processed_dir = processed_dir``.
    """
    from reviewops.registry import registry
    from reviewops.registry.tracking import configure_mlflow

    configure_mlflow(settings)
    overrides = [
        f"train.profile={settings.drift.retune_profile}",
        f"paths.processed_dir={json.dumps(str(processed_dir))}",
    ]
    info: dict[str, Any] = {"profile": settings.drift.retune_profile, "processed_dir": str(processed_dir)}
    for section, name in (("summarizer", settings.gate.summarizer_name), ("sentiment", settings.gate.sentiment_name)):
        version = registry.get_alias_version(name, registry.CHAMPION)
        if version is None:
            info[section] = {"start": "base", "model": getattr(settings, section).model}
            continue
        path = registry.download_model_dir(name, registry.CHAMPION)
        log(f"re-tuning {section} from {name} v{version.version} (champion)")
        overrides.append(f"{section}.model={json.dumps(str(path))}")
        info[section] = {"start": "champion", "model": str(path), "registered": name, "version": str(version.version)}
    return settings_with(settings, overrides), info


# --------------------------------------------------------------------------- forgetting


def forgetting_report(
    settings: Settings,
    new_source_files: list[str],
    eval_json: Path | str | None = None,
    processed_dir: Path | str | None = None,
    log_mlflow: bool = True,
) -> dict[str, Any]:
    """ "Older reviews are not forgotten": metrics on the old test rows next to the whole test split.

    Uses the predictions the evaluate stage already made (``eval.json`` rows are the test rows in
    order), tags each test row ``old`` (``source_file`` not a new batch) or ``new``, and scores
    each part with :func:`reviewops.evaluation.evaluate.slice_metrics`. ROUGE covers the rows summarized
    in evaluation (a fixed-seed sample of ``max_eval_samples``), sentiment every row.

    Returns:
        ``eval_old/…`` and ``eval_new/…`` (``rougeL``…, ``sentiment_macro_f1``, ``n``,
        ``n_summaries``), ``eval_all/…`` (the candidate on the whole split), ``champion_all/…``
        (the champion re-scored on the whole split, when evaluation did) and ``mlflow_run_id``.
    """
    from reviewops.evaluation.evaluate import metrics_of, mlflow_metric_name, read_train_report, slice_metrics

    reports = Path(settings.paths.reports_dir)
    eval_path = Path(eval_json or reports / "eval.json")
    result = _read_json(eval_path, None)
    if result is None:
        raise ReviewOpsError(f"{eval_path} not found; run `reviewops evaluate` first")
    test_path = Path(processed_dir or settings.paths.processed_dir) / "test.parquet"
    test = pd.read_parquet(test_path)
    preds = pd.DataFrame(result.get("predictions") or [])
    if len(preds) != len(test):
        raise ReviewOpsError(
            f"{eval_path} has {len(preds)} predictions for {len(test)} rows of {test_path}; "
            "re-run evaluation on this test split"
        )
    if (
        "review_id" in preds
        and not (preds["review_id"].astype(str).to_numpy() == test["review_id"].astype(str).to_numpy()).all()
    ):
        raise ReviewOpsError(f"{eval_path} predictions are not the rows of {test_path}; re-run evaluation")
    preds["part"] = [NEW if x else OLD for x in _mark(test, set(new_source_files))]
    sliced = slice_metrics(preds, by=("part",), prediction_col="prediction", reference_col="reference")
    out: dict[str, Any] = {}
    for key, value in sliced.items():
        part, metric = key.split("/", 2)[1].split("=")[1], key.split("/", 2)[2]
        out[f"eval_{part}/{metric}"] = value
    metrics = metrics_of(result)
    for key, value in metrics.items():
        if key.startswith("eval/"):
            out[f"eval_all/{key[len('eval/') :]}"] = value
        elif key.startswith("champion/eval/"):
            out[f"champion_all/{key[len('champion/eval/') :]}"] = value
    out = {k: out[k] for k in sorted(out)}
    run_id = None
    if log_mlflow:
        import mlflow

        from reviewops.registry.tracking import configure_mlflow, use_run

        configure_mlflow(settings)
        train_report = reports / "train.json"
        train_run = read_train_report(train_report).get("run_id") if train_report.is_file() else None
        with use_run(train_run, run_name="forgetting") as run_id:
            mlflow.log_metrics({mlflow_metric_name(k): float(v) for k, v in out.items()}, run_id=run_id)
    out["mlflow_run_id"] = run_id
    return out


# --------------------------------------------------------------------------- outcome + summaries


def retrain_outcome(settings: Settings) -> dict[str, Any]:
    """What the last retraining left in the reports: run id, test metrics, gate decision.

    Read from ``reports/{train,eval,gate}.json`` so it is the same whether the gate passed
    or failed (a failed gate raises but writes ``gate.json`` first).
    """
    from reviewops.evaluation.evaluate import metrics_of

    reports = Path(settings.paths.reports_dir)
    train = _read_json(reports / "train.json", {})
    evaluation = _read_json(reports / "eval.json", {})
    gate = _read_json(reports / "gate.json", {})
    metrics = metrics_of(evaluation) if evaluation else {}
    return {
        "run_id": train.get("run_id"),
        "profile": train.get("profile"),
        "model_uris": train.get("model_uris"),
        "eval": {k: v for k, v in metrics.items() if k.startswith(("eval/", "champion/eval/")) and "/slice" not in k},
        "gate": {
            "passed": gate.get("passed"),
            "registered": gate.get("registered"),
            "checks": gate.get("checks"),
            "path": str(reports / "gate.json"),
        },
    }


def write_monitor_summary(settings: Settings, summary: dict[str, Any]) -> Path:
    """Write ``<reports_dir>/monitor/<name>.json`` (the flow's result, readable without Prefect)."""
    return _write_json(monitor_dir(settings) / f"{summary['name']}.json", summary)


# --------------------------------------------------------------------------- inbox


def ledger_path(settings: Settings) -> Path:
    """``<reports_dir>/monitor/inbox_ledger.json``: which inbox files were processed, and how."""
    return monitor_dir(settings) / LEDGER_FILE


def pending_inbox_files(settings: Settings, inbox_dir: Path | str | None = None) -> list[Path]:
    """Supported files in the inbox not yet in the ledger (or changed since), oldest name first.

    Dot files (half-written ``.x.tmp``) and sub-folders are skipped.
    """
    from reviewops.data.ingest import SUPPORTED_SUFFIXES

    inbox = Path(inbox_dir or settings.drift.inbox_dir)
    if not inbox.is_dir():
        return []
    ledger = _read_json(ledger_path(settings), {})
    files = sorted(
        p
        for p in inbox.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES
    )
    return [p for p in files if (ledger.get(p.name) or {}).get("sha256") != _sha256(p)]


def record_inbox(settings: Settings, path: Path | str, status: str, detail: dict[str, Any] | None = None) -> Path:
    """Mark an inbox file as processed (``status``: completed / failed / …) so it is not picked again."""
    path = Path(path)
    ledger_file = ledger_path(settings)
    ledger = _read_json(ledger_file, {})
    ledger[path.name] = {"sha256": _sha256(path), "status": status, "processed_at": _iso(_now()), **(detail or {})}
    return _write_json(ledger_file, ledger)


__all__ = [
    "append_batch_to_raw",
    "batch_dir",
    "batch_name",
    "build_retune_split",
    "champion_predictors",
    "check_batch_drift",
    "cooldown_active",
    "cooldown_status",
    "forgetting_report",
    "generate_batch",
    "ledger_path",
    "monitor_dir",
    "pending_inbox_files",
    "prepare_batch",
    "record_inbox",
    "record_retrain",
    "replay_count",
    "retrain_outcome",
    "retune_dir",
    "retune_settings",
    "settings_with",
    "state_path",
    "write_monitor_summary",
]
