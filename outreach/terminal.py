"""Watching a campaign's websocket feed in a terminal: a live progress bar, then the summary."""
from __future__ import annotations

import sys
import time

import orjson
import websockets

BAR_WIDTH = 30


def bar(done: int, total: int, label: str = "") -> str:
    """`\r[#####.....] done/total label`: one line a terminal redraws in place."""
    total = max(total, 1)
    filled = int(BAR_WIDTH * min(done, total) / total)
    return f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:,}/{total:,} {label}"


def progress_line(event: dict, started: float) -> str:
    total = max(event.get("total", 0), 1)
    processed = event.get("processed", 0)
    filled = int(BAR_WIDTH * processed / total)
    rate = processed / max(time.monotonic() - started, 1e-6)
    return (f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {processed}/{event.get('total', 0)}"
            f"  sent {event.get('succeeded', 0)}  failed {event.get('failed', 0)}"
            f"  skipped {event.get('skipped', 0)}  waiting {event.get('pending', 0)}  {rate:,.0f} leads/s ")


async def watch(url: str, token: str, out=sys.stdout, stop_on_done: bool = True) -> dict:
    """Follow the feed until a `done` event (or the socket closes); returns the last counts seen."""
    started, last, shown = time.monotonic(), {}, ""
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                  max_size=2**24) as socket:
        async for raw in socket:
            event = orjson.loads(raw)
            if event["type"] in ("snapshot", "progress", "done"):
                last = {**last, **event}
                line = progress_line(last, started)
                if line.split("  ")[:-1] != shown.split("  ")[:-1]:  # redraw only when counts change
                    out.write(line)
                    out.flush()
                    shown = line
            if event["type"] == "status":
                last["status"] = event["status"]
            if event["type"] == "done" and stop_on_done:
                break
    out.write("\n")
    return last


def summary_lines(final: dict, elapsed: float) -> list[str]:
    lines = [f"status: {final.get('status')}",
             f"leads: {final.get('total', 0)}  processed: {final.get('processed', 0)}  sent: {final.get('succeeded', 0)}"
             f"  failed: {final.get('failed', 0)}  skipped: {final.get('skipped', 0)}"
             f"  unknown: {final.get('unknown', 0)}  waiting: {final.get('pending', 0)}",
             f"elapsed: {elapsed:.1f} s"]
    if final.get("reason"):
        lines.append(f"reason: {final['reason']}")
    return lines
