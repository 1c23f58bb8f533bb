"""The file-backed Great Expectations project: context, suite, validation definition, checkpoints.

The GX project lives under ``paths.gx_dir`` (``great_expectations/gx/``); the suite JSON in
``gx/expectations/`` is committed, ``gx/uncommitted/`` (validation results, Data Docs) is
git-ignored by the ``gx/.gitignore`` GX writes. Every GX object (datasource, asset, batch
definition, suite, validation definition, checkpoints) is created or updated on use, so
running twice is safe and a changed ``params.yaml`` updates the suite in place.

GX is imported lazily (it takes seconds and prints progress bars); analytics are switched
off through ``GX_ANALYTICS_ENABLED=false`` before the first import.

The Data Docs site is built by :class:`reviewops.data.docs_site.OfflineSiteBuilder` (named in
``great_expectations.yml``): pages that load their CSS/JS from the site, not from CDNs, and
a validation page that explains its quarantine from the note :func:`build_validation_docs` stores in
the validation result.

Several processes may validate at once (two Prefect workers, a worker and a `dvc repro`): GX's
file stores rewrite the validation definition and checkpoint JSON on every use, not atomically,
so a concurrent reader could see half a file. :func:`gx_lock` (an ``flock`` on a file beside the
project) lets one process at a time use the project.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from reviewops.config import Settings
from reviewops.data.rules import RULE_KEY, Rule, build_rules
from reviewops.reports import file_lock

if TYPE_CHECKING:
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.datasource.fluent import PandasDatasource

log = logging.getLogger(__name__)

SUITE_NAME = "reviews_canonical"
DATASOURCE_NAME = "reviewops_pandas"
ASSET_NAME = "canonical_batch"
BATCH_DEFINITION_NAME = "whole_dataframe"
VALIDATION_DEFINITION_NAME = "reviews_canonical"
CHECKPOINT_NAME = "reviews_canonical"
# Same validation without the Data Docs action: the one validate_batch runs. Its Data Docs are
# built after the rows are split (build_validation_docs), when the quarantine counts the page shows exist.
# The checkpoint with the action stays for running the suite from GX by hand.
CHECKPOINT_NO_DOCS_NAME = "reviews_canonical_no_docs"
DOCS_SITE_NAME = "local_site"
# The site's builder: GX's SiteBuilder made offline and quarantine-aware (reviewops.data.docs_site).
# The "how to" buttons explain GX's own CLI workflow, not this project's: off.
DOCS_SITE_BUILDER: dict[str, Any] = {
    "module_name": "reviewops.data.docs_site",
    "class_name": "OfflineSiteBuilder",
    "show_how_to_buttons": False,
}
# Where build_validation_docs leaves validate_batch's quarantine note in a validation result's meta.
NOTE_KEY = "reviewops_quarantine"
# The Data Docs index page re-reads every stored validation result on each build, so its
# cost grows with history (the result of a 1M-row batch whose rows all fail holds ~1M row
# indices, ~20 MB of JSON); the index lists the latest runs only.
DOCS_INDEX_LIMIT = 50

# COMPLETE gives ``unexpected_index_list`` (positions, after our reset_index) for every
# column-map expectation. The unexpected *values* are left out (GX then also drops the
# 20-value ``partial_unexpected_list``; Data Docs show row indices instead): with COMPLETE,
# values would copy every failing review text (up to max_text_chars each) into the stored
# result JSON. The bad values are in the quarantine Parquet file instead.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 20,
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
}


def _import_gx() -> Any:
    # Before the first import: no usage statistics, no network.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx

    # GX logs INFO chatter (and warnings about its own internals) on every run.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.ERROR)
    return gx


LOCK_FILE = ".reviewops-gx.lock"  # beside the project: <paths.gx_dir>/.reviewops-gx.lock (git-ignored)


@contextmanager
def gx_lock(settings: Settings) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on the GX project for the block (:func:`reviewops.reports.file_lock`)."""
    with file_lock(Path(settings.paths.gx_dir) / LOCK_FILE) as path:
        yield path


def _signature(expectation: Any) -> dict[str, Any]:
    config = expectation.configuration.to_json_dict()
    config.pop("id", None)
    return config


def _get_or_update_suite(context: AbstractDataContext, wanted: Any) -> Any:
    """Return the stored suite when it already says what ``wanted`` says, else update it.

    GX's own ``add_or_update`` hands every expectation a fresh id on each call (its
    equality check never matches), which would churn the committed JSON; here the file
    is only written when a rule changed, and a changed rule keeps its id (matched by
    rule name) so the diff shows only the changed parameters.
    """
    from great_expectations.exceptions import DataContextError

    try:
        existing = context.suites.get(wanted.name)
    except DataContextError:
        return context.suites.add(wanted)
    if [_signature(e) for e in existing.expectations] == [_signature(e) for e in wanted.expectations]:
        return existing
    ids = {e.meta.get(RULE_KEY): e.id for e in existing.expectations if e.meta}
    for e in wanted.expectations:
        e.id = ids.get(e.meta.get(RULE_KEY))
    log.info("updating GX suite %r from params", wanted.name)
    return context.suites.add_or_update(wanted)


@dataclass
class GxProject:
    """Handles on the GX objects ``validate_batch`` needs (from :func:`get_gx_project`)."""

    context: AbstractDataContext
    suite: Any
    checkpoint: Any
    checkpoint_no_docs: Any
    rules: list[Rule]
    docs_index: Path


def get_gx_project(settings: Settings) -> GxProject:
    """Open (or scaffold) the file-backed GX project and make sure every object exists.

    Idempotent: the datasource, asset and batch definition are fetched when present;
    the suite is written only when its rules changed (see :func:`_get_or_update_suite`),
    the validation definition and checkpoints are ``add_or_update``-d (same content, same
    ids). A second run leaves every committed file byte-identical.
    """
    gx = _import_gx()
    root = Path(settings.paths.gx_dir)
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    _keep_quiet_and_offline(context)
    batch_definition = _batch_definition(context)
    rules = build_rules(settings.validation)
    suite = _suite(gx, context, rules)
    checkpoint, checkpoint_no_docs = _checkpoints(gx, context, batch_definition, suite)
    docs_index = root / "gx" / "uncommitted" / "data_docs" / DOCS_SITE_NAME / "index.html"
    return GxProject(context, suite, checkpoint, checkpoint_no_docs, rules, docs_index)


def _keep_quiet_and_offline(context: AbstractDataContext) -> None:
    """Persist "no progress bars, no analytics" and the Data Docs site's builder in great_expectations.yml.

    Written once, so other tools opening this project stay quiet and offline too and build
    the same site (see :func:`_wanted_site`); a project already set up this way is not rewritten.
    """
    from great_expectations.data_context.types.base import ProgressBarsConfig

    variables = context.variables
    bars = variables.progress_bars
    bars_on = bars.get("globally", True) if isinstance(bars, dict) else getattr(bars, "globally", True)
    sites = dict(variables.data_docs_sites or {})
    site = dict(sites.get(DOCS_SITE_NAME) or {})
    stale_docs = bool(site) and _wanted_site(site) != site
    if bars is None or bars_on or variables.analytics_enabled is not False or stale_docs:
        variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        variables.analytics_enabled = False
        if stale_docs:
            sites[DOCS_SITE_NAME] = _wanted_site(site)
            variables.data_docs_sites = sites
        variables.save()


def _wanted_site(site: dict[str, Any]) -> dict[str, Any]:
    """The local site's config as this project wants it: our builder, the index capped at DOCS_INDEX_LIMIT."""
    index_builder = dict(site.get("site_index_builder") or {"class_name": "DefaultSiteIndexBuilder"})
    index_builder["validation_results_limit"] = DOCS_INDEX_LIMIT
    return {**site, **DOCS_SITE_BUILDER, "site_index_builder": index_builder}


def _batch_definition(context: AbstractDataContext) -> Any:
    """The pandas datasource's whole-dataframe batch definition, fetched or created."""
    try:
        # Ours, so a pandas one: it was created by add_pandas below.
        datasource = cast("PandasDatasource", context.data_sources.get(DATASOURCE_NAME))
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas(DATASOURCE_NAME)
    try:
        asset = datasource.get_asset(ASSET_NAME)
    except LookupError:
        asset = datasource.add_dataframe_asset(ASSET_NAME)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)


def _suite(gx: Any, context: AbstractDataContext, rules: list[Rule]) -> Any:
    """The ``reviews_canonical`` suite, one expectation per rule (its name in ``meta``)."""
    import great_expectations.expectations as gxe

    expectations = [getattr(gxe, r.expectation)(**r.kwargs, meta={RULE_KEY: r.name}) for r in rules]
    return _get_or_update_suite(context, gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations))


def _checkpoints(gx: Any, context: AbstractDataContext, batch_definition: Any, suite: Any) -> tuple[Any, Any]:
    """The validation definition and its two checkpoints: with and without the Data Docs action."""
    from great_expectations.checkpoint import UpdateDataDocsAction

    vdef = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=VALIDATION_DEFINITION_NAME, data=batch_definition, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=CHECKPOINT_NAME,
            validation_definitions=[vdef],
            result_format=RESULT_FORMAT,
            actions=[UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE_NAME])],
        )
    )
    checkpoint_no_docs = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=CHECKPOINT_NO_DOCS_NAME,
            validation_definitions=[vdef],
            result_format=RESULT_FORMAT,
        )
    )
    return checkpoint, checkpoint_no_docs


def build_validation_docs(project: GxProject, checkpoint_result: Any, note: dict[str, Any]) -> Path | None:
    """Store ``note`` in the run's validation results, then build their pages and the index.

    ``note`` (``meta[NOTE_KEY]``, JSON-able) is what the validation page's Quarantine block
    says: counts, verdict, top reasons, the quarantine file. It is written into the stored
    result, so a later full rebuild (``context.build_data_docs()``) shows it too. Only this
    run's pages, the suite's page and the index are rebuilt.

    Returns:
        The site's index page, or None when the site was not written.
    """
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    store = project.context.validation_results_store
    keys = list(checkpoint_result.run_results)
    for key, suite_result in checkpoint_result.run_results.items():
        suite_result.meta[NOTE_KEY] = note
        store.set(key, suite_result)
    project.context.build_data_docs(
        site_names=[DOCS_SITE_NAME], resource_identifiers=[*keys, ExpectationSuiteIdentifier(name=project.suite.name)]
    )
    return project.docs_index if project.docs_index.exists() else None
