#!/usr/bin/env python3
"""smtp-bench.py - SMTP delivery figures (issue 4). Prints figures; never
passes or fails on a time.

  smtp-bench.py run HOST:PORT [-c SESSIONS] [-d SECONDS | -n MESSAGES]
                [--rcpts N] [--domain D] [--size BYTES] [--sources N]
  smtp-bench.py compare --builddir DIR [--duration SECONDS]
                [--sessions 1,10,50] [--no-reference] [--no-moonpost]
                [--no-install] [--lmtp-min N] [--perf]

`run` is the load generator: SESSIONS concurrent SMTP sessions, each on a
persistent connection (EHLO once, then MAIL, RCPT, DATA for every message;
MAIL+RCPT+DATA in one write when the server offers PIPELINING), sending
messages of about BYTES to user1..userN@D in turn. A transaction's latency
is from writing MAIL to reading the 250 after the final dot; only messages
answered 250 count, everything else is reported as a failure.

`compare` runs the same load against moonpost (`serve --dev` from DIR) and
against a private Postfix + Dovecot LMTP instance (configs in reference/
beside this file), checks that each mailstore holds exactly the messages
that were acknowledged, stops what it started, and prints one table. Its
data stays under /var/tmp/smtp-bench-*, whose path it prints.

Python 3 standard library only.
"""

import argparse
import asyncio
import email.utils
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

from benchlib import (HERE, REFERENCE_DIR, fill, int_list, log, percentile,
                      perf_record, perf_stop, port_free, read_pid, terminate,
                      wait_gone, wait_port)

# The reply that ends a transaction must come within this; a server that
# stalls longer is a failure, not a slow figure.
REPLY_TIMEOUT = 120.0
# moonpost closes a session after 10,000 commands (smtp max_commands): a
# fresh connection every 1,000 messages stays well inside it.
DEFAULT_PER_CONNECTION = 1000
PASSWORD = "bench-password"
# Seconds of quiet before each load of compare, after a sync(2).
SETTLE = 3.0

WORDS = ("the quarterly report is attached please review the figures before "
         "our meeting on thursday we should also discuss the budget for next "
         "year and the new hires in the support team let me know if you have "
         "any questions or if anything in the numbers looks wrong to you "
         "thanks again for your help with the migration last week").split()


# ---- the load generator --------------------------------------------------

class SmtpError(Exception):
    """The server broke the protocol or closed the connection."""


def make_body(size):
    """Plain text of about size bytes: CRLF lines under 78 characters,
    none starting with a dot, so it needs no stuffing."""
    rnd = random.Random(4)
    lines, total = [], 0
    while total < size:
        line = []
        while sum(len(w) + 1 for w in line) < 66:
            line.append(rnd.choice(WORDS))
        text = " ".join(line).capitalize()
        lines.append(text)
        total += len(text) + 2
    return ("\r\n".join(lines) + "\r\n").encode()


class Workload:
    """What every session sends: envelope, headers, the shared body."""

    def __init__(self, size, rcpts, domain, run_id):
        self.rcpts = rcpts
        self.domain = domain
        self.run_id = run_id
        # The header block below is about 600 bytes.
        self.body = make_body(max(size - 600, 100))

    def recipient(self, seq):
        return "user%d@%s" % (seq % self.rcpts + 1, self.domain)

    def message(self, seq, session, rcpt):
        date = email.utils.formatdate()
        head = (
            "Received: from client%d.bench.example (client%d.bench.example "
            "[192.0.2.%d])\r\n\tby relay.bench.example with ESMTPS id "
            "%s%08d\r\n\tfor <%s>; %s\r\n"
            "Date: %s\r\n"
            "From: \"Bench Sender %d\" <sender%d@bench.example>\r\n"
            "To: <%s>\r\n"
            "Subject: Quarterly figures, message %d of session %d\r\n"
            "Message-ID: <%d.%d.%s@bench.example>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii; format=flowed\r\n"
            "Content-Transfer-Encoding: 7bit\r\n"
            "X-Mailer: smtp-bench.py\r\n"
            "\r\n" % (session, session, session % 254 + 1, self.run_id, seq,
                      rcpt, date, date, session, session, rcpt, seq, session,
                      seq, session, self.run_id))
        return head.encode() + self.body + b".\r\n"


class Stats:
    def __init__(self):
        self.ok = 0
        self.latencies = []
        self.failures = Counter()
        self.unknown = 0  # cut off after the body: delivered or not
        self.connections = 0


class Load:
    """Shared state of one run: when to stop, the message counter."""

    def __init__(self, args, workload):
        self.host = args.host
        self.port = args.port
        self.sessions = args.sessions
        self.sources = args.sources
        self.per_connection = args.per_connection
        self.count = args.count
        self.workload = workload
        self.stats = Stats()
        self.seq = 0
        self.deadline = None
        self.awaiting = set()  # sessions waiting for the final reply

    def over(self):
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return True
        return bool(self.count) and self.seq >= self.count

    def next_seq(self):
        """The next message number, or None when the run is over."""
        if self.over():
            return None
        self.seq += 1
        return self.seq - 1


async def read_reply(reader):
    """(code, lines) of one possibly multiline reply."""
    lines = []
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise SmtpError("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            try:
                return int(line[:3]), lines
            except ValueError:
                raise SmtpError("bad reply %r" % line[:40]) from None


async def connect(load, session):
    src = None
    if load.sources > 1 and load.host.startswith("127."):
        src = ("127.0.0.%d" % (session % load.sources + 1), 0)
    async with asyncio.timeout(REPLY_TIMEOUT):
        reader, writer = await asyncio.open_connection(
            load.host, load.port, local_addr=src)
        code, _ = await read_reply(reader)
        if code != 220:
            writer.close()
            raise SmtpError("greeting %d" % code)
        writer.write(b"EHLO client%d.bench.example\r\n" % session)
        code, lines = await read_reply(reader)
    if code != 250:
        writer.close()
        raise SmtpError("EHLO %d" % code)
    pipelining = any(l[4:].strip().upper() == b"PIPELINING" for l in lines)
    load.stats.connections += 1
    return reader, writer, pipelining


async def envelope(reader, writer, sender, rcpt, pipelining):
    """MAIL, RCPT, DATA: their three reply codes."""
    cmds = [b"MAIL FROM:<%s>\r\n" % sender, b"RCPT TO:<%s>\r\n" % rcpt,
            b"DATA\r\n"]
    if pipelining:
        writer.write(b"".join(cmds))
        return [(await read_reply(reader))[0] for _ in cmds]
    codes = []
    for cmd in cmds:
        writer.write(cmd)
        codes.append((await read_reply(reader))[0])
        if codes[-1] >= 400:
            break  # without pipelining, stop at the first refusal
    return codes + [0] * (3 - len(codes))


async def transaction(load, reader, writer, session, seq, pipelining):
    """One message; returns False when the connection must be dropped."""
    stats, w = load.stats, load.workload
    rcpt = w.recipient(seq)
    sender = b"sender%d@bench.example" % session
    start = time.perf_counter()
    codes = await envelope(reader, writer, sender, rcpt.encode(), pipelining)
    if codes[2] != 354:
        stats.failures[_failure_name(codes)] += 1
        if 421 in codes:
            return False
        # The server may still hold the transaction open (Postfix and
        # moonpost do after "no valid recipients"): end it.
        writer.write(b"RSET\r\n")
        return (await read_reply(reader))[0] == 250
    writer.write(w.message(seq, session, rcpt))
    load.awaiting.add(session)  # sent: from here on, maybe delivered
    code, _ = await read_reply(reader)
    load.awaiting.discard(session)
    if code == 250 and codes[:2] == [250, 250]:
        stats.ok += 1
        stats.latencies.append(time.perf_counter() - start)
    else:
        stats.failures["DATA %d" % code] += 1
    return code != 421


def _failure_name(codes):
    names = ("MAIL", "RCPT", "DATA")
    for name, code in zip(names, codes):
        if code != (354 if name == "DATA" else 250):
            return "%s %d" % (name, code)
    return "?"


async def quit_session(writer):
    try:
        writer.write(b"QUIT\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    except OSError:
        pass


async def session_main(load, session):
    while True:
        try:
            reader, writer, pipelining = await connect(load, session)
        except (OSError, SmtpError, TimeoutError) as e:
            if load.over():
                return
            load.stats.failures["connect: %s" % _why(e)] += 1
            await asyncio.sleep(0.2)
            continue
        sent, keep = 0, True
        try:
            while keep and (not load.per_connection
                            or sent < load.per_connection):
                seq = load.next_seq()
                if seq is None:
                    await quit_session(writer)
                    return
                async with asyncio.timeout(REPLY_TIMEOUT):
                    keep = await transaction(load, reader, writer, session,
                                             seq, pipelining)
                sent += 1
            await quit_session(writer)
        except (OSError, SmtpError, TimeoutError) as e:
            load.stats.failures["connection: %s" % _why(e)] += 1
            if session in load.awaiting:
                load.awaiting.discard(session)
                load.stats.unknown += 1
            writer.close()


def _why(e):
    return str(e) if isinstance(e, SmtpError) else type(e).__name__


async def run_async(load, duration):
    start = time.monotonic()
    if duration:
        load.deadline = start + duration
    await asyncio.gather(*(session_main(load, i)
                           for i in range(load.sessions)))
    return time.monotonic() - start


def run_load(args, run_id=None):
    """Runs one load; returns a dict of figures."""
    run_id = run_id or "%x" % int(time.time())
    load = Load(args, Workload(args.size, args.rcpts, args.domain, run_id))
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.time()
    seconds = asyncio.run(run_async(load, args.duration))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    lat = sorted(load.stats.latencies)
    return {
        "sessions": load.sessions,
        "messages": load.stats.ok,
        "failures": sum(load.stats.failures.values()),
        "failure_kinds": dict(load.stats.failures),
        "unknown": load.stats.unknown,
        "connections": load.stats.connections,
        "started": wall0,
        "seconds": seconds,
        "rate": load.stats.ok / seconds if seconds > 0 else 0.0,
        "p50": percentile(lat, 50) * 1000,
        "p99": percentile(lat, 99) * 1000,
        "client_cpu": cpu / seconds if seconds > 0 else 0.0,
    }


def print_result(r, label=""):
    print("%ssessions=%d messages=%d failures=%d seconds=%.2f "
          "messages/s=%.1f p50_ms=%.1f p99_ms=%.1f client_cpu=%.0f%%"
          % (label, r["sessions"], r["messages"], r["failures"], r["seconds"],
             r["rate"], r["p50"], r["p99"], r["client_cpu"] * 100))
    for kind, n in sorted(r["failure_kinds"].items()):
        print("%s  failure %s: %d" % (label, kind, n))
    if r["unknown"]:
        print("%s  %d transaction(s) cut off after the message was sent: "
              "delivered or not, unknown" % (label, r["unknown"]))
    sys.stdout.flush()


def cmd_run(args):
    host, _, port = args.target.rpartition(":")
    args.host, args.port = host or "127.0.0.1", int(port)
    if not args.duration and not args.count:
        args.duration = 20.0
    print_result(run_load(args))
    return 0


# ---- helpers for compare --------------------------------------------------

def count_files(dirs):
    n = 0
    for d in dirs:
        try:
            n += sum(1 for e in os.scandir(d) if e.is_file())
        except FileNotFoundError:
            pass
    return n


class Moonpost:
    name = "moonpost"
    # The dev listeners: mx, submission(s), imap(s), pop3(s).
    PORTS = (25, 587, 465, 143, 993, 110, 995)

    def __init__(self, root, builddir, rcpts, domain):
        self.dir = os.path.join(root, "moonpost")
        self.binary = os.path.join(builddir, "moonpost")
        self.rcpts, self.domain = rcpts, domain
        self.proc = None
        self.logfile = os.path.join(root, "moonpost.log")

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("no %s: build first" % self.binary)
        offset = next(o for o in range(21000, 60000, 97)
                      if all(port_free(p + o) for p in self.PORTS))
        self.port = 25 + offset
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--dev", "--data-dir", self.dir,
                 "--port-offset", str(offset)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        wait_port(self.port, 30, self.proc)
        for i in range(1, self.rcpts + 1):
            subprocess.run(
                [self.binary, "user", "add", "user%d@%s" % (i, self.domain),
                 "--data-dir", self.dir, "--password-stdin"],
                input=(PASSWORD + "\n").encode(), check=True,
                stdout=subprocess.DEVNULL)
        log("moonpost pid %d, mx on 127.0.0.1:%d, data in %s, log %s"
            % (self.proc.pid, self.port, self.dir, self.logfile))

    def pid(self):
        return self.proc.pid

    def leftover(self):
        """The index's count, which must agree with the files."""
        rows = 0
        for i in range(1, self.rcpts + 1):
            path = os.path.join(self.dir, "mail", self.domain,
                                "user%d" % i, "index.sqlite")
            if not os.path.exists(path):
                continue
            db = sqlite3.connect(path, timeout=30)
            try:
                rows += db.execute(
                    "SELECT count(*) FROM messages m JOIN mailboxes b "
                    "ON m.mailbox = b.id WHERE b.name = 'INBOX'"
                ).fetchone()[0]
            finally:
                db.close()
        return ("; since start %d INBOX rows in the indexes, %d files"
                % (rows, count_files(self.mail_dirs())))

    def mail_dirs(self):
        base = os.path.join(self.dir, "mail", self.domain)
        return [os.path.join(base, "user%d" % i, sub)
                for i in range(1, self.rcpts + 1) for sub in ("cur", "new")]

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
    """A private Postfix + Dovecot LMTP, all of it under root/reference."""
    name = "postfix+dovecot"

    def __init__(self, root, rcpts, domain, lmtp_min):
        self.dir = os.path.join(root, "reference")
        self.rcpts, self.domain, self.lmtp_min = rcpts, domain, lmtp_min
        self.pf_etc = os.path.join(self.dir, "postfix", "etc")
        self.pf_queue = os.path.join(self.dir, "postfix", "queue")
        self.dc_conf = os.path.join(self.dir, "dovecot", "dovecot.conf")
        self.vmail = os.path.join(self.dir, "vmail")
        self.postfix_up = self.dovecot_up = False

    def install(self, allowed):
        if shutil.which("postfix", path="/usr/sbin:/usr/bin") and \
                os.path.exists("/usr/lib/dovecot/lmtp"):
            return
        if not allowed:
            raise RuntimeError("postfix or dovecot-lmtpd is missing "
                               "(--no-install given)")
        log("installing postfix, dovecot-core, dovecot-lmtpd")
        subprocess.run(["sh", os.path.join(REFERENCE_DIR, "install.sh")],
                       check=True)

    def configure(self):
        d = self.dir
        for sub in ("postfix/etc", "postfix/queue", "postfix/data",
                    "dovecot/run", "dovecot/state", "vmail"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for p in (os.path.dirname(d), d):
            os.chmod(p, 0o755)  # postfix and nobody pass through
        shutil.chown(os.path.join(d, "postfix", "data"), "postfix")
        shutil.chown(self.vmail, "nobody", "nogroup")
        self.port = next(p for p in range(32025, 60000, 101) if port_free(p))
        users = os.path.join(d, "dovecot", "users")
        with open(os.path.join(self.pf_etc, "vmailbox"), "w") as vm, \
                open(users, "w") as us:
            for i in range(1, self.rcpts + 1):
                addr = "user%d@%s" % (i, self.domain)
                vm.write("%s ok\n" % addr)
                us.write("%s:{PLAIN}%s:65534:65534::%s::\n"
                         % (addr, PASSWORD, self.home(i)))
        os.chmod(users, 0o600)
        shutil.chown(users, "dovecot")  # read by the auth process
        fill("main.cf.in", os.path.join(self.pf_etc, "main.cf"), {
            "ETC": self.pf_etc, "QUEUE": self.pf_queue,
            "DATA": os.path.join(d, "postfix", "data"),
            "LOG": os.path.join(d, "postfix", "maillog"),
            "LMTP_SOCKET": os.path.join(d, "dovecot", "run", "lmtp")})
        fill("master.cf.in", os.path.join(self.pf_etc, "master.cf"),
             {"SMTP_ADDR": "127.0.0.1:%d" % self.port})
        fill("dovecot.conf.in", self.dc_conf, {
            "CONF": self.dc_conf, "RUN": os.path.join(d, "dovecot", "run"),
            "STATE": os.path.join(d, "dovecot", "state"),
            "LOG": os.path.join(d, "dovecot", "dovecot.log"),
            "USERS": users, "VMAIL": self.vmail,
            "LMTP_MIN": self.lmtp_min})

    def home(self, i):
        return os.path.join(self.vmail, self.domain, "user%d" % i)

    def start(self):
        self.configure()
        self.dovecot_up = True  # from here on, stop() tries
        subprocess.run(["dovecot", "-c", self.dc_conf], check=True)
        self.postfix_up = True
        subprocess.run(["postfix", "-c", self.pf_etc, "start"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 30)
        log("postfix %s + dovecot %s, smtpd on 127.0.0.1:%d, data in %s"
            % (self.versions() + (self.port, self.dir)))

    def versions(self):
        pf = subprocess.run(["postconf", "-c", self.pf_etc, "-h",
                             "mail_version"], capture_output=True, text=True)
        dc = subprocess.run(["dovecot", "--version"], capture_output=True,
                            text=True)
        return pf.stdout.strip(), dc.stdout.split()[0] if dc.stdout else "?"

    def mail_dirs(self):
        return [os.path.join(self.home(i), "Maildir", sub)
                for i in range(1, self.rcpts + 1) for sub in ("new", "cur")]

    def leftover(self):
        """What is still on its way: Postfix's queue."""
        n = sum(len(files) for q in ("incoming", "active", "deferred")
                for _, _, files in os.walk(os.path.join(self.pf_queue, q)))
        return "; %d left in the postfix queue" % n

    def stop(self):
        if self.postfix_up:
            self.postfix_up = False
            pid = read_pid(os.path.join(self.pf_queue, "pid", "master.pid"))
            subprocess.run(["postfix", "-c", self.pf_etc, "stop"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            wait_gone(pid)
            log("postfix stopped")
        if self.dovecot_up:
            self.dovecot_up = False
            pid = read_pid(os.path.join(self.dir, "dovecot", "run",
                                        "master.pid"))
            subprocess.run(["dovecot", "-c", self.dc_conf, "stop"])
            wait_gone(pid)
            log("dovecot stopped")


def point(server, args, sessions, run_id):
    """One load against server; waits until the mailstores hold every
    acknowledged message; returns the figures."""
    # Write back what the previous load left dirty, so that its flushes
    # do not land in this one's fsyncs.
    os.sync()
    time.sleep(SETTLE)
    dirs = server.mail_dirs()
    before = count_files(dirs)
    load_args = argparse.Namespace(**vars(args))
    load_args.host, load_args.port = "127.0.0.1", server.port
    load_args.sessions, load_args.count = sessions, 0
    # moonpost takes 20 connections per client address (limits
    # connections_per_ip): each session gets its own 127.0.0.x.
    load_args.sources = sessions
    perf = start_perf(server, args, sessions)
    r = run_load(load_args, run_id)
    perf_stop(perf)
    want = before + r["messages"]
    end = r["started"] + r["seconds"]
    stored = count_files(dirs)
    deadline = time.time() + max(60.0, 5 * args.duration)
    while stored < want and time.time() < deadline:
        time.sleep(0.05)
        stored = count_files(dirs)
        end = time.time()
    time.sleep(0.5)  # anything more, arriving late, is a duplicate
    stored = count_files(dirs) - before
    r["delivered"] = stored
    r["delivered_rate"] = stored / (end - r["started"])
    r["server"] = server.name
    print_result(r, "%s: " % server.name)
    verdict = "exactly once" if stored == r["messages"] else "MISMATCH"
    log("%s, %d sessions: %d acknowledged, %d in the mailstores, "
        "%d cut off: %s; stored %.2f s after the load began%s; "
        "load average %.1f"
        % (server.name, sessions, r["messages"], stored, r["unknown"],
           verdict, end - r["started"], server.leftover(),
           os.getloadavg()[0]))
    return r


def start_perf(server, args, sessions):
    if not args.perf or sessions != max(args.sessions) \
            or not isinstance(server, Moonpost):
        return None
    out = os.path.join(os.path.dirname(server.dir), "moonpost.perf.data")
    return perf_record(server.pid(), out, "moonpost")


def print_table(rows):
    print()
    print("| server | sessions | accepted/s | delivered/s | p50 ms | p99 ms "
          "| failures |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %d | %.1f | %.1f | %.1f | %.1f | %d |"
              % (r["server"], r["sessions"], r["rate"], r["delivered_rate"],
                 r["p50"], r["p99"], r["failures"]))
    sys.stdout.flush()


def start_all(servers, args):
    """Starts what it can; returns the servers that are up."""
    up = []
    for server in servers:
        try:
            if isinstance(server, Reference):
                server.install(args.install)
            server.start()
            up.append(server)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            log("%s cannot run here: %s" % (server.name, e))
    return up


def cmd_compare(args):
    if not args.duration:
        args.duration = 20.0
    root = os.path.join(args.workdir,
                        time.strftime("smtp-bench-%Y%m%d-%H%M%S"))
    os.makedirs(root)
    log("data under %s; load average %.2f %.2f %.2f before the run"
        % ((root,) + os.getloadavg()))
    signal.signal(signal.SIGTERM, terminate)
    servers, rows = [], []
    if args.moonpost:
        servers.append(Moonpost(root, args.builddir, args.rcpts,
                                args.domain))
    if args.reference:
        servers.append(Reference(root, args.rcpts, args.domain,
                                 args.lmtp_min))
    run_id = "%x" % int(time.time())
    try:
        up = start_all(servers, args)
        # Each session count on every server in turn, so that whatever
        # else the machine does meanwhile weighs on both alike.
        for n in args.sessions:
            for server in list(up):
                try:
                    rows.append(point(server, args, n, run_id))
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


# ---- command line ----------------------------------------------------------

def add_load_options(p):
    p.add_argument("-d", "--duration", type=float, default=0,
                   help="seconds of load (default 20 unless -n)")
    p.add_argument("--rcpts", type=int, default=50,
                   help="recipients user1..userN, in turn (default 50)")
    p.add_argument("--domain", default="example.test")
    p.add_argument("--size", type=int, default=5000,
                   help="message size in bytes (default 5000)")
    p.add_argument("--per-connection", type=int,
                   default=DEFAULT_PER_CONNECTION,
                   help="messages before reconnecting, 0: never (default "
                   "%d)" % DEFAULT_PER_CONNECTION)


def main():
    p = argparse.ArgumentParser(
        description="SMTP delivery benchmark (figures, never asserted)")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="load one server")
    r.add_argument("target", help="HOST:PORT")
    r.add_argument("-c", "--sessions", type=int, default=1)
    r.add_argument("-n", "--count", type=int, default=0,
                   help="messages in all, instead of a duration")
    r.add_argument("--sources", type=int, default=1,
                   help="spread sessions over 127.0.0.1..127.0.0.N")
    add_load_options(r)
    c = sub.add_parser("compare", help="moonpost against Postfix+Dovecot")
    c.add_argument("--builddir", default=os.path.join(HERE, "..", ".."))
    c.add_argument("--sessions", type=int_list, default=[1, 10, 50])
    c.add_argument("--workdir", default="/var/tmp")
    c.add_argument("--no-moonpost", dest="moonpost", action="store_false")
    c.add_argument("--no-reference", dest="reference", action="store_false")
    c.add_argument("--no-install", dest="install", action="store_false",
                   help="never apt-get the reference packages")
    c.add_argument("--lmtp-min", type=int, default=8,
                   help="Dovecot lmtp process_min_avail (default 8)")
    c.add_argument("--perf", action="store_true",
                   help="perf record moonpost during the largest load")
    add_load_options(c)
    args = p.parse_args()
    return cmd_run(args) if args.cmd == "run" else cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
