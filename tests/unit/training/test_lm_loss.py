"""Target-only causal-LM loss: equal to the model's own loss and gradients; frozen lower layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from reviewops.errors import ReviewOpsError
from reviewops.training.lm_loss import target_loss_matches, target_token_loss
from reviewops.training.summarizer import freeze_lower_layers, train_summarizer
from tests.unit.training.helpers import quick_settings, synthetic_processed


def _model_and_batch(causal_dir: Path) -> tuple[Any, dict[str, torch.Tensor]]:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(causal_dir), dtype=torch.float32)
    ids = torch.randint(5, model.config.vocab_size, (3, 12))
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0  # a right-padded row
    labels = torch.full_like(ids, -100)
    labels[0, 7:] = ids[0, 7:]
    labels[1, 4:10] = ids[1, 4:10]
    labels[2, 6:9] = ids[2, 6:9]
    return model, {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _grads(model: Any) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def test_target_loss_equals_the_models_loss_and_gradients(tiny: dict[str, Path]) -> None:
    model, batch = _model_and_batch(tiny["causal"])
    model.train()
    full = model(**batch).loss
    full.backward()
    expected = _grads(model)
    fast = target_token_loss(model, batch)
    fast.backward()
    got = _grads(model)
    assert fast.item() == pytest.approx(full.item(), abs=1e-6)
    assert expected.keys() == got.keys() and len(got) > 5
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, atol=1e-6, rtol=1e-5, msg=name)
    # Normalised by a token count (gradient accumulation): sum / count.
    count = int((batch["labels"][:, 1:] != -100).sum())
    halved = target_token_loss(model, batch, num_items=2 * count).item()
    assert halved == pytest.approx(full.item() / 2, abs=1e-6)
    assert target_loss_matches(model, batch) and model.training  # the check leaves the mode as it was


def test_a_model_without_a_separate_output_layer_falls_back() -> None:
    class Plain(torch.nn.Module):
        def forward(self, **_: Any) -> Any:  # pragma: no cover - never called
            raise AssertionError

    assert not target_loss_matches(Plain(), {})
    with pytest.raises(ValueError, match="no separate decoder"):
        target_token_loss(Plain(), {})


def test_freeze_lower_layers_fixes_embeddings_and_the_bottom_of_the_stack(tiny: dict[str, Path]) -> None:
    model, _ = _model_and_batch(tiny["causal"])
    assert freeze_lower_layers(model, 0) == 0 and all(p.requires_grad for p in model.parameters())
    assert freeze_lower_layers(model, 1) == 1
    layers = model.get_decoder().layers
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for p in layers[1].parameters())
    assert not model.get_input_embeddings().weight.requires_grad
    assert freeze_lower_layers(model, 99) == len(layers)
    with pytest.raises(ReviewOpsError, match="cannot find the decoder layers"):
        freeze_lower_layers(torch.nn.Linear(2, 2), 1)


def test_training_with_frozen_layers_changes_only_the_upper_ones(tmp_path: Path, tiny: dict[str, Path]) -> None:
    from safetensors.torch import load_file

    df = synthetic_processed(24)
    settings = quick_settings(tmp_path, tiny["causal"], tiny["encoder"], summarizer_max_steps=2, eval_steps=1)
    settings = settings.model_copy(update={"summarizer": settings.summarizer.model_copy(update={"freeze_layers": 1})})
    result = train_summarizer(settings, df[:16], df[16:], tmp_path / "out")
    before = load_file(str(tiny["causal"] / "model.safetensors"))
    after = load_file(str(Path(result.model_dir) / "model.safetensors"))
    assert torch.equal(before["model.layers.0.mlp.up_proj.weight"], after["model.layers.0.mlp.up_proj.weight"])
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert not torch.equal(before["model.layers.1.mlp.up_proj.weight"], after["model.layers.1.mlp.up_proj.weight"])
    assert result.metrics["train/loss"] > 0
