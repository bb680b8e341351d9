"""`outreach demo` and `outreach serve` leave nothing running when they end, and keep third-party start-up noise
out of their output. Run as a user runs them: embedded PostgreSQL and Redis, a local Ray.

The command's whole tree is watched while it runs (Ray's agents are re-parented to init once Ray stops, so they
must be seen before), and the embedded servers, daemons that are nobody's child, are found by their working
folder under the command's OUTREACH_HOME."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

import aiohttp
import psutil
import pytest

from outreach.cli import free_port

NOISE = ("Token authentication is enabled", "SIGTERM handler is not set", "XDG_RUNTIME_DIR is not set",
         "RuntimeDirWarning")


def command_env(home) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "XDG_RUNTIME_DIR")}
    env.update(OUTREACH_HOME=str(home), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    return env


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tree_of(pid: int) -> set[psutil.Process]:
    found, parents = set(), [psutil.Process(pid)]
    while parents:
        try:
            children = parents.pop().children()
        except psutil.Error:
            continue
        found.update(children)
        parents += children
    return found


def servers_under(home) -> set[psutil.Process]:
    """The embedded redis-server and PostgreSQL processes working in `home`."""
    found = set()
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] in ("redis-server", "postgres") and process.cwd().startswith(str(home)):
                found.add(process)
        except psutil.Error:
            continue
    return found


class Watched:
    """A command and everything it started, seen while it ran."""

    def __init__(self, process: asyncio.subprocess.Process, home):
        self.process, self.home, self.seen = process, home, {}

    def look(self) -> None:
        with contextlib.suppress(psutil.Error):
            for process in tree_of(self.process.pid) | servers_under(self.home):
                self.seen.setdefault(process, name_of(process))

    async def watch_until_exit(self, timeout: float) -> str:
        reading = asyncio.ensure_future(self.process.stdout.read())
        async with asyncio.timeout(timeout):
            while self.process.returncode is None:
                self.look()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.process.wait(), 0.5)
        return (await reading).decode()

    def left_running(self) -> list[str]:
        return [name_of(process) for process in {*self.seen, *servers_under(self.home)} if alive(process)]

    def names_seen(self) -> list[str]:
        return list(self.seen.values())

    def kill_all(self) -> None:
        """Only after a failure: nothing of the test may outlive it."""
        for process in [*self.seen, *servers_under(self.home)]:
            with contextlib.suppress(psutil.Error):
                process.kill()


def name_of(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline()) or process.name()
    except psutil.Error:
        return str(process.pid)


async def start(args: list[str], home) -> Watched:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "outreach.cli", *args, env=command_env(home),
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    return Watched(process, home)


def assert_quiet(text: str) -> None:
    for noise in NOISE:
        assert noise not in text, f"{noise!r} in the command's output:\n{text[-3000:]}"


@pytest.mark.timeout(400)  # a local Ray and embedded servers started and stopped by the command
async def test_demo_leaves_no_process_behind_and_no_third_party_noise(tmp_path):
    command = await start(["demo", "--leads", "30"], tmp_path / "home")
    try:
        text = await command.watch_until_exit(timeout=240)
        assert command.process.returncode == 0, text[-3000:]
        assert "using embedded PostgreSQL and Redis under" in text  # the service's own lines stay
        assert "status: completed" in text and "processed: 30" in text
        assert_quiet(text)
        assert any("raylet" in name for name in command.names_seen())  # the watch saw the tree
        assert command.left_running() == []
    finally:
        command.kill_all()


async def healthy(port: int, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(180):
            while process.returncode is None:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
    raise AssertionError("serve ended before it answered /healthz")


@pytest.mark.timeout(400)  # a local Ray and embedded servers started and stopped by the command
async def test_serve_stops_its_whole_process_tree_on_sigterm(tmp_path):
    port = free_port()
    command = await start(["serve", "--port", str(port)], tmp_path / "home")
    try:
        await healthy(port, command.process)
        command.look()
        seen = command.names_seen()
        assert any("DashboardAgent" in name for name in seen), seen  # they outlive ray.shutdown() unless stopped
        assert any("redis-server" in name for name in seen) and any("postgres" in name for name in seen), seen
        command.process.send_signal(signal.SIGTERM)
        text = await command.watch_until_exit(timeout=120)
        assert command.process.returncode == 0, text[-3000:]
        assert "Outreach Runtime listening on" in text and '"message":"stopped"' in text.replace(" ", "")
        assert_quiet(text)
        assert command.left_running() == []
    finally:
        if command.process.returncode is None:
            command.process.kill()
        command.kill_all()


STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # like Ray's agents
if sys.argv[1] == "parent":
    child = subprocess.Popen([sys.executable, "-c", sys.argv[2], "child", sys.argv[2]], stdout=subprocess.DEVNULL)
    print(child.pid, flush=True)
    time.sleep(60)
else:
    time.sleep(60)
"""


async def test_the_tracker_stops_a_grandchild_that_ignores_sigterm_after_its_parent_is_gone():
    """What Ray's agents do: the parent (raylet) dies first, the child is re-parented to init and ignores SIGTERM."""
    from outreach import processes

    older = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    tracker = processes.Tracker(every=0.05).start()  # `older` ran before: not the tracker's (the session's Ray)
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", STUBBORN, "parent", STUBBORN,
                                                  stdout=asyncio.subprocess.PIPE)
    child = psutil.Process(int(await parent.stdout.readline()))
    tracker.look()  # seen while still our grandchild
    parent.kill()
    await parent.wait()
    assert alive(child) and child.ppid() != parent.pid  # orphaned, and no longer our descendant
    assert tracker.stop_all(grace=1.0) == []
    assert not alive(child)
    assert alive(psutil.Process(older.pid))  # still running: stop_all left it alone
    older.kill()
    await older.wait()
