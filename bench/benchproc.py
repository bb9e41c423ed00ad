"""Process helpers shared by the benchmark scripts: every process they start is kept in
PROCS so that it can be stopped at exit, stopped gently first, and ports are picked free."""

import signal
import socket
import subprocess

PROCS = []


def spawn(args, **kw):
    """Starts `args` (output discarded unless given) and remembers it."""
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", subprocess.DEVNULL)
    p = subprocess.Popen(args, **kw)
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGINT):
    """Sends `sig` and waits 5 s, then kills."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            p.kill()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
