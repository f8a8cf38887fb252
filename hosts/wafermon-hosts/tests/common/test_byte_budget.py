"""ByteBudget: requests take body bytes from a host-wide budget and wait (bounded) for room."""

from __future__ import annotations

import asyncio

import pytest

from wafermon_hosts.common.errors import ApiError
from wafermon_hosts.common.limits import ByteBudget


async def test_a_claim_waits_for_room_and_is_woken_by_a_release():
    budget = ByteBudget(100)
    order: list[str] = []

    async def request(name: str, size: int, hold: float) -> None:
        async with budget.claim() as claim:
            await claim.take(size)
            order.append(f"{name} in")
            await asyncio.sleep(hold)
        order.append(f"{name} out")

    first = asyncio.create_task(request("a", 80, 0.05))
    await asyncio.sleep(0)
    await asyncio.gather(first, request("b", 50, 0))
    assert order == ["a in", "a out", "b in", "b out"]
    assert budget.used == 0
    assert budget.waiting == 0


async def test_a_claim_alone_may_take_more_than_the_budget():
    budget = ByteBudget(10)
    async with budget.claim() as claim:
        await claim.take(50)  # one request up to the size cap always proceeds
        assert budget.used == 50
    assert budget.used == 0


async def test_waiting_too_long_is_503_with_retry_after_and_frees_nothing_it_did_not_take():
    budget = ByteBudget(100, wait_s=0.05)
    async with budget.claim() as holder:
        await holder.take(90)
        with pytest.raises(ApiError) as refused:
            async with budget.claim() as claim:
                await claim.take(20)
        assert refused.value.status == 503
        assert refused.value.headers["Retry-After"]
        assert budget.used == 90
        assert budget.waiting == 0
    assert budget.used == 0
