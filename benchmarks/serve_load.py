"""Load test of the BentoML service with adaptive batching on and off, on 127.0.0.1.

Starts ``bentoml serve reviewops.serving.service:ReviewAnalyzer`` once per batching mode with the
default models (``models/trained/{summarizer,sentiment}`` when trained, else the pulled
``models/smollm2-135m-instruct`` and ``models/all-minilm-l6-v2``), then drives ``/sentiment``
and ``/summarize`` with one review per request at several concurrency levels: a fixed number
of requests per level, bounded by a time cap (requests still running at the cap are
cancelled and counted as errors). Prints a markdown table (requests/s, p50/p95/p99 latency,
errors) and the on/off throughput ratio per level, and writes the numbers as JSON.

The pulled MiniLM is a sentence encoder without a 3-way head; when no trained sentiment model
exists, a copy with a freshly initialised 3-label head is saved to a temp dir: the labels are
meaningless but the compute per request is that of the real classifier.

Generation is slow on CPU (a 135M causal LM, 24 new tokens), so /summarize gets few requests.
When the pulled summarizer is not installed either, a tiny random causal LM stands in (noted in
the output); ``--tiny`` uses tiny random models for both.

Load phases (instead of the concurrency levels): ``--burst N`` sends N requests at once, one
connection each, like a client fan-out; ``--steady-seconds S --steady-concurrency C`` keeps C
clients sending back to back for S seconds. Each prints errors by kind (status code or
exception), p50/p95 latency of the answered ones and throughput.

    python benchmarks/serve_load.py                       # defaults below, ~5 min on 2 cores
    python benchmarks/serve_load.py --sentiment-requests 32 --summarize-requests 8 --levels 1,8
    python benchmarks/serve_load.py --modes on --burst 200 --steady-seconds 30 --steady-concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REVIEWS = [
    "Great coffee, smooth and rich. Will buy again.",
    "The box arrived crushed and half the cookies were broken.",
    "Tastes fine but way too expensive for what you get.",
    "My dog loves these treats, he sits by the cupboard every evening waiting for one.",
    "Stale. Expiry date was last month. Returned it.",
    "Not bad, not great. The flavour fades quickly once the bag is open.",
    "Best green tea I have found online; fresh, fragrant and the tin keeps it well sealed.",
    "味道很好，包装也很精美，会回购。",
    "Way too salty, could not finish the bag. The texture was nice though.",
    "Arrived quickly, well packed, exactly as described. The kids finished it in two days.",
    "I was sceptical about the price but the quality is clearly better than supermarket brands.",
    "Terrible customer service and the product leaked all over the other items in the parcel.",
]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def _post_one(client, path: str, i: int, latencies: list[float], errors: dict[str, int]) -> None:
    """POST review ``i``; record its latency when answered 200, else count the status or exception."""
    import httpx

    start = time.perf_counter()
    try:
        resp = await client.post(path, json={"text": REVIEWS[i % len(REVIEWS)]})
    except httpx.HTTPError as exc:
        errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        return
    if resp.status_code == 200:
        latencies.append(time.perf_counter() - start)
    else:
        errors[str(resp.status_code)] = errors.get(str(resp.status_code), 0) + 1


async def run_level(url: str, path: str, concurrency: int, n_requests: int, time_cap: float) -> dict:
    """``n_requests`` POSTs with at most ``concurrency`` in flight, stopped at ``time_cap`` seconds."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_index = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < n_requests:
            i = next_index
            next_index += 1
            await _post_one(client, path, i, latencies, errors)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=time_cap, limits=limits) as client:
        start = time.perf_counter()
        tasks = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        _, pending = await asyncio.wait(tasks, timeout=time_cap)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        elapsed = time.perf_counter() - start
    unfinished = n_requests - len(latencies) - sum(errors.values())
    if unfinished > 0:
        errors["unfinished_at_cap"] = unfinished
    return {
        "endpoint": path,
        "concurrency": concurrency,
        "requests": n_requests,
        "ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": round(_pct(latencies, 50) * 1000, 1),
        "p95_ms": round(_pct(latencies, 95) * 1000, 1),
        "p99_ms": round(_pct(latencies, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else float("nan"),
    }


async def run_burst(url: str, path: str, n_requests: int, timeout: float) -> dict:
    """``n_requests`` POSTs sent at once, one connection each (no client-side queueing)."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=n_requests, max_keepalive_connections=n_requests)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(_post_one(client, path, i, latencies, errors) for i in range(n_requests)))
        elapsed = time.perf_counter() - start
    return _summary("burst", path, n_requests, n_requests, latencies, errors, elapsed)


async def run_steady(url: str, path: str, concurrency: int, seconds: float, timeout: float) -> dict:
    """``concurrency`` clients, each sending its next request when the last is answered, for ``seconds``."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    end = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:

        async def worker(w: int) -> None:
            i = w
            while time.perf_counter() < end:
                await _post_one(client, path, i, latencies, errors)
                i += concurrency

        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - start
    return _summary("steady", path, concurrency, len(latencies) + sum(errors.values()), latencies, errors, elapsed)


def _summary(
    phase: str,
    path: str,
    concurrency: int,
    n_requests: int,
    latencies: list[float],
    errors: dict[str, int],
    elapsed: float,
) -> dict:
    return {
        "phase": phase,
        "endpoint": path,
        "concurrency": concurrency,
        "requests": n_requests,
        "ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": round(_pct(latencies, 50) * 1000, 1),
        "p95_ms": round(_pct(latencies, 95) * 1000, 1),
        "p99_ms": round(_pct(latencies, 99) * 1000, 1),
    }


def tiny_model_dirs(work: Path) -> tuple[Path, Path, str]:
    """Tiny random models (reviewops.testing.tiny) for both endpoints."""
    from reviewops.testing.tiny import build_tiny_causal_lm, build_tiny_encoder

    return (
        build_tiny_causal_lm(work / "tiny-sum"),
        build_tiny_encoder(work / "tiny-sent"),
        "tiny random models (reviewops.testing.tiny) for both",
    )


def default_model_dirs(work: Path) -> tuple[Path, Path, str]:
    """(summarizer dir, sentiment dir, note) following the lookup described in the module docstring."""
    from reviewops.config import load_settings
    from reviewops.errors import ReviewOpsError
    from reviewops.models.pretrained import resolve_model_path

    settings = load_settings(ROOT / "params.yaml")
    trained = ROOT / settings.paths.models_dir / "trained"
    notes = []
    if (trained / "summarizer" / "config.json").is_file():
        summarizer = trained / "summarizer"
    else:
        try:
            summarizer = Path(resolve_model_path(settings.summarizer.model, settings)).resolve()
        except ReviewOpsError:
            from reviewops.testing.tiny import build_tiny_causal_lm

            summarizer = build_tiny_causal_lm(work / "tiny-sum")
            notes.append(f"summarizer: tiny random causal LM ({settings.summarizer.model} is not installed)")
    if (trained / "sentiment" / "config.json").is_file():
        return summarizer, trained / "sentiment", "; ".join(["trained sentiment model", *notes])
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from reviewops.schema import LABELS

    base = Path(resolve_model_path(settings.sentiment.model, settings)).resolve()
    out = work / f"{base.name}-3label"
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base),
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={lab: i for i, lab in enumerate(LABELS)},
    )
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(out))
    return (
        summarizer,
        out,
        "; ".join([f"{base.name} with an untrained 3-label head (no trained sentiment model)", *notes]),
    )


def markdown(results: list[dict]) -> str:
    lines = [
        "| endpoint | batching | concurrency | requests | ok | errors | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if "phase" in r:
            continue
        lines.append(
            f"| {r['endpoint']} | {r['batching']} | {r['concurrency']} | {r['requests']} | {r['ok']} | "
            f"{r['errors']} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |"
        )
    by_key = {(r["endpoint"], r["concurrency"], r["batching"]): r for r in results if "phase" not in r}
    lines += ["", "| endpoint | concurrency | req/s on | req/s off | on/off |", "|---|---:|---:|---:|---:|"]
    for (endpoint, conc, mode), r_on in by_key.items():
        r_off = by_key.get((endpoint, conc, "off"))
        if mode != "on" or r_off is None:
            continue
        ratio = round(r_on["rps"] / r_off["rps"], 2) if r_off["rps"] else float("nan")
        lines.append(f"| {endpoint} | {conc} | {r_on['rps']} | {r_off['rps']} | {ratio} |")
    return "\n".join(lines)


def phases_markdown(results: list[dict]) -> str:
    lines = [
        "| phase | endpoint | batching | concurrency | requests | ok | errors (kinds) | req/s | p50 ms | p95 ms |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in results:
        if "phase" not in r:
            continue
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(r["error_kinds"].items())) or "-"
        lines.append(
            f"| {r['phase']} | {r['endpoint']} | {r['batching']} | {r['concurrency']} | {r['requests']} | "
            f"{r['ok']} | {r['errors']} ({kinds}) | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels for /sentiment")
    parser.add_argument("--sentiment-requests", type=int, default=96, help="requests per /sentiment level")
    parser.add_argument("--summarize-levels", default="1,8", help="concurrency levels for /summarize")
    parser.add_argument("--summarize-requests", type=int, default=12, help="requests per /summarize level")
    parser.add_argument("--time-cap", type=float, default=90.0, help="seconds per level before cancelling")
    parser.add_argument("--warmup", type=int, default=15, help="warm-up requests per endpoint (not measured)")
    parser.add_argument("--modes", default="on,off", help="batching modes to run (on,off)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "serve_load.json")
    parser.add_argument("--burst", type=int, default=0, help="load phase: N requests at once (replaces the levels)")
    parser.add_argument(
        "--steady-seconds",
        type=float,
        default=0.0,
        help="load phase: seconds of back-to-back requests (replaces the levels)",
    )
    parser.add_argument("--steady-concurrency", type=int, default=16, help="clients in the steady phase")
    parser.add_argument("--phase-endpoint", default="/sentiment", help="endpoint of the load phases")
    parser.add_argument("--tiny", action="store_true", help="tiny random models for both endpoints")
    args = parser.parse_args(argv)
    phases = bool(args.burst or args.steady_seconds)

    from reviewops.testing.server import serving

    with tempfile.TemporaryDirectory(prefix="reviewops-serve-load-") as tmp:
        work = Path(tmp)
        summarizer, sentiment, note = tiny_model_dirs(work) if args.tiny else default_model_dirs(work)
        print(f"summarizer: {summarizer}\nsentiment:  {sentiment} ({note})", file=sys.stderr)
        results: list[dict] = []
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            env = {
                "REVIEWOPS_SUMMARIZER_DIR": str(summarizer),
                "REVIEWOPS_SENTIMENT_DIR": str(sentiment),
                "REVIEWOPS_BATCHING": "1" if mode == "on" else "0",
                "BENTOML_HOME": str(work / "bentoml_home"),
            }
            env_no_token = {"REVIEWOPS_API_TOKEN": ""}
            t0 = time.perf_counter()
            with serving(
                env={**env, **env_no_token},
                log_path=args.out.with_name(f"{args.out.stem}-{mode}.log"),
                cwd=ROOT,
                ready_timeout=300,
            ) as server:
                print(f"[batching {mode}] ready in {time.perf_counter() - t0:.1f}s at {server.url}", file=sys.stderr)
                # Warm-up: BentoML's dispatcher first "trains" its latency model on ~15 calls with
                # batches of 1-3; concurrency 3 fills those batches at once instead of waiting.
                asyncio.run(run_level(server.url, "/sentiment", 3, args.warmup, args.time_cap))
                asyncio.run(run_level(server.url, "/summarize", 3, args.warmup, args.time_cap))
                if phases:
                    phase_results = []
                    if args.burst:
                        phase_results.append(
                            asyncio.run(run_burst(server.url, args.phase_endpoint, args.burst, args.time_cap))
                        )
                    if args.steady_seconds:
                        phase_results.append(
                            asyncio.run(
                                run_steady(
                                    server.url,
                                    args.phase_endpoint,
                                    args.steady_concurrency,
                                    args.steady_seconds,
                                    args.time_cap,
                                )
                            )
                        )
                    for res in phase_results:
                        res["batching"] = mode
                        results.append(res)
                        print(
                            f"  {res['phase']} {res['endpoint']} c={res['concurrency']}: {res['ok']}/"
                            f"{res['requests']} ok, errors {res['errors']} {res['error_kinds'] or ''}, "
                            f"{res['rps']} req/s, p50 {res['p50_ms']} ms, p95 {res['p95_ms']} ms",
                            file=sys.stderr,
                        )
                plan = (
                    []
                    if phases
                    else (
                        [("/sentiment", int(c), args.sentiment_requests) for c in args.levels.split(",")]
                        + [("/summarize", int(c), args.summarize_requests) for c in args.summarize_levels.split(",")]
                    )
                )
                for path, conc, n in plan:
                    res = asyncio.run(run_level(server.url, path, conc, n, args.time_cap))
                    res["batching"] = mode
                    results.append(res)
                    print(
                        f"  {path} c={conc}: {res['rps']} req/s, p50 {res['p50_ms']} ms, "
                        f"p95 {res['p95_ms']} ms, errors {res['errors']} {res['error_kinds'] or ''}",
                        file=sys.stderr,
                    )
    table = phases_markdown(results) if phases else markdown(results)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"results": results, "summarizer": str(summarizer), "sentiment": note, "argv": sys.argv[1:]}, indent=2
        ),
        encoding="utf-8",
    )
    print(f"\nwritten {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
