"""Summarizer training throughput: our Trainer settings vs plain Trainer defaults, side by side.

Same model, same tokenized rows, same batch size and step count; only the settings differ:

* ``ours``: what ``reviewops.training`` uses — dynamic padding (to a multiple of 8 on GPU),
  bf16 autocast + TF32 + SDPA attention + length-grouped batches on a GPU (fp32 on CPU);
* ``ours-fp32`` (``--variants``): ours without bf16 autocast, to tell what autocast costs or saves;
* ``defaults``: ``TrainingArguments`` defaults (fp32, random batches) with eager attention and
  every batch padded to the longest example of the data set (a fixed-shape pipeline).

Reports real (non-padding) tokens/s, padded tokens/s, step time, peak GPU memory and the
model FLOPs utilization, MFU = 6 · params · real tokens/s / peak FLOP/s (peak from
``--peak-tflops`` or the GPU's name: H100/H200 bf16 dense 989 TFLOP/s; n/a on CPU). The first
``--warmup`` steps of each run are not timed.

    python benchmarks/train_throughput.py                      # GPU: 60 steps, batch 16
    python benchmarks/train_throughput.py --steps 4 --batch-size 4 --rows 64   # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("ours", "defaults", "ours-fp32")
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0}


def _peak_tflops(explicit: float | None) -> float | None:
    import torch

    if explicit:
        return explicit
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def _rows(settings, n_rows: int):
    from transformers import AutoTokenizer

    from reviewops.data.generate import generate_reviews
    from reviewops.models.pretrained import resolve_model_path
    from reviewops.training.summarizer import summarizer_rows

    base = resolve_model_path(settings.summarizer.model, settings)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    df = generate_reviews(n_rows * 2, seed=11)
    df = df[df["text"].str.len().between(20, 2000) & df["summary"].notna()].head(n_rows)
    return base, tokenizer, summarizer_rows(df, tokenizer, settings, "causal")


def _model(base, random_init: bool, **kwargs):
    """The summarizer from ``base``, or (``random_init``) the same architecture with seeded random weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if not random_init:
        return AutoModelForCausalLM.from_pretrained(str(base), **kwargs)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(base)), **kwargs)


class _Counting:
    """Collator wrapper that counts real and padded tokens of the batches it builds."""

    def __init__(self, collator):
        self.collator = collator
        self.real = []
        self.padded = []

    def __call__(self, features):
        batch = self.collator(features)
        self.real.append(int(batch["attention_mask"].sum()))
        self.padded.append(int(batch["attention_mask"].numel()))
        return batch


def run(
    variant: str, settings, base, tokenizer, rows, steps: int, batch_size: int, warmup: int, random_init: bool = False
) -> dict:
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from reviewops.training.common import Rows, load_kwargs, training_args

    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as out:
        if variant in ("ours", "ours-fp32"):
            model = _model(base, random_init, **load_kwargs())
            collator = DataCollatorForSeq2Seq(
                tokenizer, label_pad_token_id=-100, padding=True, pad_to_multiple_of=8 if cuda else None
            )
            prof = settings.train.active.model_copy(update={"batch_size": batch_size, "grad_accum": 1})
            no_autocast = {"bf16": False} if variant == "ours-fp32" else {}
            args = training_args(
                Path(out),
                prof,
                settings,
                5e-5,
                steps,
                has_eval=False,
                save_strategy="no",
                logging_steps=steps,
                **no_autocast,
            )
        else:
            model = _model(base, random_init, dtype=torch.float32, attn_implementation="eager")
            longest = max(len(r["input_ids"]) for r in rows)
            collator = DataCollatorForSeq2Seq(
                tokenizer, label_pad_token_id=-100, padding="max_length", max_length=longest
            )
            args = TrainingArguments(
                output_dir=out,
                max_steps=steps,
                per_device_train_batch_size=batch_size,
                report_to="none",
                save_strategy="no",
                disable_tqdm=True,
                logging_steps=steps,
                use_cpu=not cuda,
                label_names=["labels"],
            )
        counting = _Counting(collator)
        times: list[float] = []

        class Timer(TrainerCallback):
            def on_step_begin(self, *a, **k):
                if cuda:
                    torch.cuda.synchronize()
                self.t = time.perf_counter()

            def on_step_end(self, *a, **k):
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - self.t)

        if cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer = Trainer(model=model, args=args, data_collator=counting, train_dataset=Rows(rows), callbacks=[Timer()])
        trainer.train()
        n_params = sum(p.numel() for p in model.parameters())
    timed = slice(warmup, None)
    secs = sum(times[timed])
    # The collator runs one batch ahead of the step in the dataloader; pair counts with steps.
    real = sum(counting.real[: len(times)][timed])
    padded = sum(counting.padded[: len(times)][timed])
    return {
        "variant": variant,
        "steps_timed": len(times[timed]),
        "seconds": round(secs, 3),
        "step_ms": round(secs / max(1, len(times[timed])) * 1000, 1),
        "real_tokens_per_s": round(real / secs, 1),
        "padded_tokens_per_s": round(padded / secs, 1),
        "padding_share": round(1 - real / padded, 3) if padded else 0.0,
        "params": n_params,
        "model_tflops_per_s": round(6 * n_params * real / secs / 1e12, 3),
        "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "bf16": bool(args.bf16),
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "weights": "random (same architecture)" if random_init else "pretrained",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="Peak FLOP/s of the device in TFLOP/s (for MFU).")
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="Build the summarizer from its config.json with seeded random weights (no weight file needed: a "
        "step's time does not depend on the values; benchmarks/gpu_bundle.py ships only config and tokenizer).",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=["ours", "defaults"],
        help="Settings to time, side by side: ours, defaults, and ours-fp32 (ours without bf16 autocast: on a GPU, "
        "what autocast costs or saves). The ratio line compares the first two.",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if len(args.variants) < 2:
        parser.error("--variants: give at least two, to compare side by side")

    from reviewops.config import load_settings

    settings = load_settings(ROOT / "params.yaml")
    base, tokenizer, rows = _rows(settings, args.rows)
    peak = _peak_tflops(args.peak_tflops)
    warmup = min(args.warmup, args.steps - 1)
    results = [
        run(v, settings, base, tokenizer, rows, args.steps, args.batch_size, warmup, args.random_init)
        for v in args.variants
    ]
    for r in results:
        r["mfu"] = round(r["model_tflops_per_s"] / peak, 4) if peak else None
    print(
        f"\nmodel {base}, {len(rows)} rows, batch {args.batch_size}, {args.steps} steps "
        f"({args.warmup} warm-up), device {results[0]['device']}, peak {peak or 'n/a'} TFLOP/s, "
        f"weights {results[0]['weights']}\n"
    )
    print("| settings | step ms | real tokens/s | padded tokens/s | padding | model TFLOP/s | MFU | peak GPU GB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['variant']} | {r['step_ms']} | {r['real_tokens_per_s']} | {r['padded_tokens_per_s']} | "
            f"{r['padding_share']:.0%} | {r['model_tflops_per_s']} | {r['mfu'] if r['mfu'] is not None else 'n/a'} | "
            f"{r['peak_gpu_mem_gb'] if r['peak_gpu_mem_gb'] is not None else 'n/a'} |"
        )
    first, second = results[:2]
    ratio = first["real_tokens_per_s"] / second["real_tokens_per_s"]
    print(f"\n{first['variant']} / {second['variant']}, real tokens/s: {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
