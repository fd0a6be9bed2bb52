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
import multiprocessing
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

from benchlib import HERE, log, percentile, perf_record, \
    perf_stop, terminate
from mailbench import (PASSWORD, Dovecot, Moonpost, add_compare_options,
                       tree_cpu, write_maildirs)

# A whole session must end within this; one that stalls longer is a
# failure, not a slow figure. Generous: with 50 clients on a loaded 2-CPU
# machine a session that waits for 50 yescrypt hashes takes 30 s.
SESSION_TIMEOUT = 120.0
# Seconds of quiet before each load of compare, after a sync(2).
SETTLE = 3.0
# Bytes read from the socket at a time.
CHUNK = 256 * 1024

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
    ref = Dovecot(root, args, extra={"POP3_MIN": args.pop3_min,
                                     "LOGIN_MIN": args.login_min})
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
    add_compare_options(c, "pop3", [1, 10, 50], 10, 0)
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
