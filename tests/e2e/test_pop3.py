#!/usr/bin/env python3
"""The POP3 plugin through the real daemon: Python's poplib and raw sockets
on a STLS listener and an implicit TLS one, messages put in with `moonpost
deliver`, and what is left in the mailstore checked in its index. Also a
real client, fetchmail."""

import base64
import hashlib
import hmac
import os
import poplib
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient  # noqa: E402

PASSWORD = "correct horse battery"
USER = "demo@example.test"


def message(subject, body="Hello.\r\n"):
    return ("From: Ann <ann@example.org>\r\nTo: demo@example.test\r\n"
            "Subject: %s\r\n\r\n%s" % (subject, body)).encode()


class PopClient(LineClient):
    """Raw POP3: status lines as text, multi-line bodies as bytes."""

    def multi(self):
        """The body of a multi-line response, dot-unstuffed, and the raw
        bytes as they came on the wire."""
        data = bytearray(self.buf)
        pos = 0
        while True:
            if data.startswith(b".\r\n"):
                body_end, end = 0, 3
                break
            i = data.find(b"\r\n.\r\n", pos)
            if i >= 0:
                body_end, end = i + 2, i + 5
                break
            pos = max(0, len(data) - 4)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("closed inside a multi-line response")
            data += chunk
        raw = bytes(data[:body_end])
        self.buf = bytes(data[end:])
        unstuffed = re.sub(rb"(^|\r\n)\.", rb"\1", raw)
        return unstuffed, raw

    def ok(self, text):
        reply = self.cmd(text)
        if not reply.startswith("+OK"):
            raise AssertionError("%s: %s" % (text, reply))
        return reply

    def login(self, user=USER, password=PASSWORD):
        self.ok("USER " + user)
        return self.cmd("PASS " + password)


def scram_client(user, password, exchange):
    """A SCRAM-SHA-256 client (RFC 5802); exchange(msg) -> server msg."""
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user, nonce)
    server_first = exchange(("n,," + first_bare).encode()).decode()
    fields = dict(f.split("=", 1) for f in server_first.split(","))
    salt = base64.b64decode(fields["s"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                 int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()
    final_bare = "c=biws,r=%s" % fields["r"]
    auth_msg = ",".join([first_bare, server_first, final_bare]).encode()
    sig = hmac.new(stored, auth_msg, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    server_final = exchange(
        (final_bare + ",p=" + base64.b64encode(proof).decode()).encode())
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    want = base64.b64encode(hmac.new(server_key, auth_msg,
                                     "sha256").digest()).decode()
    return server_final.decode() == "v=" + want


def outside_address():
    """An address of this machine that is not loopback, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


class Base(harness.DaemonTest):
    """A daemon with a pop3 (STLS) and a pop3s listener on loopback, and
    one on another address of the machine when it has one."""

    LISTENERS = (("pop3", "pop3", 'tls = "starttls"'),
                 ("pop3s", "pop3", 'tls = "implicit"'))
    USERS = (USER, "bob@example.test")
    POP3 = ""

    def before_daemon(self):
        self.outside = outside_address()

    def config_extra(self, ports):
        outside = ""
        if self.outside:
            outside = ('listen { name = "pop3-out", protocol = "pop3", '
                       'address = "%s:%d", tls = "starttls" }\n'
                       % (self.outside, ports[2]))
        return outside + "pop3 { %s }" % self.POP3

    def setUp(self):
        super().setUp()
        self.pop3, self.pop3s, self.pop3_out = self.d.ports[:3]
        self.account = os.path.join(self.data, "mail", "example.test", "demo")

    # --- the mailstore, from outside ------------------------------------

    def index(self):
        return sqlite3.connect(os.path.join(self.account, "index.sqlite"))

    def stored(self):
        """[(uid, flags, bytes)] of INBOX, in UID order."""
        db = self.index()
        rows = db.execute(
            "SELECT m.uid, m.flags, b.dir, m.file FROM messages m JOIN "
            "mailboxes b ON b.id = m.mailbox WHERE b.name = 'INBOX' "
            "ORDER BY m.uid").fetchall()
        db.close()
        out = []
        for uid, flags, folder, file in rows:
            with open(os.path.join(self.account, folder, file), "rb") as f:
                out.append((uid, flags, f.read()))
        return out

    def uidvalidity(self):
        db = self.index()
        (v,) = db.execute("SELECT uidvalidity FROM mailboxes WHERE "
                          "name = 'INBOX'").fetchone()
        db.close()
        return v

    def expunged(self):
        db = self.index()
        rows = db.execute("SELECT e.uid FROM expunged e JOIN mailboxes b "
                          "ON b.id = e.mailbox WHERE b.name = 'INBOX' "
                          "ORDER BY e.uid").fetchall()
        db.close()
        return [r[0] for r in rows]

    def fill(self, n):
        for i in range(n):
            self.deliver(message("number %d" % (i + 1)))

    # --- clients ---------------------------------------------------------

    def client(self, port=None):
        c = PopClient(port or self.pop3)
        self.assertTrue(c.line().startswith("+OK"))
        return c

    def session(self):
        """A raw client, logged in (retrying while an old session's lock
        is being released)."""
        for _ in range(50):
            c = self.client()
            reply = c.login()
            if reply.startswith("+OK"):
                return c
            c.close()
            self.assertIn("[IN-USE]", reply)
            time.sleep(0.1)
        self.fail("still in use")

    def poplib(self):
        p = poplib.POP3("127.0.0.1", self.pop3, timeout=30)
        p.user(USER)
        p.pass_(PASSWORD)
        return p


class Commands(Base):
    def test_greeting_and_capa(self):
        c = self.client()
        c.send("CAPA\r\n")
        self.assertTrue(c.line().startswith("+OK"))
        caps = c.multi()[0].decode().split("\r\n")[:-1]
        for want in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE",
                     "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION moonpost",
                     "STLS", "SASL SCRAM-SHA-256 PLAIN LOGIN"):
            self.assertIn(want, caps)
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out")
        self.assertTrue(c.is_closed())

    def test_poplib_session(self):
        self.fill(3)
        msgs = self.stored()
        p = self.poplib()
        total = sum(len(m[2]) for m in msgs)
        self.assertEqual(p.stat(), (3, total))
        resp, lines, _ = p.list()
        self.assertTrue(resp.startswith(b"+OK 3 messages"))
        self.assertEqual(lines, [b"%d %d" % (i + 1, len(m[2]))
                                 for i, m in enumerate(msgs)])
        self.assertEqual(p.list(2), b"+OK 2 %d" % len(msgs[1][2]))
        for i, m in enumerate(msgs):
            resp, lines, octets = p.retr(i + 1)
            self.assertEqual(resp, b"+OK %d octets" % len(m[2]))
            self.assertEqual(b"\r\n".join(lines) + b"\r\n", m[2])
        self.assertEqual(p.noop(), b"+OK")
        p.dele(1)
        self.assertEqual(p.stat(), (2, total - len(msgs[0][2])))
        self.assertTrue(p.rset().startswith(b"+OK Maildrop has 3 messages"))
        self.assertEqual(p.stat(), (3, total))
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.assertEqual(len(self.stored()), 3)

    def test_wrong_state_and_arguments(self):
        self.fill(2)
        c = self.client()
        for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET",
                    "TOP 1 0", "UIDL"):
            self.assertEqual(c.cmd(cmd), "-ERR Not logged in", cmd)
        self.assertEqual(c.cmd("PASS x"), "-ERR Send USER first")
        c.close()
        c = self.client()
        self.assertEqual(c.cmd("APOP demo 0123"), "-ERR Unknown command")
        self.assertEqual(c.cmd("USER"), "-ERR Missing user name")
        self.assertEqual(c.cmd("USER a b"), "-ERR User names have no spaces")
        self.assertTrue(c.login().startswith("+OK Logged in, 2 messages"))
        for cmd in ("USER x", "PASS x", "AUTH PLAIN", "STLS"):
            self.assertEqual(c.cmd(cmd), "-ERR Not allowed after login", cmd)
        self.assertEqual(c.cmd("XYZZY"), "-ERR Unknown command")
        c.close()
        # In two sessions: the tenth error would end the first.
        for cases in ((("RETR", "-ERR Missing message number"),
                       ("RETR x", "-ERR Invalid message number"),
                       ("RETR 0", "-ERR Invalid message number"),
                       ("RETR 3", "-ERR No such message, only 2 in the "
                                  "maildrop"),
                       ("RETR 99999999999", "-ERR Invalid message number")),
                      (("LIST 1 2", "-ERR Too many arguments"),
                       ("STAT x", "-ERR STAT takes no arguments"),
                       ("TOP 1", "-ERR Missing number of lines"),
                       ("TOP 1 x", "-ERR Invalid number of lines"),
                       ("DELE", "-ERR Missing message number"))):
            c = self.session()
            for cmd, want in cases:
                self.assertEqual(c.cmd(cmd), want, cmd)
            c.close()
        c = self.session()
        self.assertEqual(c.cmd("DELE 1"), "+OK Message 1 deleted")
        for cmd in ("DELE 1", "RETR 1", "LIST 1", "UIDL 1", "TOP 1 0"):
            self.assertEqual(c.cmd(cmd), "-ERR Message 1 is deleted", cmd)
        self.assertEqual(c.cmd("STAT"), "+OK 1 %d" % len(self.stored()[1][2]))

    def test_too_many_errors_and_long_line(self):
        c = self.client()
        self.assertEqual(c.cmd("NOOP " + "x" * 2000), "-ERR Line too long")
        for _ in range(8):
            self.assertEqual(c.cmd("BOGUS"), "-ERR Unknown command")
        self.assertEqual(c.cmd("BOGUS"), "-ERR Too many errors")
        self.assertTrue(c.is_closed())

    def test_wrong_password(self):
        c = self.client()
        c.ok("USER " + USER)
        self.assertEqual(c.cmd("PASS wrong"), "-ERR [AUTH] Authentication "
                                              "failed")
        # The name was used up: PASS needs USER again.
        self.assertEqual(c.cmd("PASS " + PASSWORD), "-ERR Send USER first")
        self.assertTrue(c.login().startswith("+OK"))
        with self.assertRaises(poplib.error_proto):
            p = poplib.POP3("127.0.0.1", self.pop3, timeout=30)
            p.user("nobody@example.test")
            p.pass_(PASSWORD)

    def test_pipelining(self):
        self.fill(2)
        msgs = self.stored()
        c = self.client()
        c.send("CAPA\r\nUSER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL 2\r\n"
               "RETR 1\r\nBOGUS\r\nTOP 2 0\r\nDELE 2\r\nNOOP\r\nQUIT\r\n"
               % (USER, PASSWORD))
        self.assertTrue(c.line().startswith("+OK"))
        c.multi()
        self.assertEqual(c.line(), "+OK")
        self.assertTrue(c.line().startswith("+OK Logged in, 2 messages"))
        self.assertTrue(c.line().startswith("+OK 2 "))
        self.assertTrue(c.line().startswith("+OK 2 messages"))
        self.assertEqual(len(c.multi()[0].split(b"\r\n")), 3)
        self.assertTrue(c.line().startswith("+OK 2 "))
        self.assertEqual(c.line(), "+OK %d octets" % len(msgs[0][2]))
        self.assertEqual(c.multi()[0], msgs[0][2])
        self.assertEqual(c.line(), "-ERR Unknown command")
        self.assertEqual(c.line(), "+OK Top of message follows")
        c.multi()
        self.assertEqual(c.line(), "+OK Message 2 deleted")
        self.assertEqual(c.line(), "+OK")
        self.assertEqual(c.line(), "+OK Logging out, 1 messages deleted")
        self.assertEqual([m[0] for m in self.stored()], [msgs[0][0]])

    def test_byte_stuffing_and_sizes(self):
        body = (b".starts with a dot\r\n..two dots\r\n.\r\nmiddle . dot\r\n"
                b"\r\n.\r\nlast line without a break")
        self.deliver(message("dots", body.decode()))
        (uid, _, stored), = self.stored()
        c = self.session()
        self.assertEqual(c.cmd("LIST 1"), "+OK 1 %d" % len(stored))
        self.assertEqual(c.cmd("RETR 1"), "+OK %d octets" % len(stored))
        unstuffed, raw = c.multi()
        self.assertIn(b"\r\n..starts with a dot\r\n...two dots\r\n..\r\n"
                      b"middle . dot\r\n\r\n..\r\n", raw)
        # The message has no final line break: one is added before ".".
        self.assertFalse(stored.endswith(b"\r\n"))
        self.assertEqual(unstuffed, stored + b"\r\n")
        # poplib agrees.
        c.close()
        p = self.poplib_retry()
        self.assertEqual(b"\r\n".join(p.retr(1)[1]), stored)
        p.quit()

    def poplib_retry(self):
        for _ in range(50):
            try:
                return self.poplib()
            except poplib.error_proto as e:
                self.assertIn(b"[IN-USE]", e.args[0])
                time.sleep(0.1)
        self.fail("still in use")

    def test_top(self):
        body = "one\r\n.two\r\nthree\r\nfour\r\n"
        self.deliver(message("top", body))
        stored = self.stored()[0][2]
        header, _, rest = stored.partition(b"\r\n\r\n")
        c = self.session()
        c.ok("TOP 1 0")
        self.assertEqual(c.multi()[0], header + b"\r\n\r\n")
        c.ok("TOP 1 2")
        top2, raw = c.multi()
        self.assertEqual(top2, header + b"\r\n\r\none\r\n.two\r\n")
        self.assertTrue(raw.endswith(b"\r\n..two\r\n"))
        c.ok("TOP 1 99999999999999")
        self.assertEqual(c.multi()[0], stored)
        # TOP does not count as retrieving: no \Seen at QUIT.
        c.ok("QUIT")
        self.assertEqual(self.stored()[0][1] & 1, 0)

    def test_uidl_stable(self):
        self.fill(4)
        uids = [m[0] for m in self.stored()]
        v = self.uidvalidity()
        want = ["%08X%08X" % (u, v) for u in uids]
        c = self.session()
        c.ok("UIDL")
        lines = c.multi()[0].decode().split("\r\n")[:-1]
        self.assertEqual(lines, ["%d %s" % (i + 1, w)
                                 for i, w in enumerate(want)])
        self.assertEqual(c.cmd("UIDL 3"), "+OK 3 " + want[2])
        c.ok("DELE 2")
        c.ok("QUIT")
        c = self.session()
        c.ok("UIDL")
        lines = c.multi()[0].decode().split("\r\n")[:-1]
        self.assertEqual(lines, ["1 " + want[0], "2 " + want[2],
                                 "3 " + want[3]])
        c.ok("QUIT")

    def test_snapshot(self):
        self.fill(2)
        c = self.session()
        self.deliver(message("late"))
        self.assertTrue(c.cmd("STAT").startswith("+OK 2 "))
        self.assertTrue(c.cmd("LIST 3").startswith("-ERR No such message"))
        c.ok("DELE 1")
        c.ok("QUIT")
        c = self.session()
        self.assertTrue(c.cmd("STAT").startswith("+OK 2 "))
        c.ok("RETR 2")
        self.assertIn(b"Subject: late", c.multi()[0])

    def test_dele_quit_expunges(self):
        self.fill(3)
        before = self.stored()
        files = sorted(os.listdir(os.path.join(self.account, "cur")))
        self.assertEqual(len(files), 3)
        c = self.session()
        c.ok("DELE 1")
        c.ok("RETR 2")
        c.multi()
        c.ok("DELE 3")
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out, 2 messages deleted")
        self.assertTrue(c.is_closed())
        after = self.stored()
        self.assertEqual([m[0] for m in after], [before[1][0]])
        # RETR marked the message \Seen, for IMAP clients.
        self.assertEqual(after[0][1] & 1, 1)
        # Expunged in the index (IMAP sessions are told), files gone.
        self.assertEqual(self.expunged(), [before[0][0], before[2][0]])
        self.assertEqual(len(os.listdir(os.path.join(self.account, "cur"))),
                         1)
        p = self.poplib_retry()
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_dele_rset_quit_keeps(self):
        self.fill(2)
        c = self.session()
        c.ok("DELE 1")
        c.ok("DELE 2")
        self.assertEqual(c.cmd("STAT"), "+OK 0 0")
        c.ok("LIST")
        self.assertEqual(c.multi()[0], b"")
        c.ok("RSET")
        self.assertTrue(c.cmd("STAT").startswith("+OK 2 "))
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out, 0 messages deleted")
        self.assertEqual(len(self.stored()), 2)
        self.assertEqual(self.expunged(), [])

    def test_dropped_connection_deletes_nothing(self):
        self.fill(2)
        c = self.session()
        c.ok("DELE 1")
        c.ok("RETR 2")
        c.close()
        self.d.wait_log(r"event=pop3_logout deleted=0 reason=no_quit")
        time.sleep(0.2)
        self.assertEqual([m[1] & 9 for m in self.stored()], [0, 0])
        c = self.session()
        self.assertTrue(c.cmd("STAT").startswith("+OK 2 "))

    def test_second_session_in_use(self):
        self.fill(1)
        first = self.session()
        second = self.client()
        second.ok("USER " + USER)
        self.assertEqual(second.cmd("PASS " + PASSWORD),
                         "-ERR [IN-USE] Mailbox is locked by another POP3 "
                         "session")
        # Still in AUTHORIZATION: it may try again.
        self.assertEqual(second.cmd("STAT"), "-ERR Not logged in")
        first.ok("DELE 1")
        first.ok("QUIT")
        self.assertTrue(second.login().startswith("+OK Logged in, 0 "))
        # Another account is not held up.
        self.deliver(message("for bob"), "bob@example.test")
        third = self.client()
        self.assertTrue(third.login("bob@example.test").startswith(
            "+OK Logged in, 1 messages"))

    def test_big_message(self):
        line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
        body = line * (20 * 1024 * 1024 // len(line))
        body += b".a dot line at the end\r\n"
        self.deliver(message("big").replace(b"Hello.\r\n", b"") + body)
        stored = self.stored()[0][2]
        self.assertGreater(len(stored), 20 * 1024 * 1024)
        rss_before = self.rss()
        c = self.session()
        self.assertEqual(c.cmd("RETR 1"), "+OK %d octets" % len(stored))
        # The client reads nothing for a while: the socket buffers fill
        # and the server must then hold only its output queue, not the
        # message.
        time.sleep(1.0)
        if not self.sanitized():
            # (ASan keeps freed memory in quarantine: no measure there.)
            self.assertLess(self.rss() - rss_before, 12 * 1024 * 1024)
        got, _ = c.multi()
        self.assertEqual(hashlib.sha256(got).hexdigest(),
                         hashlib.sha256(stored).hexdigest())
        self.assertEqual(c.cmd("NOOP"), "+OK")
        c.close()
        # Without TLS every byte of the file went by sendfile(2).
        self.d.wait_log(r"event=sendfile bytes=%d\b" % len(stored))

    def test_large_message_stuffed_with_and_without_tls(self):
        # Lines starting with "." all over a message large enough for
        # sendfile: first line of the body, runs of them, and the last
        # line, which has no line break.
        rnd = random.Random(5)
        lines = []
        for i in range(60000):
            r = rnd.random()
            if r < 0.002:
                lines.extend([".", "..", ".x"])
            elif r < 0.01:
                lines.append(".dot line %d" % i)
            else:
                lines.append("line %d %s" % (i, "y" * rnd.randrange(60)))
        body = ".first\r\n" + "\r\n".join(lines) + "\r\n.last"
        self.deliver(message("dots", body))
        stored = self.stored()[0][2]
        self.assertGreater(len(stored), 1024 * 1024)
        wire = re.sub(rb"(^|\n)\.", rb"\1..", stored) + b"\r\n"
        for tls in (False, True):
            if tls:
                c = self.client()
                self.assertTrue(c.cmd("STLS").startswith("+OK"))
                c.starttls()
                self.assertTrue(c.login().startswith("+OK"))
            else:
                c = self.session()
            self.assertEqual(c.cmd("RETR 1"), "+OK %d octets" % len(stored))
            unstuffed, raw = c.multi()
            self.assertEqual(raw, wire)
            self.assertEqual(unstuffed, stored + b"\r\n")
            self.assertEqual(c.cmd("QUIT").split()[0], "+OK")
            c.close()
            self.d.wait_log(r"event=pop3_logout", count=1 + tls)
            sid = re.findall(r"session=(\S+) event=pop3_logout",
                             self.d.log())[-1]
            self.d.wait_log(r"session=%s event=disconnect" % sid)
            # Without TLS the file's bytes went by sendfile, the
            # stuffing dots from memory; with TLS all from memory.
            sent = re.findall(r"session=%s event=sendfile bytes=(\d+)" % sid,
                              self.d.log())
            self.assertEqual(sent, [] if tls else [str(len(stored))])

    def sanitized(self):
        with open("/proc/%d/maps" % self.d.proc.pid) as f:
            return "libasan" in f.read()

    def rss(self):
        with open("/proc/%d/status" % self.d.proc.pid) as f:
            for line in f:
                # Anonymous memory: what the server allocated. A
                # message mapped to scan it is page cache, not a copy.
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def test_sigterm(self):
        self.fill(1)
        c = self.session()
        c.ok("DELE 1")
        self.d.send_signal(signal.SIGTERM)
        self.assertEqual(c.line(), "-ERR [SYS/TEMP] Server shutting down")
        self.assertTrue(c.is_closed())
        self.d.proc.wait(harness.STOP_TIMEOUT)
        self.assertEqual(len(self.stored()), 1)


class Tls(Base):
    def test_stls(self):
        c = self.client()
        c.send("STLS\r\nUSER injected@example.test\r\n")
        self.assertEqual(c.line(), "+OK Begin TLS negotiation")
        c.starttls()
        # The USER sent in plaintext with STLS is gone.
        self.assertEqual(c.cmd("PASS " + PASSWORD), "-ERR Send USER first")
        c.send("CAPA\r\n")
        c.line()
        caps = c.multi()[0].decode().split("\r\n")
        self.assertNotIn("STLS", caps)
        self.assertEqual(c.cmd("STLS"), "-ERR TLS is already active")
        self.assertTrue(c.login().startswith("+OK Logged in"))
        self.d.wait_log(r"event=starttls_discard bytes=")

    def test_poplib_stls_and_pop3s(self):
        self.fill(1)
        stored = self.stored()[0][2]
        p = poplib.POP3("127.0.0.1", self.pop3, timeout=30)
        p.stls(context=harness.client_tls_context())
        p.user(USER)
        p.pass_(PASSWORD)
        self.assertEqual(b"\r\n".join(p.retr(1)[1]) + b"\r\n", stored)
        p.quit()
        p = poplib.POP3_SSL("127.0.0.1", self.pop3s, timeout=30,
                            context=harness.client_tls_context())
        self.assertNotIn("STLS", p.capa())
        p.user(USER)
        p.pass_(PASSWORD)
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_auth_plain_with_initial_response(self):
        c = self.client()
        ir = base64.b64encode(b"\0" + USER.encode() + b"\0" +
                              PASSWORD.encode()).decode()
        self.assertTrue(c.cmd("AUTH PLAIN " + ir).startswith("+OK Logged in"))
        c.ok("QUIT")
        c = self.client()
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        bad = base64.b64encode(b"\0" + USER.encode() + b"\0nope").decode()
        self.assertEqual(c.cmd(bad), "-ERR [AUTH] Authentication failed")
        self.assertEqual(c.cmd("AUTH PLAIN =").split(" ")[0], "-ERR")

    def test_auth_login_cancel_and_errors(self):
        c = self.client()
        self.assertEqual(c.cmd("AUTH LOGIN"), "+ VXNlcm5hbWU6")
        self.assertEqual(c.cmd("*"), "-ERR Authentication cancelled")
        self.assertEqual(c.cmd("AUTH CRAM-MD5"),
                         "-ERR Unsupported authentication mechanism")
        self.assertEqual(c.cmd("AUTH PLAIN !!!"), "-ERR Invalid base64 data")
        c.send("AUTH\r\n")
        self.assertEqual(c.line(), "+OK")
        self.assertEqual(c.multi()[0], b"SCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n")
        self.assertEqual(c.cmd("AUTH LOGIN"), "+ VXNlcm5hbWU6")
        self.assertEqual(c.cmd(base64.b64encode(USER.encode()).decode()),
                         "+ UGFzc3dvcmQ6")
        self.assertTrue(c.cmd(base64.b64encode(PASSWORD.encode()).decode())
                        .startswith("+OK Logged in"))

    def test_auth_scram(self):
        c = self.client()

        def exchange(msg):
            if not hasattr(exchange, "started"):
                exchange.started = True
                reply = c.cmd("AUTH SCRAM-SHA-256 " +
                              base64.b64encode(msg).decode())
            else:
                reply = c.cmd(base64.b64encode(msg).decode())
            self.assertTrue(reply.startswith("+ "), reply)
            return base64.b64decode(reply[2:])

        self.assertTrue(scram_client(USER, PASSWORD, exchange))
        self.assertTrue(c.cmd("").startswith("+OK Logged in"))
        self.d.wait_log(r"event=auth result=ok user=demo@example.test "
                        r"ip=127.0.0.1 service=pop3")

    def test_not_secure_from_outside(self):
        if not self.outside:
            self.skipTest("no non-loopback address on this machine")
        c = PopClient(self.pop3_out, host=self.outside)
        self.assertTrue(c.line().startswith("+OK"))
        c.send("CAPA\r\n")
        c.line()
        caps = c.multi()[0].decode().split("\r\n")
        self.assertNotIn("USER", caps)
        self.assertIn("STLS", caps)
        self.assertIn("SASL SCRAM-SHA-256", caps)
        text = ("-ERR [AUTH] Plaintext authentication disallowed on "
                "non-secure connections")
        self.assertEqual(c.cmd("USER " + USER), text)
        self.assertEqual(c.cmd("PASS " + PASSWORD), text)
        self.assertEqual(c.cmd("AUTH PLAIN"), text)
        c.ok("STLS")
        c.starttls()
        self.assertTrue(c.login().startswith("+OK Logged in"))


class Settings(Base):
    POP3 = ('timeout = "1s", expire = 0, max_messages = 2, '
            'sendfile = false')

    def test_sendfile_off(self):
        body = "".join(".line %d\r\n" % i for i in range(20000))
        self.deliver(message("big", body))
        stored = self.stored()[0][2]
        self.assertGreater(len(stored), 128 * 1024)
        c = self.session()
        self.assertEqual(c.cmd("RETR 1"), "+OK %d octets" % len(stored))
        unstuffed, raw = c.multi()
        self.assertEqual(unstuffed, stored)
        self.assertEqual(raw, re.sub(rb"(^|\n)\.", rb"\1..", stored))
        c.close()
        self.d.wait_log(r"event=pop3_logout")
        self.assertNotIn("event=sendfile", self.d.log())

    def test_expire_zero_and_max_messages(self):
        self.fill(3)
        c = self.session()
        c.send("CAPA\r\n")
        c.line()
        self.assertIn(b"\r\nEXPIRE 0\r\n", c.multi()[0])
        # Only the oldest two are shown.
        self.assertTrue(c.cmd("STAT").startswith("+OK 2 "))
        c.ok("RETR 2")
        c.multi()
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out, 1 messages deleted")
        self.assertEqual(len(self.stored()), 2)

    def test_idle_timeout_deletes_nothing(self):
        self.fill(1)
        c = self.session()
        c.ok("DELE 1")
        self.assertEqual(c.line(), "-ERR Disconnected for inactivity")
        self.assertTrue(c.is_closed())
        self.d.wait_log(r"event=pop3_logout deleted=0 reason=no_quit")
        self.assertEqual(len(self.stored()), 1)


def ensure_fetchmail():
    """The fetchmail binary, installed with apt-get when missing; None with
    a reason when that cannot be done here."""
    path = shutil.which("fetchmail")
    if path:
        return path, None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "fetchmail missing and apt-get unavailable (not root)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", "-q", "fetchmail"],
                ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "fetchmail"]):
        res = subprocess.run(cmd, capture_output=True, env=env, timeout=600)
        if res.returncode == 0 and cmd[1] == "install":
            break
    path = shutil.which("fetchmail")
    if path:
        return path, None
    return None, "apt-get install fetchmail failed (no network?): %s" % (
        res.stderr.decode(errors="replace")[-300:])


class Fetchmail(Base):
    def test_fetchmail_retrieves_over_stls(self):
        fetchmail, why = ensure_fetchmail()
        if fetchmail is None:
            self.skipTest(why)
        self.fill(3)
        self.deliver(message("dots", ".dot line\r\nend\r\n"))
        stored = self.stored()
        out = os.path.join(self.tmp, "fetched")
        os.makedirs(out)
        rc = os.path.join(self.tmp, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('poll 127.0.0.1 port %d protocol POP3 uidl\n'
                    '  user "%s" password "%s"\n'
                    '  sslproto "tls1.2+" no sslcertck\n'
                    '  mda "/bin/sh -c \'cat > %s/msg.$$\'"\n'
                    % (self.pop3, USER, PASSWORD, out))
        os.chmod(rc, 0o600)
        res = subprocess.run(
            [fetchmail, "-f", rc, "-i", os.path.join(self.tmp, "fetchids"),
             "--nosyslog", "-v", "--nodetach"],
            capture_output=True, timeout=120,
            env=dict(os.environ, HOME=self.tmp))
        log = (res.stdout + res.stderr).decode(errors="replace")
        self.assertEqual(res.returncode, 0, log)
        self.assertIn("STLS", log)
        got = []
        for name in os.listdir(out):
            with open(os.path.join(out, name), "rb") as f:
                got.append(f.read())
        self.assertEqual(len(got), 4, log)
        for _, _, text in stored:
            subject = re.search(rb"Subject: [^\r\n]*", text).group(0)
            self.assertEqual(sum(subject in g for g in got), 1, subject)
        self.assertTrue(any(b"\n.dot line\n" in g.replace(b"\r\n", b"\n")
                            for g in got))
        # fetchmail deletes what it fetched (no --keep): expunged.
        self.assertEqual(self.stored(), [])
        self.assertEqual(len(self.expunged()), 4)


if __name__ == "__main__":
    harness.main()
