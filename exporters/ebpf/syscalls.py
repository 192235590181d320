"""System calls by name (raw_syscalls:sys_enter), bounded to a documented set of names plus ``other``.

This is the hottest probe: it runs on every syscall of every process. It is kept to one per-CPU array
increment indexed by the syscall number (no hash lookup, no lock, no atomic), attached as a raw tracepoint
where the kernel allows it (no trace record built: ~3x cheaper per syscall, docs/performance.md), the
classic tracepoint otherwise; names are attached in user space from the running architecture's table.
"""

from __future__ import annotations

from typing import ClassVar

from obslab.exporters.ebpf.kernel import syscall_table
from obslab.exporters.ebpf.probe import Counter, Label, Probe, register

#: Size of the kernel array; numbers at or above the last index (x32 ABI bit, future syscalls) land there.
NR_SLOTS = 512

#: The syscalls exported by name (docs/ebpf.md): IO, files, memory, network, processes, waiting, time.
#: Everything else is summed into syscall="other" so the series count stays bounded (~110).
_TOP = """
    read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 sendfile splice tee
    open openat openat2 close close_range creat stat fstat lstat newfstatat statx access faccessat faccessat2
    lseek getdents64 fsync fdatasync sync_file_range unlink unlinkat rename renameat renameat2 mkdir mkdirat
    ioctl fcntl dup dup2 dup3 pipe pipe2 eventfd2 inotify_add_watch
    mmap munmap mprotect madvise brk mremap mlock munlock
    poll ppoll select pselect6 epoll_wait epoll_pwait epoll_pwait2 epoll_ctl epoll_create1
    socket connect accept accept4 bind listen shutdown sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg
    setsockopt getsockopt getsockname getpeername
    clone clone3 fork vfork execve execveat exit exit_group wait4 waitid kill tgkill
    rt_sigaction rt_sigprocmask rt_sigreturn prctl
    futex sched_yield nanosleep clock_nanosleep clock_gettime gettimeofday
    getpid gettid getuid getrandom
    io_uring_enter io_uring_setup io_submit io_getevents
"""
TOP_SYSCALLS = frozenset(_TOP.split())


class SyscallNames:
    """Syscall number → bounded label value (a name in TOP_SYSCALLS, else ``other``)."""

    def __init__(self, table: dict[int, str] | None = None, top: frozenset[str] = TOP_SYSCALLS) -> None:
        self.table = table if table is not None else {}
        self.top = top

    def __call__(self, nr: int) -> str:
        name = self.table.get(nr)
        return name if name in self.top else "other"


_names = SyscallNames()


@register
class Syscalls(Probe):
    """System calls entered, by name (a fixed set of ~110 common syscalls; the rest as ``other``)."""

    name = "syscalls"
    handlers: ClassVar[dict[str, str]] = {"raw_syscalls:sys_enter": "obslab_sys_enter"}
    raw_handlers: ClassVar[dict[str, str]] = {"raw_syscalls:sys_enter": "obslab_sys_enter_raw"}
    exports = (
        Counter(
            "obslab_syscalls_total",
            "System calls entered, by syscall name (a documented set; the rest as other).",
            labels=(Label("syscall", None, _names),),
        ),
    )
    source = rf"""
BPF_PERCPU_ARRAY(obslab_syscalls_total, u64, {NR_SLOTS});

int obslab_sys_enter(struct tracepoint__raw_syscalls__sys_enter *args)
{{
    /* Unsigned compare folds negative ids and anything >= the array into the last slot. */
    u32 idx = (u64)args->id < {NR_SLOTS - 1} ? (u32)args->id : {NR_SLOTS - 1};
    u64 *v = obslab_syscalls_total.lookup(&idx);
    if (v) *v += 1;
    return 0;
}}

/* The same, as a raw tracepoint: no trace record is built (the classic path copies all six syscall
   arguments first). ctx->args[1] is the `long id` of TP_PROTO(struct pt_regs *regs, long id), a
   tracepoint argument, not a struct field; regs (args[0]) is never touched. */
int obslab_sys_enter_raw(struct bpf_raw_tracepoint_args *ctx)
{{
    u64 id = ctx->args[1];
    u32 idx = id < {NR_SLOTS - 1} ? (u32)id : {NR_SLOTS - 1};
    u64 *v = obslab_syscalls_total.lookup(&idx);
    if (v) *v += 1;
    return 0;
}}
"""

    def setup(self) -> None:
        _names.table = syscall_table()
