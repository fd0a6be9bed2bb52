"""e2e harness: start the real moonpost daemon on free loopback ports with a
temporary data directory, talk to it, and always stop it.

A test module ends with `harness.main()`, which runs its unittest cases and
reports them as TAP for tests/run-tests.
"""

import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

BUILDDIR = os.environ.get("MOONPOST_BUILDDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SRCDIR = os.environ.get("MOONPOST_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
MOONPOST = os.path.join(BUILDDIR, "moonpost")
TEST_PLUGIN_DIR = os.path.join(BUILDDIR, "tests", "plugins", ".libs")

# Standard ports of the dev listeners; `serve --dev` adds an offset.
DEV_PORTS = {"mx": 25, "submission": 587, "submissions": 465, "imap": 143,
             "imaps": 993, "pop3": 110, "pop3s": 995}

# Generous bounds for a busy 2-core machine and sanitizer builds: they
# only stop a hung test, they are never a measure of speed.
START_TIMEOUT = 60
STOP_TIMEOUT = 60
IO_TIMEOUT = 30

_running = []


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(n):
    """n distinct ports that were free a moment ago."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def free_dev_offset():
    rnd = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(200):
        off = rnd.randrange(20000, 60000)
        if all(port_free(p + off) for p in DEV_PORTS.values()):
            return off
    raise RuntimeError("no free port offset")


def make_cert(directory, name="localhost"):
    """A self-signed P-256 certificate from the openssl command."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:" + name],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return cert, key


class Daemon:
    """One moonpost process. Use as a context manager or call stop()."""

    _count = 0

    def __init__(self, args, workdir, input_env=None):
        Daemon._count += 1
        self.args = args
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "daemon-%d.log" % Daemon._count)
        self.out_path = os.path.join(workdir, "daemon-%d.out" % Daemon._count)
        self.proc = None
        self.env = dict(os.environ, **(input_env or {}))

    def start(self, expect_fail=False):
        self._log = open(self.log_path, "ab")
        self._out = open(self.out_path, "ab")
        self.proc = subprocess.Popen([MOONPOST] + self.args,
                                     stdout=self._out, stderr=self._log,
                                     stdin=subprocess.DEVNULL,
                                     env=self.env, cwd=self.workdir)
        _running.append(self)
        if expect_fail:
            self.proc.wait(START_TIMEOUT)
            self._close_files()
            return self.proc.returncode
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if "event=started" in self.log():
                return 0
            if self.proc.poll() is not None:
                self._close_files()
                raise StartError(self.proc.returncode, self.log())
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("daemon did not start:\n" + self.log())

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def stdout(self):
        with open(self.out_path, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=IO_TIMEOUT, count=1):
        """Waits until the log matches pattern (a regex) count times."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(re.findall(pattern, self.log())) >= count:
                return
            time.sleep(0.02)
        raise AssertionError("log never matched %r:\n%s" % (pattern, self.log()))

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """Stops the daemon; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_files()
        if self in _running:
            _running.remove(self)
        return self.proc.returncode

    def _close_files(self):
        for f in (getattr(self, "_log", None), getattr(self, "_out", None)):
            if f and not f.closed:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class StartError(Exception):
    def __init__(self, status, log):
        super().__init__("daemon exited with %d:\n%s" % (status, log))
        self.status = status
        self.log = log


def start_dev(workdir, data_dir=None, extra=None):
    """`moonpost serve --dev` on a free port offset; retries on a clash."""
    data_dir = data_dir or os.path.join(workdir, "data")
    for _ in range(5):
        offset = free_dev_offset()
        d = Daemon(["serve", "--dev", "--data-dir", data_dir,
                    "--port-offset", str(offset)] + (extra or []), workdir)
        try:
            d.start()
        except StartError as e:
            if "Address already in use" in e.log:
                continue
            raise
        d.offset = offset
        d.ports = {name: p + offset for name, p in DEV_PORTS.items()}
        return d
    raise RuntimeError("could not find free dev ports")


def start_config(workdir, make_config, plugin_dir=TEST_PLUGIN_DIR,
                 before_start=None):
    """Writes make_config(ports) to a file and serves it; make_config gets
    a list of free ports. before_start(path), when given, runs once the
    file is written (to add accounts, say). Retries when a port was taken
    meanwhile."""
    path = os.path.join(workdir, "moonpost.conf")
    for _ in range(5):
        ports = free_ports(8)
        with open(path, "w") as f:
            f.write(make_config(ports))
        if before_start is not None:
            before_start(path)
        d = Daemon(["serve", "-c", path, "--plugin-dir", plugin_dir], workdir)
        try:
            d.start()
        except StartError as e:
            if "Address already in use" in e.log:
                continue
            raise
        d.ports = ports
        d.config_path = path
        return d
    raise RuntimeError("could not find free ports")


def run_cli(args, input_text=None, env=None, cwd=None):
    """Runs the moonpost binary; returns (status, stdout, stderr)."""
    res = subprocess.run([MOONPOST] + args, input=input_text,
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, **(env or {})), cwd=cwd)
    return res.returncode, res.stdout, res.stderr


class LineClient:
    """A line-oriented client over a plain or TLS socket."""

    def __init__(self, port, host="127.0.0.1", tls=False):
        self.sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        if tls:
            self.sock = client_tls_context().wrap_socket(
                self.sock, server_hostname="localhost")
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed after %d of %d bytes" % (len(self.buf), n))
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def starttls(self):
        self.sock = client_tls_context().wrap_socket(
            self.sock, server_hostname="localhost")

    def is_closed(self):
        """True when the server has closed the connection (EOF)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TempDirTest(unittest.TestCase):
    """A test with its own temporary directory, removed afterwards (kept
    when MOONPOST_KEEP_TMP is set, to read the daemon logs)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="moonpost-e2e-")

    def tearDown(self):
        for d in list(_running):
            d.stop()
        if not os.environ.get("MOONPOST_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


class DaemonTest(TempDirTest):
    """A `moonpost serve` of its own for each test, with the real plugins:
    a data directory under self.tmp, a self-signed certificate (self.cert,
    self.key), one loopback listener per LISTENERS entry (name, protocol,
    and the rest of its `listen` fields, or ""), the accounts USERS with
    PASSWORD, and config_extra() appended. self.d.ports[i] is the port of
    LISTENERS[i]; ports after those are free for config_extra() to use.
    A subclass may write files the config names in before_daemon()."""

    HOSTNAME = "mail.example.test"
    LISTENERS = ()
    USERS = ("demo@example.test",)
    PASSWORD = "correct horse battery"
    CONFIG = ""

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.data = os.path.join(self.tmp, "data")
        self.cert, self.key = make_cert(self.tmp)
        self.before_daemon()
        self.d = start_config(
            self.tmp, self.make_config,
            plugin_dir=os.path.join(BUILDDIR, "plugins", ".libs"),
            before_start=self.add_users)
        self.clients = []  # closed at tearDown

    def before_daemon(self):
        pass

    def config_extra(self, ports):
        """Config text after the listeners; CONFIG unless overridden."""
        return self.CONFIG

    def make_config(self, ports):
        listeners = "".join(
            'listen {{ name = "{0}", protocol = "{1}", '
            'address = "127.0.0.1:{2}"{3} }}\n'.format(
                name, proto, ports[i], ", " + rest if rest else "")
            for i, (name, proto, rest) in enumerate(self.LISTENERS))
        return """
hostname = "{host}"
data_dir = "{data}"
user = "{user}"
domains = {{ "example.test" }}
tls {{ cert = "{cert}", key = "{key}" }}
{listeners}auth {{ max_failures_per_ip = 100, max_failures_per_account = 100 }}
{extra}
""".format(host=self.HOSTNAME, data=self.data,
           user=pwd.getpwuid(os.geteuid()).pw_name, cert=self.cert,
           key=self.key, listeners=listeners,
           extra=self.config_extra(ports))

    def add_users(self, config):
        if os.path.exists(os.path.join(self.data, "passwd")):
            return
        os.makedirs(self.data, exist_ok=True)
        for user in self.USERS:
            status, _, err = run_cli(["user", "add", user, "-c", config,
                                      "--password-stdin"],
                                     input_text=self.PASSWORD + "\n")
            self.assertEqual(status, 0, err)

    def deliver(self, msg, rcpt=None):
        """Delivers msg (bytes) to rcpt (the first of USERS) with
        `moonpost deliver`, as a local MDA would."""
        res = subprocess.run([MOONPOST, "deliver", "-r", rcpt or self.USERS[0],
                              "-f", "ann@example.org", "-c",
                              self.d.config_path],
                             input=msg, capture_output=True, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)

    def tearDown(self):
        for c in getattr(self, "clients", []):
            c.close()
        if hasattr(self, "d"):
            self.assertEqual(self.d.stop(), 0, self.d.log())
        super().tearDown()


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _report(self, test, ok, detail=None):
        self.n += 1
        name = test.id().split(".", 1)[-1]
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, name),
              flush=True)
        if detail:
            for line in detail.rstrip().splitlines():
                print("# " + line)
            sys.stdout.flush()

    def addSuccess(self, test):
        self._report(test, True)

    def addFailure(self, test, err):
        self._report(test, False, "".join(traceback.format_exception(*err)))

    def addError(self, test, err):
        self._report(test, False, "".join(traceback.format_exception(*err)))

    def addSkip(self, test, reason):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, test.id().split(".", 1)[-1],
                                         reason), flush=True)


def main():
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules["__main__"])
    if len(sys.argv) > 1:
        suite = unittest.TestSuite(
            t for t in _flatten(suite) if any(a in t.id() for a in sys.argv[1:]))
    print("1..%d" % suite.countTestCases(), flush=True)
    result = TapResult()
    try:
        suite.run(result)
    finally:
        for d in list(_running):
            d.stop(signal.SIGKILL)
    sys.exit(0 if result.wasSuccessful() else 1)


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t
