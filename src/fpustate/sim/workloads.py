"""Seeded synthetic workloads (cost-model.md 4), as operation streams.

Each generator yields batches of operations for `sim.run.simulate_ops`, the
same input a trace produces. `fpu_use` is the probability that a user slice
executes FPU instructions (the free parameter no scheduler trace shows); the
same seed gives the same operations, always.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator, NamedTuple

from ..kernel.design import K_SOFTIRQ, K_TASK
from . import ops as O
from .ops import Op

KWORKER = 900  # pid of the kernel thread the workloads use


class Workload(NamedTuple):
    name: str
    cpus: int
    summary: str
    make: Callable  # (rng, fpu_use, length) -> Iterator[list[Op]]
    kvm: bool = False  # KVM and AMX operations: only designs with the 5.16+ hooks replay it (an AMX machine)


def _user_slice(rng: random.Random, c: int, pid: int, fpu_use: float) -> list[Op]:
    """A user task switched in returns to user mode and maybe uses the FPU."""
    return [Op(O.RETURN, c, pid, 1 if rng.random() < fpu_use else 0)]


def pingpong(rng, fpu_use: float, length: int) -> Iterator[list[Op]]:
    """Two processes on one CPU bouncing a byte through a pipe: every switch is user to user."""
    pids = (101, 102)
    for i in range(length):
        nxt = pids[i % 2]
        yield [Op(O.SWITCH, 0, nxt, O.PREV_BLOCKED)] + _user_slice(rng, 0, nxt, fpu_use)


def hackbench(rng, fpu_use: float, length: int) -> Iterator[list[Op]]:
    """40 tasks (senders and receivers) contending for 2 CPUs with short slices, forked at
    the start and exiting at the end: many contexts through each register file, migrations."""
    n = 40
    tasks = list(range(201, 201 + n))
    yield [Op(O.SWITCH, 0, 200, O.PREV_RUNNABLE), Op(O.RETURN, 0, 200, 1)] + [
        Op(O.FORK, 0, t) for t in tasks]
    running = [200, None]
    runnable = list(tasks)
    for i in range(length):
        c = rng.randrange(2)
        prev = running[c]
        nxt = runnable.pop(rng.randrange(len(runnable)))
        state = O.PREV_RUNNABLE if rng.random() < 0.3 else O.PREV_BLOCKED
        batch = [Op(O.SWITCH, c, nxt, state)] + _user_slice(rng, c, nxt, fpu_use)
        if prev is not None and prev != 200:
            runnable.append(prev)
        running[c] = nxt
        yield batch
    for c in range(2):
        t = running[c]
        if t is not None and t != 200:
            yield [Op(O.EXIT, c, t), Op(O.SWITCH, c, 0, O.PREV_DEAD)]


def kthread_bounce(rng, fpu_use: float, length: int) -> Iterator[list[Op]]:
    """A user task that blocks on I/O: a kworker runs, the CPU idles, the task comes back
    (the deferred restore's best case: nothing else used the registers)."""
    user, other = 301, 302
    for i in range(length):
        r = rng.random()
        if r < 0.4:
            mid = [Op(O.SWITCH, 0, KWORKER, O.PREV_BLOCKED, O.KTHREAD)]
        elif r < 0.8:
            mid = [Op(O.SWITCH, 0, 0, O.PREV_BLOCKED, O.IDLE)]
        else:
            mid = [Op(O.SWITCH, 0, other, O.PREV_BLOCKED)] + _user_slice(rng, 0, other, fpu_use)
        yield mid + [Op(O.SWITCH, 0, user, O.PREV_BLOCKED)] + _user_slice(rng, 0, user, fpu_use)


def crypto(rng, fpu_use: float, length: int) -> Iterator[list[Op]]:
    """Heavy in-kernel FPU users: syscalls that encrypt or checksum (kernel_fpu_begin in task
    context) and network softirqs doing the same, on two user tasks sharing a CPU."""
    pids = (401, 402)
    for i in range(length):
        t = pids[i % 2]
        batch = [Op(O.SWITCH, 0, t, O.PREV_BLOCKED)] + _user_slice(rng, 0, t, fpu_use)
        for _ in range(rng.randrange(1, 4)):  # syscalls, each checksumming 1-4 buffers
            batch += [Op(O.KFPU, 0, t, K_TASK) for _ in range(rng.randrange(1, 5))]
            if rng.random() < 0.3:  # a network softirq on the way out
                batch.append(Op(O.KFPU, 0, t, K_SOFTIRQ))
            batch.append(Op(O.RETURN, 0, t, 1 if rng.random() < fpu_use else 0))
        yield batch


def signals(rng, fpu_use: float, length: int) -> Iterator[list[Op]]:
    """Two tasks signalling each other (timers, Go preemption, SIGCHLD): each delivery builds
    a frame, runs the handler and returns through sigreturn."""
    pids = (501, 502)
    for i in range(length):
        t = pids[i % 2]
        batch = [Op(O.SWITCH, 0, t, O.PREV_BLOCKED)] + _user_slice(rng, 0, t, fpu_use)
        batch += [Op(O.SIGNAL, 0, t)]
        if rng.random() < fpu_use:
            batch.append(Op(O.USE, 0, t))
        batch += [Op(O.SIGRETURN, 0, t)]
        yield batch


def ptrace(rng, fpu_use: float, length: int) -> Iterator[list[Op]]:
    """A debugger single-stepping a tracee: two switches per step; the tracer rarely touches
    vector registers between waitpid() and ptrace(), and sometimes writes the tracee's xstate."""
    tracer, tracee = 601, 602
    for i in range(length):
        batch = [Op(O.SWITCH, 0, tracee, O.PREV_BLOCKED), Op(O.RETURN, 0, tracee, 1 if rng.random() < fpu_use else 0),
                 Op(O.SWITCH, 0, tracer, O.PREV_BLOCKED), Op(O.RETURN, 0, tracer, 1 if rng.random() < 0.05 else 0)]
        if rng.random() < 0.1:
            batch.append(Op(O.PTRACE_SET, 0, tracee))
        yield batch


def kvm(rng, fpu_use: float, length: int) -> Iterator[list[Op]]:
    """Two vCPU threads of one VM on 2 CPUs, with QEMU's I/O thread, an AMX compute process, a
    kworker and idle (cost-model.md 4, "KVM vCPU threads"; v6.18 arch/x86/kvm/x86.c). A vCPU
    thread's slice: back from a userspace exit it runs QEMU code and re-enters KVM_RUN
    (kvm_load_guest_fpu); in the run loop it enters the guest one to three times (the guest
    uses the FPU with probability fpu_use), each ending in a VM exit, some interrupted by a
    softirq that uses the FPU (an interrupt in guest mode is a VM exit first); some exits go to
    userspace (MMIO, I/O: kvm_put_guest_fpu, QEMU runs, KVM_RUN again). It leaves the CPU
    preempted inside the run loop (sometimes straight from guest mode) or halted in
    kvm_vcpu_block(), and any CPU may pick it up next (migration). The AMX process's first
    tile instruction traps (#NM with XFD_ERR, fpstate_realloc()); its tiles are live after."""
    vcpus, io, amx = (701, 702), 703, 704
    tasks = (*vcpus, io, amx, KWORKER, 0)
    kinds = {KWORKER: O.KTHREAD, 0: O.IDLE}
    in_kvm = {v: False for v in vcpus}
    running: list = [None, None]
    leave = [O.PREV_RUNNABLE, O.PREV_RUNNABLE]  # how the task on each CPU will leave it
    tiles = False

    def use() -> int:
        return 1 if rng.random() < fpu_use else 0

    for i in range(length):
        c = rng.randrange(2) if i >= 2 else i
        free = [t for t in tasks if t != running[c] and (t == 0 or t != running[1 - c])]
        nxt = rng.choices(free, [3 if t in vcpus else 1 for t in free])[0]
        batch = [Op(O.SWITCH, c, nxt, leave[c], kinds.get(nxt, O.USER))]
        running[c], leave[c] = nxt, O.PREV_RUNNABLE if rng.random() < 0.7 else O.PREV_BLOCKED
        if nxt in vcpus:
            if not in_kvm[nxt]:
                batch += [Op(O.RETURN, c, nxt, use()), Op(O.KVM_LOAD, c, nxt)]
                in_kvm[nxt] = True
            for _ in range(rng.randrange(1, 4)):
                batch.append(Op(O.VM_ENTRY, c, nxt, use()))
                if rng.random() < 0.15:  # an interrupt in guest mode; its softirq uses the FPU
                    batch.append(Op(O.KFPU, c, nxt, K_SOFTIRQ))
                batch.append(Op(O.VM_EXIT, c, nxt))
                if rng.random() < 0.2:  # a userspace exit: QEMU handles it and calls KVM_RUN again
                    batch += [Op(O.KVM_PUT, c, nxt), Op(O.RETURN, c, nxt, use()), Op(O.KVM_LOAD, c, nxt)]
            if rng.random() < 0.3:  # preempted by the timer interrupt in guest mode
                batch.append(Op(O.VM_ENTRY, c, nxt, use()))
        elif nxt == io:
            batch.append(Op(O.RETURN, c, nxt, use()))
            if rng.random() < 0.3:  # virtio-blk with dm-crypt: kernel_fpu_begin() in its syscall
                batch += [Op(O.KFPU, c, nxt, K_TASK), Op(O.RETURN, c, nxt, use())]
        elif nxt == amx:
            batch.append(Op(O.RETURN, c, nxt, 1))
            if not tiles:
                batch.append(Op(O.XFD_NM, c, nxt))
                tiles = True
        yield batch


WORKLOADS = {w.name: w for w in (
    Workload("pingpong", 1, "pipe ping-pong between two processes on one CPU", pingpong),
    Workload("hackbench", 2, "40 tasks contending for 2 CPUs, forked at start, exiting at the end", hackbench),
    Workload("kthread-bounce", 1, "a task blocking on I/O: kworker and idle run in between", kthread_bounce),
    Workload("crypto", 1, "kernel_fpu_begin() in syscalls and softirqs (crypto, checksums)", crypto),
    Workload("signals", 1, "two tasks signalling each other: frame, handler, sigreturn", signals),
    Workload("ptrace", 1, "a debugger single-stepping a tracee", ptrace),
    Workload("kvm", 2, "two vCPU threads (KVM_RUN, VM entries and exits, userspace exits, preemption and "
             "migration in the run loop) beside QEMU's I/O thread and an AMX process (first-use #NM)", kvm, True),
)}


def generate(name: str, seed: int, fpu_use: float, length: int) -> Iterator[list[Op]]:
    return WORKLOADS[name].make(random.Random(seed), fpu_use, length)
