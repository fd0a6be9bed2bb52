#!/usr/bin/env python3
"""IMAP APPEND through the real daemon: imaplib and raw sockets, with
synchronising and non-synchronising literals, APPENDUID, the refusals
([TOOBIG] before "+", [TRYCREATE], [OVERQUOTA], BAD for bad flags and
dates, before LOGIN), streaming of a large message, a dropped connection,
and EXISTS in a second session. What was stored is read from the index and
the message files directly."""

import imaplib
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient  # noqa: E402

PASSWORD = "correct horse battery"
USER = "demo@example.test"
LIMIT = 40 * 1024 * 1024  # APPENDLIMIT of the test daemon


def message(subject, body="Hello.\r\n"):
    return ("From: Ann <ann@example.org>\r\nTo: demo@example.test\r\n"
            "Subject: %s\r\n\r\n%s" % (subject, body)).encode()


def wait_for(cond, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class ImapClient(LineClient):
    def tagged(self, tag):
        """Lines up to and including the one tagged tag."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines

    def login(self):
        self.send('l LOGIN %s "%s"\r\n' % (USER, PASSWORD))
        reply = self.tagged("l")[-1]
        assert reply.startswith("l OK"), reply


class Base(harness.DaemonTest):
    LISTENERS = (("imap", "imap", 'tls = "starttls"'),)
    APPEND_LIMIT = LIMIT

    def config_extra(self, ports):
        return "imap { append_limit = %d }\n%s" % (self.APPEND_LIMIT,
                                                    self.CONFIG)

    def setUp(self):
        super().setUp()
        self.port = self.d.ports[0]
        self.account = os.path.join(self.data, "mail", "example.test", "demo")

    # --- the mailstore, from outside ------------------------------------

    def stored(self, mailbox="INBOX"):
        """[(uid, flags, keywords, internal_date, tz, bytes)] in UID
        order."""
        path = os.path.join(self.account, "index.sqlite")
        if not os.path.exists(path):
            return []
        db = sqlite3.connect(path)
        rows = db.execute(
            "SELECT m.uid, m.flags, m.keywords, m.internal_date, m.tz, "
            "b.dir, m.file FROM messages m JOIN mailboxes b ON "
            "b.id = m.mailbox WHERE b.name = ? ORDER BY m.uid",
            (mailbox,)).fetchall()
        db.close()
        out = []
        for uid, flags, kw, date, tz, folder, file in rows:
            with open(os.path.join(self.account, folder, file), "rb") as f:
                out.append((uid, flags, kw, date, tz, f.read()))
        return out

    def uidvalidity(self, mailbox="INBOX"):
        db = sqlite3.connect(os.path.join(self.account, "index.sqlite"))
        (v,) = db.execute("SELECT uidvalidity FROM mailboxes WHERE "
                          "name = ?", (mailbox,)).fetchone()
        db.close()
        return v

    def tmp_files(self):
        tmp = os.path.join(self.account, "tmp")
        return os.listdir(tmp) if os.path.isdir(tmp) else []

    # --- clients ---------------------------------------------------------

    def client(self, login=True):
        c = ImapClient(self.port)
        self.assertTrue(c.line().startswith("* OK"))
        if login:
            c.login()
        return c

    def imaplib(self):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=60)
        m.login(USER, PASSWORD)
        return m


class Append(Base):
    def test_imaplib_flags_date_appenduid(self):
        m = self.imaplib()
        msg = message("with flags")
        typ, data = m.append("INBOX", r"(\Seen \Flagged $Label)",
                             '"05-Mar-2021 14:30:07 -0130"', msg)
        self.assertEqual(typ, "OK", data)
        code = m.untagged_responses.get("APPENDUID") or []
        rows = self.stored()
        self.assertEqual(len(rows), 1)
        uid, flags, kw, date, tz, body = rows[0]
        self.assertEqual(body, msg)
        self.assertEqual(flags, 1 | 4)  # \Seen \Flagged
        self.assertEqual(kw, "$Label")
        # 14:30:07 at -01:30 is 16:00:07 UTC.
        self.assertEqual(date, 1614960007)
        self.assertEqual(tz, -90)
        self.assertIn(("%d %d" % (self.uidvalidity(), uid)).encode(), code)
        typ, data = m.select("INBOX")
        self.assertEqual(data, [b"1"])
        m.logout()

    def test_capability(self):
        c = self.client(login=False)
        c.send('l LOGIN %s "%s"\r\n' % (USER, PASSWORD))
        lines = c.tagged("l")
        self.assertIn("APPENDLIMIT=%d" % LIMIT, " ".join(lines))
        c.send("a CAPABILITY\r\n")
        self.assertIn("APPENDLIMIT=%d" % LIMIT, c.tagged("a")[0])

    def test_sync_literal_continuation(self):
        c = self.client()
        msg = message("sync")
        c.send("a APPEND INBOX {%d}\r\n" % len(msg))
        self.assertTrue(c.line().startswith("+ "))
        c.send(msg + b"\r\n")
        reply = c.tagged("a")[-1]
        uid = self.stored()[0][0]
        self.assertEqual(reply, "a OK [APPENDUID %d %d] APPEND completed"
                         % (self.uidvalidity(), uid))
        self.assertEqual(self.stored()[0][5], msg)
        self.d.wait_log("event=imap_append mailbox=INBOX uid=%d size=%d"
                        % (uid, len(msg)))

    def test_literal_plus_and_bare_lf(self):
        c = self.client()
        msg = b"Subject: lf\n\nline one\nline two\n"
        c.send(b"a APPEND INBOX (\\Answered) {%d+}\r\n" % len(msg) + msg
               + b"\r\nb NOOP\r\n")
        self.assertTrue(c.tagged("a")[-1].startswith("a OK [APPENDUID "))
        self.assertTrue(c.tagged("b")[-1].startswith("b OK"))
        row = self.stored()[0]
        self.assertEqual(row[1], 2)
        self.assertEqual(row[5], msg.replace(b"\n", b"\r\n"))

    def test_appenduid_sequence(self):
        c = self.client()
        got = []
        for i in range(3):
            msg = message("n%d" % i)
            c.send(b"a%d APPEND INBOX {%d+}\r\n" % (i, len(msg)) + msg
                   + b"\r\n")
            got.append(c.tagged("a%d" % i)[-1])
        v = self.uidvalidity()
        uids = [r[0] for r in self.stored()]
        self.assertEqual(got, ["a%d OK [APPENDUID %d %d] APPEND completed"
                               % (i, v, uid) for i, uid in enumerate(uids)])

    def test_toobig_before_continuation(self):
        c = self.client()
        c.send("a APPEND INBOX {%d}\r\n" % (LIMIT + 1))
        # The NO comes instead of "+": the client never sends the data.
        self.assertTrue(c.line().startswith("a NO [TOOBIG]"))
        self.assertTrue(c.cmd("b NOOP").startswith("b OK"))
        self.assertEqual(self.stored(), [])

    def test_trycreate(self):
        c = self.client()
        c.send("a APPEND Nope {5}\r\n")
        self.assertTrue(c.line().startswith("a NO [TRYCREATE]"))
        msg = message("x")
        c.send(b"b APPEND Nope {%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertTrue(c.line().startswith("b NO [TRYCREATE]"))
        self.assertTrue(c.cmd("c NOOP").startswith("c OK"))
        # A name that is no modified UTF-7, or no astring, before "+".
        c.send('e APPEND "&Jjo" {5}\r\n')
        self.assertTrue(c.line().startswith("e NO [CANNOT]"))
        c.send(b"f APPEND (x) {%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertTrue(c.line().startswith("f BAD"))
        self.assertTrue(c.cmd("g NOOP").startswith("g OK"))
        # A folder that exists takes it.
        c.send(b"d APPEND Drafts {%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertTrue(c.tagged("d")[-1].startswith("d OK [APPENDUID"))
        self.assertEqual(len(self.stored("Drafts")), 1)

    def test_bad_flags_and_dates(self):
        c = self.client()
        msg = message("bad")
        cases = [r"(\Recent)", r"(\Bogus)", '"5-Mar-2021 14:30:07 +0000"',
                 '"05-Mar-21 14:30:07 +0000"', '"31-Feb-2021 14:30:07 +0000"',
                 '"05-Foo-2021 14:30:07 +0000"', '"05-Mar-2021 24:30:07 +0000"',
                 '"05-Mar-2021 14:30:07 0000"', "(\\Seen) NOTADATE",
                 "((\\Seen))", "(foo])"]
        for i, extra in enumerate(cases):
            tag = "t%d" % i
            c.send(("%s APPEND INBOX %s {%d+}\r\n" % (tag, extra, len(msg)))
                   .encode() + msg + b"\r\n")
            reply = c.tagged(tag)[-1]
            self.assertTrue(reply.startswith(tag + " BAD"), (extra, reply))
            # Ten BADs in a row end the session.
            self.assertTrue(c.cmd("n%d NOOP" % i).startswith("n%d OK" % i))
        self.assertEqual(self.stored(), [])
        self.assertEqual(self.tmp_files(), [])
        # A day with a leading space is right.
        c.send(b'ok APPEND INBOX " 5-Mar-2021 14:30:07 +0000" {%d+}\r\n'
               % len(msg) + msg + b"\r\n")
        self.assertTrue(c.tagged("ok")[-1].startswith("ok OK"))
        self.assertEqual(self.stored()[0][3], 1614954607)

    def test_empty_message_and_nul(self):
        c = self.client()
        c.send("a APPEND INBOX {0}\r\n")
        self.assertTrue(c.line().startswith("a NO"))
        c.send(b"b APPEND INBOX {5+}\r\nab\x00cd\r\n")
        self.assertTrue(c.tagged("b")[-1].startswith("b BAD"))
        self.assertTrue(c.cmd("c NOOP").startswith("c OK"))
        self.assertEqual(self.stored(), [])

    def test_literal8_and_utf8(self):
        c = self.client()
        msg = "Subject: caf\u00e9\r\n\r\nna\u00efve\r\n".encode()
        c.send(b"a APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertTrue(c.tagged("a")[-1].startswith("a OK [APPENDUID"))
        # The UTF8 form needs UTF8=ACCEPT (RFC 6855 4).
        c.send(b"b APPEND INBOX UTF8 (~{%d+}\r\n" % len(msg) + msg
               + b")\r\n")
        self.assertTrue(c.tagged("b")[-1].startswith("b BAD"))
        c.send("e ENABLE UTF8=ACCEPT\r\n")
        c.tagged("e")
        c.send(b"c APPEND INBOX UTF8 (~{%d+}\r\n" % len(msg) + msg
               + b")\r\n")
        self.assertTrue(c.tagged("c")[-1].startswith("c OK [APPENDUID"))
        self.assertEqual([r[5] for r in self.stored()], [msg, msg])

    def test_multiappend_and_catenate_refused(self):
        c = self.client()
        msg = message("m")
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg
               + b" {%d+}\r\n" % len(msg) + msg + b"\r\nb NOOP\r\n")
        self.assertTrue(c.tagged("a")[-1].startswith("a BAD"))
        self.assertTrue(c.tagged("b")[-1].startswith("b OK"))
        c.send(b"c APPEND INBOX CATENATE (TEXT {%d+}\r\n" % len(msg) + msg
               + b")\r\n")
        self.assertTrue(c.tagged("c")[-1].startswith("c BAD"))
        self.assertEqual(self.stored(), [])
        self.assertEqual(self.tmp_files(), [])

    def test_before_login(self):
        c = self.client(login=False)
        c.send("a APPEND INBOX {10}\r\n")
        self.assertTrue(c.line().startswith("a BAD"))
        c.send(b"b APPEND INBOX {10+}\r\n0123456789\r\nc NOOP\r\n")
        self.assertTrue(c.line().startswith("b BAD"))
        self.assertTrue(c.line().startswith("c OK"))
        c.login()
        self.assertEqual(self.stored(), [])

    def test_mailbox_as_literal(self):
        c = self.client()
        msg = message("lit box")
        c.send(b"a APPEND {6+}\r\nDrafts {%d+}\r\n" % len(msg) + msg
               + b"\r\n")
        self.assertTrue(c.tagged("a")[-1].startswith("a OK [APPENDUID"))
        self.assertEqual(self.stored("Drafts")[0][5], msg)

    def test_dropped_mid_literal(self):
        c = self.client()
        c.send(b"a APPEND INBOX {100000+}\r\n" + b"x" * 50000)
        # The file is started before the first byte is read.
        wait_for(lambda: self.tmp_files(), what="a file in tmp/")
        c.close()
        wait_for(lambda: not self.tmp_files(), what="tmp/ to be empty")
        self.d.wait_log("event=imap_logout")
        self.assertEqual(self.stored(), [])
        self.assertEqual(self.tmp_files(), [])
        c = self.client()
        self.assertTrue(c.cmd("b NOOP").startswith("b OK"))

    def test_large_append_streams(self):
        pid = self.d.proc.pid

        def rss_kb(field):
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
            return 0

        c = self.client()
        before = rss_kb("VmRSS")
        line = b"%s\r\n" % (b"0123456789" * 7)
        body = line * (30 * 1024 * 1024 // len(line))
        msg = b"Subject: big\r\n\r\n" + body
        c.send("a APPEND INBOX {%d}\r\n" % len(msg))
        self.assertTrue(c.line().startswith("+ "))
        peak = 0
        for i in range(0, len(msg), 1 << 20):
            c.send(msg[i:i + (1 << 20)])
            peak = max(peak, rss_kb("VmRSS"))
        c.send(b"\r\n")
        self.assertTrue(c.tagged("a")[-1].startswith("a OK [APPENDUID"))
        peak = max(peak, rss_kb("VmRSS"))
        # Streamed, not held: the server grew by far less than 30 MB.
        # (ASan keeps freed memory in quarantine: no measure there.)
        with open("/proc/%d/maps" % pid) as f:
            sanitized = "libasan" in f.read()
        if not sanitized:
            self.assertLess(peak - before, 12 * 1024, (before, peak))
        row = self.stored()[0]
        self.assertEqual(len(row[5]), len(msg))
        self.assertEqual(row[5], msg)


class Concurrency(Base):
    def test_selected_sees_own_append_before_ok(self):
        c = self.client()
        c.send("s SELECT INBOX\r\n")
        self.assertTrue(c.tagged("s")[-1].startswith("s OK"))
        msg = message("own")
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        lines = c.tagged("a")
        self.assertIn("* 1 EXISTS", lines)
        self.assertLess(lines.index("* 1 EXISTS"), len(lines) - 1)
        self.assertTrue(lines[-1].startswith("a OK [APPENDUID"))

    def test_other_session_noop_and_idle(self):
        a = self.client()
        b = self.client()
        b.send("s SELECT INBOX\r\n")
        self.assertIn("* 0 EXISTS", b.tagged("s"))
        msg = message("other")
        a.send(b"x APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertTrue(a.tagged("x")[-1].startswith("x OK"))
        b.send("n NOOP\r\n")
        self.assertIn("* 1 EXISTS", b.tagged("n"))
        b.send("i IDLE\r\n")
        self.assertTrue(b.line().startswith("+ "))
        a.send(b"y APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertTrue(a.tagged("y")[-1].startswith("y OK"))
        # Told while idling, before DONE.
        self.assertEqual(b.line(), "* 2 EXISTS")
        b.send("DONE\r\n")
        self.assertTrue(b.tagged("i")[-1].startswith("i OK"))


class Limits(Base):
    APPEND_LIMIT = 100000
    CONFIG = "quota { storage = 3000 }"

    def test_toobig_nonsync_drained(self):
        c = self.client()
        big = b"y" * 150000
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(big) + big
               + b"\r\nb NOOP\r\n")
        self.assertTrue(c.line().startswith("a NO [TOOBIG]"))
        self.assertTrue(c.tagged("b")[-1].startswith("b OK"))
        self.assertEqual(self.stored(), [])
        self.assertEqual(self.tmp_files(), [])

    def test_overquota(self):
        c = self.client()
        msg = message("q", "z" * 1900 + "\r\n")
        c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertTrue(c.tagged("a")[-1].startswith("a OK"))
        # Known from the size: refused instead of "+".
        c.send("b APPEND INBOX {%d}\r\n" % len(msg))
        self.assertTrue(c.line().startswith("b NO [OVERQUOTA]"))
        c.send(b"c APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\nd NOOP\r\n")
        self.assertTrue(c.line().startswith("c NO [OVERQUOTA]"))
        self.assertTrue(c.tagged("d")[-1].startswith("d OK"))
        self.assertEqual(len(self.stored()), 1)


if __name__ == "__main__":
    harness.main()
