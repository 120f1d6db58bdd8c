"""The partitioned search on this machine's cores: one forked process per partition.

Processes exchange each layer's successors directly, one joined buffer per
peer over a pipe, while a coordinator (the parent) sends the per-layer
commands and gathers statistics and keys (`parallel.ParallelExplorer`).
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from typing import Optional, Sequence

import numpy as np

from ..errors import InternalError, UsageError
from ..kernel.machine import Model
from ..kernel.properties import Property
from .partition import Partition, PartitionFailure
from .symmetry import Symmetry


def _exchange(me: int, buckets: tuple, outs: dict, ins: dict) -> list:
    """All-to-all: send each peer its buffer (in a thread) while reading the peers' buffers."""
    failed: list[Exception] = []

    def close_all() -> None:  # the peers' reads from this partition end (EOF), never hang
        for conn in (*outs.values(), *ins.values()):
            conn.close()

    def send() -> None:
        try:
            for j, conn in outs.items():
                for part in buckets[j]:
                    conn.send_bytes(part.reshape(-1).view(np.uint8))  # flat bytes: no copy
        except OSError:  # a peer died: reading from it ends in EOF, which is what gets reported;
            close_all()  # the other peers must not wait for the rest of this partition's buffers
        except Exception as e:  # fpustate failed here
            failed.append(e)
            close_all()

    sender = threading.Thread(target=send, daemon=True)  # never keeps a failing partition alive
    sender.start()
    got = list(buckets)
    try:
        for j, conn in ins.items():
            got[j] = tuple(conn.recv_bytes() for _ in buckets[j])
    except (EOFError, OSError):  # a peer died or closed: free the peers blocked sending to this one
        close_all()
        raise
    sender.join()
    if failed:
        raise failed[0]
    return got


def _serve(part: Partition, ctrl, outs: dict, ins: dict, others: tuple) -> None:
    """A partition process: run the coordinator's commands until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C
    for conn in others:  # the pipe ends of other pairs, inherited at fork: only their owners may hold
        conn.close()     # them, so that a partition that dies is an end-of-file to its peers, not a hang
    while True:
        try:
            cmd, args = ctrl.recv()
        except EOFError:  # the coordinator is gone
            return
        try:
            if cmd == "layer":
                stats, *buckets = part.expand(*args)
                count, represented, keyblob = part.absorb(*_exchange(part.me, buckets, outs, ins))
                ctrl.send(("ok", (stats, count, represented)))
                ctrl.send_bytes(keyblob)
            elif cmd == "seed":
                ctrl.send(("ok", part.seed(*args)))
            elif cmd == "lookup":
                ctrl.send(("ok", part.lookup(*args)))
            elif cmd == "upto":
                ctrl.send(("ok", part.upto(*args)))
            else:
                return
        except PartitionFailure as e:
            ctrl.send(("error", e))
            return
        except KeyboardInterrupt:  # raised by a hook or a test (SIGINT itself is ignored): an interrupt
            ctrl.send(("interrupted", None))
            return
        except (Exception, SystemExit) as e:  # fpustate failed, or a peer died: report, never hang
            ctrl.send(("error", PartitionFailure(None, f"{type(e).__name__}: {e}")))
            return


class LocalTransport:
    """N forked partition processes; successors go straight from process to process. They
    inherit the coordinator's `Symmetry` tables at fork instead of each building its own."""

    def __init__(self, model: Model, properties: Sequence[Property], sym: Symmetry, store: str, n: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.n = n
        pipes = {(i, j): ctx.Pipe(duplex=False) for i in range(n) for j in range(n) if i != j}
        self.ctrl, self.procs = [], []
        mine_ends = []
        for i in range(n):
            mine, theirs = ctx.Pipe()
            outs = {j: pipes[i, j][1] for j in range(n) if j != i}
            ins = {j: pipes[j, i][0] for j in range(n) if j != i}
            keep = set(map(id, outs.values())) | set(map(id, ins.values()))
            # (and the coordinator's end of its own control pipe: a coordinator killed outright is
            # an end-of-file to its partitions, which then exit instead of outliving it)
            others = (tuple(c for pair in pipes.values() for c in pair if id(c) not in keep) + tuple(mine_ends)
                      + (mine,))
            p = ctx.Process(target=_serve, args=(Partition(model, properties, sym, store, i, n), theirs, outs,
                                                 ins, others),
                            daemon=True, name=f"fpustate-partition-{i}")
            p.start()
            theirs.close()
            mine_ends.append(mine)
            self.ctrl.append(mine)
            self.procs.append(p)
        for conn in {c for pair in pipes.values() for c in pair}:
            conn.close()

    def _reply(self, i: int):
        try:
            status, value = self.ctrl[i].recv()
        except EOFError:
            p = self.procs[i]
            p.join(timeout=5)  # the pipe closes as the process dies: wait for its exit status
            if p.exitcode == -signal.SIGKILL:  # the kernel's OOM killer, or kill -9: not a bug of ours
                raise UsageError(f"partition process {i} was killed (SIGKILL: out of memory?); run a smaller "
                                 "scenario, --walks, or fewer --jobs (each partition holds its share)") from None
            raise InternalError(f"partition process {i} died (exit code {p.exitcode})") from None
        if status == "error":
            raise value
        if status == "interrupted":
            raise KeyboardInterrupt
        return value

    def seed(self) -> list[tuple]:
        return self._ask_all("seed")

    def layer(self, pending: list[str], keyblobs: Optional[list[bytes]], start: int) -> list[tuple]:
        for c in self.ctrl:
            c.send(("layer", (pending, keyblobs, start)))
        out, failures = [], []
        for i in range(self.n):  # every reply, so that the failure with a state is the one reported
            try:
                stats, count, represented = self._reply(i)
            except (PartitionFailure, InternalError) as e:
                failures.append(e)
                continue
            out.append((stats, count, represented, self.ctrl[i].recv_bytes()))
        if failures:  # a hook's failure first; its peers only saw it die
            raise min(failures, key=lambda e: getattr(e, "state", None) is None)
        return out

    def _ask_all(self, cmd: str, *args) -> list:
        for c in self.ctrl:
            c.send((cmd, args))
        return [self._reply(i) for i in range(self.n)]

    def lookup(self, g: int) -> int:
        return next(r for r in self._ask_all("lookup", g) if r is not None)

    def upto(self, g: int) -> list[tuple[int, int, int]]:
        return self._ask_all("upto", g)

    def close(self) -> None:
        for c, p in zip(self.ctrl, self.procs):
            if p.is_alive():
                try:
                    c.send(("stop", ()))
                except OSError:
                    pass
        for p in self.procs:
            p.join(timeout=2)
            if p.is_alive():
                p.terminate()
                p.join()
        for c in self.ctrl:
            c.close()
