"""Request limits, summarize budgets and chunks, FIFO admission (no models needed)."""

from __future__ import annotations

import asyncio
import time

import pytest

from reviewops.serving.errors import RequestError
from reviewops.serving.limits import (
    Admission,
    Shed,
    check_summarize_budget,
    check_texts,
    summarize_chunks,
    summarize_tokens,
)

LONG = "The roast is smooth and rich, the bag reseals well and it arrived two days early. " * 62  # ~5,000 chars


def test_check_texts_limits():
    check = check_texts
    texts, cut = check(["abcdef", "ok"], max_items=5, max_chars=4, on_too_long="truncate")
    assert texts == ["abcd", "ok"] and cut == [0]
    with pytest.raises(RequestError) as exc:
        check(["abcdef"], max_items=5, max_chars=4, on_too_long="reject")
    assert exc.value.status == 413 and "review 0" in exc.value.message
    with pytest.raises(RequestError) as exc:
        check(["a"] * 6, max_items=5, max_chars=4, on_too_long="truncate")
    assert exc.value.status == 413
    with pytest.raises(RequestError) as exc:
        check(["ok", "   "], max_items=5, max_chars=4, on_too_long="truncate")
    assert exc.value.status == 422 and "review 1" in exc.value.message


@pytest.mark.parametrize(
    "blank",
    [
        "\x00",
        "\x00\x00 \x00",
        "\u200b",
        "\u200b\u200d\u200c",
        "\ufeff\u00ad\u2060",
        "\u200e\u202e \t\n",
        "\x01\x7f\x9f",
    ],
)
def test_check_texts_rejects_texts_with_nothing_visible(blank):
    check = check_texts
    with pytest.raises(RequestError) as exc:
        check(["fine", blank], max_items=5, max_chars=100, on_too_long="truncate")
    assert exc.value.status == 422 and exc.value.message.startswith("review 1 is empty")
    # One visible character is enough, joiners included in an emoji sequence.
    texts, _ = check(["\u200bok\x00", "👨\u200d👩\u200d👧"], max_items=5, max_chars=100, on_too_long="truncate")
    assert texts == ["\u200bok\x00", "👨\u200d👩\u200d👧"]


def test_admission_is_fifo_and_bounded():
    async def scenario():
        adm = Admission("t", capacity=2, max_queued=2, max_wait_s=5)
        assert await adm.acquire(2) == 2
        granted: list[str] = []

        async def waiter(name, units):
            taken = await adm.acquire(units)
            granted.append(name)
            return taken

        big = asyncio.ensure_future(waiter("big", 9))  # more than the capacity: takes all of it
        await asyncio.sleep(0)
        small = asyncio.ensure_future(waiter("small", 1))
        await asyncio.sleep(0)
        assert adm.queued == 2
        with pytest.raises(Shed) as shed:
            await adm.acquire(1)
        assert shed.value.reason == "queue_full" and shed.value.retry_after >= 1
        adm.release(2)
        assert await big == 2 and not small.done()  # FIFO: the small one does not overtake
        adm.release(2)
        assert await small == 1 and granted == ["big", "small"]
        adm.release(1)
        assert adm.in_flight == 0 and adm.queued == 0

    asyncio.run(scenario())


def test_admission_wait_is_bounded_and_cancellable():
    async def scenario():
        adm = Admission("t", capacity=1, max_queued=5, max_wait_s=0.2)
        await adm.acquire(1)
        start = time.monotonic()
        with pytest.raises(Shed) as shed:
            await adm.acquire(1)
        assert shed.value.reason == "queue_timeout" and 0.15 < time.monotonic() - start < 1
        with pytest.raises(Shed) as shed:
            await adm.acquire(1, deadline=time.monotonic() + 0.05)
        assert shed.value.reason == "deadline"
        gone = asyncio.ensure_future(adm.acquire(1))
        await asyncio.sleep(0.01)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert adm.queued == 0
        adm.release(1)
        async with adm.slot(1):
            assert adm.in_flight == 1
        assert adm.in_flight == 0

    asyncio.run(scenario())


def test_summarize_budget_and_chunks():
    tokens = summarize_tokens(["short review", LONG, "味道很好" * 100], 256, "Title: {text}")
    assert tokens[0] < 10 and tokens[1] == tokens[2] == 256 + 2  # capped at max_source_tokens, + the prompt
    check_summarize_budget(tokens, sum(tokens))
    with pytest.raises(RequestError) as exc:
        check_summarize_budget(tokens, sum(tokens) - 1)
    assert exc.value.status == 413
    chunks = summarize_chunks([100] * 20 + [300], max_items=8, max_tokens=800)
    assert chunks == [list(range(8)), list(range(8, 16)), list(range(16, 20)), [20]]
