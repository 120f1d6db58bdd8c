"""The partitioned search on this machine's cores: one forked process per partition.

Processes exchange each layer's successors directly, one joined buffer per
peer over a pipe, while a coordinator (the parent) sends the per-layer
commands and gathers statistics and keys (`parallel.ParallelExplorer`).
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from typing import Callable, Optional, Sequence

from ..errors import InternalError
from ..kernel.machine import Model
from ..kernel.properties import Property
from .parallel import Partition, PartitionFailure


def _exchange(me: int, buckets: tuple, outs: dict, ins: dict) -> list:
    """All-to-all: send each peer its buffer (in a thread) while reading the peers' buffers."""
    def send() -> None:
        try:
            for j, conn in outs.items():
                conn.send_bytes(buckets[j][0])
                conn.send_bytes(buckets[j][1])
        except OSError:
            pass  # a peer died: reading from it ends in EOF, which is what gets reported

    sender = threading.Thread(target=send)
    sender.start()
    got = list(buckets)
    for j, conn in ins.items():
        got[j] = (conn.recv_bytes(), conn.recv_bytes())
    sender.join()
    return got


def _serve(part: Partition, ctrl, outs: dict, ins: dict, others: tuple) -> None:
    """A partition process: run the coordinator's commands until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C
    for conn in others:  # the pipe ends of other pairs, inherited at fork: only their owners may hold
        conn.close()     # them, so that a partition that dies is an end-of-file to its peers, not a hang
    while True:
        cmd, args = ctrl.recv()
        try:
            if cmd == "layer":
                stats, *buckets = part.expand(*args)
                count, keyblob = part.absorb(*_exchange(part.me, buckets, outs, ins))
                ctrl.send(("ok", (stats, count)))
                ctrl.send_bytes(keyblob)
            elif cmd == "seed":
                ctrl.send(("ok", part.seed(*args)))
            elif cmd == "lookup":
                ctrl.send(("ok", part.lookup(*args)))
            elif cmd == "upto":
                ctrl.send(("ok", part.transitions_upto(*args)))
            else:
                return
        except PartitionFailure as e:
            ctrl.send(("error", e))
            return
        except (Exception, SystemExit) as e:  # fpustate failed, or a peer died: report, never hang
            ctrl.send(("error", PartitionFailure(None, f"{type(e).__name__}: {e}")))
            return


class LocalTransport:
    """N forked partition processes; successors go straight from process to process.

    They partition by Python's own hash of the canonical state: forked from one process,
    they share its hash secret, so it agrees across them, and it is free (the lookup that
    found the state new computed it, and a bytes object caches it). BLAKE2b fingerprints
    cost about 1 µs more per routed state, 8 % of the work. Which partition owns a state
    changes nothing a run reports."""

    spread = staticmethod(hash)

    def __init__(self, model: Model, properties: Sequence[Property], key: Callable[[bytes], bytes], n: int) -> None:
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
            others = tuple(c for pair in pipes.values() for c in pair if id(c) not in keep) + tuple(mine_ends)
            p = ctx.Process(target=_serve, args=(Partition(model, properties, key, self.spread, i, n), theirs, outs,
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
            raise InternalError(f"partition process {i} died (exit code {self.procs[i].exitcode})") from None
        if status == "error":
            raise value
        return value

    def seed(self, owner: int, s: bytes) -> None:
        self.ctrl[owner].send(("seed", (s,)))
        self._reply(owner)

    def layer(self, pending: list[str], keyblobs: Optional[list[bytes]], start: int) -> list[tuple]:
        for c in self.ctrl:
            c.send(("layer", (pending, keyblobs, start)))
        out, failures = [], []
        for i in range(self.n):  # every reply, so that the failure with a state is the one reported
            try:
                stats, count = self._reply(i)
            except (PartitionFailure, InternalError) as e:
                failures.append(e)
                continue
            out.append((stats, count, self.ctrl[i].recv_bytes()))
        if failures:  # a hook's failure first; its peers only saw it die
            raise min(failures, key=lambda e: getattr(e, "state", None) is None)
        return out

    def _ask_all(self, cmd: str, arg) -> list:
        for c in self.ctrl:
            c.send((cmd, (arg,)))
        return [self._reply(i) for i in range(self.n)]

    def lookup(self, g: int) -> tuple[bytes, int]:
        return next(r for r in self._ask_all("lookup", g) if r is not None)

    def transitions_upto(self, g: int) -> int:
        return sum(self._ask_all("upto", g))

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
