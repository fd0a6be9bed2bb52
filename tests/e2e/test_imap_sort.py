#!/usr/bin/env python3
"""SORT, THREAD and their UID forms through the real daemon: every sort
key (RFC 5256, RFC 5957's DISPLAYFROM and DISPLAYTO), REVERSE, mixed
keys, search criteria after the charset, BADCHARSET, ESORT's RETURN
(RFC 5267) with SEARCHRES's SAVE, MODSEQ, both threading algorithms on a
realistic conversation, a long reply chain, bad syntax answered BAD,
no EXPUNGE during the sequence-number forms, and Python's imaplib as a
client."""

import email.utils
import imaplib
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_imap_store import Base, ImapClient, PASSWORD, USER  # noqa: E402


def msg(headers, body_len):
    text = "".join("%s: %s\r\n" % h for h in headers)
    return (text + "\r\n" + "b" * body_len + "\r\n").encode()


KICKOFF = "<kickoff@example.org>"

# A conversation, delivered in this order (sequence numbers 1 to 9).
# Sent dates, 3 Feb 2025 UTC: 6 08:00, 1 09:00, 3 10:00, 2 10:30,
# 5 11:15, 4 12:00, 7 13:00, 9 14:00; 8 has no Date: its arrival (now).
MSGS = [
    msg([("From", "Alice <alice@example.org>"),
         ("To", '"The Team" <team@example.org>'),
         ("Cc", "Bob <bob@example.org>"),
         ("Subject", "Project kickoff"),
         ("Date", "Mon, 3 Feb 2025 09:00:00 +0000"),
         ("Message-ID", KICKOFF)], 10),
    msg([("From", "Bob <bob@example.org>"),
         ("To", "Alice <alice@example.org>"),
         ("Subject", "Re: Project kickoff"),
         ("Date", "Mon, 3 Feb 2025 10:30:00 +0000"),
         ("Message-ID", "<bob1@example.org>"),
         ("In-Reply-To", KICKOFF), ("References", KICKOFF)], 500),
    msg([("From", '"Carol" <carol@example.org>'),
         ("To", "team@example.org"),
         ("Subject", "Lunch?"),
         ("Date", "Mon, 3 Feb 2025 11:00:00 +0100"),
         ("Message-ID", "<lunch@example.org>")], 50),
    msg([("From", "Dave <dave@example.org>"),
         ("To", "Bob <bob@example.org>"),
         ("Cc", "alice@example.org"),
         ("Subject", "RE: Project kickoff"),
         ("Date", "Mon, 3 Feb 2025 12:00:00 +0000"),
         ("Message-ID", "<dave1@example.org>"),
         ("In-Reply-To", "<bob1@example.org>"),
         ("References", KICKOFF + "\r\n <bob1@example.org>")], 200),
    msg([("From", "=?UTF-8?Q?=C3=89mile?= <emile@example.org>"),
         ("To", "Carol <carol@example.org>"),
         ("Subject", "Re: Lunch?"),
         ("Date", "Mon, 3 Feb 2025 11:15:00 +0000"),
         ("Message-ID", "<emile1@example.org>"),
         ("In-Reply-To", "<lunch@example.org> (Carol's message)")], 20),
    msg([("From", "Alice <alice@example.org>"),
         ("To", "Zoe <zoe@example.org>"),
         ("Subject", "Fwd: Budget numbers"),
         ("Date", "Mon, 3 Feb 2025 08:00:00 +0000"),
         ("Message-ID", "<fwd1@example.org>")], 3000),
    msg([("From", "Bob <bob@example.org>"),
         ("To", "team@example.org"),
         ("Subject", "Re: Project kickoff"),
         ("Date", "Mon, 3 Feb 2025 13:00:00 +0000"),
         ("Message-ID", '<"bob2"@example.org>'),
         ("References", KICKOFF + " <lost@example.org>")], 100),
    msg([("From", "zed@example.org"),
         ("To", "team@example.org"),
         ("Subject", "[team] Offsite"),
         ("Message-ID", "<offsite@example.org>")], 30),
    msg([("From", "Aaron Yuri <yuri@example.org>"),
         ("To", "team@example.org"),
         ("Subject", "Re: [team] Offsite"),
         ("Date", "Mon, 3 Feb 2025 14:00:00 +0000"),
         ("Message-ID", "<yuri1@example.org>"),
         ("References", "<offsite-orig@elsewhere.example>")], 40),
]

REFERENCES = "(6)(1 (2 4)(7))(3 5)(8 9)"
ORDEREDSUBJECT = "(6)(1 (2)(4)(7))(3 5)(9 8)"


def one(untagged, name):
    lines = [u for u in untagged if u.startswith("* %s" % name)]
    if len(lines) != 1:
        raise AssertionError("expected one * %s in %r" % (name, untagged))
    return lines[0]


def tag():
    return "t%d" % ImapClient.n


class SortBase(Base):
    def setUp(self):
        super().setUp()
        for m in MSGS:
            self.deliver(m)
        self.uids = [r[0] for r in self.rows()]
        self.assertEqual(len(self.uids), len(MSGS))

    def sort(self, c, text):
        """The numbers of a * SORT answer, as a string."""
        u, t = c.ok(text)
        line = one(u, "SORT")
        self.assertTrue(t.startswith("OK %sSORT completed" % (
            "UID " if text.startswith("UID ") else "")), t)
        return line[len("* SORT "):] if line != "* SORT" else ""

    def thread(self, c, text):
        u, t = c.ok(text)
        line = one(u, "THREAD")
        return line[len("* THREAD "):] if line != "* THREAD" else ""

    def to_uids(self, seqs):
        """A space-separated list of sequence numbers, as UIDs."""
        return " ".join(str(self.uids[int(n) - 1]) for n in seqs.split())

    def fetch_order(self, c, item, key, reverse=False):
        """Sequence numbers in the order of a FETCH item, ties by number
        (REVERSE reverses the item, not the ties)."""
        u, _ = c.ok("FETCH 1:* (%s)" % item)
        vals = []
        for line in u:
            m = re.match(r"\* (\d+) FETCH \(.*%s (\S+(?: \S+)*?)\)" % item,
                         line)
            if m:
                vals.append((key(m.group(2)), int(m.group(1))))
        self.assertEqual(len(vals), len(MSGS), u)
        vals.sort(key=lambda v: v[1])
        vals.sort(key=lambda v: v[0], reverse=reverse)
        return " ".join(str(n) for _, n in vals)


class TestSort(SortBase):
    def test_capabilities(self):
        c = ImapClient(self.port)
        self.clients.append(c)
        greeting = c.line()
        self.assertNotIn(" SORT", greeting)
        self.assertNotIn("THREAD=", greeting)
        c.ok('LOGIN %s "%s"' % (USER, PASSWORD))
        u, _ = c.ok("CAPABILITY")
        caps = u[0].split()
        for cap in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT",
                    "THREAD=REFERENCES"):
            self.assertIn(cap, caps)
        # Only with a mailbox selected.
        _, t = c.run("SORT (DATE) UTF-8 ALL")
        self.assertTrue(t.startswith("BAD"), t)
        _, t = c.run("THREAD REFERENCES UTF-8 ALL")
        self.assertTrue(t.startswith("BAD"), t)
        # An empty mailbox: answers without numbers.
        c.ok("SELECT Trash")
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 ALL"), "")
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 ALL"), "")
        self.assertEqual(self.thread(c, "THREAD ORDEREDSUBJECT UTF-8 ALL"),
                         "")

    def test_keys(self):
        c = self.session()
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 ALL"),
                         "6 1 3 2 5 4 7 9 8")
        self.assertEqual(self.sort(c, "SORT (REVERSE DATE) UTF-8 ALL"),
                         "8 9 7 4 5 2 3 1 6")
        self.assertEqual(self.sort(c, "SORT (FROM) UTF-8 ALL"),
                         "1 6 2 7 3 4 5 9 8")
        self.assertEqual(self.sort(c, "SORT (TO) UTF-8 ALL"),
                         "2 4 5 1 3 7 8 9 6")
        self.assertEqual(self.sort(c, "SORT (CC) UTF-8 ALL"),
                         "2 3 5 6 7 8 9 4 1")
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 ALL"),
                         "6 3 5 8 9 1 2 4 7")
        # Display names, RFC 2047 decoded, accents sorting with their
        # letter; the address when there is no name.
        self.assertEqual(self.sort(c, "SORT (DISPLAYFROM) UTF-8 ALL"),
                         "9 1 6 2 7 3 4 5 8")
        self.assertEqual(self.sort(c, "SORT (DISPLAYTO) UTF-8 ALL"),
                         "2 4 5 3 7 8 9 1 6")
        # SIZE and ARRIVAL agree with what FETCH says.
        self.assertEqual(self.sort(c, "SORT (SIZE) UTF-8 ALL"),
                         self.fetch_order(c, "RFC822.SIZE", int))
        self.assertEqual(
            self.sort(c, "SORT (ARRIVAL) UTF-8 ALL"),
            self.fetch_order(c, "INTERNALDATE", lambda d: email.utils.
                             parsedate_to_datetime(d.strip('"')
                                                   .replace("-", " ", 2))))
        self.assertEqual(self.sort(c, "SORT (REVERSE SIZE) UTF-8 ALL"),
                         self.fetch_order(c, "RFC822.SIZE", int, True))

    def test_reverse_and_mixed(self):
        c = self.session()
        # REVERSE reverses one key; ties stay in mailbox order.
        self.assertEqual(self.sort(c, "SORT (REVERSE SUBJECT) UTF-8 ALL"),
                         "1 2 4 7 8 9 3 5 6")
        self.assertEqual(self.sort(c, "SORT (SUBJECT DATE) UTF-8 ALL"),
                         "6 3 5 9 8 1 2 4 7")
        self.assertEqual(
            self.sort(c, "SORT (SUBJECT REVERSE DATE) UTF-8 ALL"),
            "6 5 3 8 9 7 4 2 1")
        self.assertEqual(self.sort(c, "SORT (FROM REVERSE DATE) UTF-8 ALL"),
                         "1 6 7 2 3 4 5 9 8")
        self.assertEqual(
            self.sort(c, "SORT (reverse from subject date) UTF-8 ALL"),
            "8 9 5 4 3 2 7 6 1")

    def test_criteria(self):
        c = self.session()
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 FROM bob"), "2 7")
        self.assertEqual(
            self.sort(c, "SORT (DATE) US-ASCII OR FROM carol TO carol"),
            "3 5")
        self.assertEqual(self.sort(c, 'SORT (DATE) "UTF-8" 1:3'), "1 3 2")
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 FROM nobody"),
                         "")
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 LARGER 2000"), "6")
        # A UTF-8 string in a literal.
        word = "\u00c9mile".encode()
        c.send(b"u1 SORT (DATE) UTF-8 FROM {%d+}\r\n" % len(word) + word +
               b"\r\n")
        lines = []
        while True:
            line = c.line()
            if line.startswith("u1 "):
                break
            lines.append(line)
        self.assertTrue(line.startswith("u1 OK"), line)
        self.assertEqual(one(lines, "SORT"), "* SORT 5")

    def test_uid(self):
        c = self.session()
        self.assertEqual(self.sort(c, "UID SORT (DATE) UTF-8 ALL"),
                         self.to_uids("6 1 3 2 5 4 7 9 8"))
        self.assertEqual(
            self.sort(c, "UID SORT (REVERSE DATE) UTF-8 UID %d:%d"
                      % (self.uids[1], self.uids[3])),
            self.to_uids("4 2 3"))
        # Sequence numbers in the criteria of UID SORT stay numbers.
        self.assertEqual(self.sort(c, "UID SORT (SUBJECT) UTF-8 2,3"),
                         self.to_uids("3 2"))
        self.assertEqual(self.thread(c, "UID THREAD REFERENCES UTF-8 ALL"),
                         re.sub(r"\d+", lambda m: str(
                             self.uids[int(m.group()) - 1]), REFERENCES))

    def test_charset(self):
        c = self.session()
        for text in ("SORT (DATE) KOI8-R ALL",
                     "UID SORT (DATE) ISO-8859-1 ALL",
                     "THREAD REFERENCES X-UNKNOWN ALL",
                     "UID THREAD ORDEREDSUBJECT BIG5 ALL"):
            u, t = c.run(text)
            self.assertTrue(t.startswith("NO [BADCHARSET (UTF-8 US-ASCII)]"),
                            (text, t))
            self.assertEqual([x for x in u if "SORT" in x or
                              "THREAD" in x], [])
        # Under UTF8=ACCEPT only UTF-8 is a charset (RFC 6855 3).
        c2 = self.session(enable="UTF8=ACCEPT")
        _, t = c2.run("SORT (DATE) US-ASCII ALL")
        self.assertTrue(t.startswith("BAD"), t)
        self.assertEqual(self.sort(c2, "SORT (DATE) UTF-8 FROM carol"), "3")

    def test_bad(self):
        c = self.session()
        for text in ("SORT", "SORT DATE UTF-8 ALL", "SORT () UTF-8 ALL",
                     "SORT (FOO) UTF-8 ALL", "SORT (REVERSE) UTF-8 ALL",
                     "SORT (DATE REVERSE) UTF-8 ALL",
                     "SORT (REVERSE REVERSE DATE) UTF-8 ALL",
                     "SORT ((DATE)) UTF-8 ALL", "SORT (DATE)",
                     "SORT (DATE) UTF-8", "SORT (DATE) UTF-8 BOGUS",
                     "SORT (DATE) UTF-8 99", "SORT (DATE) (UTF-8) ALL",
                     "SORT RETURN", "SORT RETURN (DATE) UTF-8 ALL",
                     "SORT RETURN ALL (DATE) UTF-8 ALL",
                     "SORT RETURN (BOGUS) (DATE) UTF-8 ALL",
                     "SORT (DATE) CHARSET UTF-8 ALL",
                     "SORT (" + " ".join(["DATE"] * 17) + ") UTF-8 ALL",
                     "THREAD", "THREAD FOO UTF-8 ALL",
                     "THREAD REFERENCES", "THREAD REFERENCES UTF-8",
                     "THREAD (REFERENCES) UTF-8 ALL",
                     "THREAD REFERENCES UTF-8 (SEEN",
                     "UID THREAD REFS UTF-8 ALL"):
            u, t = c.run(text)
            if text == "SORT (DATE) CHARSET UTF-8 ALL":
                # CHARSET is taken as a charset name: an unknown one.
                self.assertTrue(t.startswith("NO [BADCHARSET"), (text, t))
                continue
            self.assertTrue(t.startswith("BAD"), (text, t))
            self.assertEqual([x for x in u if "SORT" in x or
                              "THREAD" in x], [], text)
            if "17" in t or text.count("DATE") == 17:
                self.assertIn("[LIMIT]", t)
            c.ok("NOOP")  # BADs in a row would end the session
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 ALL"),
                         "6 1 3 2 5 4 7 9 8")

    def test_esort(self):
        c = self.session()
        u, _ = c.ok("SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
        self.assertEqual(one(u, "ESEARCH"),
                         '* ESEARCH (TAG "%s") MIN 6 MAX 8 '
                         'ALL 6,1,3,2,5,4,7,9,8 COUNT 9' % tag())
        self.assertEqual([x for x in u if x.startswith("* SORT")], [])
        u, _ = c.ok("SORT RETURN () (ARRIVAL) UTF-8 ALL")
        self.assertEqual(one(u, "ESEARCH"),
                         '* ESEARCH (TAG "%s") ALL %s' % (
                             tag(), self.fetch_all_arrival(c)))
        u, _ = c.ok("UID SORT RETURN (COUNT) (SUBJECT) UTF-8 FROM bob")
        self.assertEqual(one(u, "ESEARCH"),
                         '* ESEARCH (TAG "%s") UID COUNT 2' % tag())
        u, _ = c.ok("UID SORT RETURN (MIN MAX) (REVERSE DATE) UTF-8 "
                    "FROM alice")
        self.assertEqual(one(u, "ESEARCH"),
                         '* ESEARCH (TAG "%s") UID MIN %d MAX %d' % (
                             tag(), self.uids[0], self.uids[5]))
        u, _ = c.ok("SORT RETURN (MIN) (DATE) UTF-8 FROM nobody")
        self.assertEqual(one(u, "ESEARCH"), '* ESEARCH (TAG "%s")' % tag())

    def fetch_all_arrival(self, c):
        order = self.sort(c, "SORT (ARRIVAL) UTF-8 ALL").split()
        # ESORT joins only ascending runs (RFC 5267 3.2).
        out, run = [], [order[0]]
        for n in order[1:]:
            if int(n) == int(run[-1]) + 1:
                run.append(n)
            else:
                out.append(run)
                run = [n]
        out.append(run)
        return ",".join(r[0] if len(r) == 1 else "%s:%s" % (r[0], r[-1])
                        for r in out)

    def test_save(self):
        c = self.session()
        u, _ = c.ok("SORT RETURN (SAVE) (DATE) UTF-8 FROM alice")
        self.assertEqual([x for x in u if "ESEARCH" in x or "SORT" in x], [])
        u, _ = c.ok("UID SEARCH UID $")
        self.assertEqual(one(u, "SEARCH"), "* SEARCH %d %d" % (
            self.uids[0], self.uids[5]))
        # MIN is the first in sort order: 6 is Alice's earliest.
        u, _ = c.ok("SORT RETURN (SAVE MIN) (DATE) UTF-8 FROM alice")
        self.assertEqual(one(u, "ESEARCH"),
                         '* ESEARCH (TAG "%s") MIN 6' % tag())
        u, _ = c.ok("UID SEARCH UID $")
        self.assertEqual(one(u, "SEARCH"), "* SEARCH %d" % self.uids[5])
        # and "$" works as a search key of SORT
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 OR $ 3"), "6 3")

    def test_modseq(self):
        c = self.session()
        c.ok("STORE 3 +FLAGS.SILENT (\\Seen)")
        u, _ = c.ok("SORT (DATE) UTF-8 MODSEQ 1")
        m = re.match(r"\* SORT 6 1 3 2 5 4 7 9 8 \(MODSEQ (\d+)\)$",
                     one(u, "SORT"))
        self.assertIsNotNone(m, u)
        high = int(m.group(1))
        u, _ = c.ok("SORT (REVERSE DATE) UTF-8 MODSEQ %d" % high)
        self.assertEqual(one(u, "SORT"), "* SORT 3 (MODSEQ %d)" % high)

    def test_no_expunge_during_sort(self):
        c = self.session()
        other = self.session()
        other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.ok("EXPUNGE")
        u, _ = c.ok("SORT (DATE) UTF-8 ALL")
        self.assertEqual([x for x in u if "EXPUNGE" in x], [])
        # 2 is gone from the index: it no longer matches.
        self.assertEqual(one(u, "SORT"), "* SORT 6 1 3 5 4 7 9 8")
        u, _ = c.ok("THREAD REFERENCES UTF-8 ALL")
        self.assertEqual([x for x in u if "EXPUNGE" in x], [])
        self.assertEqual(one(u, "THREAD"),
                         "* THREAD (6)(1 (4)(7))(3 5)(8 9)")
        u, _ = c.ok("NOOP")
        self.assertIn("* 2 EXPUNGE", u)
        # UID SORT may report it at its end.
        other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        other.ok("EXPUNGE")
        u, _ = c.ok("UID SORT (DATE) UTF-8 ALL")
        self.assertIn("* 1 EXPUNGE", u)


class TestThread(SortBase):
    def test_references(self):
        c = self.session()
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 ALL"),
                         REFERENCES)
        self.assertEqual(self.thread(c, "thread references us-ascii ALL"),
                         REFERENCES)
        # Only the matches: Bob's two replies share a missing parent.
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 FROM bob"),
                         "((2)(7))")
        # 2's parent is not searched: 2 heads its thread.
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 2:4"),
                         "(3)(2 4)")
        self.assertEqual(
            self.thread(c, "THREAD REFERENCES UTF-8 FROM nobody"), "")
        u, t = c.ok("THREAD REFERENCES UTF-8 ALL")
        self.assertEqual(t, "OK THREAD completed")

    def test_orderedsubject(self):
        c = self.session()
        self.assertEqual(self.thread(c, "THREAD ORDEREDSUBJECT UTF-8 ALL"),
                         ORDEREDSUBJECT)
        self.assertEqual(
            self.thread(c, "UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT lunch"),
            "(%d %d)" % (self.uids[2], self.uids[4]))

    def test_chain(self):
        """200 replies, each to the one before, appended newest first:
        one thread, 200 deep."""
        c = self.session()
        n = 200
        for k in reversed(range(n)):
            headers = [("From", "a@example.org"), ("Subject", "Re: chain"),
                       ("Date", "Tue, 4 Feb 2025 10:%02d:%02d +0000"
                        % (k // 60, k % 60)),
                       ("Message-ID", "<c%d@chain.example>" % k)]
            if k > 0:
                refs = " ".join("<c%d@chain.example>" % j
                                for j in range(max(0, k - 20), k))
                headers.append(("References", refs))
            data = msg(headers, 1)
            c.send(b"a%d APPEND INBOX {%d+}\r\n" % (k, len(data)) + data +
                   b"\r\n")
        for k in reversed(range(n)):
            while True:
                line = c.line()
                if line.startswith("a%d " % k):
                    self.assertIn("OK", line)
                    break
        c.ok("NOOP")
        base = len(MSGS)
        # Message k is number base + n - k.
        want = "(" + " ".join(str(base + n - k) for k in range(n)) + ")"
        got = self.thread(c, "THREAD REFERENCES UTF-8 SUBJECT chain")
        self.assertEqual(got, want)
        got = self.thread(c, "THREAD ORDEREDSUBJECT UTF-8 SUBJECT chain")
        self.assertTrue(got.startswith("(%d (%d)(%d)" % (
            base + n, base + n - 1, base + n - 2)), got[:80])


class TestImaplib(SortBase):
    def test_imaplib(self):
        m = imaplib.IMAP4("127.0.0.1", self.port)
        try:
            m.login(USER, PASSWORD)
            typ, data = m.capability()
            m.capabilities = tuple(data[0].decode().upper().split())
            m.select("INBOX")
            typ, data = m.sort("(REVERSE DATE)", "UTF-8", "ALL")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0].decode(), "8 9 7 4 5 2 3 1 6")
            typ, data = m.sort("(SUBJECT)", "UTF-8", "FROM", "alice")
            self.assertEqual(data[0].decode(), "6 1")
            typ, data = m.uid("SORT", "(DISPLAYFROM)", "UTF-8", "ALL")
            self.assertEqual(data[0].decode(),
                             self.to_uids("9 1 6 2 7 3 4 5 8"))
            typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
            self.assertEqual(typ, "OK")
            self.assertEqual(data[0].decode(), REFERENCES)
            typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
            self.assertEqual(data[0].decode(), ORDEREDSUBJECT)
            with self.assertRaises(imaplib.IMAP4.error):
                m.sort("(BOGUS)", "UTF-8", "ALL")
            typ, data = m.sort("(DATE)", "KOI8-R", "ALL")
            self.assertEqual(typ, "NO")
            m.logout()
        finally:
            try:
                m.shutdown()
            except OSError:
                pass


if __name__ == "__main__":
    harness.main()
