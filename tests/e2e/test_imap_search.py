#!/usr/bin/env python3
"""SEARCH and UID SEARCH through the real daemon: flag, header, body
(decoded), date and size keys, sets, OR/NOT nesting, CHARSET with a
literal, BADCHARSET and BAD, ESEARCH's RETURN (RFC 4731), SEARCHRES's
SAVE and "$" (RFC 5182), MODSEQ enabling CONDSTORE (RFC 7162), no
EXPUNGE during a SEARCH by sequence number (RFC 9051 7.5.1), and the
[LIMIT] bounds on a search program."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_imap_store import Base  # noqa: E402

MSGS = [
    # 1: plain, Alice, 2020
    b"From: Alice <alice@example.org>\r\nTo: demo@example.test\r\n"
    b"Subject: Quarterly report\r\nDate: Wed, 1 Jan 2020 10:00:00 +0000\r\n"
    b"\r\nThe numbers look good.\r\n",
    # 2: QP UTF-8 body, encoded-word subject, Bob, 2021
    b"From: Bob <bob@example.org>\r\nTo: demo@example.test\r\n"
    b"Subject: =?UTF-8?Q?Caf=C3=A9_meeting?=\r\n"
    b"Date: Tue, 15 Jun 2021 12:00:00 +0200\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Caf=C3=A9 at noon, soft=\r\nbreak here.\r\n",
    # 3: ISO-8859-1 body, Carol, 2022
    b"From: Carol <carol@example.org>\r\nTo: demo@example.test\r\n"
    b"Subject: Latin\r\nDate: Thu, 10 Mar 2022 08:00:00 -0500\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\nMy r\xe9sum\xe9 is ready.\r\n",
    # 4: multipart with a large attachment, Dave, 2023
    b"From: Dave <dave@example.org>\r\nTo: demo@example.test\r\n"
    b"Subject: With attachment\r\nDate: Fri, 1 Dec 2023 09:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n"
    b"\r\n--XX\r\nContent-Type: text/plain\r\n\r\nPlease see attached.\r\n"
    b"--XX\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    + b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n" * 80
    + b"--XX--\r\n",
    # 5: short, Alice, 2024
    b"From: Alice <alice@example.org>\r\nTo: demo@example.test\r\n"
    b"Subject: Short\r\nDate: Fri, 2 Feb 2024 11:00:00 +0000\r\n\r\nx\r\n",
]


def search_result(untagged, name="SEARCH"):
    lines = [u for u in untagged if u.startswith("* %s" % name)]
    if len(lines) != 1:
        raise AssertionError("expected one * %s in %r" % (name, untagged))
    return lines[0]


class TestSearch(Base):
    def setUp(self):
        super().setUp()
        for m in MSGS:
            self.deliver(m)
        self.uids = [r[0] for r in self.rows()]
        self.assertEqual(len(self.uids), 5)

    def nums(self, c, text):
        u, t = c.ok(text)
        line = search_result(u)
        return [int(x) for x in line.split()[2:]]

    def flagged_session(self, **kw):
        c = self.session(**kw)
        c.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
        c.ok("STORE 2 +FLAGS.SILENT (\\Flagged $Work)")
        c.ok("STORE 3 +FLAGS.SILENT (\\Seen \\Answered)")
        return c

    def utf8_literal(self, c, prefix, word, suffix=""):
        data = word.encode()
        c.send("%s {%d+}\r\n" % (prefix, len(data)))
        c.send(data + suffix.encode() + b"\r\n")

    def test_keys(self):
        c = self.flagged_session()
        u, _ = c.ok("CAPABILITY")
        self.assertIn(" ESEARCH", u[0])
        self.assertIn(" SEARCHRES", u[0])
        u, t = c.ok("SEARCH ALL")
        self.assertEqual(search_result(u), "* SEARCH 1 2 3 4 5")
        self.assertEqual(t, "OK SEARCH completed")
        self.assertEqual(self.nums(c, "SEARCH SEEN"), [1, 3])
        self.assertEqual(self.nums(c, "SEARCH UNSEEN"), [2, 4, 5])
        self.assertEqual(self.nums(c, "SEARCH FLAGGED"), [2])
        self.assertEqual(self.nums(c, "SEARCH KEYWORD $Work"), [2])
        self.assertEqual(self.nums(c, "SEARCH UNKEYWORD $Work"),
                         [1, 3, 4, 5])
        self.assertEqual(self.nums(c, "SEARCH ANSWERED"), [3])
        self.assertEqual(self.nums(c, "SEARCH FROM alice"), [1, 5])
        self.assertEqual(self.nums(c, "SEARCH FROM \"BOB@EXAMPLE\""), [2])
        self.assertEqual(self.nums(c, "SEARCH SUBJECT meeting"), [2])
        self.assertEqual(self.nums(c, "SEARCH HEADER Subject quarterly"),
                         [1])
        self.assertEqual(self.nums(c, "SEARCH HEADER X-None \"\""), [])
        # BODY and TEXT look at decoded text parts only.
        self.assertEqual(self.nums(c, "SEARCH BODY numbers"), [1])
        self.assertEqual(self.nums(c, "SEARCH BODY softbreak"), [2])
        self.assertEqual(self.nums(c, "SEARCH TEXT \"see attached\""), [4])
        self.assertEqual(self.nums(c, "SEARCH TEXT quarterly"), [1])
        self.assertEqual(self.nums(c, "SEARCH BODY QUFBQUFB"), [])
        # Dates of the Date: header.
        self.assertEqual(self.nums(c, "SEARCH SENTSINCE 1-Jan-2022"),
                         [3, 4, 5])
        self.assertEqual(self.nums(c, "SEARCH SENTBEFORE 1-Jan-2021"), [1])
        self.assertEqual(self.nums(c, "SEARCH SENTON 15-Jun-2021"), [2])
        self.assertEqual(self.nums(c, "SEARCH SINCE 1-Jan-2000"),
                         [1, 2, 3, 4, 5])
        # Sizes.
        self.assertEqual(self.nums(c, "SEARCH LARGER 3000"), [4])
        self.assertEqual(self.nums(c, "SEARCH SMALLER 3000"), [1, 2, 3, 5])
        # Sets, OR and NOT nesting.
        self.assertEqual(self.nums(c, "SEARCH 2:3"), [2, 3])
        self.assertEqual(self.nums(c, "SEARCH 4:*"), [4, 5])
        self.assertEqual(
            self.nums(c, "SEARCH OR FROM bob (SEEN NOT ANSWERED)"), [1, 2])
        self.assertEqual(self.nums(c, "SEARCH NOT (OR SEEN FLAGGED)"), [4, 5])
        self.assertEqual(
            self.nums(c, "SEARCH OR OR FROM carol FROM dave NOT NOT 1"),
            [1, 3, 4])

    def test_uid_search(self):
        c = self.session()
        u, t = c.ok("UID SEARCH ALL")
        self.assertEqual(search_result(u),
                         "* SEARCH " + " ".join(map(str, self.uids)))
        self.assertEqual(t, "OK UID SEARCH completed")
        text = "UID SEARCH UID %d:%d" % (self.uids[1], self.uids[3])
        self.assertEqual(self.nums(c, text), self.uids[1:4])
        self.assertEqual(self.nums(c, "UID SEARCH 5"), [self.uids[4]])
        self.assertEqual(self.nums(c, "UID SEARCH UID 9999"), [])
        self.assertEqual(self.nums(c, "UID SEARCH UID *"), [self.uids[4]])

    def test_charset(self):
        c = self.session()
        self.utf8_literal(c, "c1 SEARCH CHARSET UTF-8 BODY", "résumé")
        lines = []
        while True:
            line = c.line()
            if line.startswith("c1 "):
                break
            lines.append(line)
        self.assertTrue(line.startswith("c1 OK"), line)
        self.assertEqual(search_result(lines), "* SEARCH 3")
        self.utf8_literal(c, "c2 SEARCH CHARSET UTF-8 SUBJECT", "CAFÉ")
        lines = []
        while True:
            line = c.line()
            if line.startswith("c2 "):
                break
            lines.append(line)
        self.assertTrue(line.startswith("c2 OK"), line)
        self.assertEqual(search_result(lines), "* SEARCH 2")
        self.assertEqual(self.nums(c, "SEARCH CHARSET US-ASCII BODY noon"),
                         [2])
        u, t = c.run("SEARCH CHARSET KOI8-R BODY x")
        self.assertTrue(t.startswith("NO [BADCHARSET"), t)
        self.assertEqual([x for x in u if "SEARCH" in x], [])

    def test_bad(self):
        c = self.session()
        for text in ("SEARCH", "SEARCH FOO", "SEARCH 99", "SEARCH (SEEN",
                     "SEARCH OR SEEN", "SEARCH SINCE 32-Foo-2020",
                     "SEARCH LARGER x", "SEARCH RETURN (BOGUS) ALL"):
            u, t = c.run(text)
            self.assertTrue(t.startswith("BAD"), (text, t))
        # Still serving.
        self.assertEqual(self.nums(c, "SEARCH ALL"), [1, 2, 3, 4, 5])

    def test_limits(self):
        """The bounds a search program is held to, each answered with a
        tagged BAD [LIMIT] (RFC 5530) that leaves the session usable; one
        step below each bound is served."""
        c = self.session()
        cases = [
            # NOT and OR nest without parentheses: 64 deep at most.
            ("SEARCH " + "NOT " * 64 + "ALL", [1, 2, 3, 4, 5]),
            ("SEARCH " + "NOT " * 65 + "ALL",
             "Search program nested too deep"),
            # 1000 keys in one program.
            ("SEARCH" + " ALL" * 1000, [1, 2, 3, 4, 5]),
            ("SEARCH" + " ALL" * 1001, "Too many search keys"),
            # 10000 ranges in one set.
            ("UID SEARCH UID " + ",".join(str(2 * i + 1)
                                          for i in range(10000)),
             [u for u in self.uids if u % 2 == 1]),
            ("UID SEARCH UID " + ",".join(str(2 * i + 1)
                                          for i in range(10001)),
             "Too many ranges in sequence set"),
            # Parenthesised lists: the command parser's depth bound.
            ("SEARCH " + "(" * 16 + "ALL" + ")" * 16, [1, 2, 3, 4, 5]),
            ("SEARCH " + "(" * 17 + "ALL" + ")" * 17,
             "Lists nested over 16 deep"),
        ]
        for text, want in cases:
            u, t = c.run(text)
            if isinstance(want, list):
                self.assertTrue(t.startswith("OK"), (text[:60], t))
                line = search_result(u)
                self.assertEqual([int(x) for x in line.split()[2:]], want)
                continue
            self.assertEqual(t, "BAD [LIMIT] " + want, text[:60])
            self.assertEqual([x for x in u if "SEARCH" in x], [])
        # PARTIAL (RFC 9394) is not offered, so a RETURN asking for it is
        # a syntax error, not a silently truncated result.
        u, t = c.run("CAPABILITY")
        self.assertNotIn("PARTIAL", u[0])
        u, t = c.run("UID SEARCH RETURN (PARTIAL 1:2) ALL")
        self.assertEqual(t, "BAD Unknown RETURN option")
        self.assertEqual(u, [])
        self.assertEqual(self.nums(c, "SEARCH ALL"), [1, 2, 3, 4, 5])

    def test_esearch(self):
        c = self.flagged_session()
        u, t = c.ok("SEARCH RETURN (MIN MAX COUNT ALL) SEEN")
        tag = "t%d" % harness_tag()
        self.assertEqual(search_result(u, "ESEARCH"),
                         '* ESEARCH (TAG "%s") MIN 1 MAX 3 ALL 1,3 COUNT 2'
                         % tag)
        u, t = c.ok("UID SEARCH RETURN () ALL")
        self.assertEqual(
            search_result(u, "ESEARCH"),
            '* ESEARCH (TAG "t%d") UID ALL %d:%d'
            % (harness_tag(), self.uids[0], self.uids[4]))
        u, t = c.ok("SEARCH RETURN (COUNT) FROM nobody")
        self.assertEqual(search_result(u, "ESEARCH"),
                         '* ESEARCH (TAG "t%d") COUNT 0' % harness_tag())
        u, t = c.ok("SEARCH RETURN (MIN) FROM nobody")
        self.assertEqual(search_result(u, "ESEARCH"),
                         '* ESEARCH (TAG "t%d")' % harness_tag())

    def test_esearch_rev2(self):
        c = self.session(enable="IMAP4rev2")
        u, t = c.ok("SEARCH FROM alice")
        self.assertEqual(search_result(u, "ESEARCH"),
                         '* ESEARCH (TAG "t%d") ALL 1,5' % harness_tag())

    def test_save(self):
        c = self.session()
        # "$" before any SAVE matches nothing.
        self.assertEqual(self.nums(c, "UID SEARCH UID $"), [])
        u, t = c.ok("SEARCH RETURN (SAVE) FROM alice")
        self.assertEqual(u, [])
        u, t = c.ok("FETCH $ (UID)")
        self.assertEqual(sorted(u), ["* 1 FETCH (UID %d)" % self.uids[0],
                                     "* 5 FETCH (UID %d)" % self.uids[4]])
        self.assertEqual(self.nums(c, "UID SEARCH UID $"),
                         [self.uids[0], self.uids[4]])
        self.assertEqual(self.nums(c, "SEARCH $ SUBJECT short"), [5])
        # SAVE with MIN saves only the lowest (RFC 5182 2.1).
        u, t = c.ok("SEARCH RETURN (SAVE MIN) ALL")
        self.assertEqual(search_result(u, "ESEARCH"),
                         '* ESEARCH (TAG "t%d") MIN 1' % harness_tag())
        self.assertEqual(self.nums(c, "UID SEARCH UID $"), [self.uids[0]])

    def test_modseq(self):
        c = self.session()
        c.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
        u, _ = c.ok("SEARCH MODSEQ 1")
        line = search_result(u)
        m = re.match(r"\* SEARCH 1 2 3 4 5 \(MODSEQ (\d+)\)$", line)
        self.assertIsNotNone(m, line)
        high = int(m.group(1))
        u, _ = c.ok("SEARCH MODSEQ %d" % high)
        self.assertEqual(search_result(u), "* SEARCH 2 (MODSEQ %d)" % high)
        u, _ = c.ok("SEARCH MODSEQ %d" % (high + 1))
        self.assertEqual(search_result(u), "* SEARCH")
        # CONDSTORE is on now: FETCH FLAGS carries MODSEQ.
        u, _ = c.ok("STORE 1 +FLAGS (\\Flagged)")
        self.assertIn("MODSEQ (", u[0])

    def test_no_expunge_during_search(self):
        c = self.session()
        other = self.session()
        other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.ok("EXPUNGE")
        u, t = c.ok("SEARCH ALL")
        self.assertEqual([x for x in u if "EXPUNGE" in x], [])
        # The expunged message is still number 2 for c, and gone.
        self.assertEqual(search_result(u), "* SEARCH 1 3 4 5")
        u, _ = c.ok("NOOP")
        self.assertIn("* 2 EXPUNGE", u)
        self.assertEqual(self.nums(c, "SEARCH ALL"), [1, 2, 3, 4])
        # UID SEARCH may report an expunge at its end (RFC 9051 7.5.1
        # holds back only the sequence-number forms).
        other.ok("UID STORE %d +FLAGS.SILENT (\\Deleted)" % self.uids[2])
        other.ok("EXPUNGE")
        u, _ = c.ok("UID SEARCH ALL")
        self.assertEqual(search_result(u), "* SEARCH %d %d %d" % (
            self.uids[0], self.uids[3], self.uids[4]))
        self.assertIn("* 2 EXPUNGE", u)
        self.assertLess(u.index(search_result(u)), u.index("* 2 EXPUNGE"))
        self.assertEqual(self.nums(c, "SEARCH ALL"), [1, 2, 3])
        # A new message is seen only once announced.
        self.deliver(MSGS[0])
        u, _ = c.ok("SEARCH ALL")
        self.assertIn("* 4 EXISTS", u)
        self.assertEqual(search_result(u), "* SEARCH 1 2 3")


def harness_tag():
    from test_imap_store import ImapClient
    return ImapClient.n


if __name__ == "__main__":
    harness.main()
