#!/usr/bin/env python3
"""pop3-bench.py - POP3 session figures (issue 5). Prints figures; never
passes or fails on a time.

  pop3-bench.py run HOST:PORT [-c CLIENTS] [-d SECONDS | -n SESSIONS]
                [--users N] [--domain D] [--password P] [--sources N]
  pop3-bench.py compare --builddir DIR [--duration SECONDS]
                [--clients 1,10,50] [--users N] [--messages N] [--size BYTES]
                [--no-reference] [--no-moonpost] [--no-install]
                [--pop3-min N] [--login-min N] [--yescrypt-cost N]
                [--perf]

`run` is the load generator: CLIENTS concurrent clients, each repeating a
whole POP3 session on a new connection: greeting, USER, PASS, STAT, UIDL,
RETR of every message, QUIT (no DELE: the maildrops stay as they are). The
accounts user1..userN@D are taken in turn, skipping one another client of
this run is logged in to (a POP3 server may lock a maildrop per session).
A session's latency is from connect() to the +OK of QUIT; a session counts
only when every reply was +OK and the octets RETR gave add up to what STAT
announced. Any -ERR, a lost connection or a wrong count is a failure.

`compare` makes the same accounts, with the same yescrypt hashes and the same
messages, in moonpost (from DIR) and in a private Dovecot POP3 instance tuned
for speed (reference/dovecot-pop3.conf.in), runs the same load against each
at every client count, stops what it started, and prints one table. Its data
stays under /var/tmp/pop3-bench-*, whose path it prints.

Python 3 standard library only.
"""

import argparse
import asyncio
import ctypes
import email.utils
import multiprocessing
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

from benchlib import (HERE, REFERENCE_DIR, fill, int_list, log, percentile,
                      perf_record, perf_stop, port_free, read_pid, terminate,
                      wait_gone, wait_port)

# A whole session must end within this; one that stalls longer is a
# failure, not a slow figure. Generous: with 50 clients on a loaded 2-CPU
# machine a session that waits for 50 yescrypt hashes takes 30 s.
SESSION_TIMEOUT = 120.0
PASSWORD = "bench-password"
# Seconds of quiet before each load of compare, after a sync(2).
SETTLE = 3.0
# Bytes read from the socket at a time.
CHUNK = 256 * 1024

WORDS = ("the quarterly report is attached please review the figures before "
         "our meeting on thursday we should also discuss the budget for next "
         "year and the new hires in the support team let me know if you have "
         "any questions or if anything in the numbers looks wrong to you "
         "thanks again for your help with the migration last week").split()


# ---- the load generator --------------------------------------------------

class PopError(Exception):
    """The server broke the protocol or closed the connection."""


class Reply:
    """One reply: its status line, and the body of a multiline one (dot
    terminator removed, dot-stuffing left in)."""

    def __init__(self, status, body=b""):
        self.status = status
        self.body = body

    @property
    def ok(self):
        return self.status.startswith(b"+OK")

    def octets(self):
        """The body's size as the server counts it: without the stuffed
        dots."""
        b = self.body
        return len(b) - b.count(b"\r\n..") - b.startswith(b"..")

    def lines(self):
        return self.body.count(b"\r\n")


class PopConn:
    """A POP3 connection with its own buffer: a multiline reply is found
    with one search for CRLF.CRLF, not read line by line."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.buf = bytearray()

    async def _more(self):
        chunk = await self.reader.read(CHUNK)
        if not chunk:
            raise PopError("connection closed")
        self.buf += chunk

    async def reply(self, multiline=False):
        while (eol := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > 4096:
                raise PopError("status line too long")
            await self._more()
        status = bytes(self.buf[:eol])
        if not multiline or not status.startswith(b"+OK"):
            del self.buf[:eol + 2]
            return Reply(status)
        # The status line's CRLF starts the search, so that an empty body
        # (".\r\n" at once) is found as well.
        start = eol
        while (end := self.buf.find(b"\r\n.\r\n", start)) < 0:
            start = max(eol, len(self.buf) - 4)
            await self._more()
        body = bytes(self.buf[eol + 2:end + 2])
        del self.buf[:end + 5]
        return Reply(status, body)

    async def command(self, line, multiline=False):
        self.writer.write(line + b"\r\n")
        return await self.reply(multiline)

    def close(self):
        self.writer.close()


class Stats:
    def __init__(self):
        self.sessions = 0
        self.messages = 0
        self.octets = 0
        self.latencies = []
        self.failures = Counter()
        self.connections = 0


class Load:
    """Shared state of one run: when to stop, whose turn it is."""

    def __init__(self, args):
        self.host = args.host
        self.port = args.port
        self.clients = args.clients
        self.sources = args.sources
        self.count = args.count
        self.users = args.users
        self.domain = args.domain
        self.password = args.password.encode()
        self.stats = Stats()
        self.started = 0
        self.next_user = 0
        self.busy = set()
        self.deadline = None

    def over(self):
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return True
        return bool(self.count) and self.started >= self.count

    def take_user(self):
        """The next account in turn that no client holds, or None when
        every one is held (more clients than accounts)."""
        for _ in range(self.users):
            n = self.next_user % self.users + 1
            self.next_user += 1
            if n not in self.busy:
                self.busy.add(n)
                return n
        return None

    def user_name(self, n):
        return b"user%d@%s" % (n, self.domain.encode())


def _failure(step, reply):
    return "%s %s" % (step, reply.status[:60].decode("ascii", "replace"))


async def session(load, client, user):
    """One whole POP3 session; returns (messages, octets), or raises
    PopError naming the first failure."""
    src = None
    if load.sources > 1 and load.host.startswith("127."):
        src = ("127.0.0.%d" % (client % load.sources + 1), 0)
    reader, writer = await asyncio.open_connection(load.host, load.port,
                                                   local_addr=src)
    conn = PopConn(reader, writer)
    try:
        load.stats.connections += 1
        return await transaction(load, conn, user)
    finally:
        conn.close()


async def transaction(load, conn, user):
    """The commands of a session on an open connection: login, STAT,
    UIDL, RETR 1..n, QUIT, each reply checked."""
    steps = [("greeting", None), ("USER", b"USER " + load.user_name(user)),
             ("PASS", b"PASS " + load.password)]
    for step, line in steps:
        r = await (conn.reply() if line is None else conn.command(line))
        if not r.ok:
            raise PopError(_failure(step, r))
    stat = await conn.command(b"STAT")
    try:
        count, size = (int(x) for x in stat.status.split()[1:3])
    except ValueError:
        raise PopError(_failure("STAT", stat)) from None
    uidl = await conn.command(b"UIDL", multiline=True)
    if not uidl.ok or uidl.lines() != count:
        raise PopError("UIDL %d lines for %d messages"
                       % (uidl.lines(), count) if uidl.ok
                       else _failure("UIDL", uidl))
    octets = 0
    for i in range(1, count + 1):
        r = await conn.command(b"RETR %d" % i, multiline=True)
        if not r.ok:
            raise PopError(_failure("RETR", r))
        octets += r.octets()
    if octets != size:
        raise PopError("RETR gave %d octets, STAT said %d" % (octets, size))
    r = await conn.command(b"QUIT")
    if not r.ok:
        raise PopError(_failure("QUIT", r))
    return count, octets


async def client_main(load, client):
    stats = load.stats
    while not load.over():
        user = load.take_user()
        if user is None:
            await asyncio.sleep(0.001)
            continue
        load.started += 1
        start = time.perf_counter()
        try:
            async with asyncio.timeout(SESSION_TIMEOUT):
                messages, octets = await session(load, client, user)
        except (OSError, PopError, TimeoutError) as e:
            why = str(e) if isinstance(e, PopError) else type(e).__name__
            stats.failures[why] += 1
            await asyncio.sleep(0.05)  # no busy loop against a dead server
            continue
        finally:
            load.busy.discard(user)
        stats.sessions += 1
        stats.messages += messages
        stats.octets += octets
        stats.latencies.append(time.perf_counter() - start)


async def run_async(load, duration):
    start = time.monotonic()
    if duration:
        load.deadline = start + duration
    await asyncio.gather(*(client_main(load, i) for i in range(load.clients)))
    return time.monotonic() - start


def run_load(args):
    """Runs one load; returns a dict of figures."""
    load = Load(args)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    seconds = asyncio.run(run_async(load, args.duration))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    s = load.stats
    lat = sorted(s.latencies)
    per_s = (lambda n: n / seconds) if seconds > 0 else (lambda n: 0.0)
    return {
        "clients": load.clients,
        "sessions": s.sessions,
        "messages": s.messages,
        "octets": s.octets,
        "failures": sum(s.failures.values()),
        "failure_kinds": dict(s.failures),
        "connections": s.connections,
        "seconds": seconds,
        "rate": per_s(s.sessions),
        "msg_rate": per_s(s.messages),
        "mb_rate": per_s(s.octets) / 1e6,
        "p50": percentile(lat, 50) * 1000,
        "p99": percentile(lat, 99) * 1000,
        "client_cpu": per_s(cpu),
    }


def print_result(r, label=""):
    print("%sclients=%d sessions=%d messages=%d failures=%d seconds=%.2f "
          "sessions/s=%.1f messages/s=%.1f MB/s=%.1f p50_ms=%.1f "
          "p99_ms=%.1f client_cpu=%.0f%%"
          % (label, r["clients"], r["sessions"], r["messages"],
             r["failures"], r["seconds"], r["rate"], r["msg_rate"],
             r["mb_rate"], r["p50"], r["p99"], r["client_cpu"] * 100))
    for kind, n in sorted(r["failure_kinds"].items()):
        print("%s  failure %s: %d" % (label, kind, n))
    sys.stdout.flush()


def cmd_run(args):
    host, _, port = args.target.rpartition(":")
    args.host, args.port = host or "127.0.0.1", int(port)
    if not args.duration and not args.count:
        args.duration = 15.0
    print_result(run_load(args))
    return 0


# ---- the accounts and their mail -------------------------------------------

def make_message(user, seq, size, domain):
    """A plain-text message of about size bytes, LF line ends (as Dovecot
    keeps them on disk), one body line starting with a dot so that RETR
    has to stuff it."""
    rnd = random.Random(user * 1000 + seq)
    date = email.utils.formatdate(1764000000 + user * 3600 + seq * 60)
    head = ("Return-Path: <sender%d@bench.example>\n"
            "Received: from client%d.bench.example ([192.0.2.%d])\n"
            "\tby mx.bench.example with ESMTPS id B%05d%03d\n"
            "\tfor <user%d@%s>; %s\n"
            "Date: %s\n"
            "From: \"Bench Sender %d\" <sender%d@bench.example>\n"
            "To: <user%d@%s>\n"
            "Subject: Quarterly figures, part %d\n"
            "Message-ID: <%d.%d.pop3-bench@bench.example>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=us-ascii\n"
            "Content-Transfer-Encoding: 7bit\n"
            "\n" % (seq, seq, seq % 254 + 1, user, seq, user, domain, date,
                    date, seq, seq, user, domain, seq, user, seq))
    lines, total = [], len(head)
    while total < size - 20:
        line = []
        while sum(len(w) + 1 for w in line) < 66:
            line.append(rnd.choice(WORDS))
        text = " ".join(line).capitalize()
        lines.append(text)
        total += len(text) + 1
    lines.insert(len(lines) // 2, ".. and the figures, once more")
    return (head + "\n".join(lines) + "\n").encode()


def write_maildirs(base, users, messages, size, domain):
    """Dovecot-style Maildirs base/userN/Maildir with the messages in cur/,
    named with their size (S=) and CRLF size (W=) as Dovecot names them."""
    for u in range(1, users + 1):
        md = os.path.join(base, "user%d" % u, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        for m in range(1, messages + 1):
            data = make_message(u, m, size, domain)
            name = "%d.M%dP%dQ%d.pop3-bench,S=%d,W=%d:2," % (
                1764000000 + m, m, os.getpid(), m, len(data),
                len(data) + data.count(b"\n"))
            with open(os.path.join(md, "cur", name), "wb") as f:
                f.write(data)


def yescrypt(password, cost):
    """A yescrypt hash of password at libxcrypt cost 1..11, made by
    libxcrypt itself (through ctypes: Python's crypt module is going)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                  ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(b"$y$", cost, None, 0)
    out = lib.crypt(password.encode(), setting) if setting else None
    if not out or not out.startswith(b"$y$"):
        raise RuntimeError("libxcrypt cannot make a yescrypt hash of cost "
                           "%d" % cost)
    return out.decode()


# ---- the two servers -------------------------------------------------------

def free_port(first):
    return next(p for p in range(first, 60000, 101) if port_free(p))


class Moonpost:
    name = "moonpost"

    def __init__(self, root, builddir, args):
        self.dir = os.path.join(root, "moonpost")
        self.data = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "moonpost.conf")
        self.builddir = os.path.abspath(builddir)
        self.binary = os.path.join(self.builddir, "moonpost")
        self.args = args
        self.proc = None
        self.logfile = os.path.join(root, "moonpost.log")

    def cli(self, *argv, **kw):
        return subprocess.run([self.binary] + list(argv), check=True, **kw)

    def configure(self, maildirs):
        """The config, the accounts (hashed by moonpost) and their mail,
        imported from the Maildirs Dovecot will serve."""
        os.makedirs(self.data)
        self.port = free_port(31110)
        fill("moonpost-pop3.conf.in", self.conf, {
            "DATA": self.data, "PORT": self.port, "DOMAIN": self.args.domain,
            "PLUGINS": os.path.join(self.builddir, "plugins", ".libs")})
        log("moonpost: adding %d accounts (yescrypt) and importing their "
            "mail" % self.args.users)
        for u in range(1, self.args.users + 1):
            user = "user%d@%s" % (u, self.args.domain)
            self.cli("user", "add", user, "-c", self.conf,
                     "--password-stdin", stdout=subprocess.DEVNULL,
                     input=(PASSWORD + "\n").encode())
            self.cli("import", "maildir", "-c", self.conf, "--quiet",
                     os.path.join(maildirs, "user%d" % u, "Maildir"), user,
                     stdout=subprocess.DEVNULL)
        if self.args.yescrypt_cost:
            self.rehash(self.args.yescrypt_cost)

    def rehash(self, cost):
        """Replaces every hash by one of the given cost, in the passwd
        file's own format (`address:{YESCRYPT}$y$...`)."""
        path = os.path.join(self.data, "passwd")
        with open(path) as f:
            addrs = [line.split(":", 1)[0] for line in f if ":" in line]
        with open(path + ".new", "w") as f:
            for addr in addrs:
                f.write("%s:{YESCRYPT}%s\n"
                        % (addr, yescrypt(PASSWORD, cost)))
        os.chmod(path + ".new", os.stat(path).st_mode & 0o777)
        os.replace(path + ".new", path)

    def hashes(self):
        """{address: yescrypt hash} of the passwd file, whose lines are
        `address:{YESCRYPT}$y$... {SCRAM-SHA-256}...`."""
        out = {}
        with open(os.path.join(self.data, "passwd")) as f:
            for line in f:
                addr, _, creds = line.rstrip("\n").partition(":")
                for cred in creds.split():
                    if cred.upper().startswith("{YESCRYPT}$Y$"):
                        out[addr] = cred[len("{YESCRYPT}"):]
        return out

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("no %s: build first" % self.binary)
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "-c", self.conf],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        wait_port(self.port, 30, self.proc)
        log("moonpost pid %d, pop3 on 127.0.0.1:%d, data in %s, log %s"
            % (self.proc.pid, self.port, self.data, self.logfile))

    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        log("moonpost stopped")


class Reference:
    """A private Dovecot POP3 instance, all of it under root/reference."""
    name = "dovecot"

    def __init__(self, root, args):
        self.dir = os.path.join(root, "reference")
        self.args = args
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.vmail = os.path.join(self.dir, "vmail")
        self.up = False

    def install(self, allowed):
        if os.path.exists("/usr/lib/dovecot/pop3"):
            return
        if not allowed:
            raise RuntimeError("dovecot-pop3d is missing (--no-install)")
        log("installing dovecot-core, dovecot-pop3d")
        subprocess.run(["sh", os.path.join(REFERENCE_DIR, "install.sh"),
                        "dovecot-core", "dovecot-pop3d"], check=True)

    def home(self, u):
        return os.path.join(self.vmail, self.args.domain, "user%d" % u)

    def maildirs(self):
        return os.path.join(self.vmail, self.args.domain)

    def configure(self, hashes):
        """The users file with moonpost's own hashes, as {CRYPT}: Dovecot
        checks them with crypt(3), which is libxcrypt on Debian."""
        d = self.dir
        for sub in ("run", "state"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for p in (os.path.dirname(d), d):
            os.chmod(p, 0o755)  # nobody passes through
        for top, dirs, files in os.walk(self.vmail):
            for name in dirs + files:
                shutil.chown(os.path.join(top, name), "nobody", "nogroup")
        shutil.chown(self.vmail, "nobody", "nogroup")
        users = os.path.join(d, "users")
        with open(users, "w") as f:
            for u in range(1, self.args.users + 1):
                addr = "user%d@%s" % (u, self.args.domain)
                f.write("%s:{CRYPT}%s:65534:65534::%s::\n"
                        % (addr, hashes[addr], self.home(u)))
        os.chmod(users, 0o600)
        shutil.chown(users, "dovecot")  # read by the auth process
        self.port = free_port(32110)
        fill("dovecot-pop3.conf.in", self.conf, {
            "CONF": self.conf, "RUN": os.path.join(d, "run"),
            "STATE": os.path.join(d, "state"),
            "LOG": os.path.join(d, "dovecot.log"), "USERS": users,
            "PORT": self.port, "POP3_MIN": self.args.pop3_min,
            "LOGIN_MIN": self.args.login_min})

    def start(self):
        self.up = True  # from here on, stop() tries
        subprocess.run(["dovecot", "-c", self.conf], check=True)
        wait_port(self.port, 30)
        version = subprocess.run(["dovecot", "--version"],
                                 capture_output=True, text=True).stdout
        log("dovecot %s, pop3 on 127.0.0.1:%d, data in %s"
            % (version.split()[0] if version else "?", self.port, self.dir))

    def pid(self):
        return read_pid(os.path.join(self.dir, "run", "master.pid"))

    def stop(self):
        if not self.up:
            return
        self.up = False
        pid = self.pid()
        subprocess.run(["dovecot", "-c", self.conf, "stop"])
        wait_gone(pid)
        log("dovecot stopped")


def load_args(args, server, clients, duration=0.0, count=0):
    a = argparse.Namespace(**vars(args))
    a.host, a.port = "127.0.0.1", server.port
    a.clients, a.duration, a.count = clients, duration, count
    # Each client from its own 127.0.0.x, as clients on a network are:
    # moonpost takes 20 connections per address (limits connections_per_ip).
    a.sources = clients
    return a


def warm_up(server, args):
    """Every account once, untimed: Dovecot builds its index files and
    both servers mark the messages \\Seen at the first QUIT after RETR, so
    the timed loads only read."""
    r = run_load(load_args(args, server, min(10, args.users),
                           count=2 * args.users))
    log("%s: warm-up, %d sessions, %d failures%s"
        % (server.name, r["sessions"], r["failures"],
           "".join("; %s: %d" % kv for kv in r["failure_kinds"].items())))
    if r["sessions"] == 0:
        raise RuntimeError("no session succeeded")


def tree_cpu(pid):
    """CPU seconds used by pid and its descendants (those reaped
    included)."""
    stats, children = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        p = int(d)
        stats[p] = sum(int(x) for x in fields[11:15])
        children.setdefault(int(fields[1]), []).append(p)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0)
        todo.extend(children.get(p, []))
    return total / os.sysconf("SC_CLK_TCK")


def point(server, args, clients):
    os.sync()
    time.sleep(SETTLE)
    perf = None
    if args.perf and clients == max(args.clients) \
            and isinstance(server, Moonpost):
        out = os.path.join(os.path.dirname(server.dir),
                           "%s.perf.data" % server.name)
        perf = perf_record(server.pid(), out, server.name)
    cpu0 = tree_cpu(server.pid())
    r = run_load(load_args(args, server, clients, duration=args.duration))
    r["server_cpu"] = tree_cpu(server.pid()) - cpu0
    perf_stop(perf)
    r["server"] = server.name
    print_result(r, "%s: " % server.name)
    log("%s, %d clients: load average %.1f"
        % (server.name, clients, os.getloadavg()[0]))
    return r


def print_table(rows):
    by = {(r["server"], r["clients"]): r for r in rows}
    print()
    print("| server | clients | sessions/s | messages/s | p50 ms | p99 ms "
          "| server CPU ms/MB | failures | moonpost/dovecot |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = ""
        ref = by.get(("dovecot", r["clients"]))
        if r["server"] == "moonpost" and ref and ref["rate"] > 0:
            ratio = "%.2f" % (r["rate"] / ref["rate"])
        mb = r["octets"] / 1e6
        print("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %d | %s |"
              % (r["server"], r["clients"], r["rate"], r["msg_rate"],
                 r["p50"], r["p99"],
                 r["server_cpu"] * 1000 / mb if mb > 0 else 0.0,
                 r["failures"], ratio))
    sys.stdout.flush()


def setup(root, args):
    """Both servers configured with the same accounts and mail; returns
    them, not started."""
    ref = Reference(root, args)
    moon = Moonpost(root, args.builddir, args)
    if args.reference:
        ref.install(args.install)
    log("writing %d messages of about %d bytes for each of %d accounts"
        % (args.messages, args.size, args.users))
    write_maildirs(ref.maildirs(), args.users, args.messages, args.size,
                   args.domain)
    moon.configure(ref.maildirs())
    ref.configure(moon.hashes())
    return [s for s, on in ((moon, args.moonpost), (ref, args.reference))
            if on]


def cmd_compare(args):
    if not args.duration:
        args.duration = 15.0
    root = os.path.join(args.workdir,
                        time.strftime("pop3-bench-%Y%m%d-%H%M%S"))
    os.makedirs(root)
    os.chmod(root, 0o755)
    log("data under %s; load average %.2f %.2f %.2f before the run"
        % ((root,) + os.getloadavg()))
    signal.signal(signal.SIGTERM, terminate)
    servers, rows = [], []
    try:
        servers = setup(root, args)
        up = []
        for server in servers:
            try:
                server.start()
                warm_up(server, args)
                up.append(server)
            except (RuntimeError, OSError, subprocess.CalledProcessError) \
                    as e:
                log("%s cannot run here: %s" % (server.name, e))
        # Each client count on every server in turn, so that whatever else
        # the machine does meanwhile weighs on both alike.
        for n in args.clients:
            for server in list(up):
                try:
                    rows.append(point(server, args, n))
                except (RuntimeError, OSError) as e:
                    log("%s: %s; no more loads on it" % (server.name, e))
                    up.remove(server)
    finally:
        for server in reversed(servers):
            try:
                server.stop()
            except (OSError, subprocess.SubprocessError) as e:
                log("stopping %s: %s" % (server.name, e))
        print_table(rows)
        log("data left under %s" % root)
    return 0


# ---- retr: RETR throughput, sendfile on and off ------------------------------

def retr_client(port, user, messages, duration, results):
    """Logs in once, then RETRs its messages in turn for duration seconds,
    reading into one buffer: a client that costs little next to the
    server. Puts the bytes it received on results."""
    s = socket.create_connection(("127.0.0.1", port))
    buf = bytearray(1 << 22)
    view = memoryview(buf)

    def status():
        line = b""
        while not line.endswith(b"\r\n"):
            c = s.recv(1)
            if not c:
                raise EOFError("closed")
            line += c
        if not line.startswith(b"+OK"):
            raise RuntimeError(line.decode(errors="replace").strip())
        return line

    status()
    s.sendall(b"USER %s\r\n" % user.encode())
    status()
    s.sendall(b"PASS %s\r\n" % PASSWORD.encode())
    status()
    total, n, end = 0, 0, time.monotonic() + duration
    while time.monotonic() < end:
        s.sendall(b"RETR %d\r\n" % (n % messages + 1))
        n += 1
        status()
        tail = b""
        while tail != b"\r\n.\r\n":
            k = s.recv_into(view)
            if k == 0:
                raise EOFError("closed inside RETR")
            total += k
            tail = (tail + bytes(view[max(0, k - 5):k]))[-5:]
    s.sendall(b"QUIT\r\n")
    s.close()
    results.put(total)


def retr_point(server, args, sendfile):
    """One load of args.clients RETR clients (processes, not coroutines:
    the client must not be what limits)."""
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(
        target=retr_client,
        args=(server.port, "user%d@%s" % (i % args.users + 1, args.domain),
              args.messages, args.duration, results))
        for i in range(args.clients)]
    cpu0, t0 = tree_cpu(server.pid()), time.monotonic()
    for p in procs:
        p.start()
    total = sum(results.get(timeout=args.duration + 60) for _ in procs)
    for p in procs:
        p.join()
    seconds = time.monotonic() - t0
    cpu = tree_cpu(server.pid()) - cpu0
    mb = total / 1e6
    r = {"sendfile": sendfile, "mb": mb, "rate": mb / seconds,
         "cpu_per_mb": cpu * 1000 / mb if mb else 0.0,
         "server_cpu": cpu / seconds}
    print("sendfile=%s MB=%.0f MB/s=%.0f server_cpu=%.0f%% "
          "server_ms_per_MB=%.3f" % ("on" if sendfile else "off", mb,
                                     r["rate"], r["server_cpu"] * 100,
                                     r["cpu_per_mb"]))
    sys.stdout.flush()
    return r


def cmd_retr(args):
    root = os.path.join(args.workdir,
                        time.strftime("pop3-retr-%Y%m%d-%H%M%S"))
    os.makedirs(root)
    os.chmod(root, 0o755)
    log("data under %s; load average %.2f %.2f %.2f before the run"
        % ((root,) + os.getloadavg()))
    maildirs = os.path.join(root, "maildirs")
    write_maildirs(maildirs, args.users, args.messages, args.size,
                   args.domain)
    moon = Moonpost(root, args.builddir, args)
    moon.configure(maildirs)
    with open(moon.conf) as f:
        base = f.read()
    rows = []
    try:
        # On and off in turn, so that whatever else the machine does
        # meanwhile weighs on both alike.
        for _ in range(args.rounds):
            for sendfile in (True, False):
                with open(moon.conf, "w") as f:
                    f.write(base + "pop3 { sendfile = %s }\n"
                            % ("true" if sendfile else "false"))
                moon.start()
                try:
                    rows.append(retr_point(moon, args, sendfile))
                finally:
                    moon.stop()
    finally:
        print()
        print("| sendfile | MB/s | server CPU | server CPU ms/MB |")
        print("|---|---:|---:|---:|")
        for r in rows:
            print("| %s | %.0f | %.0f%% | %.3f |"
                  % ("on" if r["sendfile"] else "off", r["rate"],
                     r["server_cpu"] * 100, r["cpu_per_mb"]))
        log("data left under %s" % root)
    return 0


# ---- command line ----------------------------------------------------------

def add_account_options(p):
    p.add_argument("--users", type=int, default=100,
                   help="accounts user1..userN, in turn (default 100)")
    p.add_argument("--domain", default="example.test")


def main():
    p = argparse.ArgumentParser(
        description="POP3 session benchmark (figures, never asserted)")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="load one server")
    r.add_argument("target", help="HOST:PORT")
    r.add_argument("-c", "--clients", type=int, default=1)
    r.add_argument("-d", "--duration", type=float, default=0,
                   help="seconds of load (default 15 unless -n)")
    r.add_argument("-n", "--count", type=int, default=0,
                   help="sessions in all, instead of a duration")
    r.add_argument("--password", default=PASSWORD,
                   help="every account's password (default %s)" % PASSWORD)
    r.add_argument("--sources", type=int, default=1,
                   help="spread clients over 127.0.0.1..127.0.0.N")
    add_account_options(r)
    c = sub.add_parser("compare", help="moonpost against Dovecot")
    c.add_argument("--builddir", default=os.path.join(HERE, "..", ".."))
    c.add_argument("-d", "--duration", type=float, default=0,
                   help="seconds of load per point (default 15)")
    c.add_argument("--clients", type=int_list, default=[1, 10, 50],
                   help="client counts (default 1,10,50)")
    c.add_argument("--messages", type=int, default=10,
                   help="messages in each INBOX (default 10)")
    c.add_argument("--size", type=int, default=5000,
                   help="message size in bytes (default 5000)")
    c.add_argument("--workdir", default="/var/tmp")
    c.add_argument("--no-moonpost", dest="moonpost", action="store_false")
    c.add_argument("--no-reference", dest="reference", action="store_false")
    c.add_argument("--no-install", dest="install", action="store_false",
                   help="never apt-get the reference packages")
    c.add_argument("--pop3-min", type=int, default=8,
                   help="Dovecot pop3 process_min_avail (default 8)")
    c.add_argument("--login-min", type=int, default=os.cpu_count() or 1,
                   help="Dovecot pop3-login process_min_avail (default: "
                   "the CPUs)")
    c.add_argument("--yescrypt-cost", type=int, default=0,
                   help="libxcrypt cost of the yescrypt hashes, 1 to 11 "
                   "(default: as `moonpost user add` makes them, 5)")
    c.add_argument("--perf", action="store_true",
                   help="perf record moonpost during the largest load")
    add_account_options(c)
    c.set_defaults(password=PASSWORD)
    t = sub.add_parser("retr", help="moonpost's RETR throughput with "
                       "sendfile on and off")
    t.add_argument("--builddir", default=os.path.join(HERE, "..", ".."))
    t.add_argument("-d", "--duration", type=float, default=10.0,
                   help="seconds of load per point (default 10)")
    t.add_argument("-c", "--clients", type=int, default=2,
                   help="client processes (default 2)")
    t.add_argument("--messages", type=int, default=4,
                   help="messages in each INBOX (default 4)")
    t.add_argument("--size", type=int, default=2000000,
                   help="message size in bytes (default 2000000)")
    t.add_argument("--rounds", type=int, default=3,
                   help="points per setting (default 3)")
    t.add_argument("--workdir", default="/var/tmp")
    t.add_argument("--users", type=int, default=4,
                   help="accounts user1..userN (default 4)")
    t.add_argument("--domain", default="example.test")
    t.set_defaults(yescrypt_cost=0)
    args = p.parse_args()
    if args.cmd == "retr":
        return cmd_retr(args)
    return cmd_run(args) if args.cmd == "run" else cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
