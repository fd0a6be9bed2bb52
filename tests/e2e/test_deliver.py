#!/usr/bin/env python3
"""`moonpost deliver` through the real binary: aliases, Lua rules, header
edits, loops, quota, and what lands in the mailstore."""

import glob
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import run_cli  # noqa: E402

EX_NOUSER, EX_TEMPFAIL, EX_NOPERM = 67, 75, 77

MESSAGE = ("From: Ann <ann@example.org>\n"
           "To: demo@example.test\n"
           "Subject: hello\n"
           "X-Junk: remove me\n"
           "\n"
           "Hi there.\n"
           ".leading dot stays\n")


class Deliver(harness.TempDirTest):
    def setUp(self):
        super().setUp()
        self.data = os.path.join(self.tmp, "data")
        harness.start_dev(self.tmp, self.data).stop()
        self.account = os.path.join(self.data, "mail", "example.test", "demo")

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def config(self, rules=None, extra=""):
        lua = ""
        if rules is not None:
            lua = 'lua { scripts = { "%s" }, timeout = "2s" }\n' % self.write(
                "rules.lua", rules)
        return self.write("moonpost.conf", (
            'data_dir = "%s"\n'
            'domains = { "example.test" }\n'
            '%s%s') % (self.data, lua, extra))

    def deliver(self, rcpt, message=MESSAGE, sender="ann@example.org",
                config=None):
        where = ["-c", config] if config else ["--data-dir", self.data]
        return run_cli(["deliver", "-r", rcpt, "-f", sender] + where,
                       input_text=message)

    def index(self, account_dir=None):
        return sqlite3.connect(os.path.join(account_dir or self.account,
                                            "index.sqlite"))

    def messages(self, mailbox="INBOX"):
        if not os.path.exists(os.path.join(self.account, "index.sqlite")):
            return []  # the account was never written to
        db = self.index()
        rows = db.execute(
            "SELECT m.uid, m.flags, m.keywords, m.file FROM messages m "
            "JOIN mailboxes b ON b.id = m.mailbox WHERE b.name = ? "
            "ORDER BY uid", (mailbox,)).fetchall()
        db.close()
        return rows

    def body(self, mailbox, uid):
        db = self.index()
        folder, file = db.execute(
            "SELECT b.dir, m.file FROM messages m JOIN mailboxes b ON "
            "b.id = m.mailbox WHERE b.name = ? AND m.uid = ?",
            (mailbox, uid)).fetchone()
        db.close()
        with open(os.path.join(self.account, folder, file), "rb") as f:
            return f.read().decode()

    def test_plain_delivery(self):
        status, _, err = self.deliver("demo@example.test")
        self.assertEqual(status, 0, err)
        rows = self.messages()
        self.assertEqual(len(rows), 1)
        text = self.body("INBOX", rows[0][0])
        self.assertTrue(text.startswith(
            "Return-Path: <ann@example.org>\r\nDelivered-To: "
            "demo@example.test\r\nFrom: Ann"), text)
        self.assertIn("\r\n.leading dot stays\r\n", text)
        self.assertNotIn("\n\n", text.replace("\r\n", ""))
        # A second delivery gets the next UID.
        self.assertEqual(self.deliver("DEMO@example.TEST")[0], 0)
        self.assertEqual([r[0] for r in self.messages()], [1, 2])

    def test_unknown_and_aliases(self):
        status, _, err = self.deliver("nobody@example.test")
        self.assertEqual(status, EX_NOUSER)
        self.assertIn("5.1.1", err)
        self.write(os.path.join("data", "aliases"),
                   "postmaster@example.test: demo@example.test\n"
                   "team@example.test: demo@example.test, "
                   "someone@elsewhere.org\n")
        self.assertEqual(self.deliver("postmaster@example.test")[0], 0)
        self.assertEqual(len(self.messages()), 1)
        # A target elsewhere needs the outbound queue: defer, never drop.
        status, _, err = self.deliver("team@example.test")
        self.assertEqual(status, EX_TEMPFAIL)
        self.assertIn("outbound queue", err)
        self.assertEqual(len(self.messages()), 1)
        # Subaddress.
        self.assertEqual(self.deliver("demo+news@example.test")[0], 0)
        self.assertEqual(len(self.messages()), 2)

    def test_loop_is_refused(self):
        looped = "Delivered-To: demo@example.test\n" + MESSAGE
        status, _, err = self.deliver("demo@example.test", looped)
        self.assertEqual(status, EX_NOPERM)
        self.assertIn("5.4.6", err)
        self.assertEqual(self.messages(), [])

    RULES = r"""
moonpost.hook("deliver", function(msg)
    local subject = msg:header_text("Subject") or ""
    if subject:find("spam") then
        msg:discard()
    elseif subject:find("list") then
        msg:fileinto("Lists/Moonpost", { create = true })
        msg:flag("\\Seen")
        msg:flag("$List")
    elseif subject:find("edit") then
        msg:remove_header("X-Junk")
        msg:add_header("X-Rule", "edited for " .. msg.recipient)
    elseif subject:find("refuse") then
        return moonpost.reject(550, "5.7.1", "not from " .. msg.sender)
    elseif subject:find("forward") then
        msg:redirect("friend@elsewhere.org")
    elseif subject:find("broken") then
        local t = nil
        return t.x
    elseif subject:find("slow") then
        moonpost.sleep(0.05)
        msg:fileinto("Archive")
    elseif subject:find("both") then
        msg:keep()
        msg:fileinto("Archive")
    end
end)
"""

    def with_subject(self, subject):
        return MESSAGE.replace("Subject: hello", "Subject: " + subject)

    def test_rules(self):
        conf = self.config(self.RULES)
        self.assertEqual(self.deliver("demo@example.test",
                                      self.with_subject("spam offer"),
                                      config=conf)[0], 0)
        self.assertEqual(self.messages(), [])

        self.assertEqual(self.deliver("demo@example.test",
                                      self.with_subject("a list post"),
                                      config=conf)[0], 0)
        rows = self.messages("Lists/Moonpost")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][1] & 1, 1)  # \Seen
        self.assertEqual(rows[0][2], "$List")

        self.assertEqual(self.deliver("demo@example.test",
                                      self.with_subject("please edit"),
                                      config=conf)[0], 0)
        text = self.body("INBOX", self.messages()[0][0])
        self.assertNotIn("X-Junk", text)
        self.assertIn("X-Rule: edited for demo@example.test\r\n", text)

        status, _, err = self.deliver("demo@example.test",
                                      self.with_subject("refuse me"),
                                      config=conf)
        self.assertEqual(status, EX_NOPERM)
        self.assertIn("not from ann@example.org", err)

        status, _, err = self.deliver("demo@example.test",
                                      self.with_subject("forward this"),
                                      config=conf)
        self.assertEqual(status, EX_TEMPFAIL)

        status, _, err = self.deliver("demo@example.test",
                                      self.with_subject("broken rule"),
                                      config=conf)
        self.assertEqual(status, EX_TEMPFAIL)
        self.assertRegex(err, r"rules\.lua:19:")

        self.assertEqual(self.deliver("demo@example.test",
                                      self.with_subject("slow"),
                                      config=conf)[0], 0)
        self.assertEqual(self.deliver("demo@example.test",
                                      self.with_subject("both"),
                                      config=conf)[0], 0)
        self.assertEqual(len(self.messages("Archive")), 2)
        self.assertEqual(len(self.messages("INBOX")), 2)

    def test_quota(self):
        conf = self.config(extra="quota { messages = 1 }\n")
        self.assertEqual(self.deliver("demo@example.test", config=conf)[0], 0)
        status, _, err = self.deliver("demo@example.test", config=conf)
        self.assertEqual(status, EX_NOPERM)
        self.assertIn("5.2.2", err)

    def test_usage(self):
        status, _, _ = run_cli(["deliver", "--data-dir", self.data])
        self.assertEqual(status, 64)
        status, _, _ = run_cli(["deliver", "-r", "x@example.test", "-c",
                                os.path.join(self.tmp, "nope.conf")])
        self.assertEqual(status, 78)


if __name__ == "__main__":
    harness.main()
