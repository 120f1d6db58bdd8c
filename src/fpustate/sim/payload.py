"""Payload fields of the events the inference reads: `sched_switch` in each format's spelling
(key=value with or without ` ==> `, trace-cmd's compact form, 4.x numeric `prev_state`) and
`key=value` fields of the others; and the vocabulary the inference knows (kernel-thread
names, scheduler and x86_fpu events)."""

from __future__ import annotations

import re
from typing import Optional

from . import ops as O


class MalformedRecord(ValueError):
    """A known event whose payload does not have the expected fields."""


def field(payload: str, key: str, end: Optional[str] = None) -> str:
    i = payload.find(key)
    if i < 0:
        raise MalformedRecord(f"no '{key.strip()}' field")
    i += len(key)
    j = payload.find(end, i) if end else payload.find(" ", i)
    return payload[i:] if j < 0 else payload[i:j]


def prev_state(text: str) -> int:
    """How prev left the CPU, from a letter state (R, R+, S, D, X, Z, ...) or a 4.x number."""
    if text.isdigit():
        n = int(text)
        if n == 0 or n & 4096 or n == 256:  # TASK_RUNNING, or the 4.x "preempted" marker
            return O.PREV_RUNNABLE
        if n & (16 | 32 | 64):  # EXIT_DEAD, EXIT_ZOMBIE, TASK_DEAD
            return O.PREV_DEAD
        return O.PREV_BLOCKED
    if text.startswith("R"):
        return O.PREV_RUNNABLE
    if text[:1] in ("X", "Z"):
        return O.PREV_DEAD
    return O.PREV_BLOCKED


def parse_switch(payload: str) -> tuple[int, str, int, str]:
    """(prev_pid, prev_state, next_pid, next_comm) from any sched_switch format."""
    i = payload.find(" prev_pid=")
    if i >= 0:  # key=value form, with or without " ==> "; comms may contain blanks
        try:
            j = payload.index(" ", i + 10)
            prev_pid = int(payload[i + 10: j])
            i = payload.index(" prev_state=", j)
            j = payload.find(" ", i + 12)
            state = payload[i + 12: j]
            i = payload.index("next_comm=", j)
            j = payload.index(" next_pid=", i)
            next_comm = payload[i + 10: j]
            k = payload.find(" ", j + 10)
            next_pid = int(payload[j + 10: k] if k >= 0 else payload[j + 10:])
        except ValueError:
            raise MalformedRecord("expected 'prev_pid=N ... prev_state=S ... next_comm=C next_pid=N'") from None
        return prev_pid, state, next_pid, next_comm
    # trace-cmd's compact plugin form: "prev:pid [prio] STATE ==> next:pid [prio]"
    left, sep, right = payload.partition(" ==> ")
    if not sep:
        raise MalformedRecord("neither 'prev_pid=... next_pid=...' nor 'prev:pid [prio] S ==> next:pid [prio]'")
    lt, rt = left.split(), right.split()
    try:
        prev_pid = int(lt[0].rsplit(":", 1)[1])
        next_comm, next_pid = rt[0].rsplit(":", 1)
        return prev_pid, lt[-1], int(next_pid), next_comm
    except (IndexError, ValueError):
        raise MalformedRecord("unreadable compact sched_switch") from None


# The trace vocabulary the inference knows: kernel-thread names, scheduler and x86_fpu events.
KTHREAD_RE = re.compile(
    r"(swapper|kworker|ksoftirqd|migration|rcu_|rcub|rcuc|rcuo|cpuhp|jbd2|irq/|kswapd|kcompactd|khugepaged|"
    r"kdamond|kthreadd|watchdog|idle_inject|oom_reaper|writeback|kblockd|kintegrityd|ata_sff|scsi_|"
    r"usb-storage|khungtaskd|kauditd|kdevtmpfs|netns|mm_percpu_wq|ext4-|xfs|btrfs|kstrp|nvme|loop\d|"
    r"card\d|dhd_|kgsl|mmcqd|hwrng|ecryptfs|crypto|edac|kthrotld|acpi_thermal|ipv6_addrconf|devfreq|vmstat|"
    r"md\d|raid\d|dm_|kcryptd|kverityd|spi\d|i2c|psimon|kpktgend|krfcommd|bioset|napi/|sugov:|kpsmoused|"
    r"ttm|zswap|blkcg_punt|inet_frag|tpm_dev|kstrp|hci\d|cfg80211|kthrotld|pool_workqueue|mld|"
    r"khvcd|ksmd|kdmflush|kmpath|ipmi|kipmi|nfsd|lockd|rpciod|xprtiod|cifsd|ksgxd|kaluad|ib_|iw_cm)")

FPU_EVENTS = "x86_fpu_"
KNOWN = {"sched_switch", "sched_wakeup", "sched_waking", "sched_wakeup_new", "sched_migrate_task",
         "sched_process_fork", "sched_process_exec", "sched_process_exit", "sched_process_free",
         "sched_process_wait", "sched_stat_runtime", "sched_stat_wait", "sched_stat_sleep",
         "sched_stat_iowait", "sched_stat_blocked"}

QUIET = frozenset(("sched_wakeup", "sched_waking", "sched_wakeup_new", "sched_process_free", "sched_process_wait",
                   "sched_stat_runtime", "sched_stat_wait", "sched_stat_sleep", "sched_stat_iowait",
                   "sched_stat_blocked"))  # known events that change nothing the designs see
FPU_KNOWN = frozenset((
    "x86_fpu_regs_activated", "x86_fpu_regs_deactivated", "x86_fpu_copy_dst", "x86_fpu_dropped",
    "x86_fpu_before_save", "x86_fpu_after_save", "x86_fpu_xstate_check_failed", "x86_fpu_before_restore",
    "x86_fpu_after_restore", "x86_fpu_init_state", "x86_fpu_copy_src", "x86_fpu_state",
    "x86_fpu_activate_state", "x86_fpu_deactivate_state"))
