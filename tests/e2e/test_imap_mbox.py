#!/usr/bin/env python3
"""The IMAP mailbox commands through the real daemon: CREATE, DELETE,
RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS, LIST and LSUB (with LIST-EXTENDED,
SPECIAL-USE and LIST-STATUS), and the QUOTA commands. Raw sockets, so every
response code and attribute is seen as sent; messages put in with
`moonpost deliver`."""

import os
import re
import sqlite3
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


class Imap(LineClient):
    """Raw IMAP: run() sends a command and returns (untagged, tagged)."""

    def __init__(self, port):
        super().__init__(port)
        self.n = 0
        self.greeting = self.line()

    def response_line(self):
        """One response line with any literals it holds inlined."""
        line = self.line()
        while True:
            m = re.search(r"\{(\d+)\}$", line)
            if not m:
                return line
            data = self.read_exact(int(m.group(1))).decode("utf-8")
            line = line[:m.start()] + '"' + data + '"' + self.line()

    def run(self, text):
        self.n += 1
        tag = "a%d" % self.n
        self.send("%s %s\r\n" % (tag, text))
        untagged = []
        while True:
            line = self.response_line()
            if line.startswith(tag + " "):
                return untagged, line[len(tag) + 1:]
            untagged.append(line)

    def ok(self, text):
        untagged, tagged = self.run(text)
        if not tagged.startswith("OK"):
            raise AssertionError("%s: %s" % (text, tagged))
        return untagged


def parse_list(lines, kind="LIST"):
    """{name: (attrs set, rest)} of the LIST or LSUB lines."""
    out = {}
    for line in lines:
        m = re.match(r'\* %s \(([^)]*)\) "/" ("(?:[^"\\]|\\.)*"|\S+)(.*)$'
                     % kind, line)
        if not m:
            continue
        name = m.group(2)
        if name.startswith('"'):
            name = name[1:-1]
        out[name] = (set(m.group(1).split()), m.group(3).strip())
    return out


def parse_status(lines):
    """{name: {item: value}} of the STATUS lines."""
    out = {}
    for line in lines:
        m = re.match(r'\* STATUS ("[^"]*"|\S+) \((.*)\)$', line)
        if not m:
            continue
        words = m.group(2).split()
        out[m.group(1).strip('"')] = dict(zip(words[::2], words[1::2]))
    return out


class Base(harness.DaemonTest):
    LISTENERS = (("imap", "imap", 'tls = "starttls"'),)

    def setUp(self):
        super().setUp()
        self.port = self.d.ports[0]
        self.account = os.path.join(self.data, "mail", "example.test", "demo")

    def db(self, sql, *args):
        db = sqlite3.connect(os.path.join(self.account, "index.sqlite"))
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def session(self):
        c = Imap(self.port)
        self.clients.append(c)
        self.assertTrue(c.greeting.startswith("* OK"), c.greeting)
        c.ok('LOGIN "%s" "%s"' % (USER, PASSWORD))
        return c

    def listing(self, c, args="\"\" \"*\"", kind="LIST"):
        return parse_list(c.ok("%s %s" % (kind, args)), kind)

    def assertNo(self, c, cmd, code):
        _, tagged = c.run(cmd)
        self.assertTrue(tagged.startswith("NO [%s]" % code),
                        "%s: %s" % (cmd, tagged))


class TestList(Base):
    def test_capabilities(self):
        c = self.session()
        caps = c.ok("CAPABILITY")[0].split()
        for cap in ("CHILDREN", "SPECIAL-USE", "CREATE-SPECIAL-USE",
                    "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "QUOTA",
                    "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"):
            self.assertIn(cap, caps)

    def test_default_mailboxes(self):
        c = self.session()
        boxes = self.listing(c)
        self.assertEqual(list(boxes)[0], "INBOX")
        want = {"INBOX": None, "Sent": "\\Sent", "Drafts": "\\Drafts",
                "Trash": "\\Trash", "Junk": "\\Junk", "Archive": "\\Archive"}
        self.assertEqual(set(boxes), set(want))
        for name, use in want.items():
            self.assertIn("\\HasNoChildren", boxes[name][0])
            if use:
                self.assertIn(use, boxes[name][0])
        # The separator and the root (RFC 9051 6.3.9).
        self.assertEqual(c.ok('LIST "" ""'), ['* LIST (\\Noselect) "/" ""'])
        # SPECIAL-USE selection lists only those (RFC 6154 3).
        special = self.listing(c, '(SPECIAL-USE) "" "*"')
        self.assertEqual(set(special), set(want) - {"INBOX"})
        special = self.listing(c, '"" "*" RETURN (SPECIAL-USE)')
        self.assertIn("\\Sent", special["Sent"][0])
        # "inbox" in any case.
        self.assertEqual(set(self.listing(c, '"" "inBox"')), {"INBOX"})

    def test_hierarchy(self):
        c = self.session()
        c.ok("CREATE a/b/c")
        self.assertEqual(set(self.listing(c, '"" "a/%"')), {"a/b"})
        self.assertEqual(set(self.listing(c, '"" "a/*"')), {"a/b", "a/b/c"})
        self.assertEqual(set(self.listing(c, '"a/" "%"')), {"a/b"})
        top = self.listing(c, '"" "%"')
        self.assertIn("a", top)
        self.assertNotIn("a/b", top)
        self.assertIn("\\HasChildren", top["a"][0])
        self.assertIn("\\HasNoChildren",
                      self.listing(c, '"" "a/b/c"')["a/b/c"][0])
        # A trailing separator declares a parent (RFC 3501 6.3.3).
        c.ok("CREATE x/")
        self.assertIn("x", self.listing(c, '"" "x"'))
        # Several patterns (RFC 5258 3).
        self.assertEqual(set(self.listing(c, '"" ("a/b" "x" "Sent")')),
                         {"a/b", "x", "Sent"})
        # Deleting a parent leaves it \Noselect (RFC 3501 6.3.4).
        c.ok("DELETE a")
        a = self.listing(c, '"" "a"')["a"][0]
        self.assertEqual(a, {"\\Noselect", "\\HasChildren"})
        self.assertNo(c, "DELETE a", "CANNOT")
        self.assertNo(c, "STATUS a (MESSAGES)", "NONEXISTENT")
        c.ok("CREATE a")
        self.assertNotIn("\\Noselect", self.listing(c, '"" "a"')["a"][0])

    def test_pattern_bounds(self):
        c = self.session()
        c.ok("CREATE " + "x" * 200)
        # Many wildcards cost name x pattern steps, not exponential time.
        start = time.monotonic()
        self.assertEqual(self.listing(c, '"" "%s"' % ("*%" * 200 + "y")), {})
        self.assertLess(time.monotonic() - start, 60)
        self.assertNo(c, 'LIST "" "%s"' % ("*" * 600), "LIMIT")
        _, tagged = c.run('LIST "" (%s)' % " ".join(['"a"'] * 17))
        self.assertTrue(tagged.startswith("BAD [LIMIT]"), tagged)
        _, tagged = c.run('LIST (BOGUS) "" "*"')
        self.assertTrue(tagged.startswith("BAD"), tagged)
        _, tagged = c.run('LIST "" "*" RETURN (BOGUS)')
        self.assertTrue(tagged.startswith("BAD"), tagged)
        _, tagged = c.run('LIST "" ()')
        self.assertTrue(tagged.startswith("BAD"), tagged)
        c.ok("NOOP")


class TestCommands(Base):
    def test_create_errors(self):
        c = self.session()
        c.ok("CREATE Work")
        self.assertNo(c, "CREATE Work", "ALREADYEXISTS")
        self.assertNo(c, "CREATE inbox", "ALREADYEXISTS")
        self.assertNo(c, 'CREATE "a//b"', "CANNOT")
        self.assertNo(c, 'CREATE "bad&name"', "CANNOT")
        self.assertNo(c, "CREATE " + "n" * 256, "LIMIT")
        c.ok("CREATE " + "n" * 200)
        self.assertNo(c, "CREATE " + "/".join(["d"] * 17), "LIMIT")
        c.ok("CREATE " + "/".join(["d"] * 16))
        _, tagged = c.run("CREATE")
        self.assertTrue(tagged.startswith("BAD"), tagged)
        # CREATE-SPECIAL-USE (RFC 6154 3, 5.3).
        c.ok("CREATE Flagged (USE (\\Flagged))")
        self.assertIn("\\Flagged", self.listing(c, '"" "Flagged"')
                      ["Flagged"][0])
        self.assertNo(c, "CREATE Odd (USE (\\Bogus))", "USEATTR")
        self.assertNotIn("Odd", self.listing(c))

    def test_mailbox_limit(self):
        c = self.session()
        have = len(self.listing(c))
        db = sqlite3.connect(os.path.join(self.account, "index.sqlite"))
        cols = [r[1] for r in db.execute("PRAGMA table_info(mailboxes)")]
        db.close()
        self.assertIn("name", cols)
        # Filling 2000 mailboxes through IMAP takes long on a busy
        # machine; pipelining them keeps it to one round trip.
        n = 2000 - have
        c.send("".join("p%d CREATE m%d\r\n" % (i, i) for i in range(n)))
        for i in range(n):
            line = c.line()
            while not line.startswith("p%d " % i):
                line = c.line()
            self.assertTrue(line.startswith("p%d OK" % i), line)
        self.assertNo(c, "CREATE onemore", "LIMIT")
        # LIST-STATUS over all of them stays correct.
        lines = c.ok('LIST "" "*" RETURN (STATUS (MESSAGES))')
        self.assertEqual(len(parse_status(lines)), 2000)

    def test_delete(self):
        c = self.session()
        self.assertNo(c, "DELETE nothere", "NONEXISTENT")
        self.assertNo(c, "DELETE INBOX", "CANNOT")
        c.ok("CREATE gone")
        c.ok("DELETE gone")
        self.assertNotIn("gone", self.listing(c))

    def test_rename(self):
        c = self.session()
        c.ok("CREATE a/b/c")
        c.ok("CREATE other")
        c.ok("RENAME a z")
        boxes = self.listing(c, '"" "*"')
        self.assertTrue({"z", "z/b", "z/b/c"} <= set(boxes))
        self.assertFalse({"a", "a/b", "a/b/c"} & set(boxes))
        self.assertNo(c, "RENAME a q", "NONEXISTENT")
        self.assertNo(c, "RENAME z other", "ALREADYEXISTS")
        self.assertNo(c, "RENAME z z/b/c/d", "CANNOT")
        self.assertNo(c, "RENAME z INBOX", "ALREADYEXISTS")
        c.ok("RENAME z/b/c deep/new")
        self.assertIn("deep/new", self.listing(c))

    def test_inbox_rename(self):
        for i in range(2):
            self.deliver(message("m%d" % i))
        c = self.session()
        c.ok("RENAME INBOX Old")
        st = parse_status(c.ok("STATUS INBOX (MESSAGES)"))
        self.assertEqual(st["INBOX"]["MESSAGES"], "0")
        st = parse_status(c.ok("STATUS Old (MESSAGES)"))
        self.assertEqual(st["Old"]["MESSAGES"], "2")
        self.assertIn("INBOX", self.listing(c))

    def test_selected_mailbox(self):
        c, other = self.session(), self.session()
        c.ok("CREATE box")
        c.ok("SELECT box")
        # RENAME keeps it selected, under its new name.
        c.ok("RENAME box box2")
        c.ok("NOOP")
        c.ok("CHECK")
        # DELETE of it closes it: back to the authenticated state.
        c.ok("DELETE box2")
        _, tagged = c.run("CHECK")
        self.assertTrue(tagged.startswith("BAD"), tagged)
        # Deleted by another session: BYE at the next command.
        c.ok("CREATE third")
        c.ok("SELECT third")
        other.ok("DELETE third")
        c.send("z NOOP\r\n")
        lines = []
        try:
            while True:
                lines.append(c.line())
        except EOFError:
            pass
        self.assertTrue(any(u.startswith("* BYE") for u in lines), lines)

    def test_other_session_sees_changes(self):
        a, b = self.session(), self.session()
        self.assertNotIn("new", self.listing(b))
        a.ok("CREATE new")
        self.assertIn("new", self.listing(b))
        a.ok("SUBSCRIBE new")
        self.assertIn("new", self.listing(b, '"" "*"', "LSUB"))


class TestSubscriptions(Base):
    def test_subscriptions(self):
        c = self.session()
        # The default mailboxes start subscribed.
        defaults = {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
        self.assertEqual(set(self.listing(c, '"" "*"', "LSUB")), defaults)
        c.ok("UNSUBSCRIBE Drafts")
        c.ok("SUBSCRIBE Sent")
        c.ok("SUBSCRIBE ghost")  # need not exist (RFC 9051 6.3.7)
        want = defaults - {"Drafts"} | {"ghost"}
        lsub = self.listing(c, '"" "*"', "LSUB")
        self.assertEqual(set(lsub), want)
        sub = self.listing(c, '(SUBSCRIBED) "" "*"')
        self.assertEqual(set(sub), want)
        self.assertEqual(sub["ghost"][0], {"\\Subscribed", "\\NonExistent"})
        self.assertIn("\\Subscribed", sub["Sent"][0])
        # Existing but unsubscribed: in LIST, not \Subscribed.
        plain = self.listing(c, '"" "*" RETURN (SUBSCRIBED CHILDREN)')
        self.assertNotIn("\\Subscribed", plain["Drafts"][0])
        self.assertIn("\\Subscribed", plain["Sent"][0])
        self.assertNotIn("ghost", plain)
        # Subscribed, then deleted: \NonExistent.
        c.ok("CREATE temp")
        c.ok("SUBSCRIBE temp")
        c.ok("DELETE temp")
        sub = self.listing(c, '(SUBSCRIBED) "" "temp"')
        self.assertEqual(sub["temp"][0], {"\\Subscribed", "\\NonExistent"})
        # A subscribed child (RFC 5258 3.5 CHILDINFO; RFC 3501 6.3.9).
        c.ok("CREATE p/q")
        c.ok("SUBSCRIBE p/q")
        rec = self.listing(c, '(SUBSCRIBED RECURSIVEMATCH) "" "%"')
        self.assertIn("p", rec)
        self.assertEqual(rec["p"][1], '("CHILDINFO" ("SUBSCRIBED"))')
        self.assertNotIn("\\Subscribed", rec["p"][0])
        self.assertNotIn("p", self.listing(c, '(SUBSCRIBED) "" "%"'))
        lsub = self.listing(c, '"" "%"', "LSUB")
        self.assertEqual(lsub["p"][0], {"\\Noselect"})
        _, tagged = c.run('LIST (RECURSIVEMATCH) "" "*"')
        self.assertTrue(tagged.startswith("BAD"), tagged)
        c.ok("UNSUBSCRIBE ghost")
        c.ok("UNSUBSCRIBE ghost")
        self.assertNotIn("ghost", self.listing(c, '"" "*"', "LSUB"))


class TestStatus(Base):
    def test_status_items(self):
        for i in range(3):
            self.deliver(message("m%d" % i))
        c = self.session()
        st = parse_status(c.ok(
            "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE "
            "RECENT HIGHESTMODSEQ APPENDLIMIT)"))["INBOX"]
        (size,), = self.db("SELECT sum(m.size) FROM messages m JOIN "
                           "mailboxes b ON b.id = m.mailbox WHERE "
                           "b.name = 'INBOX'")
        (uidvalidity,), = self.db("SELECT uidvalidity FROM mailboxes "
                                  "WHERE name = 'INBOX'")
        self.assertEqual(st["MESSAGES"], "3")
        self.assertEqual(st["UIDNEXT"], "4")
        self.assertEqual(st["UIDVALIDITY"], str(uidvalidity))
        self.assertEqual(st["UNSEEN"], "3")
        self.assertEqual(st["DELETED"], "0")
        self.assertEqual(st["SIZE"], str(size))
        self.assertEqual(st["RECENT"], "3")
        self.assertGreater(int(st["HIGHESTMODSEQ"]), 0)
        self.assertEqual(st["APPENDLIMIT"], str(64 * 1024 * 1024))
        # Another session took \Recent; a new delivery counts.
        other = self.session()
        other.ok("SELECT INBOX")
        self.deliver(message("m3"))
        st = parse_status(c.ok("STATUS inbox (MESSAGES RECENT UIDNEXT)"))
        self.assertEqual(st["INBOX"], {"MESSAGES": "4", "RECENT": "1",
                                       "UIDNEXT": "5"})
        # STATUS of the selected mailbox is as fresh.
        self.deliver(message("m4"))
        st = parse_status(other.ok("STATUS INBOX (MESSAGES)"))
        self.assertEqual(st["INBOX"]["MESSAGES"], "5")
        self.assertNo(c, "STATUS nothere (MESSAGES)", "NONEXISTENT")
        for bad in ("STATUS INBOX ()", "STATUS INBOX (BOGUS)",
                    "STATUS INBOX"):
            _, tagged = c.run(bad)
            self.assertTrue(tagged.startswith("BAD"), (bad, tagged))

    def test_list_status(self):
        for i in range(2):
            self.deliver(message("m%d" % i))
        c = self.session()
        c.ok("CREATE a/b")
        c.ok("DELETE a")
        lines = c.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN SIZE))')
        boxes, st = parse_list(lines), parse_status(lines)
        self.assertEqual(st["INBOX"]["MESSAGES"], "2")
        self.assertEqual(st["INBOX"]["UNSEEN"], "2")
        self.assertEqual(st["Sent"], {"MESSAGES": "0", "UNSEEN": "0",
                                      "SIZE": "0"})
        # Every selectable mailbox, and only those (RFC 5819 2).
        self.assertEqual(set(st), set(boxes) - {"a"})
        # Each STATUS follows its LIST line.
        i = lines.index([x for x in lines if x.endswith('"/" INBOX') or
                         x.endswith('"/" "INBOX"')][0])
        self.assertRegex(lines[i + 1], r'^\* STATUS "?INBOX"? ')


class TestNames(Base):
    def test_modified_utf7(self):
        c = self.session()
        c.ok("CREATE Entw&APw-rfe")
        self.assertEqual(self.db("SELECT count(*) FROM mailboxes WHERE "
                                 "name = ?", "Entwürfe"), [(1,)])
        self.assertIn("Entw&APw-rfe", self.listing(c))
        self.assertIn("Entw&APw-rfe", self.listing(c, '"" "Entw*"'))
        st = parse_status(c.ok("STATUS Entw&APw-rfe (MESSAGES)"))
        self.assertIn("Entw&APw-rfe", st)
        c.ok("CREATE Tom&-Jerry")
        self.assertIn("Tom&-Jerry", self.listing(c))
        self.assertEqual(self.db("SELECT count(*) FROM mailboxes WHERE "
                                 "name = 'Tom&Jerry'"), [(1,)])
        c.ok("RENAME Entw&APw-rfe Tom&-Jerry/&ZeVnLIqe-")
        self.assertIn("Tom&-Jerry/&ZeVnLIqe-", self.listing(c))
        self.assertNotIn("Entw&APw-rfe", self.listing(c))

    def test_utf8_accept(self):
        c = self.session()
        c.ok("ENABLE UTF8=ACCEPT")
        c.ok('CREATE "Entwürfe"')
        c.ok('CREATE "日本語/子"')
        boxes = self.listing(c)
        self.assertIn("Entwürfe", boxes)
        self.assertIn("日本語/子", boxes)
        self.assertIn("日本語/子", self.listing(c, '"" "日本語/%"'))
        st = parse_status(c.ok('STATUS "Entwürfe" (MESSAGES)'))
        self.assertIn("Entwürfe", st)
        self.assertNo(c, 'CREATE "Entwürfe"', "ALREADYEXISTS")
        # A client without UTF-8 sees the modified UTF-7 forms.
        old = self.session()
        boxes = self.listing(old)
        self.assertIn("Entw&APw-rfe", boxes)
        self.assertIn("&ZeVnLIqe-/&W1A-", boxes)


class TestQuota(Base):
    CONFIG = "quota { storage = 1048576, messages = 10 }"

    def test_quota(self):
        for i in range(3):
            self.deliver(message("m%d" % i, "x" * 2000 + "\r\n"))
        (used,), = self.db("SELECT sum(size) FROM messages")
        c = self.session()
        untagged = c.ok("GETQUOTAROOT INBOX")
        self.assertEqual(untagged, [
            '* QUOTAROOT "INBOX" ""',
            '* QUOTA "" (STORAGE %d 1024 MESSAGE 3 10)' % (used // 1024)])
        self.assertEqual(c.ok('GETQUOTA ""'), untagged[1:])
        self.assertNo(c, 'GETQUOTA "other"', "NONEXISTENT")
        self.assertNo(c, "GETQUOTAROOT nothere", "NONEXISTENT")
        self.assertNo(c, 'SETQUOTA "" (STORAGE 10)', "CANNOT")


class TestNoQuota(Base):
    def test_no_limits(self):
        c = self.session()
        self.assertEqual(c.ok('GETQUOTA ""'), ['* QUOTA "" ()'])


if __name__ == "__main__":
    harness.main()
