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
import zlib
from typing import Iterator, NamedTuple, Optional

from ..errors import UsageError

# The patterns run in linear time on any line (checked by tests/test_hostile.py): the comm
# starts and ends with a non-blank, every quantifier that could give characters back to a
# neighbour of the same class is possessive (`*+`, `++`: Python 3.11), so a line of blanks,
# dashes or digits is rejected in one pass instead of being retried at every split.
TRACEFS_RE = re.compile(
    r"\s*+(\S.*?)-(\d++)\s++(?:\(\s*+[\d-]++\)\s++)?+\[(\d++)\]\s++(?:([^\s\[\]]{4,5})\s++)?"
    r"(\d++\.\d++):\s++([\w:]+):\s*+(.*)")
PERF_RE = re.compile(r"\s*+(\S(?:.*?\S)?)\s++(\d++)\s++\[(\d++)\]\s++(\d++\.\d++):\s++([\w:]+):\s*+(.*)")
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


MAX_LINE = 65_536  # characters; a record (even a 4 KiB trace_marker write) is far shorter
GZIP_MAGIC = b"\x1f\x8b"
READ_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def _compression(magic: bytes) -> Optional[str]:
    """The compressor other than gzip whose magic number starts the file, if any."""
    if magic.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if magic.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if magic[:3] == b"BZh" and magic[4:10] == b"1AY&SY":
        return "bzip2"
    return None


def _open(path: str):
    """The trace as text, gunzipped when its first bytes say gzip (whatever its name says)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(10)
        other = _compression(magic)
        if other:
            raise TraceError(f"{path}: compressed with {other}; decompress it (or gzip it) first")
        if magic.startswith(GZIP_MAGIC):
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise TraceError(f"{path}: cannot read the trace ({e.strerror})") from None


def read_error(path: str, e: BaseException) -> TraceError:
    """A failure while reading (a truncated or corrupt gzip, an I/O error) as one line."""
    if isinstance(e, EOFError):
        what = "the gzip data ends early (truncated file?)"
    elif isinstance(e, (gzip.BadGzipFile, zlib.error)):
        what = f"corrupt gzip data ({e})"
    else:
        what = e.strerror or str(e)
    return TraceError(f"{path}: cannot read the trace: {what}")


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
            n = 0
            try:
                for n, raw in enumerate(f, 1):
                    length = len(raw)
                    size += length
                    if length > MAX_LINE:
                        raise TraceError(f"{self.path}:{n}: a line of {length:,} characters; a trace record "
                                         f"has at most {MAX_LINE:,} (is this a text trace?)")
                    rec = fast(raw, n) if self.format is TRACEFS else None
                    if rec is None:
                        self.bytes_read = size
                        rec = self._slow(raw, n)
                        if rec is None:
                            continue
                    elif not n & 0x3FF:
                        self.bytes_read = size
                    yield rec
            except READ_ERRORS as e:
                raise read_error(f"{self.path}:{n + 1}" if n else self.path, e) from None
            self.bytes_read = size

    @staticmethod
    def _fast(raw: str, n: int, new=tuple.__new__):
        """tracefs records whose comm has no blank, with one str.split (about twice as fast as
        the regex); None for anything else, which the regex path then handles or reports."""
        parts = raw.split(None, 5)
        if len(parts) < 5:
            return None
        bracket = parts[1]
        if bracket[0] != "[" or bracket[-1] != "]" or bracket[1:2] == "-":  # no negative CPU
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
