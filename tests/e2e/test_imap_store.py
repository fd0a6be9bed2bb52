#!/usr/bin/env python3
"""STORE, COPY, MOVE, EXPUNGE and their UID forms through the real daemon,
with raw sockets: the exact untagged responses and their order, the
response codes (MODIFIED, COPYUID, TRYCREATE, OVERQUOTA, READ-ONLY,
LIMIT, EXPUNGEISSUED), and two sessions seeing each other's changes at
their next command, never an EXPUNGE in the middle of a STORE."""

import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient  # noqa: E402

PASSWORD = "correct horse battery"
USER = "demo@example.test"


def message(subject, body="Hello.\r\n"):
    return ("From: Ann <ann@example.org>\r\nTo: demo@example.test\r\n"
            "Subject: %s\r\n\r\n%s" % (subject, body)).encode()


def flags_of(line):
    """The FLAGS of a FETCH line as a set, \\Recent left out."""
    m = re.search(r"FLAGS \(([^)]*)\)", line)
    if m is None:
        return None
    return set(m.group(1).split()) - {"\\Recent"}


class ImapClient(LineClient):
    """Raw IMAP: run() sends a tagged command and returns the untagged
    lines and the tagged one."""

    n = 0

    def run(self, text):
        ImapClient.n += 1
        tag = "t%d" % ImapClient.n
        self.send("%s %s\r\n" % (tag, text))
        untagged = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return untagged, line[len(tag) + 1:]
            untagged.append(line)

    def ok(self, text):
        untagged, tagged = self.run(text)
        if not tagged.startswith("OK"):
            raise AssertionError("%s: %s" % (text, tagged))
        return untagged, tagged


class Base(harness.DaemonTest):
    LISTENERS = (("imap", "imap", 'tls = "starttls"'),)

    def setUp(self):
        super().setUp()
        self.port = self.d.ports[0]
        self.account = os.path.join(self.data, "mail", "example.test", "demo")

    def fill(self, n):
        for i in range(n):
            self.deliver(message("number %d" % (i + 1)))

    def rows(self, mailbox="INBOX"):
        """[(uid, flags, keywords)] of a mailbox, in UID order."""
        db = sqlite3.connect(os.path.join(self.account, "index.sqlite"))
        rows = db.execute(
            "SELECT m.uid, m.flags, m.keywords FROM messages m JOIN "
            "mailboxes b ON b.id = m.mailbox WHERE b.name = ? "
            "ORDER BY m.uid", (mailbox,)).fetchall()
        db.close()
        return rows

    def uidvalidity(self, mailbox):
        db = sqlite3.connect(os.path.join(self.account, "index.sqlite"))
        (v,) = db.execute("SELECT uidvalidity FROM mailboxes WHERE name = ?",
                          (mailbox,)).fetchone()
        db.close()
        return v

    def session(self, mailbox="INBOX", enable=None, examine=False):
        c = ImapClient(self.port)
        self.clients.append(c)
        self.assertTrue(c.line().startswith("* OK"))
        c.ok('LOGIN %s "%s"' % (USER, PASSWORD))
        if enable:
            c.ok("ENABLE " + enable)
        if mailbox is not None:
            c.selected = c.ok("%s %s" % ("EXAMINE" if examine else "SELECT",
                                         mailbox))
        return c

    @staticmethod
    def highestmodseq(untagged):
        for line in untagged:
            m = re.search(r"\[HIGHESTMODSEQ (\d+)\]", line)
            if m:
                return int(m.group(1))
        raise AssertionError("no HIGHESTMODSEQ in %r" % untagged)


class TestStore(Base):
    def test_store_forms(self):
        self.fill(3)
        c = self.session()
        u, t = c.ok("STORE 1 +FLAGS (\\Seen)")
        self.assertEqual(len(u), 1, u)
        self.assertTrue(u[0].startswith("* 1 FETCH ("), u)
        self.assertNotIn("UID", u[0])
        self.assertEqual(flags_of(u[0]), {"\\Seen"})
        self.assertEqual(t, "OK STORE completed")

        u, _ = c.ok("STORE 1 FLAGS.SILENT (\\Flagged \\Draft)")
        self.assertEqual(u, [])
        self.assertEqual(self.rows()[0][1], 0x4 | 0x10)

        u, _ = c.ok("STORE 1:2 -FLAGS (\\Draft)")
        # Only message 1 changed; 2 had no \Draft.
        self.assertEqual(len(u), 1, u)
        self.assertEqual(flags_of(u[0]), {"\\Flagged"})

        u, _ = c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(u, [])
        u, _ = c.ok("STORE 2 -FLAGS.SILENT (\\Deleted)")
        self.assertEqual(u, [])
        self.assertEqual(self.rows()[1][1], 0)

        uid3 = self.rows()[2][0]
        # Flags without parentheses (RFC 9051 9); UID STORE sends UID.
        u, t = c.ok("UID STORE %d +FLAGS \\Answered \\Seen" % uid3)
        self.assertEqual(len(u), 1, u)
        self.assertTrue(u[0].startswith("* 3 FETCH (UID %d " % uid3), u)
        self.assertEqual(flags_of(u[0]), {"\\Answered", "\\Seen"})
        self.assertEqual(t, "OK UID STORE completed")
        u, _ = c.ok("UID STORE %d FLAGS ()" % uid3)
        self.assertEqual(flags_of(u[0]), set())
        u, _ = c.ok("UID STORE %d -FLAGS.SILENT (\\Seen)" % uid3)
        self.assertEqual(u, [])
        # A UID that is not there changes nothing.
        u, _ = c.ok("UID STORE 999 +FLAGS (\\Seen)")
        self.assertEqual(u, [])

        # Its own change is not reported a second time.
        u, _ = c.ok("NOOP")
        self.assertEqual(u, [])

    def test_store_bad(self):
        self.fill(2)
        c = self.session()
        for cmd in ("STORE 1 +FLAGS (\\Recent)", "STORE 1 +FLAGS (\\Bogus)",
                    "STORE 1 FOO (\\Seen)", "STORE 1 +FLAGS (a]b)",
                    "STORE 3 +FLAGS (\\Seen)", "STORE 1 +FLAGS",
                    "STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)",
                    "STORE 1 (FOO 1) +FLAGS (\\Seen)",
                    "STORE 1 +FLAGS (\\Seen) extra",
                    "STORE 1 +FLAGS (\\Seen) (\\Seen)"):
            _, t = c.run(cmd)
            self.assertTrue(t.startswith("BAD"), (cmd, t))
            # BADs in a row end the session (max_errors).
            c.ok("NOOP")
        _, t = c.run("STORE 1 +FLAGS (%s)" % ("k" * 65))
        self.assertTrue(t.startswith("NO [LIMIT]"), t)
        self.assertEqual(self.rows()[0][1:], (0, ""))
        c.ok("NOOP")

    def test_keywords(self):
        self.fill(2)
        c = self.session()
        u, _ = c.ok("STORE 1 +FLAGS ($Label1 Work \\Seen)")
        self.assertEqual(flags_of(u[0]), {"$Label1", "Work", "\\Seen"})
        u, _ = c.ok("STORE 1 -FLAGS (Work)")
        self.assertEqual(flags_of(u[0]), {"$Label1", "\\Seen"})
        c.ok("STORE 2 +FLAGS.SILENT (Urgent)")
        self.assertEqual([r[2] for r in self.rows()], ["$Label1", "Urgent"])
        # Known after a reselect in FLAGS and PERMANENTFLAGS.
        u, _ = c.ok("SELECT INBOX")
        flags = [line for line in u if line.startswith("* FLAGS")][0]
        perm = [line for line in u if "PERMANENTFLAGS" in line][0]
        for kw in ("$Label1", "Urgent"):
            self.assertIn(kw, flags)
            self.assertIn(kw, perm)
        # Sixty-four keywords on a message, no more (MS_KEYWORDS_MAX).
        many = " ".join("k%d" % i for i in range(63))
        c.ok("STORE 1 +FLAGS (%s)" % many)
        _, t = c.run("STORE 1 +FLAGS (one-too-many)")
        self.assertTrue(t.startswith("NO [LIMIT]"), t)
        many = " ".join("k%d" % i for i in range(65))
        _, t = c.run("STORE 2 FLAGS (%s)" % many)
        self.assertTrue(t.startswith("NO [LIMIT]"), t)
        self.assertEqual(self.rows()[1][2], "Urgent")

    def test_readonly(self):
        self.fill(2)
        self.session().ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        c = self.session(examine=True)
        for cmd in ("STORE 1 +FLAGS (\\Seen)", "EXPUNGE",
                    "UID EXPUNGE 1:*", "MOVE 1 Archive"):
            _, t = c.run(cmd)
            self.assertTrue(t.startswith("NO [READ-ONLY]"), (cmd, t))
        self.assertEqual(len(self.rows()), 2)
        _, t = c.ok("COPY 1 Archive")
        self.assertIn("[COPYUID ", t)

    def test_concurrent(self):
        self.fill(4)
        a = self.session()
        b = self.session()
        a.ok("STORE 1 +FLAGS (\\Flagged)")
        u, _ = b.ok("NOOP")
        self.assertEqual(len(u), 1, u)
        self.assertTrue(u[0].startswith("* 1 FETCH ("), u)
        self.assertEqual(flags_of(u[0]), {"\\Flagged"})

        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        u, _ = a.ok("EXPUNGE")
        self.assertEqual(u, ["* 2 EXPUNGE"])
        # b still numbers the messages as it was told: 3 is still 3, and
        # the expunge waits for a command that may report it.
        u, _ = b.ok("STORE 3 +FLAGS (\\Seen)")
        self.assertFalse([x for x in u if "EXPUNGE" in x], u)
        self.assertTrue(any(x.startswith("* 3 FETCH (") for x in u), u)
        u, _ = b.ok("NOOP")
        self.assertIn("* 2 EXPUNGE", u)
        self.assertEqual(sum("EXPUNGE" in x for x in u), 1, u)
        # a hears of b's change to what is now message 2.
        u, _ = a.ok("NOOP")
        self.assertEqual(len(u), 1, u)
        self.assertTrue(u[0].startswith("* 2 FETCH ("), u)
        self.assertEqual(flags_of(u[0]), {"\\Seen"})


    def test_store_expunged_by_sequence_number(self):
        self.fill(4)
        uids = [r[0] for r in self.rows()]
        a = self.session()
        b = self.session()
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        # b still numbers the messages 1-4. Its STORE to the gone one
        # changes nothing, says so (RFC 5530), and reports no EXPUNGE
        # in the middle of a STORE (RFC 9051 7.5.1).
        u, t = b.ok("STORE 2 +FLAGS (\\Flagged)")
        self.assertEqual(u, [])
        self.assertEqual(t, "OK [EXPUNGEISSUED] Some messages were "
                         "already expunged")
        # The rest of a set is changed and reported under the numbers b
        # knows.
        u, t = b.ok("STORE 1:4 +FLAGS (\\Seen)")
        self.assertEqual([x.split(" (")[0] for x in u],
                         ["* 1 FETCH", "* 3 FETCH", "* 4 FETCH"])
        self.assertTrue(all(flags_of(x) == {"\\Seen"} for x in u), u)
        self.assertTrue(t.startswith("OK [EXPUNGEISSUED] "), t)
        # \Seen (1) on what is left; the gone one is not in the index.
        self.assertEqual([r[:2] for r in self.rows()],
                         [(uids[0], 1), (uids[2], 1), (uids[3], 1)])
        # The next command tells b; then the numbers are plain again. Its
        # own changes may come again, renumbered: they were made while
        # the view could not move past the expunge (harmless, RFC 9051
        # 7.5.2 lets FETCH FLAGS come unasked).
        u, _ = b.ok("NOOP")
        self.assertEqual(u[0], "* 2 EXPUNGE")
        for x in u[1:]:
            self.assertRegex(x, r"^\* [123] FETCH \(FLAGS \(\\Seen\)\)$")
        _, t = b.ok("STORE 2 +FLAGS.SILENT (\\Answered)")
        self.assertEqual(t, "OK STORE completed")
        # UID STORE may report the expunge itself, before its OK: no
        # code is needed there.
        a.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[3])
        a.ok("EXPUNGE")
        u, t = b.ok("UID STORE %d:%d +FLAGS (\\Draft)" % (uids[2], uids[3]))
        self.assertEqual(t, "OK UID STORE completed")
        # The change to the one left, then the expunge (and maybe the
        # change again, as above); nothing for the gone one.
        fetch = ("* 2 FETCH (UID %d FLAGS (\\Seen \\Answered \\Draft))"
                 % uids[2])
        self.assertEqual(u[:2], [fetch, "* 3 EXPUNGE"])
        self.assertIn(u[2:], ([], [fetch]))

    def test_expunged_under_copy(self):
        self.fill(2)
        a = self.session()
        b = self.session()
        a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        a.ok("EXPUNGE")
        # b still knows message 1; copying it finds nothing to copy.
        u, t = b.run("COPY 1 Archive")
        self.assertTrue(t.startswith("NO [EXPUNGEISSUED]"), t)
        self.assertIn("* 1 EXPUNGE", u)
        _, t = b.ok("COPY 1 Archive")
        self.assertIn("[COPYUID ", t)

    def test_close_during_write(self):
        self.fill(3)
        for cmd in ("STORE 1:* +FLAGS (\\Deleted)", "COPY 1:* Archive",
                    "MOVE 1 Junk", "EXPUNGE"):
            c = self.session()
            c.send("x %s\r\n" % cmd)
            c.close()
        # The daemon is still there and the last changes landed.
        c = self.session()
        c.ok("NOOP")
        self.assertEqual(c.run("UID EXPUNGE 1:*")[1][:2], "OK")


class TestCondstore(Base):
    def test_unchangedsince(self):
        self.fill(3)
        a = self.session(enable="CONDSTORE")
        b = self.session(enable="CONDSTORE")
        base = self.highestmodseq(b.selected[0])
        u, _ = a.ok("STORE 1 +FLAGS (\\Seen)")
        m = re.search(r"MODSEQ \((\d+)\)", u[0])
        self.assertIsNotNone(m, u)
        self.assertGreater(int(m.group(1)), base)

        # b's view predates a's change to message 1: that one is left
        # alone and named in MODIFIED, the others change.
        u, t = b.run("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)"
                     % base)
        self.assertTrue(t.startswith("OK [MODIFIED 1] "), t)
        # b's view was behind (a's change came in between), so the sync
        # may repeat b's own FETCHes: harmless, and never message 1.
        changed = {x.split()[1] for x in u if "\\Flagged" in x}
        self.assertEqual(changed, {"2", "3"}, u)
        for x in u:
            self.assertIn("MODSEQ (", x)
        self.assertEqual([r[1] for r in self.rows()], [0x1, 0x4, 0x4])

        # UID STORE names UIDs; .SILENT still sends the MODSEQ
        # (RFC 7162 3.1.3) but not the flags.
        uids = [r[0] for r in self.rows()]
        u, t = b.run("UID STORE %d:%d (UNCHANGEDSINCE %d) -FLAGS.SILENT "
                     "(\\Flagged)" % (uids[0], uids[2], base))
        self.assertTrue(t.startswith("OK [MODIFIED %d:%d] "
                                     % (uids[0], uids[2])), t)
        u, t = b.run("UID STORE %d (UNCHANGEDSINCE 999999) -FLAGS.SILENT "
                     "(\\Flagged)" % uids[1])
        self.assertTrue(t.startswith("OK UID STORE"), t)
        mine = [x for x in u if x.startswith("* 2 FETCH")]
        self.assertEqual(len(mine), 1, u)
        self.assertIn("UID %d" % uids[1], mine[0])
        self.assertIn("MODSEQ (", mine[0])
        self.assertNotIn("FLAGS", mine[0])
        # UNCHANGEDSINCE 0 fails for every message.
        u, t = b.run("STORE 1,3 (UNCHANGEDSINCE 0) +FLAGS (\\Draft)")
        self.assertTrue(t.startswith("OK [MODIFIED 1,3] "), t)
        self.assertEqual([r[1] for r in self.rows()], [0x1, 0, 0x4])

    def test_unchangedsince_enables_condstore(self):
        self.fill(1)
        c = self.session()
        u, _ = c.ok("STORE 1 (UNCHANGEDSINCE 99999) +FLAGS (\\Seen)")
        self.assertIn("MODSEQ (", u[0])


class TestCopy(Base):
    def test_copy(self):
        self.fill(3)
        c = self.session()
        c.ok("STORE 2 +FLAGS (\\Flagged Work)")
        src = [r[0] for r in self.rows()]
        v = self.uidvalidity("Archive")
        u, t = c.ok("COPY 2:3 Archive")
        self.assertEqual(t, "OK [COPYUID %d %d:%d 1:2] Copy completed"
                         % (v, src[1], src[2]))
        self.assertEqual(u, [])
        self.assertEqual([r[1:] for r in self.rows("Archive")],
                         [(0x4, "Work"), (0, "")])
        u, t = c.ok("UID COPY %d,%d Archive" % (src[2], src[0]))
        self.assertIn("[COPYUID %d %d,%d 3:4]" % (v, src[0], src[2]), t)
        _, t = c.run("COPY 1 Nowhere")
        self.assertTrue(t.startswith("NO [TRYCREATE]"), t)
        _, t = c.run("COPY 1")
        self.assertTrue(t.startswith("BAD"), t)
        _, t = c.run("COPY 9 Archive")
        self.assertTrue(t.startswith("BAD"), t)
        # Into the mailbox itself: new messages, reported at once.
        u, t = c.ok("COPY 1 INBOX")
        self.assertIn("[COPYUID %d %d " % (self.uidvalidity("INBOX"),
                                           src[0]), t)
        self.assertIn("* 4 EXISTS", u)
        self.assertEqual(len(self.rows()), 4)

    def test_move(self):
        self.fill(3)
        c = self.session()
        src = [r[0] for r in self.rows()]
        v = self.uidvalidity("Archive")
        u, t = c.ok("MOVE 2 Archive")
        # RFC 6851 4.3: COPYUID first, then the expunge, then the OK.
        self.assertEqual(u, ["* OK [COPYUID %d %d 1] Moved" % (v, src[1]),
                             "* 2 EXPUNGE"])
        self.assertEqual(t, "OK MOVE completed")
        self.assertEqual([r[0] for r in self.rows()], [src[0], src[2]])
        self.assertEqual(len(self.rows("Archive")), 1)
        u, _ = c.ok("NOOP")
        self.assertEqual(u, [])
        u, t = c.ok("UID MOVE %d Archive" % src[2])
        self.assertEqual(u, ["* OK [COPYUID %d %d 2] Moved" % (v, src[2]),
                             "* 2 EXPUNGE"])
        _, t = c.run("MOVE 1 Nowhere")
        self.assertTrue(t.startswith("NO [TRYCREATE]"), t)
        self.assertEqual(len(self.rows()), 1)

    def test_move_same_mailbox(self):
        self.fill(2)
        c = self.session()
        src = [r[0] for r in self.rows()]
        u, t = c.ok("MOVE 1 INBOX")
        self.assertTrue(u[0].startswith("* OK [COPYUID %d %d %d] "
                                        % (self.uidvalidity("INBOX"),
                                           src[0], src[1] + 1)), u)
        self.assertIn("* 1 EXPUNGE", u)
        self.assertIn("* 2 EXISTS", u)
        self.assertEqual([r[0] for r in self.rows()], [src[1], src[1] + 1])

    def test_move_vanished(self):
        self.fill(3)
        c = self.session(enable="QRESYNC")
        src = [r[0] for r in self.rows()]
        u, _ = c.ok("UID MOVE %d:%d Archive" % (src[0], src[1]))
        self.assertTrue(u[0].startswith("* OK [COPYUID "), u)
        self.assertEqual(u[1:], ["* VANISHED %d:%d" % (src[0], src[1])])


class TestQuota(Base):
    CONFIG = "quota { messages = 3 }"

    def test_overquota(self):
        self.fill(2)
        c = self.session()
        c.ok("COPY 1 Archive")
        _, t = c.run("COPY 1:2 Archive")
        self.assertTrue(t.startswith("NO [OVERQUOTA]"), t)
        self.assertEqual(len(self.rows("Archive")), 1)
        # A move takes no more room.
        c.ok("MOVE 1:2 Archive")


class TestExpunge(Base):
    def test_expunge(self):
        self.fill(5)
        c = self.session()
        c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        u, t = c.ok("EXPUNGE")
        # From the highest down, so each number is valid when it is read.
        self.assertEqual(u, ["* 4 EXPUNGE", "* 2 EXPUNGE"])
        self.assertEqual(t, "OK EXPUNGE completed")
        u, _ = c.ok("NOOP")
        self.assertEqual(u, [])
        self.assertEqual(len(self.rows()), 3)
        u, _ = c.ok("EXPUNGE")
        self.assertEqual(u, [])
        _, t = c.run("EXPUNGE 1")
        self.assertTrue(t.startswith("BAD"), t)

    def test_uid_expunge(self):
        self.fill(4)
        c = self.session()
        uids = [r[0] for r in self.rows()]
        c.ok("STORE 1,3,4 +FLAGS.SILENT (\\Deleted)")
        # RFC 4315 2.1: only the \Deleted messages in the set go.
        u, t = c.ok("UID EXPUNGE %d:%d" % (uids[1], uids[2]))
        self.assertEqual(u, ["* 3 EXPUNGE"])
        self.assertEqual(t, "OK UID EXPUNGE completed")
        self.assertEqual([r[0] for r in self.rows()],
                         [uids[0], uids[1], uids[3]])
        _, t = c.run("UID EXPUNGE")
        self.assertTrue(t.startswith("BAD"), t)
        u, _ = c.ok("UID EXPUNGE 999")
        self.assertEqual(u, [])

    def test_vanished(self):
        self.fill(5)
        c = self.session(enable="QRESYNC")
        uids = [r[0] for r in self.rows()]
        c.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        u, _ = c.ok("EXPUNGE")
        self.assertEqual(u, ["* VANISHED %d,%d" % (uids[1], uids[3])])

    def test_other_session_expunge(self):
        self.fill(3)
        a = self.session(enable="QRESYNC")
        b = self.session()
        uids = [r[0] for r in self.rows()]
        b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        u, _ = b.ok("EXPUNGE")
        self.assertEqual(u, ["* 1 EXPUNGE"])
        u, _ = a.ok("NOOP")
        self.assertIn("* VANISHED %d" % uids[0], u)
        u, _ = a.ok("NOOP")
        self.assertEqual(u, [])


class TestCapability(Base):
    def test_capability(self):
        c = self.session(mailbox=None)
        u, _ = c.ok("CAPABILITY")
        caps = u[0].split()
        self.assertIn("UIDPLUS", caps)
        self.assertIn("MOVE", caps)


if __name__ == "__main__":
    harness.main()
