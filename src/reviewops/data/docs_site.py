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
  for versions and licences) to the site's ``static/vendor/`` and wires in the views below
  and the renderers of :mod:`reviewops.data.docs_quarantine` (the "Quarantine" block on a
  validation page, the Status legend on the index);
- :class:`OfflinePageView` / :class:`OfflineIndexPageView` render GX's templates, then
  :func:`localize_html` (the one function that patches GX's HTML) points each CDN link at
  the vendored copy, relative to the page.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from great_expectations.render.renderer.site_builder import SiteBuilder
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

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


_VIEW = {"module_name": __name__, "class_name": OfflinePageView.__name__}
_INDEX_VIEW = {"module_name": __name__, "class_name": OfflineIndexPageView.__name__}
_RENDERER = {"module_name": "reviewops.data.docs_quarantine", "class_name": "QuarantineValidationResultsPageRenderer"}
_INDEX_RENDERER = {"module_name": "reviewops.data.docs_quarantine", "class_name": "QuarantineSiteIndexPageRenderer"}


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
        index = {"class_name": "DefaultSiteIndexBuilder", "view": _INDEX_VIEW, "renderer": _INDEX_RENDERER}
        index.update(site_index_builder or {})
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
