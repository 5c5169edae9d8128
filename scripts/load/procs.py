"""The processes of a running scene, found through /proc, and their resident memory."""
import os
import signal
import time


def children(pid):
    """{child pid: argv} of the direct children of `pid`."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # The command name is in parentheses and may contain spaces: split after it.
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                out[int(entry)] = [a.decode() for a in f.read().split(b"\0") if a]
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return out


def service_name(argv):
    """"fusion", "agent 3", ... from a service's command line; None for anything else."""
    if not argv:
        return None
    exe = os.path.basename(argv[0])
    if exe == "qv2x-agent":
        for a in argv[1:]:
            if a.startswith("--agent_id="):
                return "agent " + a.split("=", 1)[1]
    if exe.startswith("qv2x-"):
        return exe[len("qv2x-"):]
    return None


def rss_bytes(pid):
    """VmRSS of `pid` from /proc/<pid>/status, in bytes; None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _stopped(pid):
    """True once every thread of `pid` is stopped (or it has exited)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in ("T", "t", "Z", "X"):
                    return False
        except OSError:
            continue
    return True


def stop(pids, timeout_s=10):
    """SIGSTOP, then waits until every thread is stopped: kill() returns before the
    signal has reached every thread, and a thread still running could send one more
    message after the caller moved on."""
    signal_all(pids, signal.SIGSTOP)
    end = time.time() + timeout_s
    while not all(_stopped(p) for p in pids):
        if time.time() > end:
            raise OSError(f"processes {pids} did not stop within {timeout_s} s")
        time.sleep(0.01)


def resume(pids):
    signal_all(pids, signal.SIGCONT)
