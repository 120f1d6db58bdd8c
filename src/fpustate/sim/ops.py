"""Workload operations: the simulator's input language.

`sim.infer` derives them from a trace's records, `sim.workloads` generates
them; `sim.replay` runs each as the action table's events of a design and `sim.bound`
through the clairvoyant bound. An operation names what happened on a CPU in
kernel terms; where the trace shows what the real kernel decided (the
`x86_fpu` tracepoints), `kernel` carries it for the conformance check.
"""

from __future__ import annotations

from typing import NamedTuple

from ..kernel.state import IDLE, KTHREAD, USER  # the task kinds of the kernel model

# Operation codes.
SWITCH = 0  # __schedule() on cpu: current -> pid; arg = how prev left (PREV_*)
RETURN = 1  # current returns to user mode (exit_to_user_mode_prepare); arg 1: and then uses the FPU
USE = 2  # current, in user mode, executes FPU/SIMD instructions (and modifies its state)
KFPU = 3  # kernel_fpu_begin() .. kernel_fpu_end(); arg = K_TASK (current's syscall) or K_SOFTIRQ
FORK = 4  # current forks pid; kind = the child's kind
EXEC = 5  # current execs
EXIT = 6  # current exits (its last switch has arg PREV_DEAD)
SIGNAL = 7  # a signal is delivered to current (frame set up, handler entered)
SIGRETURN = 8  # current returns from a signal handler
PTRACE_SET = 9  # a tracer writes stopped task pid's xstate (PTRACE_SETREGSET)
MIGRATE = 10  # pid is moved to CPU arg (sched_migrate_task)
XFEATURES = 11  # the trace showed pid's XSTATE_BV (arg): what its saves and restores move
BOOT = 12  # the trace starts with pid current on cpu, in user mode, its registers live there
# KVM and AMX (5.16+; only designs with `Design.fpu_ext` replay them, see sim.replay_kvm):
KVM_LOAD = 13  # current (a vCPU thread) enters KVM_RUN: kvm_load_guest_fpu() (tracepoint kvm_fpu "load")
KVM_PUT = 14  # current leaves KVM_RUN for userspace: kvm_put_guest_fpu() (kvm_fpu "unload")
VM_ENTRY = 15  # current, in KVM_RUN, enters the guest (vcpu_enter_guest); arg 1: the guest then uses the FPU
VM_EXIT = 16  # current's guest exits to the host's vcpu_run() loop (kvm_exit)
XFD_NM = 17  # current, in user mode, runs its first AMX tile instruction with XFD armed: #NM (XFD_ERR)
NAMES = ("switch", "return", "use", "kfpu", "fork", "exec", "exit", "signal", "sigreturn", "ptrace_set", "migrate",
         "xfeatures", "boot", "kvm_load", "kvm_put", "vm_entry", "vm_exit", "xfd_nm")
KVM_CODES = frozenset((KVM_LOAD, KVM_PUT, VM_ENTRY, VM_EXIT, XFD_NM))  # need a design with fpu_ext

# How the previous task left the CPU at a switch.
PREV_RUNNABLE, PREV_BLOCKED, PREV_DEAD = 0, 1, 2

UNKNOWN = -1  # the trace does not show what the kernel decided


new_op = tuple.__new__  # new_op(Op, fields): an Op without the NamedTuple constructor's keyword handling (hot paths)


class Op(NamedTuple):
    code: int
    cpu: int
    pid: int = 0  # the task the operation is about (switch: next; fork: child; migrate/ptrace: the task)
    arg: int = 0
    kind: int = USER  # switch: next's kind; fork: the child's kind
    kernel: int = UNKNOWN  # what the real kernel did: switch = saved prev, return/signal = restored
    line: int = 0  # trace line, 0 for generated workloads


__all__ = ["Op", "SWITCH", "RETURN", "USE", "KFPU", "FORK", "EXEC", "EXIT", "SIGNAL", "SIGRETURN", "PTRACE_SET",
           "MIGRATE", "XFEATURES", "BOOT", "KVM_LOAD", "KVM_PUT", "VM_ENTRY", "VM_EXIT", "XFD_NM", "KVM_CODES", "NAMES", "PREV_RUNNABLE", "PREV_BLOCKED", "PREV_DEAD", "USER", "KTHREAD", "IDLE", "UNKNOWN"]
