"""The streaming reader on GBK/GB18030 and UTF-16 exports: partitions equal the UTF-8 file's, chunk for chunk.

Chinese Excel and Windows tools write GBK (read as GB18030, its superset); Excel's "Unicode
text" is UTF-16 with a BOM. The same reviews (Chinese and English, quoted fields with commas and
line breaks, a duplicate, an empty text) are written in each encoding and read by
:func:`reviewops.scoring.prepare.iter_partitions` in chunks of a few records, with pyarrow's CSV
block cut to a few hundred bytes so block edges fall inside multi-byte characters and inside
quoted fields. Every partition must equal the UTF-8 file's (texts, languages, buckets, reasons),
and the fast (pyarrow) reader must have read the well-formed files to the end: a transcoding
bug would otherwise hide behind the exact reader's fallback.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reviewops.config import PathsConfig, Settings
from reviewops.scoring import chunks
from reviewops.scoring.chunks import open_source
from reviewops.scoring.prepare import Partition, iter_partitions

CHUNK = 7  # records per partition: 60 records give 9 partitions
SMALL_BLOCK = 257  # bytes per pyarrow CSV block: odd, so edges split GBK pairs and UTF-16 units
CHINESE = [
    "快递太慢了，等了一个星期，包装也破了。",
    "味道很好，价格实惠，会回购。",
    "质量一般，和描述不太一样。",
    "客服态度很好，问题很快解决了。",
    "非常满意，强烈推荐给大家！",
    "屏幕很清晰，但是电池不耐用，充一次电只能用半天。",
]
ENGLISH = [
    "Great value for the price, would buy again.",
    'The box arrived "crushed", but the blender works fine.',
    "Terrible customer service, never ordering again",
    "Works as described and shipping was quick enough for me.",
]
# Encodings as written -> the name detect_encoding gives them.
ENCODINGS = {"gbk": "gb18030", "utf-16": "utf-16", "utf-8-sig": "utf-8-sig"}


def _reviews(n: int = 60) -> list[dict[str, str]]:
    """Chinese and English reviews; some with a comma and a line break inside (quoted), one repeat, one empty."""
    rows = []
    for i in range(1, n + 1):
        text = CHINESE[i % len(CHINESE)] if i % 2 else ENGLISH[i // 2 % len(ENGLISH)]
        text = f"{text} #{i}"
        if i % 9 == 0:
            text += "\n第二行：还行, second line"
        if i == 31:
            text = ""  # quarantined after cleaning, in every encoding alike
        rows.append({"review_id": f"r{i}", "product_id": f"SKU{i % 4}", "text": text, "rating": str(1 + i % 5)})
    rows.append({**rows[10], "review_id": "r-dup"})  # the same text again: a duplicate
    return rows


def _write(root: Path, encoding: str) -> Path:
    """The reviews as ``<root>/<encoding>/reviews.csv`` (CRLF line ends, as Excel writes them)."""
    folder = root / encoding
    folder.mkdir()
    path = folder / "reviews.csv"
    text = pd.DataFrame(_reviews()).to_csv(index=False, lineterminator="\r\n")
    path.write_bytes(text.encode(encoding))
    return path


def _settings(root: Path) -> Settings:
    return Settings(
        paths=PathsConfig(
            interim_dir=root / "interim", gx_dir=root / "gx", reports_dir=root / "reports", quarantine_dir=root / "q"
        )
    )


@pytest.fixture
def small_blocks(monkeypatch) -> dict[str, int]:
    """pyarrow reads in blocks of :data:`SMALL_BLOCK` bytes; counts the exact reader's takeovers."""
    monkeypatch.setattr(chunks, "_BLOCK_BYTES", SMALL_BLOCK)
    calls = {"exact": 0}
    exact = chunks._exact_csv_chunks

    def counted(*args, **kwargs):
        calls["exact"] += 1
        return exact(*args, **kwargs)

    monkeypatch.setattr(chunks, "_exact_csv_chunks", counted)
    return calls


def _partitions(root: Path, path: Path) -> list[Partition]:
    return list(iter_partitions(_settings(root), path=path, batch="enc", chunk_rows=CHUNK))


def _assert_same_partitions(got: list[Partition], expected: list[Partition]) -> None:
    assert [p.input_rows for p in got] == [p.input_rows for p in expected]
    for g, e in zip(got, expected, strict=True):
        for name in ("clean", "quarantined", "duplicates"):
            pd.testing.assert_frame_equal(getattr(g, name), getattr(e, name), obj=f"partition {e.index} {name}")


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_encoded_export_streams_like_its_utf8_twin(tmp_path, small_blocks, encoding):
    utf8 = _write(tmp_path, "utf-8")
    other = _write(tmp_path, encoding)
    assert open_source(other).encoding == ENCODINGS[encoding]
    raw = list(open_source(other).chunks(CHUNK))
    assert len(raw) == 9 and sum(c.records for c in raw) == 61
    assert [t for c in raw for t in c.df["text"].fillna("")] == [r["text"] for r in _reviews()]  # as written
    assert small_blocks["exact"] == 0  # pyarrow read the whole file: no fallback hid a decoding error

    expected, got = _partitions(tmp_path, utf8), _partitions(tmp_path, other)
    _assert_same_partitions(got, expected)
    texts = [t for p in got for t in p.clean["text"]]
    assert "味道很好,价格实惠,会回购。 #1" in texts  # NFKC: full-width commas read as ASCII ones
    assert 'The box arrived "crushed", but the blender works fine. #2' in texts  # quoted quotes and comma
    assert "客服态度很好,问题很快解决了。 #9 第二行:还行, second line" in texts  # quoted line break and comma
    languages = set(pd.concat([p.clean for p in got])["language"])
    assert {"zh", "en"} <= languages
    assert sum(len(p.clean) + len(p.quarantined) + len(p.duplicates) for p in got) == 61
    assert sum(len(p.duplicates) for p in got) == 1
    assert sum(len(p.quarantined) for p in got) == 1  # the empty text


@pytest.mark.parametrize("encoding", ["gbk", "utf-16"])
def test_ragged_record_mid_file_hands_over_at_the_same_record(tmp_path, small_blocks, encoding):
    """A record with an extra field at record 40: pyarrow stops, the exact reader resumes after the
    last record handed out, in the file's encoding; partitions and the set-aside record match UTF-8."""

    def write_ragged(enc: str) -> Path:
        path = _write(tmp_path, enc)
        text = path.read_bytes().decode(enc).replace("r40,SKU0,", "r40,SKU0,extra,", 1)
        path.write_bytes(text.encode(enc))
        return path

    utf8, other = write_ragged("utf-8"), write_ragged(encoding)
    expected, got = _partitions(tmp_path, utf8), _partitions(tmp_path, other)
    assert small_blocks["exact"] >= 2  # one takeover per file
    _assert_same_partitions(got, expected)
    quarantined = pd.concat([p.quarantined for p in got])
    ragged = quarantined[quarantined["reason"] == "field_count_mismatch"]
    assert ragged["source_row"].tolist() == [40]
    assert "extra" in ragged["raw_record"].iloc[0]
