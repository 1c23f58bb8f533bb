"""What the Data Docs say about the quarantine: the note ``validate_batch`` stores, and its rendering.

A validation page reads "Failed" whenever a row-level expectation found failing rows, which
is exactly when the pipeline quarantines those rows and carries on. :func:`quarantine_note`
is what ``validate_batch`` stores in the run's validation result (``meta[NOTE_KEY]``);
:class:`QuarantineValidationResultsPageRenderer` turns it into a "Quarantine" block under the
page's status line (the pipeline's verdict, the rows quarantined, the top reasons, the
quarantine file) and :class:`QuarantineSiteIndexPageRenderer` says on the index how to read
the Status column. Both are GX renderer hooks, wired in by
:class:`reviewops.data.docs_site.OfflineSiteBuilder`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from great_expectations.render import RenderedMarkdownContent, RenderedStringTemplateContent, TextContent
from great_expectations.render.renderer import SiteIndexPageRenderer, ValidationResultsPageRenderer

from reviewops.config import Settings
from reviewops.data.gx import NOTE_KEY

if TYPE_CHECKING:
    from reviewops.data.validation import ValidationResult


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


INDEX_LEGEND = (
    "**Reading the Status column:** a red cross means at least one expectation found failing rows. "
    "The pipeline quarantines exactly those rows and accepts the batch while they stay within "
    "`validation.max_failure_rate`; open a run for its verdict, the rows quarantined, why, and the quarantine file."
)


class QuarantineSiteIndexPageRenderer(SiteIndexPageRenderer):
    """GX's index page, with a line under the site title on how to read "Failed" here."""

    @classmethod
    def render(cls, index_links_dict: Any) -> Any:
        """Render as GX does, then insert :data:`INDEX_LEGEND` after the site title."""
        document = super().render(index_links_dict)
        if document is not None and document.sections and index_links_dict.get("validations_links"):
            legend = TextContent(
                content_block_type="text",
                text=[RenderedMarkdownContent(content_block_type="markdown", markdown=INDEX_LEGEND, styling={})],
                styling={"classes": ["col-12", "reviewops-index-legend"]},
            )
            document.sections[0].content_blocks.insert(1, legend)
        return document
