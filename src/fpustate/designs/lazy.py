"""`lazy`: classic lazy FPU switching with CR0.TS and the #NM trap (Linux v4.8, eagerfpu=off).

Pinned to v4.8 booted with eagerfpu=off, the last release before Andy
Lutomirski's series removed lazy mode (v4.9/v4.10). Files:
arch/x86/include/asm/fpu/internal.h (switch_fpu_prepare, switch_fpu_finish,
fpregs_activate), arch/x86/kernel/fpu/core.c (fpu__restore, kernel_fpu_begin,
irq_fpu_usable, fpu__copy, fpu__drop, fpu__clear), arch/x86/kernel/traps.c
(do_device_not_available). The code is shared with `rfc2016` in `v4_8.py`.

A task that is switched in does not get its registers back: CR0.TS is set and
its first FPU instruction traps (#NM) into fpu__restore(), unless it used the
FPU in more than 5 consecutive time slices (fpu->counter), in which case
switch_fpu_prepare() preloads it. While TS is set the registers still hold the
previous owner's data: architecturally unreadable, but exposed to speculation
(LazyFP, CVE-2018-3665), which the exposure property reports. Protection keys
are unavailable in lazy mode (XFEATURE_MASK_EAGER), so PKRU is not modelled.

Abstraction: the preload threshold "counter > 5" is scaled to "counter > 1"
(v4_8.PRELOAD_AFTER): the same paths, reached after fewer time slices.
"""

from __future__ import annotations

from ..kernel.context import trace_device_not_available, write_cr0_ts
from ..kernel.state import C_CURR, C_TS, NULL, T_FPREGS_ACTIVE, cpu, task
from . import v4_8
from ..kernel.design import Design

EAGER = False  # use_eager_fpu()


def boot_task(k: bytearray, t: int, on_cpu: int) -> None:
    """A user task in user mode owns the FPU (fpregs_active, TS clear); kernel threads never
    activated an fpstate (the generic boot leaves their fpstate_active clear)."""
    k[task(k, t) + T_FPREGS_ACTIVE] = 1 if on_cpu != NULL else 0


def boot_cpu(k: bytearray, c: int) -> None:
    """CR0.TS is clear only while current's registers are active."""
    write_cr0_ts(k, c, 0 if k[task(k, k[cpu(c) + C_CURR]) + T_FPREGS_ACTIVE] else 1)


def switch_fpu_prepare(k: bytearray, c: int, prev: int, nxt: int) -> None:
    """switch_fpu_prepare() + switch_fpu_finish() in lazy mode (see v4_8.switch_fpu)."""
    v4_8.switch_fpu(k, c, prev, nxt, EAGER)


def prepare_exit_to_usermode(k: bytearray, c: int, t: int, snapshot: int) -> None:
    """prepare_exit_to_usermode(): v4.8 does no FPU work on the way to user mode."""


def user_fpu_accessible(s, c: int) -> bool:
    """User FPU instructions run without trapping only while CR0.TS is clear."""
    return not s[cpu(c) + C_TS]


def do_device_not_available(k: bytearray, c: int, t: int) -> None:
    """do_device_not_available() (#NM, IRQs off): fpu__restore() loads the task's registers."""
    trace_device_not_available(k, c, t)
    v4_8.fpu__restore(k, c, t, EAGER)


DESIGN = Design(
    name="lazy",
    summary="Linux v4.8 eagerfpu=off: CR0.TS + #NM trap, fpu_counter preload, lazy restore via last_cpu",
    kernel="v4.8 (eagerfpu=off)",
    files="arch/x86/include/asm/fpu/internal.h, arch/x86/kernel/fpu/core.c, arch/x86/kernel/traps.c",
    flag_name="fpregs_active",
    has_pkru=False,
    valid_while_live=False,
    boot_task=boot_task,
    boot_cpu=boot_cpu,
    switch_fpu=switch_fpu_prepare,
    exit_to_user=prepare_exit_to_usermode,
    user_fpu_accessible=user_fpu_accessible,
    do_device_not_available=do_device_not_available,
    **v4_8.bind(EAGER),
    no_fpu_ext="v4.8's KVM loaded the guest FPU in kvm_load_guest_fpu() (kernel_fpu_begin-style, CR0.TS traps in the guest) with no fpstate to swap; AMX/XFD and the xfd_state cache came with 5.16; CPU bring-up (fpu__init_cpu) is not modelled for v4.8",
)


def switch_fpu_prepare_kernel_threshold(k: bytearray, c: int, prev: int, nxt: int) -> None:
    """switch_fpu_prepare() + switch_fpu_finish() with the kernel's preload threshold (counter > 5)."""
    v4_8.switch_fpu(k, c, prev, nxt, EAGER, v4_8.KERNEL_PRELOAD_AFTER)


def do_device_not_available_kernel_threshold(k: bytearray, c: int, t: int) -> None:
    """do_device_not_available() counting fpu->counter up to the kernel's threshold."""
    trace_device_not_available(k, c, t)
    v4_8.fpu__restore(k, c, t, EAGER, v4_8.KERNEL_PRELOAD_AFTER)


# What the cost simulator replays: the same code with the kernel's own preload threshold, which
# the checker scales down (the paths are the same, the slice counts are not).
SIMULATION = DESIGN.variant(switch_fpu=switch_fpu_prepare_kernel_threshold,
                            do_device_not_available=do_device_not_available_kernel_threshold)
DESIGN = DESIGN.variant(simulation=SIMULATION)
