#!/usr/bin/env python3
"""imap-bench.py - a mixed IMAP load against moonpost and a tuned Dovecot
(issue 6, item 10). Prints figures; never passes or fails on a number.

  imap-bench.py compare --builddir DIR [--duration SECONDS]
                [--clients 10,100,500] [--idle 1000] [--users N]
                [--messages N] [--size BYTES] [--yescrypt-cost N]
                [--no-reference] [--no-moonpost] [--no-install]

Each client holds one connection at a time and repeats a session until the
duration ends: LOGIN (plaintext, loopback), SELECT INBOX, FETCH 1:* (UID
FLAGS), FETCH of the last 10 of the original messages (ENVELOPE), UID FETCH
of one message BODY.PEEK[], STORE +FLAGS (\\Seen) on one message, APPEND of
a 3 KB message, UID STORE +FLAGS.SILENT (\\Deleted) on the UID APPENDUID
gave, UID EXPUNGE of it (so INBOX keeps its size), LOGOUT. Every command is
one operation; its latency is from writing it to its tagged reply. A NO,
a BAD, a lost connection or a timeout ends the session as a failure. The
accounts user1..userN are taken in turn; several clients may share one.

`compare` writes the same Maildirs for both servers (mailbench.py), makes
the accounts in moonpost with `moonpost user add` and imports the mail,
gives Dovecot moonpost's own yescrypt hash strings, and starts moonpost
from reference/moonpost-imap.conf.in and a private Dovecot from
reference/dovecot-imap.conf.in. Each server serves every account once,
untimed; then each client count runs on each server in turn. Last, each
server is restarted and --idle sessions are opened on it (LOGIN, SELECT,
IDLE), and its memory is read with one session per account and with all:
moonpost's VmRSS, Dovecot's PSS summed over all its processes. It stops
what it started and leaves its data under /var/tmp/imap-bench-*.

Python 3 standard library only.
"""

import argparse
import asyncio
import os
import random
import re
import resource
import signal
import sys
import time
from collections import Counter, defaultdict

from benchlib import log, percentile, terminate
from mailbench import (PASSWORD, Dovecot, Moonpost, add_compare_options,
                       process_tree, tree_cpu, write_maildirs)

# A command must be answered within this; longer is a failure.
COMMAND_TIMEOUT = 120.0
# Seconds of quiet before each load, after a sync(2).
SETTLE = 3.0
# Sessions that log in at once in the idle phase.
IDLE_CONCURRENCY = 50
# Source addresses the clients are spread over (127.0.0.1..127.0.0.N).
MAX_SOURCES = 250

APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]", re.I)
# RFC 2180 4.1.2: a server may refuse a FETCH of a message another session
# expunged that this one has not been told of yet (moonpost does); the
# client is then told at its next command. Clients take it as a partial
# success, and so does the load: counted apart, not as a failure.
EXPUNGEISSUED = b"NO [EXPUNGEISSUED]"
LITERAL = re.compile(rb"\{(\d+)\+?\}$")


class ImapError(Exception):
    """A NO, a BAD, or a broken connection."""


class ImapConn:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.n = 0
        self.exists = 0

    async def line(self):
        """One response line with its literals folded in."""
        data = await self.reader.readline()
        if not data.endswith(b"\r\n"):
            raise ImapError("connection closed")
        out = data
        while (m := LITERAL.search(data.rstrip(b"\r\n"))):
            out += await self.reader.readexactly(int(m.group(1)))
            data = await self.reader.readline()
            if not data.endswith(b"\r\n"):
                raise ImapError("connection closed in a literal")
            out += data
        return out

    async def tagged(self, tag, tolerate=b"\0"):
        """Reads to the tagged reply; returns (it, the untagged lines). A
        reply that starts with tolerate counts as OK."""
        untagged = []
        while True:
            line = await self.line()
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1:]
                if not (status.startswith(b"OK")
                        or status.startswith(tolerate)):
                    raise ImapError(line[:80].decode("ascii", "replace")
                                    .strip())
                return line, untagged
            if line.startswith(b"* ") and line.rstrip().endswith(b"EXISTS"):
                self.exists = int(line.split()[1])
            untagged.append(line)

    async def command(self, text, literal=None, tolerate=b"\0"):
        self.n += 1
        tag = b"a%d" % self.n
        if literal is None:
            self.writer.write(tag + b" " + text + b"\r\n")
        else:
            self.writer.write(tag + b" " + text + b" {%d}\r\n" % len(literal))
            line = await self.line()
            if not line.startswith(b"+"):
                raise ImapError(line[:80].decode("ascii", "replace").strip())
            self.writer.write(literal + b"\r\n")
        return await self.tagged(tag, tolerate)

    def close(self):
        self.writer.close()


def append_message(user, n, domain):
    """A 3 KB message for APPEND, CRLF line ends."""
    body = ("Line %02d of a short message appended by imap-bench, "
            "padded to a typical size.\r\n")
    text = ("From: Bench <bench@bench.example>\r\n"
            "To: <user%d@%s>\r\nSubject: appended %d\r\n"
            "Date: Sat, 29 Nov 2026 12:00:00 +0000\r\n"
            "Message-ID: <%d.%d.imap-bench@bench.example>\r\n\r\n"
            % (user, domain, n, user, n))
    text += "".join(body % i for i in range(38))
    return text.encode()


class Stats:
    def __init__(self):
        self.sessions = 0
        self.ops = 0
        self.latencies = []
        self.by_command = defaultdict(list)
        self.failures = Counter()
        self.expungeissued = 0


class Load:
    def __init__(self, args, port, clients, duration=0.0, count=0):
        self.args = args
        self.port = port
        self.clients = clients
        self.sources = min(clients, MAX_SOURCES)
        self.count = count
        self.started = 0
        self.next_user = 0
        self.deadline = None
        self.duration = duration
        self.stats = Stats()

    def over(self):
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return True
        return bool(self.count) and self.started >= self.count


async def connect(port, client, sources):
    src = ("127.0.0.%d" % (client % sources + 1), 0) if sources > 1 else None
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=src, limit=1 << 20)
    conn = ImapConn(reader, writer)
    line = await conn.line()
    if not line.startswith(b"* OK"):
        raise ImapError("greeting " + line[:60].decode("ascii", "replace"))
    return conn


async def session(load, client, user):
    """One whole session; each command's latency goes to the stats."""
    a = load.args
    stats = load.stats
    rnd = random.Random()

    async def op(name, text, literal=None):
        t0 = time.perf_counter()
        async with asyncio.timeout(COMMAND_TIMEOUT):
            r = await conn.command(text, literal, EXPUNGEISSUED)
        dt = time.perf_counter() - t0
        if r[0].split(b" ", 2)[1] == b"NO":
            stats.expungeissued += 1
        stats.latencies.append(dt)
        stats.by_command[name].append(dt)
        stats.ops += 1
        return r

    async with asyncio.timeout(COMMAND_TIMEOUT):
        conn = await connect(load.port, client, load.sources)
    try:
        await op("LOGIN", b"LOGIN user%d@%s %s"
                 % (user, a.domain.encode(), PASSWORD.encode()))
        await op("SELECT", b"SELECT INBOX")
        # The original messages keep sequence numbers 1..base: only the
        # ones the load appends (after them) are expunged.
        base = min(conn.exists, a.messages)
        if base < 1:
            raise ImapError("INBOX is empty")
        await op("FETCH FLAGS", b"FETCH 1:* (UID FLAGS)")
        await op("FETCH ENVELOPE", b"FETCH %d:%d (ENVELOPE)"
                 % (max(1, base - 9), base))
        # UID of a message from the FETCH of flags would do as well; the
        # original messages have UIDs 1..base on both servers (imported
        # in order), which the UID FETCH below checks.
        uid = rnd.randint(1, base)
        _, lines = await op("UID FETCH BODY", b"UID FETCH %d (BODY.PEEK[])"
                            % uid)
        if not any(b"BODY[]" in x for x in lines):
            raise ImapError("UID FETCH %d: no body" % uid)
        await op("STORE", b"STORE %d +FLAGS (\\Seen)" % rnd.randint(1, base))
        r, _ = await op("APPEND", b"APPEND INBOX (\\Seen)",
                        append_message(user, load.started, a.domain))
        m = APPENDUID.search(r)
        if not m:
            raise ImapError("APPEND without APPENDUID")
        new = int(m.group(1))
        await op("UID STORE", b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % new)
        await op("UID EXPUNGE", b"UID EXPUNGE %d" % new)
        await op("LOGOUT", b"LOGOUT")
    finally:
        conn.close()


async def client_main(load, client):
    stats = load.stats
    while not load.over():
        load.started += 1
        user = load.next_user % load.args.users + 1
        load.next_user += 1
        try:
            await session(load, client, user)
        except (OSError, ImapError, TimeoutError,
                asyncio.IncompleteReadError) as e:
            why = str(e) if isinstance(e, ImapError) else type(e).__name__
            stats.failures[why[:70]] += 1
            await asyncio.sleep(0.05)
            continue
        stats.sessions += 1


async def run_async(load):
    start = time.monotonic()
    if load.duration:
        load.deadline = start + load.duration
    await asyncio.gather(*(client_main(load, i)
                           for i in range(load.clients)))
    return time.monotonic() - start


def run_load(args, port, clients, duration=0.0, count=0):
    load = Load(args, port, clients, duration, count)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    seconds = asyncio.run(run_async(load))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    s = load.stats
    lat = sorted(s.latencies)
    return {
        "clients": clients, "sessions": s.sessions, "ops": s.ops,
        "seconds": seconds,
        "failures": sum(s.failures.values()),
        "failure_kinds": dict(s.failures),
        "rate": s.sessions / seconds, "op_rate": s.ops / seconds,
        "p50": percentile(lat, 50) * 1000, "p99": percentile(lat, 99) * 1000,
        "by_command": {k: (percentile(sorted(v), 50) * 1000,
                           percentile(sorted(v), 99) * 1000)
                       for k, v in s.by_command.items()},
        "client_cpu": cpu / seconds,
        "expungeissued": s.expungeissued,
    }


# ---- memory per idle session ---------------------------------------------

def memory_kb(pid, field):
    """field (Pss or Rss, from smaps_rollup) summed over pid and its
    descendants, in KB, and how many processes that is."""
    total, n = 0, 0
    for p in process_tree(pid):
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
                        n += 1
                        break
        except OSError:
            pass
    return total, n


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_memory(server):
    """moonpost: the daemon's VmRSS (one process). Dovecot: PSS summed over
    the master and every process under it (imap, imap-login, auth, anvil,
    log, config...), so that pages shared between imap processes count
    once."""
    if isinstance(server, Moonpost):
        return vmrss_kb(server.pid()), 1
    return memory_kb(server.pid(), "Pss")


async def open_idle(port, users, domain, first, count, conns):
    sem = asyncio.Semaphore(IDLE_CONCURRENCY)

    async def one(i):
        async with sem:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                conn = await connect(port, i, MAX_SOURCES)
                conns.append(conn)
                await conn.command(b"LOGIN user%d@%s %s"
                                   % (i % users + 1, domain.encode(),
                                      PASSWORD.encode()))
                await conn.command(b"SELECT INBOX")
                conn.writer.write(b"i IDLE\r\n")
                line = await conn.line()
                if not line.startswith(b"+"):
                    raise ImapError("IDLE: " + line[:60].decode(
                        "ascii", "replace"))

    results = await asyncio.gather(*(one(i) for i in
                                     range(first, first + count)),
                                   return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException)]


async def idle_async(server, args):
    conns = []
    try:
        before, _ = server_memory(server)
        first = min(args.users, args.idle)
        t0 = time.monotonic()
        errs = await open_idle(server.port, args.users, args.domain, 0,
                               first, conns)
        await asyncio.sleep(1.0)
        warm, _ = server_memory(server)
        errs += await open_idle(server.port, args.users, args.domain, first,
                                args.idle - first, conns)
        opened = time.monotonic() - t0
        await asyncio.sleep(2.0)
        full, procs = server_memory(server)
        extra = args.idle - first
        r = {"server": server.name, "sessions": args.idle,
             "failures": len(errs),
             "failure_kinds": dict(Counter(
                 (str(e) or type(e).__name__)[:70] for e in errs)),
             "before_kb": before, "warm_kb": warm, "full_kb": full,
             "procs": procs, "opened_s": opened,
             "per_session_kb": (full - warm) / extra if extra > 0 else 0.0}
        log("%s: memory %d KB at start, %d KB with %d idle sessions (one "
            "per account), %d KB with %d (%d processes): %.1f KB per extra "
            "session; %d sessions opened in %.1f s, %d failures%s"
            % (server.name, before, warm, first, full, args.idle, procs,
               r["per_session_kb"], args.idle, opened, len(errs),
               "".join("; %s: %d" % kv
                       for kv in r["failure_kinds"].items())))
        return r
    finally:
        for c in conns:
            c.close()
        await asyncio.sleep(0.5)


# ---- compare ---------------------------------------------------------------

def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if os.geteuid() == 0 and hard < want:
        hard = want
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def setup(root, args):
    limit = max(args.clients) + args.idle + 100
    ref = Dovecot(root, args, template="dovecot-imap.conf.in",
                  port_base=32143, proto="imap",
                  extra={"LOGIN_MIN": args.login_min,
                         "IMAP_MIN": args.imap_min,
                         "IMAP_LIMIT": limit,
                         "CLIENT_LIMIT": limit + 1000})
    moon = Moonpost(root, args.builddir, args,
                    template="moonpost-imap.conf.in", port_base=31143,
                    proto="imap", extra={"CONNECTIONS": limit})
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


def warm_up(server, args):
    """Every account once, untimed: Dovecot builds its indexes, both
    servers have seen every account (and moonpost has its login cache
    filled, as a server that has run for a while would)."""
    r = run_load(args, server.port, min(10, args.users), count=args.users)
    log("%s: warm-up, %d sessions, %d failures%s"
        % (server.name, r["sessions"], r["failures"],
           "".join("; %s: %d" % kv for kv in r["failure_kinds"].items())))
    if r["sessions"] == 0:
        raise RuntimeError("no session succeeded")


def point(server, args, clients):
    os.sync()
    time.sleep(SETTLE)
    cpu0 = tree_cpu(server.pid())
    r = run_load(args, server.port, clients, duration=args.duration)
    r["server_cpu"] = (tree_cpu(server.pid()) - cpu0) / r["seconds"]
    r["server"] = server.name
    print("%s: clients=%d sessions=%d ops=%d failures=%d seconds=%.1f "
          "sessions/s=%.1f ops/s=%.1f p50_ms=%.1f p99_ms=%.1f "
          "server_cpu=%.0f%% client_cpu=%.0f%% load=%.1f"
          % (server.name, clients, r["sessions"], r["ops"], r["failures"],
             r["seconds"], r["rate"], r["op_rate"], r["p50"], r["p99"],
             r["server_cpu"] * 100, r["client_cpu"] * 100,
             os.getloadavg()[0]))
    print("%s:   p50/p99 ms per command: %s" % (server.name, ", ".join(
        "%s %.1f/%.1f" % (k, v[0], v[1])
        for k, v in r["by_command"].items())))
    for kind, n in sorted(r["failure_kinds"].items()):
        print("%s:   failure %s: %d" % (server.name, kind, n))
    if r["expungeissued"]:
        print("%s:   NO [EXPUNGEISSUED] (not failures): %d"
              % (server.name, r["expungeissued"]))
    sys.stdout.flush()
    return r


def print_tables(rows, idle):
    by = {(r["server"], r["clients"]): r for r in rows}
    print()
    print("| server | clients | ops/s | sessions/s | p50 ms | p99 ms "
          "| server CPU | failures | moonpost/dovecot ops/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = ""
        ref = by.get(("dovecot", r["clients"]))
        if r["server"] == "moonpost" and ref and ref["op_rate"] > 0:
            ratio = "%.2f" % (r["op_rate"] / ref["op_rate"])
        print("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.0f%% | %d | %s |"
              % (r["server"], r["clients"], r["op_rate"], r["rate"],
                 r["p50"], r["p99"], r["server_cpu"] * 100, r["failures"],
                 ratio))
    if idle:
        print()
        print("| server | idle sessions | memory, one per account | "
              "memory, all | per extra idle session | failures |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in idle:
            print("| %s | %d | %.1f MB | %.1f MB | %.1f KB | %d |"
                  % (r["server"], r["sessions"], r["warm_kb"] / 1024,
                     r["full_kb"] / 1024, r["per_session_kb"],
                     r["failures"]))
    sys.stdout.flush()


def cmd_compare(args):
    raise_nofile(max(args.clients) + args.idle + 1000)
    root = os.path.join(args.workdir,
                        time.strftime("imap-bench-%Y%m%d-%H%M%S"))
    os.makedirs(root)
    os.chmod(root, 0o755)
    log("data under %s; load average %.2f %.2f %.2f before the run"
        % ((root,) + os.getloadavg()))
    signal.signal(signal.SIGTERM, terminate)
    servers, rows, idle = [], [], []
    try:
        servers = setup(root, args)
        up = []
        for server in servers:
            try:
                server.start()
                warm_up(server, args)
                up.append(server)
            except (RuntimeError, OSError) as e:
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
        # Idle sessions on a freshly started server each, one at a time:
        # no imap processes (Dovecot) or buffers (moonpost) left from the
        # loads, and not both servers' sessions in memory at once.
        if args.idle:
            for server in up:
                server.stop()
            for server in up:
                server.start()
                try:
                    os.sync()
                    time.sleep(SETTLE)
                    idle.append(asyncio.run(idle_async(server, args)))
                finally:
                    server.stop()
    finally:
        for server in reversed(servers):
            try:
                server.stop()
            except OSError as e:
                log("stopping %s: %s" % (server.name, e))
        print_tables(rows, idle)
        log("data left under %s" % root)
    return 0


def main():
    p = argparse.ArgumentParser(
        description="mixed IMAP benchmark (figures, never asserted)")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", help="moonpost against Dovecot")
    add_compare_options(c, "imap", [10, 100, 500], 50, 10.0)
    c.add_argument("--idle", type=int, default=1000,
                   help="idle IDLE sessions for the memory figure "
                   "(default 1000; 0: none)")
    c.add_argument("--users", type=int, default=100,
                   help="accounts user1..userN (default 100)")
    c.add_argument("--domain", default="example.test")
    args = p.parse_args()
    return cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
