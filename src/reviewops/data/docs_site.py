"""Great Expectations Data Docs that work offline and explain the quarantine.

GX 1.x pages load Bootstrap, jQuery, bootstrap-table, Font Awesome and more from public
CDNs, and the index's validation table is drawn by that JavaScript: offline the site is
unstyled and the index lists nothing. And a validation page reads "Failed" whenever a
row-level expectation found failing rows, which is exactly when the pipeline quarantines
those rows and carries on.

Everything here plugs into GX's own configuration hooks (``great_expectations.yml`` names
:class:`OfflineSiteBuilder` as the ``local_site`` class, see ``reviewops.data.gx``), so any
build, whether by ``validate_batch``, a checkpoint's ``UpdateDataDocsAction`` or
``context.build_data_docs()``, gives the same site:

- :class:`OfflineSiteBuilder` copies the vendored assets (``docs_static/``, see its README
  for versions and licences) to the site's ``static/vendor/`` and wires in the two classes
  below;
- :class:`OfflinePageView` / :class:`OfflineIndexPageView` render GX's templates, then
  :func:`localize_html` (the one function that patches GX's HTML) points each CDN link at
  the vendored copy, relative to the page;
- :class:`QuarantineValidationResultsPageRenderer` adds a "Quarantine" block to a validation
  page's overview from the note (:func:`quarantine_note`) ``validate_batch`` stores in the
  result's ``meta[NOTE_KEY]``: the pipeline's verdict, the rows quarantined, the top reasons
  and the quarantine file.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from great_expectations.render import RenderedMarkdownContent, RenderedStringTemplateContent, TextContent
from great_expectations.render.renderer import ValidationResultsPageRenderer
from great_expectations.render.renderer.site_builder import SiteBuilder
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

from reviewops.config import Settings
from reviewops.data.gx import NOTE_KEY

if TYPE_CHECKING:
    from reviewops.data.validation import ValidationResult

log = logging.getLogger(__name__)

VENDOR_DIR = Path(__file__).with_name("docs_static")
SITE_VENDOR_DIR = "static/vendor"

# Every CDN URL GX 1.x's templates reference -> the vendored file (under static/vendor/), or
# None: the tag is dropped (vega only draws the graph blocks, which no rule of ours renders).
CDN_ASSETS: dict[str, str | None] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap-4.3.1/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/umd/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    # The index links the minified file, the other pages the plain one: the same two rules.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table-1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free-6.6.0/css/all.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "bootstrap-dark-1.1.0/css/bootstrap-prefers-dark.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": None,
    "https://cdn.jsdelivr.net/npm/vega-lite@5": None,
    "https://cdn.jsdelivr.net/npm/vega-embed@6": None,
}
# GX's logo from its S3 bucket (the query string carries the project's id): GX ships the
# same image in static/images/. The dark-mode stylesheet's logo gets the same local file.
_GX_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.[a-z0-9.-]+/(?:logo-long|full_logo_dark)\.png[^\"')\s]*"
)
_SCRIPT = re.compile(r'<script\b[^>]*?\bsrc="(https?://[^"]+)"[^>]*>\s*</script>\n?')
_STYLESHEET = re.compile(r'<link\b[^>]*?\bhref="(https?://[^"]+)"[^>]*>\n?')
# GX's own static links (favicon) assume a shallower page than GX 1.x writes.
_SITE_STATIC = re.compile(r'\b(href|src)="(?:\./|(?:\.\./)+)static/')


def localize_html(html: str, to_root: str) -> str:
    """Point one rendered Data Docs page at the vendored assets instead of the CDNs.

    The one place that patches GX's HTML. ``to_root`` is the page's relative path to the site
    root (``""`` for the index, ``"../../../../"`` for a validation page). A ``<script>`` or
    stylesheet ``<link>`` on a CDN becomes a plain tag on ``static/vendor/...`` (GX's SRI and
    ``crossorigin`` attributes go: a browser refuses CORS-mode loads from ``file://``), or
    disappears when its asset is not shipped; the logo comes from GX's ``static/images/``.
    A CDN URL not in :data:`CDN_ASSETS` (a GX upgrade) is left alone and logged.
    """
    vendor = f"{to_root}{SITE_VENDOR_DIR}/"

    def script(match: re.Match[str]) -> str:
        url = match.group(1)
        if url not in CDN_ASSETS:
            log.warning("Data Docs: unknown CDN script %s left as is (add it to CDN_ASSETS)", url)
            return match.group(0)
        local = CDN_ASSETS[url]
        return "" if local is None else f'<script src="{vendor}{local}"></script>\n'

    def stylesheet(match: re.Match[str]) -> str:
        url = match.group(1)
        local = CDN_ASSETS.get(url)
        if local is None:
            log.warning("Data Docs: unknown CDN stylesheet %s left as is (add it to CDN_ASSETS)", url)
            return match.group(0)
        return f'<link rel="stylesheet" href="{vendor}{local}">\n'

    html = _SCRIPT.sub(script, html)
    html = _STYLESHEET.sub(stylesheet, html)
    html = _GX_LOGO.sub(f"{to_root}static/images/logo-long.png", html)
    return _SITE_STATIC.sub(lambda m: f'{m.group(1)}="{to_root}static/', html)


def page_depth(renderer_type: str, suite_name: str | None) -> int:
    """How many folders below the site root GX writes a page (GX's own ``home_url`` rule).

    Validation pages: ``validations/<suite, split at dots>/<run name>/<run time>/<batch>.html``;
    suite pages: ``expectations/<suite, split at dots>.html``; the index: the root.
    """
    dots = (suite_name or "").count(".")
    if "ValidationResults" in renderer_type or "ProfilingResults" in renderer_type:
        return dots + 4
    if "ExpectationSuite" in renderer_type:
        return dots + 1
    return 0


def _to_root(document: Any) -> str:
    get = document.get if isinstance(document, dict) else lambda key: getattr(document, key, None)
    return "../" * page_depth(str(get("renderer_type") or ""), get("expectation_suite_name"))


class OfflinePageView(DefaultJinjaPageView):
    """GX's page view, with the CDN links pointed at the site's ``static/vendor/``."""

    def render(self, document: Any, template: Any = None, **kwargs: Any) -> str:
        """Render as GX does, then :func:`localize_html`."""
        return localize_html(super().render(document, template, **kwargs), _to_root(document))


class OfflineIndexPageView(DefaultJinjaIndexPageView):
    """GX's index view, with the CDN links pointed at the site's ``static/vendor/``."""

    def render(self, document: Any, template: Any = None, **kwargs: Any) -> str:
        """Render as GX does, then :func:`localize_html`."""
        return localize_html(super().render(document, template, **kwargs), "")


def install_vendor_assets(site_root: Path) -> Path:
    """Copy ``docs_static/`` to ``<site>/static/vendor/`` (files already there and the same size are kept)."""
    dest = Path(site_root) / SITE_VENDOR_DIR
    for src in sorted(VENDOR_DIR.rglob("*")):
        if not src.is_file():
            continue
        target = dest / src.relative_to(VENDOR_DIR)
        if target.is_file() and target.stat().st_size == src.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return dest


def quarantine_note(
    result: ValidationResult, settings: Settings, quarantine_path: Path | str | None, gx_rules: set[str]
) -> dict[str, Any]:
    """What the run's Data Docs page says about its quarantine (``meta`` note, JSON-able).

    The verdict and counts of ``result``, the top 5 reasons (``by``: "gx" for an expectation,
    "reader" for records ingest set aside) and the quarantine file: ``quarantine_path`` when the
    caller says where it writes, else where ``reviewops validate`` writes by default.
    """
    cfg = settings.validation
    paths = settings.paths
    hint = (
        f"not named by the caller; `reviewops validate` writes `{Path(paths.quarantine_dir) / result.batch_name}"
        f".parquet` (DVC stage) or `{Path(paths.interim_dir) / 'batches' / result.batch_name / 'quarantine.parquet'}`"
    )
    return {
        "batch": result.batch_name,
        "input_rows": result.input_rows,
        "valid_rows": result.valid_rows,
        "quarantined_rows": result.quarantined_rows,
        "repeated_rows": result.repeated_rows,
        "failure_rate": round(result.failure_rate, 6),
        "max_failure_rate": cfg.max_failure_rate,
        "accepted": result.success,
        "failed_rules": len(result.failures),
        "top_failures": [
            {"rule": rule, "rows": rows, "by": "gx" if rule in gx_rules else "reader"}
            for rule, rows in list(result.failures.items())[:5]
        ],
        "quarantine_path": str(quarantine_path) if quarantine_path else None,
        "quarantine_hint": None if quarantine_path else hint,
    }


def _code(value: object) -> str:
    """A Markdown code span (rule names and paths: their ``_`` and ``*`` stay literal)."""
    text = str(value).replace("`", "'")
    return f"`{text}`"


def _rows(n: int) -> str:
    return f"{n:,} row" + "s" * (n != 1)


def quarantine_markdown(note: dict[str, Any]) -> list[str]:
    """The Quarantine block's paragraphs (Markdown) from ``validate_batch``'s note."""
    if note.get("table_failures") or note.get("errors"):
        missing = ", ".join(_code(c) for c in note.get("table_failures") or [])
        why = f"required column(s) missing: {missing}" if missing else "validation errored"
        return [
            f"**Pipeline verdict: rejected, nothing quarantined.** The batch failed a table-level check "
            f"({why}); every row would fail, so no row is quarantined. Map the columns in the ingest column mapping."
        ]
    n, q, valid, repeats = (
        int(note.get(k) or 0) for k in ("input_rows", "quarantined_rows", "valid_rows", "repeated_rows")
    )
    rate, limit = float(note.get("failure_rate") or 0.0), float(note.get("max_failure_rate") or 0.0)
    kept = f"{_rows(valid)} valid" + (f"; {_rows(repeats)} repeated by the exporter, set aside" if repeats else "")
    paragraphs = [
        f"**Pipeline verdict: {'accepted' if note.get('accepted') else 'rejected'}.** {q:,} of {_rows(n)} "
        f"({rate:.1%}) went to quarantine; the limit is {limit:.1%} ({_code('validation.max_failure_rate')}). {kept}."
    ]
    if not q:
        return [*paragraphs, "No row was quarantined."]
    paragraphs.append(
        "**Why the status above reads Failed:** Great Expectations fails a run as soon as one row-level "
        "expectation finds an unexpected row. Those rows are exactly the ones quarantined (each expectation "
        "below lists their positions in the batch, after exporter repeats were collapsed); the valid rows go on "
        + ("through the pipeline." if note.get("accepted") else "only once the batch is under the limit.")
    )
    paragraphs.extend(_top_reasons(note))
    where = note.get("quarantine_path")
    paragraphs.append(
        f"**Quarantine file:** {_code(where)}, one row per quarantined record with its {_code('quarantine_reason')}."
        if where
        else f"**Quarantine file:** {note.get('quarantine_hint') or 'written by the caller of validate_batch'}."
    )
    return paragraphs


def _top_reasons(note: dict[str, Any]) -> list[str]:
    """The "Top reasons" list: rule and rows, the reader's own reasons marked."""
    top = note.get("top_failures") or []
    if not top:
        return []
    lines = [
        f"- {_code(f['rule'])}: {_rows(int(f['rows']))}"
        + (" (set aside by the reader, not a GX check)" if f.get("by") == "reader" else "")
        for f in top
    ]
    of = int(note.get("failed_rules") or len(top))
    shown = f"the {len(top)} most frequent of {of} rules broken" if of > len(top) else f"rules broken: {of}"
    return [f"**Top reasons** ({shown}; a row can break several):\n\n" + "\n".join(lines)]


def quarantine_block(note: dict[str, Any]) -> TextContent:
    """The "Quarantine" content block a validation page's overview gets (see :func:`quarantine_markdown`)."""
    return TextContent(
        content_block_type="text",
        header=RenderedStringTemplateContent(
            content_block_type="string_template",
            string_template={"template": "Quarantine", "tag": "h6", "styling": {"classes": ["m-0"]}},
        ),
        text=[
            RenderedMarkdownContent(content_block_type="markdown", markdown=p, styling={"parent": {}})
            for p in quarantine_markdown(note)
        ],
        styling={"classes": ["col-12", "mt-1", "reviewops-quarantine"], "body": {"classes": ["alert", "alert-info"]}},
    )


class QuarantineValidationResultsPageRenderer(ValidationResultsPageRenderer):
    """GX's validation page, with a "Quarantine" block under the overview's status line.

    The block comes from ``meta[NOTE_KEY]``, which ``validate_batch`` writes into the stored
    result; a result without it renders exactly as GX renders it.
    """

    def render(self, validation_results: Any, suite_parameters: Any = None) -> Any:
        """Render as GX does, then insert :func:`quarantine_block` after the overview header."""
        document = super().render(validation_results, suite_parameters)
        note = (validation_results.meta or {}).get(NOTE_KEY)
        if isinstance(note, dict) and document.sections:
            document.sections[0].content_blocks.insert(1, quarantine_block(note))
        return document


_MODULE = __name__
_VIEW = {"module_name": _MODULE, "class_name": OfflinePageView.__name__}
_RENDERER = {"module_name": _MODULE, "class_name": "QuarantineValidationResultsPageRenderer"}


class OfflineSiteBuilder(SiteBuilder):
    """GX's ``SiteBuilder`` for a local site that works offline and explains the quarantine.

    Unless the site's config names other classes, validation pages use
    :class:`QuarantineValidationResultsPageRenderer`, every page an offline view, and each
    build copies the vendored assets into the site.
    """

    # GX hands a class only the runtime arguments its __init__ names (site_name,
    # runtime_environment with the project's root directory): SiteBuilder's, spelled out.
    def __init__(  # noqa: PLR0913
        self,
        data_context: Any,
        store_backend: Any,
        site_name: Any = None,
        site_index_builder: Any = None,
        show_how_to_buttons: bool = True,
        site_section_builders: Any = None,
        runtime_environment: Any = None,
        **kwargs: Any,
    ) -> None:
        sections: dict[str, Any] = dict(site_section_builders or {})
        for name in ("expectations", "validations", "profiling"):
            cfg = sections.get(name, {})
            if isinstance(cfg, dict):  # anything else ("None", False) turns the section off
                sections[name] = {"view": _VIEW, **cfg}
        if isinstance(sections.get("validations"), dict):
            sections["validations"] = {"renderer": _RENDERER, **sections["validations"]}
        index = {"class_name": "DefaultSiteIndexBuilder", **(site_index_builder or {})}
        index.setdefault("view", {"module_name": _MODULE, "class_name": OfflineIndexPageView.__name__})
        super().__init__(
            data_context=data_context,
            store_backend=store_backend,
            site_name=site_name,
            site_index_builder=index,
            show_how_to_buttons=show_how_to_buttons,
            site_section_builders=sections,
            runtime_environment=runtime_environment,
            **kwargs,
        )

    def build(self, resource_identifiers: Any = None, build_index: bool = True) -> Any:
        """Build as GX does, then copy the vendored assets next to GX's own ``static/``."""
        result = super().build(resource_identifiers=resource_identifiers, build_index=build_index)
        root = getattr(self.target_store.store_backends.get("static_assets"), "full_base_directory", None)
        if root:
            install_vendor_assets(Path(root))
        else:
            log.warning("Data Docs site %r is not on a local filesystem: vendored assets not copied", self.site_name)
        return result
