#!/usr/bin/env python3
"""The login, logout and mailbox.* hooks and moonpost.http through the real
daemon: a Python web server on loopback receives the new-mail webhook of
scripts/examples/new-mail-webhook.lua after SMTP and `moonpost deliver`
deliveries; a login hook refuses one POP3 user and fails for another;
logout, mailbox.expunge and mailbox.flags are seen after a POP3 QUIT; and a
webhook that hangs or is down holds up no client."""

import http.server
import json
import os
import re
import smtplib
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient  # noqa: E402

PASSWORD = "correct horse battery"
USER = "demo@example.test"
USERS = (USER, "bob@example.test", "carol@example.test")


def message(subject):
    return ("From: Ann <ann@example.org>\r\nTo: demo@example.test\r\n"
            "Message-ID: <%s@example.org>\r\n"
            "Subject: %s\r\n\r\nHello.\r\n" % (subject.replace(" ", "."),
                                             subject)).encode()


def example(name, old, new):
    with open(os.path.join(harness.SRCDIR, "scripts", "examples", name)) as f:
        text = f.read()
    assert old in text, old
    return text.replace(old, new)


class Hook(http.server.BaseHTTPRequestHandler):
    """Records each POST; holds its answer while the server's gate is
    closed."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        web = self.server
        with web.cond:
            web.requests.append((self.path, dict(self.headers), body))
            web.cond.notify_all()
        web.gate.wait(harness.IO_TIMEOUT)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class WebServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Hook)
        self.requests = []
        self.cond = threading.Condition()
        self.gate = threading.Event()
        self.gate.set()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def handle_error(self, request, client_address):
        pass  # a client that left (the daemon stopped) is no failure

    @property
    def url(self):
        return "http://127.0.0.1:%d/new-mail" % self.server_address[1]

    def wait_requests(self, n):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.requests) >= n,
                                    harness.IO_TIMEOUT)
        assert ok, "only %d of %d requests came" % (len(self.requests), n)
        return [json.loads(r[2]) for r in self.requests[:n]]

    def stop(self):
        self.gate.set()
        self.shutdown()
        self.server_close()


class Base(harness.DaemonTest):
    """A daemon with an SMTP mx listener and a POP3 listener, and the
    scripts make_rules() gives."""

    HOSTNAME = "mx.example.test"
    LISTENERS = (("mx", "smtp", 'role = "mx"'), ("pop3", "pop3", ""))
    USERS = USERS

    def make_rules(self):
        raise NotImplementedError

    def before_daemon(self):
        self.web = WebServer()
        self.rules = os.path.join(self.tmp, "rules.lua")
        with open(self.rules, "w") as f:
            f.write(self.make_rules())

    def config_extra(self, ports):
        return 'lua { scripts = { "%s" }, timeout = "20s" }' % self.rules

    def setUp(self):
        super().setUp()
        self.mx, self.pop3 = self.d.ports[:2]

    def tearDown(self):
        if hasattr(self, "web"):
            self.web.stop()
        super().tearDown()

    def smtp_send(self, subject, rcpt=USER):
        with smtplib.SMTP("127.0.0.1", self.mx,
                          timeout=harness.IO_TIMEOUT) as s:
            s.ehlo("client.example.org")
            refused = s.sendmail("ann@example.org", [rcpt], message(subject))
            self.assertEqual(refused, {})

    def deliver(self, subject, rcpt=USER):
        res = subprocess.run([harness.MOONPOST, "deliver", "-r", rcpt, "-f",
                              "ann@example.org", "-c", self.d.config_path],
                             input=message(subject), capture_output=True,
                             timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res

    def pop(self):
        c = LineClient(self.pop3)
        self.assertTrue(c.line().startswith("+OK"))
        return c

    def pop_login(self, user, password=PASSWORD):
        c = self.pop()
        self.assertTrue(c.cmd("USER " + user).startswith("+OK"))
        return c, c.cmd("PASS " + password)


class Webhook(Base):
    """scripts/examples/new-mail-webhook.lua as shipped, URL aside."""

    def make_rules(self):
        return example("new-mail-webhook.lua",
                       'local URL = "http://127.0.0.1:8080/new-mail"',
                       'local URL = "%s"' % self.web.url)

    def check_event(self, ev, subject, uid):
        self.assertEqual(ev["event"], "new-mail")
        self.assertEqual(ev["user"], USER)
        self.assertEqual(ev["mailbox"], "INBOX")
        self.assertEqual(ev["uid"], uid)
        self.assertEqual(ev["from"], "Ann <ann@example.org>")
        self.assertEqual(ev["subject"], subject)
        self.assertGreater(ev["size"], len(message(subject)))
        self.assertIsInstance(ev["uidvalidity"], int)

    def test_smtp_delivery_posts(self):
        self.smtp_send("by smtp")
        (ev,) = self.web.wait_requests(1)
        self.check_event(ev, "by smtp", 1)
        path, headers, _ = self.web.requests[0]
        self.assertEqual(path, "/new-mail")
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["Connection"], "close")

    def test_deliver_cli_posts(self):
        self.deliver("by deliver")
        # The notification ran in `moonpost deliver` before it exited.
        self.assertEqual(len(self.web.requests), 1)
        self.check_event(json.loads(self.web.requests[0][2]),
                         "by deliver", 1)

    def test_hanging_webhook_blocks_nobody(self):
        self.web.gate.clear()
        self.smtp_send("first")
        # The webhook has the first event and does not answer ...
        self.web.wait_requests(1)
        # ... while another SMTP client is served, and a POP3 one.
        self.smtp_send("second")
        c, reply = self.pop_login(USER)
        self.assertTrue(reply.startswith("+OK"), reply)
        self.assertTrue(c.cmd("STAT").startswith("+OK 2 "))
        self.assertTrue(c.cmd("QUIT").startswith("+OK"))
        self.assertFalse(self.web.gate.is_set())
        self.web.gate.set()
        evs = self.web.wait_requests(2)
        self.assertEqual(sorted(e["subject"] for e in evs),
                         ["first", "second"])
        self.assertNotIn("new-mail webhook", self.d.log())

    def test_stop_while_webhook_hangs(self):
        self.web.gate.clear()
        self.smtp_send("never answered")
        self.web.wait_requests(1)
        # The server does not wait for a notification to stop.
        self.assertEqual(self.d.stop(), 0, self.d.log())
        self.assertIn("event=events_abandoned count=1", self.d.log())

    def test_webhook_down(self):
        self.web.stop()  # nothing listens on the URL now
        self.smtp_send("nobody listens")
        self.d.wait_log(r"new-mail webhook: connecting to 127\.0\.0\.1:\d+: "
                        r"Connection refused")
        c, reply = self.pop_login(USER)
        self.assertTrue(c.cmd("STAT").startswith("+OK 1 "))


LOGIN_RULES = """\
moonpost.hook("login", function(s)
    if s.user == "bob@example.test" then
        return moonpost.reject("bob is on holiday")
    end
    if s.user == "carol@example.test" then
        local broken = nil
        return broken.field -- line 7
    end
    moonpost.log(string.format("login-ok user=%s service=%s mech=%s "
        .. "tls=%s ip=%s port=%d local_port=%d session=%s", s.user,
        s.service, s.mechanism, tostring(s.tls), s.ip, s.port,
        s.local_port, s.session))
end)

moonpost.hook("logout", function(s)
    moonpost.log(string.format("logout user=%s reason=%s retrieved=%d "
        .. "deleted=%d expunged=%d", s.user, s.reason,
        s.counters.retrieved, s.counters.deleted, s.counters.expunged))
end)

moonpost.hook("mailbox.expunge", function(e)
    moonpost.log(string.format("expunge user=%s service=%s mailbox=%s "
        .. "uids=%s", e.user, e.service, e.mailbox,
        table.concat(e.uids, ",")))
end)

moonpost.hook("mailbox.flags", function(e)
    moonpost.log(string.format("flags mailbox=%s mode=%s flags=%s uids=%s",
        e.mailbox, e.mode, table.concat(e.flags, " "),
        table.concat(e.uids, ",")))
end)

moonpost.hook("mailbox.append", function(e)
    moonpost.log(string.format("append user=%s mailbox=%s uid=%d sender=%s "
        .. "message_id=%s", e.user, e.mailbox, e.uid, e.sender,
        e.message_id))
end)

moonpost.hook("deliver", function(msg)
    if msg:header("Subject") == "to lists" then
        msg:fileinto("Lists", { create = true })
    end
end)

moonpost.hook("mailbox.create", function(e)
    moonpost.log(string.format("create user=%s service=%s mailbox=%s",
        e.user, e.service, e.mailbox))
end)
"""


class LoginHooks(Base):

    def make_rules(self):
        return LOGIN_RULES

    def test_login_allowed(self):
        c, reply = self.pop_login(USER)
        self.assertTrue(reply.startswith("+OK"), reply)
        self.d.wait_log(r"login-ok user=demo@example\.test service=pop3 "
                        r"mech=USER tls=false ip=127\.0\.0\.1 port=\d+ "
                        r"local_port=%d session=\w+" % self.pop3)
        c.cmd("QUIT")

    def test_login_refused(self):
        c, reply = self.pop_login("bob@example.test")
        self.assertEqual(reply, "-ERR [AUTH] bob is on holiday")
        # Back in AUTHORIZATION: another account may log in.
        self.assertTrue(c.cmd("USER " + USER).startswith("+OK"))
        self.assertTrue(c.cmd("PASS " + PASSWORD).startswith("+OK"))
        c.cmd("QUIT")

    def test_login_refused_sasl(self):
        import base64
        c = self.pop()
        ir = base64.b64encode(b"\0bob@example.test\0" +
                              PASSWORD.encode()).decode()
        self.assertEqual(c.cmd("AUTH PLAIN " + ir),
                         "-ERR [AUTH] bob is on holiday")
        ir = base64.b64encode(b"\0" + USER.encode() + b"\0" +
                              PASSWORD.encode()).decode()
        self.assertTrue(c.cmd("AUTH PLAIN " + ir).startswith("+OK"))
        self.d.wait_log(r"login-ok user=demo@example\.test service=pop3 "
                        r"mech=PLAIN")

    def test_login_script_error(self):
        c, reply = self.pop_login("carol@example.test")
        self.assertTrue(reply.startswith("-ERR [SYS/TEMP]"), reply)
        self.d.wait_log(r"event=lua_error hook=login .*rules\.lua:7:")
        self.assertNotIn("login-ok user=carol", self.d.log())

    def test_quit_expunge_flags_logout(self):
        for i in range(3):
            self.deliver("message %d" % i)
        c, reply = self.pop_login(USER)
        self.assertTrue(reply.startswith("+OK"), reply)
        c.send("RETR 1\r\n")
        while c.line() != ".":
            pass
        self.assertTrue(c.cmd("DELE 2").startswith("+OK"))
        self.assertTrue(c.cmd("DELE 3").startswith("+OK"))
        self.assertTrue(c.cmd("QUIT").startswith("+OK"))
        self.d.wait_log(r"expunge user=demo@example\.test service=pop3 "
                        r"mailbox=INBOX uids=2,3")
        self.d.wait_log(r"flags mailbox=INBOX mode=add flags=\\+Seen uids=1")
        self.d.wait_log(r"logout user=demo@example\.test reason=quit "
                        r"retrieved=1 deleted=2 expunged=2")
        log = self.d.log()
        self.assertLess(log.index("expunge user="), log.index("logout user="))

    def test_logout_without_quit(self):
        c, reply = self.pop_login(USER)
        self.assertTrue(reply.startswith("+OK"), reply)
        c.close()
        self.d.wait_log(r"logout user=demo@example\.test reason=disconnected "
                        r"retrieved=0 deleted=0 expunged=0")

    def test_append_from_smtp(self):
        self.smtp_send("hello")
        self.d.wait_log(r"append user=demo@example\.test mailbox=INBOX uid=1 "
                        r"sender=ann@example\.org "
                        r"message_id=<hello@example\.org>")

    def test_fileinto_create_deliver(self):
        # `moonpost deliver` runs the notifications itself; its log is
        # its stderr.
        log = self.deliver("to lists").stderr.decode()
        self.assertRegex(log, r"create user=demo@example\.test "
                         r"service=deliver mailbox=Lists")
        self.assertRegex(log, r"append user=demo@example\.test "
                         r"mailbox=Lists uid=1 sender=ann@example\.org")

    def test_fileinto_create_smtp(self):
        self.smtp_send("to lists")
        self.d.wait_log(r"create user=demo@example\.test service=deliver "
                        r"mailbox=Lists")
        self.d.wait_log(r"append user=demo@example\.test mailbox=Lists uid=1 ")
        log = self.d.log()
        self.assertLess(log.index("create user="), log.index("append user="))


if __name__ == "__main__":
    harness.main()
