"""The processes a command started, and stopping every one of them when it ends.

A local Ray leaves `ray::DashboardAgent` and `ray::RuntimeEnvAgent` behind when it stops: they ignore SIGTERM
and are re-parented to init, so they are no longer our descendants by then. And Ray stops on its own: a SIGTERM
to the command takes its raylet down at once, before any code of ours runs. So the command's tree is tracked
while it runs (Tracker), and at the end whatever of it outlived the orderly stops is terminated, then killed.
"""
from __future__ import annotations

import os
import threading

import psutil

GRACE_SECONDS = 3.0
TRACK_EVERY_SECONDS = 1.0


class Tracker:
    """Every process this one started once the tracker started, and theirs, as seen now and then while the
    command runs. Descendants that already ran at start are not its to stop (in a command there are none; in a
    test process they are the session's own servers)."""

    def __init__(self, every: float = TRACK_EVERY_SECONDS):
        self.every = every
        self.seen: dict[tuple, psutil.Process] = {}
        self._before: set[tuple] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._track, name="process-tracker", daemon=True)

    def start(self) -> "Tracker":
        self._before = {identity for identity, _ in identified(descendants())}
        self._thread.start()
        return self

    def look(self) -> None:
        for identity, process in identified(descendants()):
            if identity not in self._before:
                self.seen.setdefault(identity, process)

    def stop_all(self, grace: float = GRACE_SECONDS) -> list[psutil.Process]:
        """Stop tracking, then stop every process seen that still runs; returns the survivors."""
        self._done.set()
        self.look()
        return stop(list(self.seen.values()), grace)

    def _track(self) -> None:
        while not self._done.wait(self.every):
            self.look()


def descendants() -> list[psutil.Process]:
    """Every process this one started, and theirs, now. Walked one parent at a time: a process that ends during
    the walk (a Ray worker going idle) loses only its own branch, never the whole list."""
    found: list[psutil.Process] = []
    parents = [psutil.Process(os.getpid())]
    while parents:
        try:
            children = parents.pop().children()
        except psutil.Error:
            continue
        found += children
        parents += children
    return found


def identified(processes: list[psutil.Process]) -> list[tuple[tuple, psutil.Process]]:
    """Each process with its identity: a pid may be reused, so a process is its pid and its start time."""
    found = []
    for process in processes:
        try:
            found.append(((process.pid, process.create_time()), process))
        except psutil.Error:  # gone meanwhile
            continue
    return found


def stop(processes: list[psutil.Process], grace: float = GRACE_SECONDS) -> list[psutil.Process]:
    """SIGTERM those still running, SIGKILL those still running `grace` seconds later; returns the survivors
    (none, unless the kernel refuses)."""
    running = [process for process in processes if is_running(process)]
    for process in running:
        signal_quietly(process, "terminate")
    _, alive = psutil.wait_procs(running, timeout=grace)
    for process in alive:
        signal_quietly(process, "kill")
    _, alive = psutil.wait_procs(alive, timeout=grace)
    return [process for process in alive if is_running(process)]  # a zombie is dead (init may be slow to reap)


def stop_pid(pid: int | None, grace: float = GRACE_SECONDS) -> None:
    """`stop` for one process known by its id (a daemon that is nobody's child)."""
    if not pid:
        return
    try:
        stop([psutil.Process(pid)], grace)
    except psutil.NoSuchProcess:
        pass


def is_running(process: psutil.Process) -> bool:
    try:  # is_running() compares the start time too: a reused pid is not ours
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def signal_quietly(process: psutil.Process, how: str) -> None:
    try:
        getattr(process, how)()
    except psutil.Error:  # gone meanwhile
        pass
