"""Processes that must not outlive the run that started them.

`kill -9` of a batch gives it no chance to stop its helpers, so they are made to notice:
- worker processes of `--jobs N` ask the kernel for a parent-death signal (Linux `prctl`),
  and elsewhere watch their parent's pid;
- a local Ray instance's processes are watched by a small watchdog process that holds a pipe
  from the driver: when the pipe closes (the driver exited, however it died) it kills every
  process of that instance still alive. Ray's own fate-sharing ends its raylet and GCS with
  the driver, but not the agents they started.

This module imports only the standard library: the watchdog runs it as a script
(`python -I lifetime.py`), without importing the toolkit.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_INTERVAL_S = 0.5  # how often the watchdog looks for new processes of the instance


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, killed but not yet waited for, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _stat_fields(pid)[0:1] != ["Z"]


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, ... ([] if gone or not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return []


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks: with the pid, an identity that a reused pid lacks."""
    fields = _stat_fields(pid)
    return int(fields[19]) if len(fields) > 19 else None


def descendants(roots: set[int]) -> set[int]:
    """Every process below `roots` in the process tree now (not the roots themselves)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if len(fields) > 1:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# ---------------------------------------------------------------------------- pool workers

def die_with_parent(parent_pid: int) -> None:
    """Called first thing in a worker: end this process when `parent_pid` dies, even by SIGKILL."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


# ---------------------------------------------------------------------------- the watchdog

class Watchdog:
    """Kills `pids` and whatever they start when this process exits; `stop()` after a clean end."""

    def __init__(self, pids: set[int]):
        tracked = {pid: start_time(pid) for pid in pids}
        # -I: the script needs nothing but the standard library, whatever sys.path holds
        self.process = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.process.stdin.write(json.dumps({str(k): v for k, v in tracked.items()}).encode() + b"\n")
        self.process.stdin.flush()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the pipe: the watchdog kills what is left of its processes, then exits."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _watch(stream) -> None:
    """The watchdog's loop: learn the tracked processes' children until EOF, then kill them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; cleaning up is our job
    tracked = {int(k): v for k, v in json.loads(stream.readline()).items()}
    fd = stream.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], WATCH_INTERVAL_S)
        if ready and not os.read(fd, 4096):
            break  # EOF: the driver closed the pipe or died
        live = {pid for pid, started in tracked.items() if start_time(pid) == started}
        for pid in descendants(live):
            tracked.setdefault(pid, start_time(pid))
    for pid in descendants({pid for pid, started in tracked.items() if start_time(pid) == started}):
        tracked.setdefault(pid, start_time(pid))
    for pid, started in tracked.items():
        if started is not None and start_time(pid) == started:  # never a stranger that reused the pid
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    _watch(sys.stdin.buffer)
