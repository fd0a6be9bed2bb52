#!/usr/bin/env python3
"""The login, logout and mailbox.* Lua hooks as IMAP fires them, through the
real daemon: a login hook refuses one user (LOGIN and AUTHENTICATE PLAIN),
fails for another and lets a third in; logout reports LOGOUT and a dropped
connection; each mailbox.* hook is seen in the log once after the IMAP
command that committed the change; a hook that fails changes no reply."""

import base64
import imaplib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient  # noqa: E402

PASSWORD = "correct horse battery"
USER = "demo@example.test"
USERS = (USER, "bob@example.test", "carol@example.test")

RULES = """\
moonpost.hook("login", function(s)
    if s.user == "bob@example.test" then
        return moonpost.reject("bob is on holiday")
    end
    if s.user == "carol@example.test" then
        local broken = nil
        return broken.field -- line 7
    end
    moonpost.log(string.format("login-ok user=%s service=%s mech=%s "
        .. "session=%s", s.user, s.service, s.mechanism, s.session))
end)

moonpost.hook("logout", function(s)
    moonpost.log(string.format("logout user=%s service=%s reason=%s "
        .. "commands=%d", s.user, s.service, s.reason, s.counters.commands))
end)

local function flags(e)
    return table.concat(e.flags or {}, " ")
end

moonpost.hook("mailbox.create", function(e)
    moonpost.log(string.format("ev-create user=%s service=%s mailbox=%s",
        e.user, e.service, e.mailbox))
end)
moonpost.hook("mailbox.delete", function(e)
    moonpost.log(string.format("ev-delete mailbox=%s", e.mailbox))
end)
moonpost.hook("mailbox.rename", function(e)
    moonpost.log(string.format("ev-rename old=%s new=%s mailbox=%s",
        e.old, e.new, e.mailbox))
end)
moonpost.hook("mailbox.append", function(e)
    moonpost.log(string.format("ev-append service=%s mailbox=%s uid=%d "
        .. "uv=%d size=%d flags=[%s]", e.service, e.mailbox, e.uid,
        e.uidvalidity, e.size, flags(e)))
end)
moonpost.hook("mailbox.expunge", function(e)
    moonpost.log(string.format("ev-expunge service=%s mailbox=%s uids=%s",
        e.service, e.mailbox, table.concat(e.uids, ",")))
end)
moonpost.hook("mailbox.flags", function(e)
    moonpost.log(string.format("ev-flags mailbox=%s mode=%s flags=[%s] "
        .. "uids=%s", e.mailbox, e.mode, flags(e),
        table.concat(e.uids, ",")))
end)
"""

# Every notification fails: the replies must not change.
FAILING_RULES = """\
for _, h in ipairs({"logout", "mailbox.create", "mailbox.append",
                    "mailbox.expunge", "mailbox.flags"}) do
    moonpost.hook(h, function(e)
        error("hook broken")
    end)
end
"""

MSG = b"From: a@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


class Base(harness.DaemonTest):
    LISTENERS = (("imap", "imap", ""),)
    USERS = USERS
    rules = RULES

    def before_daemon(self):
        self.rules_path = os.path.join(self.tmp, "rules.lua")
        with open(self.rules_path, "w") as f:
            f.write(self.rules)

    def config_extra(self, ports):
        return 'lua { scripts = { "%s" }, timeout = "20s" }' % (
            self.rules_path)

    def setUp(self):
        super().setUp()
        self.port = self.d.ports[0]

    def raw(self):
        c = LineClient(self.port)
        self.assertTrue(c.line().startswith("* OK"))
        return c

    def tagged(self, c, tag, line):
        c.send("%s %s\r\n" % (tag, line))
        while True:
            reply = c.line()
            if reply.startswith(tag + " "):
                return reply[len(tag) + 1:]

    def imap(self):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=harness.IO_TIMEOUT)
        typ, _ = m.login(USER, PASSWORD)
        self.assertEqual(typ, "OK")
        return m

    def count(self, pattern):
        import re
        return len(re.findall(pattern, self.d.log()))


class Login(Base):

    def test_refused_login(self):
        c = self.raw()
        self.assertEqual(self.tagged(c, "a", 'LOGIN bob@example.test "%s"'
                                     % PASSWORD),
                         "NO [AUTHENTICATIONFAILED] bob is on holiday")
        # Still not authenticated: another account may log in.
        self.assertTrue(self.tagged(c, "b", 'LOGIN %s "%s"' % (
            USER, PASSWORD)).startswith("OK [CAPABILITY "))
        self.d.wait_log(r"login-ok user=demo@example\.test service=imap "
                        r"mech=LOGIN session=\w+")

    def test_refused_authenticate(self):
        c = self.raw()
        ir = base64.b64encode(b"\0bob@example.test\0" +
                              PASSWORD.encode()).decode()
        self.assertEqual(self.tagged(c, "a", "AUTHENTICATE PLAIN " + ir),
                         "NO [AUTHENTICATIONFAILED] bob is on holiday")
        ir = base64.b64encode(b"\0" + USER.encode() + b"\0" +
                              PASSWORD.encode()).decode()
        self.assertTrue(self.tagged(c, "b", "AUTHENTICATE PLAIN " + ir)
                        .startswith("OK [CAPABILITY "))
        self.d.wait_log(r"login-ok user=demo@example\.test service=imap "
                        r"mech=PLAIN")
        # Authenticated: commands after login work.
        self.assertEqual(self.tagged(c, "c", "SELECT INBOX")[:2], "OK")

    def test_script_error(self):
        c = self.raw()
        reply = self.tagged(c, "a", 'LOGIN carol@example.test "%s"'
                            % PASSWORD)
        self.assertTrue(reply.startswith("NO [UNAVAILABLE] "), reply)
        self.d.wait_log(r"event=lua_error hook=login .*rules\.lua:7:")
        self.assertNotIn("login-ok user=carol", self.d.log())
        self.assertEqual(self.tagged(c, "b", "SELECT INBOX")[:3], "BAD")

    def test_logout_reason_logout(self):
        m = self.imap()
        m.noop()
        m.logout()
        self.d.wait_log(r"logout user=demo@example\.test service=imap "
                        r"reason=logout commands=[1-9]")

    def test_logout_reason_disconnected(self):
        c = self.raw()
        self.assertTrue(self.tagged(c, "a", 'LOGIN %s "%s"' % (
            USER, PASSWORD)).startswith("OK"))
        c.close()
        self.d.wait_log(r"logout user=demo@example\.test service=imap "
                        r"reason=disconnected commands=1")

    def test_no_logout_without_login(self):
        c = self.raw()
        self.tagged(c, "a", 'LOGIN bob@example.test "%s"' % PASSWORD)
        self.tagged(c, "b", "LOGOUT")
        m = self.imap()
        m.logout()
        self.d.wait_log(r"logout user=demo@example\.test")
        self.assertNotIn("logout user=bob", self.d.log())


class Mailbox(Base):

    def test_create_rename_delete(self):
        m = self.imap()
        self.assertEqual(m.create("Work")[0], "OK")
        self.d.wait_log(r"ev-create user=demo@example\.test service=imap "
                        r"mailbox=Work\"")
        self.assertEqual(m.rename("Work", "Play")[0], "OK")
        self.d.wait_log(r"ev-rename old=Work new=Play mailbox=Play")
        self.assertEqual(m.delete("Play")[0], "OK")
        self.d.wait_log(r"ev-delete mailbox=Play")
        # A failed command fires nothing.
        self.assertEqual(m.delete("Play")[0], "NO")
        m.logout()
        self.d.wait_log(r"logout user=demo@example\.test")
        self.assertEqual(self.count(r"ev-create "), 1)
        self.assertEqual(self.count(r"ev-delete "), 1)
        self.assertEqual(self.count(r"ev-rename "), 1)

    def test_append_copy_move_store_expunge_close(self):
        m = self.imap()
        m.create("Archive")
        typ, _ = m.append("INBOX", r"(\Flagged $Work)", None, MSG)
        self.assertEqual(typ, "OK")
        self.d.wait_log(r"ev-append service=imap mailbox=INBOX uid=1 "
                        r"uv=\d+ size=%d flags=\[\\+Flagged \$Work\]"
                        % len(MSG))
        m.append("INBOX", None, None, MSG)
        m.append("INBOX", None, None, MSG)
        self.d.wait_log(r"ev-append service=imap mailbox=INBOX uid=3 ")
        m.select("INBOX")

        self.assertEqual(m.uid("COPY", "1", "Archive")[0], "OK")
        self.d.wait_log(r"ev-append service=imap mailbox=Archive uid=1 "
                        r"uv=\d+ size=%d flags=\[\\+Flagged \$Work\]"
                        % len(MSG))

        self.assertEqual(m.uid("MOVE", "2", "Archive")[0], "OK")
        self.d.wait_log(r"ev-append service=imap mailbox=Archive uid=2 ")
        self.d.wait_log(r"ev-expunge service=imap mailbox=INBOX uids=2\"")

        # Only the messages that changed are reported.
        self.assertEqual(m.uid("STORE", "1,3", "+FLAGS",
                               r"(\Deleted)")[0], "OK")
        self.d.wait_log(r"ev-flags mailbox=INBOX mode=add "
                        r"flags=\[\\+Deleted\] uids=1,3")
        self.assertEqual(m.uid("STORE", "1,3", "+FLAGS",
                               r"(\Deleted)")[0], "OK")
        self.assertEqual(m.uid("STORE", "1", "-FLAGS",
                               r"(\Deleted)")[0], "OK")
        self.d.wait_log(r"ev-flags mailbox=INBOX mode=remove "
                        r"flags=\[\\+Deleted\] uids=1\"")
        self.assertEqual(m.expunge()[0], "OK")
        self.d.wait_log(r"ev-expunge service=imap mailbox=INBOX uids=3\"")

        # FETCH's implicit \Seen.
        m.select("Archive")
        m.uid("FETCH", "1", "(BODY[])")
        self.d.wait_log(r"ev-flags mailbox=Archive mode=add "
                        r"flags=\[\\+Seen\] uids=1\"")
        # CLOSE's silent expunge.
        m.uid("STORE", "2", "+FLAGS.SILENT", r"(\Deleted)")
        self.assertEqual(m.close()[0], "OK")
        self.d.wait_log(r"ev-expunge service=imap mailbox=Archive uids=2\"")
        m.logout()
        self.d.wait_log(r"logout user=demo@example\.test")
        self.assertEqual(self.count(r"ev-append "), 5)
        self.assertEqual(self.count(r"ev-expunge "), 3)
        # +FLAGS twice on the same messages: the second changed nothing.
        self.assertEqual(self.count(r"ev-flags mailbox=INBOX mode=add"), 1)

    def test_uid_expunge(self):
        m = self.imap()
        for _ in range(5):
            self.assertEqual(m.append("INBOX", None, None, MSG)[0], "OK")
        m.select("INBOX")
        self.assertEqual(m.uid("STORE", "1:4", "+FLAGS.SILENT",
                               r"(\Deleted)")[0], "OK")
        # UIDPLUS (RFC 4315 2.1): only the \Deleted messages of the set
        # go, and the hook hears of exactly those.
        self.assertEqual(m.uid("EXPUNGE", "2:3,5")[0], "OK")
        # imaplib keeps the untagged EXPUNGEs apart; they come highest
        # first, so each number is still as the client knows it.
        self.assertEqual(m.response("EXPUNGE"), ("EXPUNGE", [b"3", b"2"]))
        self.d.wait_log(r"ev-expunge service=imap mailbox=INBOX uids=2,3\"")
        # Nothing of the set is \Deleted: no expunge, no event.
        self.assertEqual(m.uid("EXPUNGE", "5")[0], "OK")
        # A UID that was never there, or is gone already.
        self.assertEqual(m.uid("EXPUNGE", "2:3,99")[0], "OK")
        self.assertEqual(m.response("EXPUNGE"), ("EXPUNGE", [None]))
        self.assertEqual(m.uid("EXPUNGE", "1:*")[0], "OK")
        self.assertEqual(m.response("EXPUNGE"), ("EXPUNGE", [b"2", b"1"]))
        self.d.wait_log(r"ev-expunge service=imap mailbox=INBOX uids=1,4\"")
        m.logout()
        self.d.wait_log(r"logout user=demo@example\.test")
        self.assertEqual(self.count(r"ev-expunge "), 2)


class FailingHooks(Base):
    rules = FAILING_RULES

    def test_replies_unchanged(self):
        m = self.imap()
        self.assertEqual(m.create("Work")[0], "OK")
        typ, data = m.append("INBOX", None, None, MSG)
        self.assertEqual(typ, "OK")
        self.assertIn(b"APPENDUID", data[0])
        m.select("INBOX")
        self.assertEqual(m.uid("COPY", "1", "Work")[0], "OK")
        self.assertEqual(m.uid("STORE", "1", "+FLAGS", r"(\Deleted)")[0],
                         "OK")
        typ, data = m.expunge()
        self.assertEqual((typ, data), ("OK", [b"1"]))
        self.assertEqual(m.logout()[0], "BYE")
        self.d.wait_log(r"event=lua_error hook=logout .*rules\.lua:4:")
        self.d.wait_log(r"event=lua_error hook=mailbox\.expunge")


if __name__ == "__main__":
    harness.main()
