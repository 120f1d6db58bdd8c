"""`rfc2016` and `rfc2016-stale-flags`: Rik van Riel's Oct 2016 RFC on Linux v4.8.

"[PATCH RFC 0/5] x86,fpu: make FPU context switching much lazier" (2016-10-01),
as posted, applied to v4.8 in eager mode. Files: arch/x86/include/asm/fpu/internal.h
(switch_fpu_prepare/finish, split by patch 1), arch/x86/entry/common.c
(prepare_exit_to_usermode, patch 2), arch/x86/kernel/fpu/core.c (the v4.8 code
the RFC left alone, shared in `v4_8.py`).

What the patches do, and what is reconstructed here:
- patch 1/2: switch_fpu_prepare() saves the outgoing task as v4.8 did (last_cpu
  = cpu, owner kept, fpregs_active = 0); switch_fpu_finish() only sets
  TIF_LOAD_FPU on the incoming task instead of XRSTOR-ing it.
- patch 2: prepare_exit_to_usermode() runs exit_to_usermode_loop() and then
  `if (test_and_clear_thread_flag(TIF_LOAD_FPU)) switch_fpu_return();`: a
  fresh read of the flag after the loop, with IRQs off (the hunk quoted in the
  seed thread).
- patch 4 (reconstructed): switch_fpu_return() skips the XRSTOR when
  fpu_want_lazy_restore() holds, then fpregs_activate()s the task. The
  patches are not in any stored corpus; the reconstruction moves v4.8's
  activate from switch time to switch_fpu_return(), because activating at
  switch time would make kernel_fpu_begin() save the previous task's
  registers into the new task's image.
- Unchanged v4.8 code that still assumes a running task's registers are live:
  kernel_fpu_begin/end (keyed on fpregs_active, which stays correct), fork's
  fpu__copy() (XSAVEs whatever the registers hold into the child), exec's
  fpu__clear() (XRSTORs init into the registers but leaves TIF_LOAD_FPU set,
  so the return to user reloads the old program's image), and PKRU, an xstate
  component that is now deferred with the rest (Rik's 2019 patch 15/27 "Eager
  switch PKRU state" fixed that). Signals are added with the signal feature.
  Rik himself called the series BROKEN.

`rfc2016-stale-flags` is the variant argued over in the thread: the decision
to call switch_fpu_return() is taken from the `cached_flags` snapshot read
before the preemptible loop, and not re-read after it.
"""

from __future__ import annotations

from ..kernel.state import NULL, T_FPREGS_ACTIVE, T_FPSTATE_ACTIVE, T_LAST_CPU, T_NEED_LOAD, T_KIND, USER, task
from ..kernel.context import restore_fpregs_from_fpstate, save_fpregs_to_fpstate
from . import v4_8
from ..kernel.design import Design

EAGER = True  # use_eager_fpu(): the default since v4.6


def boot_task(k: bytearray, t: int, on_cpu: int) -> None:
    """A user task in user mode has its registers active; nobody has TIF_LOAD_FPU pending."""
    p = task(k, t)
    k[p + T_NEED_LOAD] = 0
    k[p + T_FPREGS_ACTIVE] = 1 if (on_cpu != NULL and k[p + T_KIND] == USER) else 0


def switch_fpu_prepare(k: bytearray, c: int, prev: int, nxt: int) -> None:
    """switch_fpu_prepare(old, cpu) + switch_fpu_finish(new) after patches 1-2.

    prepare: if old's registers are active, XSAVE them, last_cpu = cpu, keep the
    owner, fpregs_active = 0; otherwise last_cpu = -1. finish: set TIF_LOAD_FPU
    on new if its fpstate is active; no XRSTOR, and PKRU is not switched.
    """
    pp, pn = task(k, prev), task(k, nxt)
    if k[pp + T_FPREGS_ACTIVE]:
        save_fpregs_to_fpstate(k, c, prev, pkru=True)
        k[pp + T_LAST_CPU] = c
        k[pp + T_FPREGS_ACTIVE] = 0
    else:
        k[pp + T_LAST_CPU] = NULL
    if k[pn + T_FPSTATE_ACTIVE]:
        k[pn + T_NEED_LOAD] = 1


def switch_fpu_return(k: bytearray, c: int, t: int) -> None:
    """switch_fpu_return(): XRSTOR (PKRU included) unless fpu_want_lazy_restore(), then
    fpregs_activate()."""
    if not k[task(k, t) + T_FPSTATE_ACTIVE]:
        return
    if not v4_8.fpu_want_lazy_restore(k, t, c):
        restore_fpregs_from_fpstate(k, c, t, pkru=True)
    v4_8.fpregs_activate(k, c, t, EAGER)


def prepare_exit_to_usermode(k: bytearray, c: int, t: int, snapshot: int) -> None:
    """prepare_exit_to_usermode(): after the loop, test_and_clear_thread_flag(TIF_LOAD_FPU)
    (a fresh read, IRQs off) and switch_fpu_return()."""
    p = task(k, t)
    if k[p + T_NEED_LOAD]:
        k[p + T_NEED_LOAD] = 0
        switch_fpu_return(k, c, t)


def cached_flags(s, c: int, t: int) -> int:
    """cached_flags = READ_ONCE(ti->flags), read with IRQs off before exit_to_usermode_loop()."""
    return s[task(s, t) + T_NEED_LOAD]


def prepare_exit_to_usermode_stale(k: bytearray, c: int, t: int, snapshot: int) -> None:
    """prepare_exit_to_usermode() deciding from the pre-loop snapshot:
    `if (cached_flags & _TIF_LOAD_FPU) { clear_thread_flag(TIF_LOAD_FPU); switch_fpu_return(); }`."""
    if snapshot:
        k[task(k, t) + T_NEED_LOAD] = 0
        switch_fpu_return(k, c, t)


DESIGN = Design(
    name="rfc2016",
    summary="Rik van Riel's 2016 RFC on v4.8: TIF_LOAD_FPU set at switch, restore at exit to user",
    kernel="v4.8 + RFC 0/5 (2016-10-01)",
    files="arch/x86/include/asm/fpu/internal.h, arch/x86/entry/common.c, arch/x86/kernel/fpu/core.c",
    flag_name="TIF_LOAD_FPU",
    has_pkru=True,
    valid_while_live=False,
    boot_task=boot_task,
    switch_fpu=switch_fpu_prepare,
    exit_to_user=prepare_exit_to_usermode,
    **v4_8.bind(EAGER),
    no_fpu_ext="v4.8's KVM loaded the guest FPU in kvm_load_guest_fpu() (kernel_fpu_begin-style, CR0.TS traps in the guest) with no fpstate to swap; AMX/XFD and the xfd_state cache came with 5.16; CPU bring-up (fpu__init_cpu) is not modelled for v4.8",
)

STALE_FLAGS = DESIGN.variant(
    name="rfc2016-stale-flags",
    summary="rfc2016 deciding switch_fpu_return() from the cached_flags read before the preemptible loop",
    exit_to_user=prepare_exit_to_usermode_stale,
    exit_to_user_snapshot=cached_flags,
    stale_snapshot=True,
)
