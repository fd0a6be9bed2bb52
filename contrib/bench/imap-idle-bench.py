#!/usr/bin/env python3
"""imap-idle-bench.py - memory per idle IMAP session (issue 6, item 8).
Prints figures; never passes or fails on a number.

  imap-idle-bench.py --builddir DIR [-n SESSIONS] [--users N]
                     [--messages M] [--keep]

Starts `moonpost serve` from DIR on a free loopback port with a private
data directory, creates N users with M messages each in INBOX, then opens
SESSIONS plaintext IMAP sessions (spread over the users in turn), each of
which logs in with AUTHENTICATE SCRAM-SHA-256 (so the server spends no
password hash per login), selects INBOX and enters IDLE.

It reads the daemon's resident memory (VmRSS) once one session per user is
idle (every account's index is then open and warm) and again when all are,
and prints the difference divided by the extra sessions: what one more
idle session costs. Then it delivers a message to one user and reports how
many of that user's idle sessions heard "* n EXISTS", and how fast.

The client side needs about SESSIONS + 100 descriptors; so does the
server (it raises its own soft limit). Python 3 standard library only.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PASSWORD = "bench-password"
# Sessions that log in at once: enough to keep the server busy, few
# enough not to trip SYN backlogs.
CONCURRENT_LOGINS = 200
TIMEOUT = 60.0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Scram:
    """Client side of SCRAM-SHA-256 (RFC 5802), the salted password
    computed once per user and salt."""

    cache = {}

    def __init__(self, user):
        self.user = user
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=%s,r=%s" % (user, self.nonce)

    def first(self):
        return base64.b64encode(("n,," + self.first_bare).encode()).decode()

    def final(self, challenge):
        server_first = base64.b64decode(challenge).decode()
        fields = dict(f.split("=", 1) for f in server_first.split(","))
        key = (fields["s"], fields["i"])
        salted = Scram.cache.get(key)
        if salted is None:
            salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(),
                                         base64.b64decode(fields["s"]),
                                         int(fields["i"]))
            Scram.cache[key] = salted
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        final_bare = "c=biws,r=%s" % fields["r"]
        auth_msg = ",".join([self.first_bare, server_first, final_bare])
        sig = hmac.new(hashlib.sha256(client_key).digest(),
                       auth_msg.encode(), "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        return base64.b64encode((final_bare + ",p=" + base64.b64encode(
            proof).decode()).encode()).decode()


class Session:
    def __init__(self, port, user):
        self.port = port
        self.user = user
        self.reader = self.writer = None

    async def line(self):
        data = await asyncio.wait_for(self.reader.readline(), TIMEOUT)
        if not data:
            raise ConnectionError("closed by the server")
        return data.decode(errors="replace").rstrip("\r\n")

    async def until(self, tag):
        while True:
            line = await self.line()
            if line.startswith(tag + " "):
                if not line.startswith(tag + " OK"):
                    raise RuntimeError(line)
                return

    async def open_idle(self):
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, limit=1 << 16)
        await self.line()
        scram = Scram(self.user)
        self.writer.write(("a AUTHENTICATE SCRAM-SHA-256 %s\r\n"
                           % scram.first()).encode())
        line = await self.line()
        self.writer.write((scram.final(line[2:]) + "\r\n").encode())
        await self.line()  # the server's final message
        self.writer.write(b"\r\n")
        await self.until("a")
        self.writer.write(b"b SELECT INBOX\r\nc IDLE\r\n")
        await self.until("b")
        line = await self.line()
        if not line.startswith("+"):
            raise RuntimeError(line)

    async def wait_exists(self):
        while True:
            line = await self.line()
            if line.endswith(" EXISTS"):
                return time.monotonic()


async def open_all(port, users, start, count, sessions):
    sem = asyncio.Semaphore(CONCURRENT_LOGINS)

    async def one(i):
        s = Session(port, users[i % len(users)])
        async with sem:
            await s.open_idle()
        sessions.append(s)

    await asyncio.gather(*(one(i) for i in range(start, start + count)))


def setup(builddir, tmp, port, n_users, n_messages, sessions):
    data = os.path.join(tmp, "data")
    config = os.path.join(tmp, "moonpost.conf")
    os.makedirs(data)
    with open(config, "w") as f:
        f.write("""hostname = "bench.example.test"
data_dir = "%s"
user = "%s"
domains = { "example.test" }
listen { name = "imap", protocol = "imap", address = "127.0.0.1:%d" }
limits { connections = %d, connections_per_ip = %d }
log { level = "warn" }
""" % (data, pwd.getpwuid(os.geteuid()).pw_name, port, sessions + 100,
            sessions + 100))
    moonpost = os.path.join(builddir, "moonpost")
    users = ["user%d@example.test" % (i + 1) for i in range(n_users)]
    msg = ("From: Ann <ann@example.org>\r\nTo: you@example.test\r\n"
           "Subject: hello\r\n\r\n" + "Some text of a message.\r\n" * 40)
    for u in users:
        subprocess.run([moonpost, "user", "add", u, "-c", config,
                        "--password-stdin"], input=PASSWORD + "\n",
                       text=True, check=True, capture_output=True)
        for _ in range(n_messages):
            subprocess.run([moonpost, "deliver", "-c", config, "-r", u],
                           input=msg.encode(), check=True,
                           capture_output=True)
    return moonpost, config, users, msg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", required=True)
    ap.add_argument("-n", "--sessions", type=int, default=10000)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--keep", action="store_true",
                    help="keep the data directory")
    args = ap.parse_args()

    want = args.sessions + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    tmp = tempfile.mkdtemp(prefix="imap-idle-bench-", dir="/var/tmp")
    os.chmod(tmp, 0o755)
    port = free_port()
    print("setting up %d users with %d messages each in %s"
          % (args.users, args.messages, tmp), flush=True)
    moonpost, config, users, msg = setup(args.builddir, tmp, port,
                                         args.users, args.messages,
                                         args.sessions)
    log = open(os.path.join(tmp, "daemon.log"), "wb")
    proc = subprocess.Popen([moonpost, "serve", "-c", config,
                             "--plugin-dir",
                             os.path.join(args.builddir, "plugins", ".libs")],
                            stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        asyncio.run(measure(args, proc, port, users, moonpost, config, msg))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


async def measure(args, proc, port, users, moonpost, config, msg):
    sessions = []
    base = rss_kb(proc.pid)
    first = min(len(users), args.sessions)
    t0 = time.monotonic()
    await open_all(port, users, 0, first, sessions)
    warm = rss_kb(proc.pid)
    await open_all(port, users, first, args.sessions - first, sessions)
    opened = time.monotonic() - t0
    await asyncio.sleep(1.0)
    full = rss_kb(proc.pid)
    extra = args.sessions - first
    print("daemon RSS: %d KB at start, %d KB with %d idle sessions (one per "
          "user), %d KB with %d" % (base, warm, first, full, args.sessions))
    if extra > 0:
        print("per idle session: %.1f KB (%d more sessions added %d KB)"
              % ((full - warm) / extra, extra, full - warm))
    print("opened %d sessions (login, SELECT, IDLE) in %.1f s: %.0f/s"
          % (args.sessions, opened, args.sessions / opened))

    mine = [s for s in sessions if s.user == users[0]]
    waits = [asyncio.ensure_future(s.wait_exists()) for s in mine]
    # `moonpost deliver` is another process: the sessions learn of the
    # message through inotify. Its exit is when the message is durable.
    proc_deliver = await asyncio.create_subprocess_exec(
        moonpost, "deliver", "-c", config, "-r", users[0],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    await proc_deliver.communicate(msg.encode())
    t1 = time.monotonic()
    done, _ = await asyncio.wait(waits, timeout=30)
    times = sorted(f.result() - t1 for f in done if not f.exception())
    if times:
        # Negative: the session heard of it before the process exited.
        print("delivery to %s by another process: %d of %d idle sessions "
              "told, the last %+.0f ms from the deliver process's exit"
              % (users[0], len(times), len(mine), times[-1] * 1000))
    for s in sessions:
        s.writer.close()


if __name__ == "__main__":
    sys.exit(main())
