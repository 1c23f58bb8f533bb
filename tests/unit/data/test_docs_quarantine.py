"""Unit tests for the Data Docs' quarantine explanation: the Markdown of the validation page's Quarantine block."""

from __future__ import annotations

from reviewops.data.docs_quarantine import quarantine_markdown


def test_quarantine_markdown_cases():
    base = {"input_rows": 100, "valid_rows": 90, "quarantined_rows": 8, "repeated_rows": 2, "max_failure_rate": 0.05}
    rejected = quarantine_markdown(
        {
            **base,
            "failure_rate": 0.08,
            "accepted": False,
            "failed_rules": 7,
            "top_failures": [{"rule": "field_count_mismatch", "rows": 1, "by": "reader"}],
            "quarantine_hint": "not named by the caller",
        }
    )
    assert rejected[0] == (
        "**Pipeline verdict: rejected.** 8 of 100 rows (8.0%) went to quarantine; the limit is 5.0% "
        "(`validation.max_failure_rate`). 90 rows valid; 2 rows repeated by the exporter, set aside."
    )
    assert rejected[1].endswith("only once the batch is under the limit.")
    assert rejected[2] == (
        "**Top reasons** (the 1 most frequent of 7 rules broken; a row can break several):\n\n"
        "- `field_count_mismatch`: 1 row (set aside by the reader, not a GX check)"
    )
    assert rejected[3] == "**Quarantine file:** not named by the caller."
    none = {"quarantined_rows": 0, "valid_rows": 100, "repeated_rows": 0, "accepted": True}
    clean = quarantine_markdown({**base, **none})
    assert clean[-1] == "No row was quarantined." and "accepted" in clean[0]
    early = quarantine_markdown({"table_failures": ["text"], "errors": []})
    assert early == [
        "**Pipeline verdict: rejected, nothing quarantined.** The batch failed a table-level check (required "
        "column(s) missing: `text`); every row would fail, so no row is quarantined. Map the columns in the "
        "ingest column mapping."
    ]
