"""Unit tests for the offline, quarantine-aware Data Docs: link rewriting, the Quarantine block, a real site.

The site tests validate real batches with ``build_docs=True`` in a temporary GX project and
read the HTML GX wrote; the browser test (skipped without Chromium) opens the index with
every host name unresolvable and checks that the JavaScript table lists the run.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from reviewops.config import PathsConfig, Settings, ValidationConfig
from reviewops.data.docs_site import CDN_ASSETS, VENDOR_DIR, localize_html, page_depth
from reviewops.data.gx import NOTE_KEY
from reviewops.data.validation import ValidationResult, validate_batch
from reviewops.errors import ReviewOpsError

BATCH = "docs-batch"

# Tags and CSS that make a browser fetch something (links in <a href> are not fetched).
LOADED_REF = re.compile(
    r'<script\b[^>]*\bsrc="([^"]+)"|<link\b[^>]*\bhref="([^"]+)"|<img\b[^>]*\bsrc="([^"]+)"|url\(\s*[\'"]?([^\'")]+)'
)


def _row(i: int, **over) -> dict:
    row = {
        "review_id": f"r{i}",
        "product_id": f"p{i % 3}",
        "text": f"A perfectly fine review {i}",
        "summary": "Fine",
        "rating": 4.0,
        "timestamp": "2024-05-01T10:20:30Z",
        "language": "en",
        "category": "home",
        "source_file": "batch.csv",
        "source_row": i + 1,
    }
    row.update(over)
    return row


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Settings, ValidationResult, Path]:
    """A project with one validated batch (3 of 10 rows quarantined) and its Data Docs."""
    root = tmp_path_factory.mktemp("docs")
    settings = Settings(
        paths=PathsConfig(gx_dir=root / "gx", quarantine_dir=root / "q", interim_dir=root / "interim"),
        validation=ValidationConfig(max_failure_rate=0.5),
    )
    rows = [_row(i) for i in range(7)] + [
        _row(7, rating=9.0),
        _row(8, rating=0.0, language="xx"),
        _row(9, text="ab"),
    ]
    result = validate_batch(pd.DataFrame(rows), settings, BATCH, quarantine_path=root / "q" / f"{BATCH}.parquet")
    assert result.docs_path is not None
    return settings, result, result.docs_path.parent


def _pages(site_root: Path) -> list[Path]:
    return sorted(site_root.rglob("*.html"))


def _validation_page(site_root: Path, batch: str) -> Path:
    (page,) = (site_root / "validations" / "reviews_canonical" / batch).glob("*/*.html")
    return page


def test_no_page_loads_anything_from_the_network(site):
    _, _, root = site
    pages = _pages(root)
    assert {p.relative_to(root).parts[0] for p in pages} == {"index.html", "expectations", "validations"}
    for page in pages:
        html = page.read_text()
        refs = [next(g for g in m.groups() if g) for m in LOADED_REF.finditer(html)]
        assert len(refs) >= 15, page  # stylesheets, scripts, favicon, logo
        remote = [r for r in refs if r.startswith(("http:", "https:", "//"))]
        assert remote == [], (page, remote)
        assert "vega" not in html.split("<body>")[0]  # the dropped graph library


def test_every_local_reference_exists(site):
    _, _, root = site
    for page in _pages(root):
        html = page.read_text()
        refs = {next(g for g in m.groups() if g) for m in LOADED_REF.finditer(html)}
        refs |= set(re.findall(r'<a\b[^>]*\bhref="([^"#][^"]*\.html)"', html))  # index / suite / page links
        missing = [r for r in refs if not (page.parent / r.split("?")[0]).is_file()]
        assert missing == [], (page, missing)
        vendored = [r for r in refs if "/static/vendor/" in f"/{r}"]
        assert len(vendored) == 12, (page, vendored)  # 6 stylesheets + 6 scripts


def test_vendored_fonts_exist_and_sizes_stay_small():
    css = (VENDOR_DIR / "fontawesome-free-6.6.0" / "css" / "all.min.css").read_text()
    woff2 = set(re.findall(r"url\((\.\./webfonts/[^)]+\.woff2)\)", css))
    shipped = {f for f in woff2 if (VENDOR_DIR / "fontawesome-free-6.6.0" / "css" / f).is_file()}
    assert shipped == {"../webfonts/fa-solid-900.woff2", "../webfonts/fa-regular-400.woff2"}
    files = [p for p in VENDOR_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_100_000
    mapped = {v for v in CDN_ASSETS.values() if v}
    assert all((VENDOR_DIR / v).is_file() for v in mapped)
    # every package folder keeps its licence
    assert all(any(d.glob("LICENSE*")) for d in VENDOR_DIR.iterdir() if d.is_dir())


def test_index_lists_the_validation_run(site):
    _, _, root = site
    index = (root / "index.html").read_text()
    link = _validation_page(root, BATCH).relative_to(root).as_posix()
    # bootstrap-table's rows are embedded as data in the page; the browser test renders them
    assert f"'run_name': '{BATCH}'" in index
    assert f"'_table_row_link_path': '{link}'" in index
    assert "Reading the Status column:" in re.sub(r"<[^>]+>", "", index)


def test_validation_page_explains_the_quarantine(site):
    settings, result, root = site
    html = _validation_page(root, BATCH).read_text()
    text = re.sub(r"<[^>]+>", "", html)
    assert result.quarantined_rows == 3 and result.input_rows == 10 and result.success and not result.gx_success
    assert "Status:" in text and "Failed" in text
    assert "Pipeline verdict: accepted." in text
    assert "3 of 10 rows (30.0%) went to quarantine; the limit is 50.0%" in text
    assert "Why the status above reads Failed:" in text
    assert re.search(r"rating_in_range</code>: 2 rows", html)
    assert f"{settings.paths.quarantine_dir / BATCH}.parquet" in text
    # the note lives in the stored result, so a full rebuild shows it too
    stored = next((Path(settings.paths.gx_dir) / "gx" / "uncommitted" / "validations").rglob("*.json"))
    note = json.loads(stored.read_text())["meta"][NOTE_KEY]
    assert note["quarantined_rows"] == 3 and note["accepted"] is True
    assert note["top_failures"][0] == {"rule": "rating_in_range", "rows": 2, "by": "gx"}


def test_table_level_failure_gets_its_page_then_raises(site):
    settings, _, root = site
    with pytest.raises(ReviewOpsError, match="required column"):
        validate_batch(pd.DataFrame([_row(0)]).drop(columns=["text"]), settings, "no-text")
    text = re.sub(r"<[^>]+>", "", _validation_page(root, "no-text").read_text())
    assert "Pipeline verdict: rejected, nothing quarantined." in text and "text" in text


def test_localize_html_rewrites_drops_and_keeps():
    html = (
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>\n'
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js" '
        'integrity="sha384-x" crossorigin="anonymous"></script>\n'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>\n'
        '<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1&dataContextId=2"/>'
        "<style>a { background: url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
        "full_logo_dark.png') }"
        '</style><link rel="icon" href="../../../static/images/favicon.ico">'
        '<a href="https://greatexpectations.io">GX</a>'
    )
    out = localize_html(html, "../../")
    assert out == (
        '<link rel="stylesheet" href="../../static/vendor/bootstrap-4.3.1/css/bootstrap.min.css">\n'
        '<script src="../../static/vendor/popper.js-1.12.9/umd/popper.min.js"></script>\n'
        '<img src="../../static/images/logo-long.png"/>'
        "<style>a { background: url('../../static/images/logo-long.png') }"
        '</style><link rel="icon" href="../../static/images/favicon.ico">'
        '<a href="https://greatexpectations.io">GX</a>'
    )
    assert localize_html(out, "../../") == out  # idempotent


def test_unknown_cdn_asset_is_left_and_logged(caplog):
    html = '<script src="https://cdn.example.org/new-lib@1/lib.min.js"></script>'
    with caplog.at_level(logging.WARNING, logger="reviewops.data.docs_site"):
        assert localize_html(html, "") == html
    assert "CDN_ASSETS" in caplog.text


@pytest.mark.parametrize(
    ("renderer_type", "suite", "depth"),
    [
        ("ValidationResultsPageRenderer", "reviews_canonical", 4),
        ("ValidationResultsPageRenderer", "a.b", 5),
        ("ExpectationSuitePageRenderer", "reviews_canonical", 1),
        ("SiteIndexPageRenderer", None, 0),
    ],
)
def test_page_depth(renderer_type, suite, depth):
    assert page_depth(renderer_type, suite) == depth


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_index_renders_offline_in_chromium(site):
    """The index's table is drawn by bootstrap-table: it must list the run with every host unresolvable."""
    _, _, root = site
    cmd = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=5000",
        "--dump-dom",
        (root / "index.html").as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    link = _validation_page(root, BATCH).relative_to(root).as_posix()
    row = re.search(rf'<tr class="clickable-row" data-href="{re.escape(link)}"[^>]*>(.*?)</tr>', dom, re.S)
    assert row is not None, dom[-2000:]
    assert f">{BATCH}</td>" in row.group(1)
    assert "fa-times" in row.group(1)  # GX's "failed" icon, drawn by Font Awesome
