"""What each byte of the state vector refers to, for symmetry reduction (`fpustate.check.symmetry`).

Permuting CPUs or task slots must rewrite every byte that names a CPU, a task slot, or a value
or PKRU tagged with its owner. Adding a field to `kernel.state`? Give it its kind here, or the
symmetry reduction is unsound (tests/test_symmetry.py checks that every byte has exactly one).
"""

from __future__ import annotations

from .state import (
    C_BH,
    C_CTX,
    C_CURR,
    C_FPREGS,
    C_IN_KFPU,
    C_OWNER,
    C_PKRU,
    C_PREEMPT,
    C_TS,
    C_XFD,
    C_XFD_STATE,
    G_FRAME,
    G_FRAME_PKRU,
    G_PKRU,
    G_SWAP_VALUE,
    G_VALUE,
    H_CLOBBERED,
    H_EXECS,
    H_EXITS,
    H_FORKS,
    H_NTASKS,
    H_PTRACE,
    H_SIGNALS,
    H_STALE_READ,
    H_TASK_BASE,
    H_XFD_NM,
    MAX_SIGFRAMES,
    T_CHILD,
    T_COUNTER,
    T_CPU,
    T_FPREGS_ACTIVE,
    T_FPSTATE,
    T_FPSTATE_ACTIVE,
    T_FPSTATE_HDR,
    T_KIND,
    T_LAST_CPU,
    T_LOCAL,
    T_NEED_LOAD,
    T_PC,
    T_PKRU,
    T_RUN,
    T_SIGDEPTH,
    T_SIGFRAME,
    T_SIGFRAME_HDR,
    T_SIGFRAME_PKRU,
    T_SIG_PKRU,
    T_SWAP_FPSTATE,
    T_SWAP_HDR,
    T_SWAP_XFD,
    T_SWAP_XSIZE,
    T_XFD,
    T_XPERM,
    T_XPKRU,
    T_XSIZE,
)

FIELD_DATA = "data"  # plain data: counters, flags, pcs, budgets
FIELD_CPU = "cpu"  # a CPU number, or NULL
FIELD_TASK = "task"  # a task slot, or NULL
FIELD_VALUE = "value"  # register/memory contents: INIT, KERNEL, GARBAGE or user_value(owner, version)
FIELD_PKRU = "pkru"  # PKRU_INIT or pkru_of(owner, version)
FIELD_TASK_PLUS1 = "task+1"  # 0 = none, 0xFF = NULL, else a task slot + 1 (a cached owner pointer)
FIELD_LOCAL = "local"  # T_LOCAL: what it holds is the design's (`Design.local_kind`)
FIELD_KINDS = (FIELD_DATA, FIELD_CPU, FIELD_TASK, FIELD_VALUE, FIELD_PKRU, FIELD_TASK_PLUS1)

HEADER_FIELDS = {
    H_TASK_BASE: FIELD_DATA, H_NTASKS: FIELD_DATA, H_FORKS: FIELD_DATA, H_EXECS: FIELD_DATA, H_EXITS: FIELD_DATA,
    H_CLOBBERED: FIELD_TASK, H_PTRACE: FIELD_DATA, H_SIGNALS: FIELD_DATA, H_STALE_READ: FIELD_TASK,
    H_XFD_NM: FIELD_TASK,
}
CPU_FIELDS = {
    C_FPREGS: FIELD_VALUE, C_OWNER: FIELD_TASK, C_PKRU: FIELD_PKRU, C_CURR: FIELD_TASK, C_CTX: FIELD_DATA,
    C_PREEMPT: FIELD_DATA, C_BH: FIELD_DATA, C_IN_KFPU: FIELD_DATA, C_TS: FIELD_DATA,
    C_XFD: FIELD_DATA, C_XFD_STATE: FIELD_DATA,
}
TASK_FIELDS = {
    T_KIND: FIELD_DATA, T_RUN: FIELD_DATA, T_PC: FIELD_DATA, T_LOCAL: FIELD_LOCAL, T_CPU: FIELD_CPU,
    T_FPSTATE: FIELD_VALUE, T_LAST_CPU: FIELD_CPU, T_NEED_LOAD: FIELD_DATA, T_FPREGS_ACTIVE: FIELD_DATA,
    T_FPSTATE_ACTIVE: FIELD_DATA, T_COUNTER: FIELD_DATA, T_PKRU: FIELD_PKRU, T_SIGDEPTH: FIELD_DATA,
    **{T_SIGFRAME + i: FIELD_VALUE for i in range(MAX_SIGFRAMES)},
    # 5.16+: AMX/XFD and KVM's other fpstate (guest values are user values of their vCPU task)
    T_XFD: FIELD_DATA, T_XSIZE: FIELD_DATA, T_XPERM: FIELD_DATA, T_SWAP_FPSTATE: FIELD_VALUE,
    T_SWAP_XFD: FIELD_DATA, T_SWAP_XSIZE: FIELD_DATA,
    # XSAVE headers and the PKRU slots (PKRU_HW_INIT and NULL are nobody's)
    T_FPSTATE_HDR: FIELD_DATA, T_XPKRU: FIELD_PKRU, T_SIG_PKRU: FIELD_PKRU, T_SWAP_HDR: FIELD_DATA,
    T_CHILD: FIELD_TASK,
    **{T_SIGFRAME_HDR + i: FIELD_DATA for i in range(MAX_SIGFRAMES)},
    **{T_SIGFRAME_PKRU + i: FIELD_PKRU for i in range(MAX_SIGFRAMES)},
}
GHOST_FIELDS = {
    G_VALUE: FIELD_VALUE, G_PKRU: FIELD_PKRU, **{G_FRAME + i: FIELD_VALUE for i in range(MAX_SIGFRAMES)},
    G_SWAP_VALUE: FIELD_VALUE, **{G_FRAME_PKRU + i: FIELD_PKRU for i in range(MAX_SIGFRAMES)},
}
