"""VoiceLine driven directly: one call at a time per line unless configured otherwise."""
from __future__ import annotations

import asyncio

from outreach.actors.voice_line import VoiceLine
from outreach.runtime.ports import CallRequest, SendResult


class ActiveCampaigns:
    def __init__(self, active: bool = True):
        self.active = active

    async def campaign_active(self, campaign_id) -> bool:
        return self.active


class CountingCaller:
    def __init__(self):
        self.in_call, self.most, self.calls = 0, 0, 0
        self.release = asyncio.Event()

    async def place_call(self, call: CallRequest) -> SendResult:
        self.in_call += 1
        self.calls += 1
        self.most = max(self.most, self.in_call)
        await self.release.wait()
        self.in_call -= 1
        return SendResult("sent", provider_id=f"CA{call.lead_id}", duration_seconds=42)


def request(index: int) -> CallRequest:
    return CallRequest(to=f"+1555000{index}", from_number="+15550000000", lead={}, script="", objection_handlers=[],
                       voice={}, campaign_id="c", lead_id=str(index))


async def start_calls(line: VoiceLine, caller: CountingCaller, count: int, expected_in_call: int) -> list:
    calls = [asyncio.create_task(line.call(request(index))) for index in range(count)]
    async with asyncio.timeout(5):
        while caller.in_call < expected_in_call:
            await asyncio.sleep(0)
    for _ in range(10):  # let any call that (wrongly) could start do so
        await asyncio.sleep(0)
    return calls


async def test_one_call_at_a_time_by_default():
    caller = CountingCaller()
    calls = await start_calls(VoiceLine("n1", ActiveCampaigns(), caller), caller, 4, expected_in_call=1)
    assert caller.most == 1
    caller.release.set()
    assert all(result.ok for result in await asyncio.gather(*calls))
    assert caller.most == 1 and caller.calls == 4


async def test_configured_concurrency():
    caller = CountingCaller()
    line = VoiceLine("n1", ActiveCampaigns(), caller, max_concurrent_calls=3)
    calls = await start_calls(line, caller, 5, expected_in_call=3)
    assert caller.most == 3
    caller.release.set()
    await asyncio.gather(*calls)


async def test_no_call_for_a_campaign_that_stopped():
    caller = CountingCaller()
    result = await VoiceLine("n1", ActiveCampaigns(active=False), caller).call(request(1))
    assert result.channel_blocked and caller.calls == 0
