"""``outputs/.lock``: one report run at a time writes into an outputs folder.

The lock is an exclusive ``flock`` on the file, which the kernel releases when its process dies, so a
crashed run never blocks the next one; the file holds the owner's pid, host and start time for the
message a second run prints. A lock file left by a dead process is taken over with a notice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

from ..errors import CrmlibError


class LockedError(CrmlibError):
    """Another report run holds the outputs lock."""

    exit_code = 75  # EX_TEMPFAIL: try again later


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds, Linux ``/proc``), None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _owner_alive(info: dict) -> bool:
    """The pid in a lock file is a live process that could be its owner (not a recycled pid)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or not _pid_alive(pid):
        return False
    if info.get("host") not in (None, socket.gethostname()):
        return True  # another machine sharing the folder: assume it is alive
    started = info.get("started")
    begun = _process_start(pid)
    if started and begun is not None:
        try:
            return begun <= dt.datetime.fromisoformat(started).timestamp() + 1
        except ValueError:
            return True
    return True


class OutputsLock:
    def __init__(self, folder: Path, notice: Callable[[str], None] | None = None) -> None:
        self.path = Path(folder) / ".lock"
        self.notice = notice or (lambda _msg: None)
        self._fd: int | None = None

    def _read(self, fd: int) -> dict:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 4096).decode("utf-8", "replace").strip()
        except OSError:
            return {}
        if not text:
            return {}
        try:
            info = json.loads(text)
            return info if isinstance(info, dict) else {}
        except ValueError:  # an older or hand-written lock: just a pid
            return {"pid": int(text)} if text.isdigit() else {"raw": text[:100]}

    def _refuse(self, info: dict) -> None:
        pid = info.get("pid")
        who = f"pid {pid}" if pid else "another process"
        if info.get("host") and info["host"] != socket.gethostname():
            who += f" on {info['host']}"
        since = f", started {info['started']}" if info.get("started") else ""
        raise LockedError(
            f"Another report run ({who}{since}) is writing to {self.path.parent}; this run stopped without "
            f"writing anything. Wait for it to finish, or remove {self.path} if that process is not a report "
            "run, or use another outputs folder (CRMLIB_OUTPUTS)."
        ) from None

    def acquire(self) -> OutputsLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = self._read(fd)
                os.close(fd)
                self._refuse(info)
            # The file may have been removed (and maybe recreated) by the previous owner between our
            # open() and flock(): then we hold a lock on an orphan inode; start again.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = self._read(fd)
        if _owner_alive(previous):  # a live owner that does not flock (another machine, a hand-made lock)
            os.close(fd)
            self._refuse(previous)
        pid = previous.get("pid")
        if previous:
            state = "no longer running" if isinstance(pid, int) and not _pid_alive(pid) else "no longer holding it"
            self.notice(
                f"took over a stale lock {self.path} left by pid {pid or '?'} ({state}; "
                f"started {previous.get('started', '?')})"
            )
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)  # closing releases the flock
        self._fd = None

    def __enter__(self) -> OutputsLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
