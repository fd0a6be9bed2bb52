"""benchlib.py - what the load generators of contrib/bench share: ports,
config templates, daemons that stop, percentiles, perf. Python 3 standard
library only; imported by smtp-bench.py, pop3-bench.py and imap-bench.py
from the same folder."""

import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE_DIR = os.path.join(HERE, "reference")


def log(text):
    """A progress line, prefixed with the program's name (smtp-bench...)."""
    name = os.path.basename(sys.argv[0]).removesuffix(".py")
    print("%s: %s" % (name, text), flush=True)


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list, 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_port(port, timeout, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("exited with status %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


def fill(template, out, values, mode=0o644):
    """Writes reference/template to out with every @NAME@ of values
    replaced."""
    with open(os.path.join(REFERENCE_DIR, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    with open(out, "w") as f:
        f.write(text)
    os.chmod(out, mode)


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait_gone(pid, timeout=30):
    """Waits for a daemon that was told to stop; says so if it stays."""
    end = time.monotonic() + timeout
    while pid is not None and time.monotonic() < end:
        if not os.path.exists("/proc/%d" % pid):
            return
        time.sleep(0.1)
    if pid is not None:
        log("pid %d is still running after %ds" % (pid, timeout))


def perf_record(pid, out, what):
    """Starts `perf record -g` of pid (what, for the log) into out; stop it
    with perf_stop."""
    log("perf record -g of %s into %s" % (what, out))
    return subprocess.Popen(["perf", "record", "-q", "-g", "-o", out,
                             "-p", str(pid)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def perf_stop(proc):
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        proc.wait()


def terminate(signum, frame):
    """A SIGTERM handler that unwinds, so that finally: stops daemons."""
    raise SystemExit(128 + signum)


def int_list(text):
    """"1,10,50" as [1, 10, 50], for --sessions and --clients."""
    return [int(x) for x in text.split(",")]
