"""Checkpoints of long checker runs: saved at BFS layer boundaries, resumed exactly.

`fpustate check --checkpoint DIR` keeps, per design, `DIR/<design>/manifest.json`
and one `layer-NNNNNN.npz` with the run's position at a layer boundary: the
parent and action-position arrays, the frontier, the visited store
(fingerprints, or the exact states), the counters and the violations found.
`--resume DIR` restores it and continues, so the final counts, depths and
counterexamples are those of an uninterrupted run; Ctrl-C saves the last layer
boundary before exiting.

Writes are atomic: the data file is written under a new name, synced and
renamed; then the manifest that names it is replaced the same way; only then is
the previous data file removed. A crash leaves the previous checkpoint whole.

A checkpoint records what it was made with (design and a digest of its code,
scenario, properties, symmetry, store, format): resuming with anything else,
or from a directory that holds no checkpoint, is a one-line error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

from .. import __version__
from ..designs.base import HOOKS, Design
from ..errors import UsageError

FORMAT = "fpustate-checkpoint"
VERSION = 1
INTERVAL = 30.0  # seconds between saves at layer boundaries (the final state and Ctrl-C always save)
META = ("depth", "transitions", "expanded", "seconds", "found", "done", "complete", "stopped", "represented")


def design_digest(d: Design) -> str:
    """A digest of the design's hooks: their names and compiled code (a changed hook changes it)."""
    h = hashlib.blake2b(digest_size=12)

    def feed(obj) -> None:
        if isinstance(obj, tuple):  # steps
            for x in obj:
                feed(x)
            return
        fn = getattr(obj, "fn", None)
        if fn is not None and hasattr(obj, "name"):
            h.update(obj.name.encode())
            feed(fn)
            return
        func = getattr(obj, "func", None)  # functools.partial
        if func is not None:
            h.update(repr(sorted(obj.keywords.items())).encode())
            feed(func)
            return
        code = getattr(obj, "__code__", None)
        h.update(getattr(obj, "__qualname__", repr(obj) if code is None else "").encode())
        if code is not None:
            h.update(code.co_code)
            h.update(repr(code.co_consts).encode())

    for hook in HOOKS:
        feed(getattr(d, hook))
    h.update(f"{d.has_pkru}{d.valid_while_live}{d.local_kind}".encode())
    return h.hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


class Checkpoint:
    """The checkpoint of one design's run in `root`."""

    def __init__(self, root: str, explorer, resume: bool, interval: float = INTERVAL, tag: Optional[str] = None) -> None:
        self.root, self.flag = Path(root), "--resume" if resume else "--checkpoint"
        m = explorer.model
        self.dir = self.root / _safe(tag or m.design.name)
        self.resume, self.interval, self.last = resume, interval, time.monotonic()
        self.identity = {
            "design": m.design.name, "design_digest": design_digest(m.design), "scenario": asdict(m.scenario),
            "properties": [p.name for p in explorer.properties],
            "symmetry": explorer.sym.describe() if explorer.sym else "off", "store": explorer.store,
        }

    # ---------------------------------------------------------------- root checks
    @staticmethod
    def check_root(root: str, resume: bool) -> None:
        """One-line errors for a directory that cannot hold or does not hold a checkpoint."""
        p, flag = Path(root), "--resume" if resume else "--checkpoint"
        if p.exists() and not p.is_dir():
            raise UsageError(f"{flag} {root}: not a directory")
        if resume:
            if not p.is_dir():
                raise UsageError(f"{flag} {root}: no such directory")
            if not any((c / "manifest.json").is_file() for c in p.iterdir() if c.is_dir()):
                raise UsageError(f"{flag} {root}: not an fpustate checkpoint (no <design>/manifest.json in it)")

    # ---------------------------------------------------------------- load / save
    def load(self) -> Optional[dict]:
        """The saved snapshot to resume from, or None to start from boot."""
        manifest = self.dir / "manifest.json"
        if not self.resume:
            if manifest.exists():
                raise UsageError(f"{self.flag} {self.root}: already holds a checkpoint of {self.identity['design']}; "
                                 f"continue it with --resume {self.root}, or choose an empty directory")
            return None
        if not manifest.exists():
            return None  # this design had not started when the run stopped
        where = f"{self.flag} {self.root}: {manifest}"
        try:
            man = json.loads(manifest.read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"{where} is not a valid fpustate checkpoint ({e})") from None
        if not isinstance(man, dict) or man.get("format") != FORMAT:
            raise UsageError(f"{where} is not an fpustate checkpoint manifest")
        if man.get("version") != VERSION:
            raise UsageError(f"{where} has checkpoint format {man.get('version')!r}; "
                             f"fpustate {__version__} reads format {VERSION}")
        for key, want in self.identity.items():
            got = man.get("identity", {}).get(key)
            if isinstance(got, dict) and isinstance(want, dict):
                diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
                got, want = {k: got.get(k) for k in diff}, {k: want.get(k) for k in diff}
            if got != want:
                raise UsageError(f"{self.flag} {self.root}: the checkpoint of {self.identity['design']} was made with "
                                 f"{key} {_show(got)}, this run has {_show(want)}; resume with the same design and flags")
        try:
            with np.load(self.dir / man["data"], allow_pickle=False) as z:
                snap = {k: z[k] for k in z.files}
        except (OSError, KeyError, ValueError) as e:
            raise UsageError(f"{self.flag} {self.root}: the checkpoint data of {self.identity['design']} "
                             f"cannot be read ({e})") from None
        snap.update({k: man["meta"][k] for k in META})
        snap["found"] = [tuple(v) for v in snap["found"]]
        return snap

    def due(self, done: bool) -> bool:
        """Whether to save at this layer boundary: `interval` seconds after the last save, and
        always when the run is done."""
        return done or time.monotonic() - self.last >= self.interval

    def save(self, snap: dict) -> None:
        """Write `snap` atomically."""
        now = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        old = sorted(self.dir.glob("layer-*.npz"))
        name = f"layer-{snap['depth']:06d}-{len(snap['parent'])}.npz"
        arrays = {k: v for k, v in snap.items() if k not in META}
        tmp = self.dir / (name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / name)
        meta = {k: snap[k] for k in META}
        manifest = {"format": FORMAT, "version": VERSION, "fpustate": __version__, "identity": self.identity,
                    "data": name, "states": len(snap["parent"]), "meta": meta}
        tmp = self.dir / "manifest.json.tmp"
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / "manifest.json")
        for p in old:
            if p.name != name:
                p.unlink(missing_ok=True)
        self.last = now


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    raise TypeError(type(x).__name__)


def _show(v) -> str:
    if isinstance(v, dict):
        return " ".join(f"{k}={x}" for k, x in v.items())
    if isinstance(v, list):
        return ",".join(map(str, v)) or "-"
    return str(v)
