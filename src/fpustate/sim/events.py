"""Trace records from raw tracefs text, `trace-cmd report` text and `perf script` text.

The format is detected from the first record line and kept for the file:
- tracefs: `comm-pid [cpu] flags ts: event: payload`, with a 4- or
  5-character flags column (or none, as `trace-cmd report` prints), an
  optional `(tgid)` column, a `#` comment header;
- `trace-cmd report`: the same record shape without flags, after
  `version = N` / `cpus=N` lines;
- `perf script`: `comm pid [cpu] ts: subsystem:event: payload`.

Comm names may contain blanks and dashes (the pid is the last `-digits` before
`[cpu]`); `<...>` and `<idle>` are kept as printed, the pid is the identity.
Files are read line by line (gzip too), so memory does not grow with the
trace. A line that is neither a comment, a known header nor a record is an
error naming the file, the line number and what was expected.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from typing import Iterator, NamedTuple, Optional

from ..errors import UsageError

TRACEFS_RE = re.compile(
    r"\s*(.+?)-(\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(\d+)\]\s+(?:([^\s\[\]]{4,5})\s+)?(\d+\.\d+):\s+([\w:]+):\s*(.*)")
PERF_RE = re.compile(r"\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+(\d+\.\d+):\s+([\w:]+):\s*(.*)")
HEADER_RE = re.compile(r"version = \d+|cpus=\d+|CPU \d+ is empty|CPU:\d+ \[LOST \d+ EVENTS\]")
LOST_RE = re.compile(r"CPU:\d+ \[LOST (\d+) EVENTS\]")

TRACEFS, PERF = "tracefs", "perf script"
EXPECTED = {
    None: "a trace record such as 'comm-pid [cpu] ts: event: payload' or 'comm pid [cpu] ts: event: payload'",
    TRACEFS: "a tracefs record 'comm-pid [cpu] flags ts: event: payload'",
    PERF: "a perf script record 'comm pid [cpu] ts: subsystem:event: payload'",
}


class Record(NamedTuple):
    line: int  # 1-based line number in the file
    pid: int
    comm: str
    cpu: int
    flags: str  # the irqs-off/need-resched/hardirq/preempt column ('' when absent)
    ts: str  # the timestamp as printed (seconds); the simulator orders by position, not by time
    event: str  # without the subsystem prefix
    payload: str


class TraceError(UsageError):
    """A malformed trace: one line naming the file, the line and what was expected."""


def _open(path: str):
    try:
        if path.endswith(".gz"):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise TraceError(f"{path}: cannot read the trace ({e.strerror})") from None


class TraceReader:
    """Iterates the records of one trace file; `lost` counts events the tracer reported lost,
    `bytes_read` and `size` drive a progress bar."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.format: Optional[str] = None
        self.lost = 0
        self.bytes_read = 0
        try:
            self.size = os.path.getsize(path)
        except OSError as e:
            raise TraceError(f"{path}: cannot read the trace ({e.strerror})") from None

    def __iter__(self) -> Iterator[Record]:
        fast = self._fast
        with _open(self.path) as f:
            size = 0
            for n, raw in enumerate(f, 1):
                size += len(raw)
                rec = fast(raw, n) if self.format is TRACEFS else None
                if rec is None:
                    self.bytes_read = size
                    rec = self._slow(raw, n)
                    if rec is None:
                        continue
                elif not n & 0x3FF:
                    self.bytes_read = size
                yield rec
            self.bytes_read = size

    @staticmethod
    def _fast(raw: str, n: int, new=tuple.__new__):
        """tracefs records whose comm has no blank, with one str.split (about twice as fast as
        the regex); None for anything else, which the regex path then handles or reports."""
        parts = raw.split(None, 5)
        if len(parts) < 5:
            return None
        bracket = parts[1]
        if bracket[0] != "[" or bracket[-1] != "]":
            return None
        ts = parts[2]
        if ts[-1] == ":":  # no flags column (trace-cmd report): re-split one field less
            parts = raw.split(None, 4)
            flags, event = "", parts[3]
            payload = parts[4].rstrip("\n") if len(parts) == 5 else ""
        else:
            flags, ts, event = ts, parts[3], parts[4]
            payload = parts[5].rstrip("\n") if len(parts) == 6 else ""
            if ts[-1] != ":":
                return None
        if event[-1] != ":":
            return None
        event = event[:-1]
        if ":" in event:
            event = event[event.rfind(":") + 1:]  # "sched:sched_switch" in some front-ends
        comm_pid = parts[0]
        dash = comm_pid.rfind("-")
        try:
            return new(Record, (n, int(comm_pid[dash + 1:]), comm_pid[:dash], int(bracket[1:-1]), flags, ts[:-1],
                                event, payload))
        except ValueError:
            return None

    def _slow(self, raw: str, n: int):
        line = raw.rstrip("\n")
        if "\x00" in line:
            raise TraceError(f"{self.path}:{n}: binary data; expected a text trace "
                             "(convert trace.dat with 'trace-cmd report -R')")
        fmt = self.format
        if fmt is not PERF:
            m = TRACEFS_RE.fullmatch(line)
            if m is not None:
                self.format = TRACEFS
                comm, pid, cpu, flags, ts, event, payload = m.groups()
                return Record(n, int(pid), comm.strip(), int(cpu), flags or "", ts, event.rpartition(":")[2], payload)
        if fmt is not TRACEFS:
            m = PERF_RE.fullmatch(line)
            if m is not None:
                self.format = PERF
                comm, pid, cpu, ts, event, payload = m.groups()
                return Record(n, int(pid), comm.strip(), int(cpu), "", ts, event.rpartition(":")[2], payload)
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return None
        if HEADER_RE.fullmatch(stripped):
            lost = LOST_RE.fullmatch(stripped)
            if lost:
                self.lost += int(lost.group(1))
            return None
        shown = stripped if len(stripped) <= 60 else stripped[:57] + "..."
        raise TraceError(f"{self.path}:{n}: expected {EXPECTED[self.format]}, got {shown!r}")
