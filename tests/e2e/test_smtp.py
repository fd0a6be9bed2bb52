#!/usr/bin/env python3
"""The SMTP plugin through the real daemon: Python's smtplib and raw
sockets against the mx, submission and submissions listeners."""

import base64
import hashlib
import hmac
import os
import pwd
import re
import signal
import smtplib
import socket
import sqlite3
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient, run_cli  # noqa: E402

PASSWORD = "correct horse battery"


def message(subject, body="Hello.\r\n", extra=""):
    return ("From: Ann <ann@example.org>\r\nTo: demo@example.test\r\n"
            "Subject: %s\r\n%s\r\n%s" % (subject, extra, body))


class SmtpClient(LineClient):
    """Raw SMTP: replies as (code, [lines])."""

    def reply(self):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()


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


class Base(harness.TempDirTest):
    """A daemon from a config file: smtp listeners for the three roles."""

    RULES = None
    SMTP = ""

    def setUp(self):
        super().setUp()
        os.chmod(self.tmp, 0o755)
        self.data = os.path.join(self.tmp, "data")
        self.cert, self.key = harness.make_cert(self.tmp)
        rules = ""
        if self.RULES is not None:
            path = os.path.join(self.tmp, "rules.lua")
            with open(path, "w") as f:
                f.write(self.RULES)
            rules = 'lua { scripts = { "%s" }, timeout = "2s" }' % path
        self.d = harness.start_config(self.tmp, lambda ports: """
hostname = "mx.example.test"
data_dir = "{data}"
user = "{user}"
domains = {{ "example.test" }}
tls {{ cert = "{cert}", key = "{key}" }}
listen {{ name = "mx", protocol = "smtp", role = "mx",
          address = "127.0.0.1:{p0}", tls = "starttls" }}
listen {{ name = "submission", protocol = "smtp", role = "submission",
          address = "127.0.0.1:{p1}", tls = "starttls" }}
listen {{ name = "submissions", protocol = "smtp", role = "submissions",
          address = "127.0.0.1:{p2}", tls = "implicit" }}
auth {{ max_failures_per_ip = 50 }}
smtp {{ {smtp} }}
{rules}
""".format(data=self.data, user=pwd.getpwuid(os.geteuid()).pw_name,
           cert=self.cert, key=self.key, p0=ports[0], p1=ports[1],
           p2=ports[2], smtp=self.SMTP, rules=rules),
            plugin_dir=os.path.join(harness.BUILDDIR, "plugins", ".libs"),
            before_start=self.add_users)
        self.mx, self.sub, self.subs = self.d.ports[:3]

    def add_users(self, config):
        if os.path.exists(os.path.join(self.data, "passwd")):
            return
        os.makedirs(self.data, exist_ok=True)
        for user in ("demo@example.test", "bob@example.test"):
            status, _, err = run_cli(["user", "add", user, "-c", config,
                                      "--password-stdin"],
                                     input_text=PASSWORD + "\n")
            self.assertEqual(status, 0, err)

    def tearDown(self):
        self.assertEqual(self.d.stop(), 0, self.d.log())
        super().tearDown()

    def stored(self, account="demo", mailbox="INBOX"):
        """(uid, text) of every message of an account's mailbox."""
        root = os.path.join(self.data, "mail", "example.test", account)
        index = os.path.join(root, "index.sqlite")
        if not os.path.exists(index):
            return []
        db = sqlite3.connect(index)
        rows = db.execute(
            "SELECT m.uid, b.dir, m.file FROM messages m JOIN mailboxes b "
            "ON b.id = m.mailbox WHERE b.name = ? ORDER BY m.uid",
            (mailbox,)).fetchall()
        db.close()
        out = []
        for uid, folder, file in rows:
            with open(os.path.join(root, folder, file), "rb") as f:
                out.append((uid, f.read().decode("utf-8", "replace")))
        return out

    def mx_client(self):
        c = SmtpClient(self.mx)
        self.assertEqual(c.reply()[0], 220)
        return c

    def submission(self):
        s = smtplib.SMTP("127.0.0.1", self.sub, timeout=30)
        s.starttls(context=harness.client_tls_context())
        s.login("demo@example.test", PASSWORD)
        return s


class Mx(Base):
    def test_greeting_and_ehlo(self):
        c = SmtpClient(self.mx)
        code, lines = c.reply()
        self.assertEqual(code, 220)
        self.assertIn("mx.example.test", lines[0])
        code, lines = c.cmd("EHLO client.example.org")
        self.assertEqual(code, 250)
        ext = [l[4:] for l in lines[1:]]
        for want in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
                     "SMTPUTF8", "CHUNKING", "STARTTLS"):
            self.assertIn(want, ext)
        self.assertIn("SIZE 52428800", ext)
        self.assertFalse(any(e.startswith("AUTH") for e in ext), ext)
        self.assertEqual(c.cmd("VRFY demo")[0], 252)
        self.assertEqual(c.cmd("EXPN list")[0], 502)
        self.assertEqual(c.cmd("HELP")[0], 214)
        self.assertEqual(c.cmd("NOOP")[0], 250)
        self.assertEqual(c.cmd("RSET")[0], 250)
        self.assertEqual(c.cmd("FOO bar")[0], 500)
        self.assertEqual(c.cmd("AUTH PLAIN AGRlbW8AeA==")[0], 503)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        self.assertTrue(c.is_closed())

    def test_sequence_errors(self):
        c = self.mx_client()
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 503)
        c.cmd("EHLO x")
        self.assertEqual(c.cmd("RCPT TO:<demo@example.test>")[0], 503)
        self.assertEqual(c.cmd("DATA")[0], 503)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 503)
        self.assertEqual(c.cmd("DATA")[0], 503)
        # A syntax error is reported before the sequence error.
        self.assertEqual(c.cmd("MAIL FROM:a@example.org")[0], 501)

    def test_delivery_with_smtplib(self):
        s = smtplib.SMTP("127.0.0.1", self.mx, timeout=30)
        s.ehlo("client.example.org")
        s.starttls(context=harness.client_tls_context())
        s.ehlo("client.example.org")
        body = "Line one\r\n.leading dot\r\n..two dots\r\n.\r\n"
        refused = s.sendmail("ann@example.org", ["demo@example.test"],
                             message("hello", body))
        self.assertEqual(refused, {})
        s.quit()
        msgs = self.stored()
        self.assertEqual(len(msgs), 1)
        text = msgs[0][1]
        self.assertTrue(text.startswith(
            "Return-Path: <ann@example.org>\r\nDelivered-To: "
            "demo@example.test\r\nReceived: from client.example.org "
            "(localhost [127.0.0.1])\r\n\tby mx.example.test (moonpost) with "
            "ESMTPS id "), text)
        self.assertIn("(using TLSv1.3 with cipher ", text)
        self.assertIn("for <demo@example.test>; ", text)
        self.assertTrue(text.endswith(
            "Line one\r\n.leading dot\r\n..two dots\r\n.\r\n"), text)
        # MX mail from strangers gets no Message-ID added.
        self.assertNotIn("Message-ID: <", text.split("\r\n\r\n")[0])

    def test_unknown_user_and_relay(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        c.cmd("MAIL FROM:<a@example.org>")
        code, lines = c.cmd("RCPT TO:<nobody@example.test>")
        self.assertEqual(code, 550)
        self.assertIn("5.1.1", lines[0])
        code, lines = c.cmd("RCPT TO:<someone@elsewhere.org>")
        self.assertEqual(code, 554)
        self.assertIn("5.7.1 Relay access denied", lines[0])
        code, _ = c.cmd("RCPT TO:<Postmaster>")
        # postmaster@example.test: no such account or alias here.
        self.assertEqual(code, 550)
        self.assertEqual(c.cmd("RCPT TO:<DEMO@Example.Test>")[0], 250)

    def test_size(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        code, lines = c.cmd("MAIL FROM:<a@example.org> SIZE=60000000")
        self.assertEqual(code, 552)
        self.assertIn("5.3.4", lines[0])
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org> SIZE=1000")[0],
                         250)

    def test_pipelining_in_one_write(self):
        c = self.mx_client()
        c.send("EHLO x\r\nMAIL FROM:<a@example.org>\r\n"
               "RCPT TO:<demo@example.test>\r\nRCPT TO:<nobody@example.test>"
               "\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(6)]
        self.assertEqual(codes, [250, 250, 250, 550, 250, 354])
        c.send(message("piped") + ".\r\nQUIT\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 221)
        self.assertEqual(len(self.stored("demo")), 1)
        self.assertEqual(len(self.stored("bob")), 1)

    def test_starttls_injection(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        c.send("STARTTLS\r\nRSET\r\n")
        self.assertEqual(c.reply()[0], 220)
        c.starttls()
        # The RSET sent in plaintext is gone: the first reply inside TLS
        # answers our EHLO.
        code, lines = c.cmd("EHLO again")
        self.assertEqual(code, 250)
        self.assertIn("Hello again", lines[0])
        self.assertNotIn("STARTTLS", [l[4:] for l in lines])
        self.d.wait_log(r"event=starttls_discard bytes=6")

    def test_bdat(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<demo@example.test>")
        part1 = "Subject: chunked\r\n\r\n"
        part2 = "first line\r\n.not stuffed\r\n"
        c.send("BDAT %d\r\n%s" % (len(part1), part1))
        self.assertEqual(c.reply()[0], 250)
        c.send("BDAT %d LAST\r\n%s" % (len(part2), part2))
        code, lines = c.reply()
        self.assertEqual(code, 250, lines)
        text = self.stored()[0][1]
        self.assertTrue(text.endswith(part1 + part2), text)
        # A BDAT refused (no transaction) still has its chunk read.
        c.send("BDAT 5\r\nhelloNOOP\r\n")
        self.assertEqual(c.reply()[0], 503)
        self.assertEqual(c.reply()[0], 250)

    def test_smtputf8(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        code, _ = c.cmd("MAIL FROM:<j\u00f6rg@example.org>")
        self.assertEqual(code, 553)
        self.assertEqual(c.cmd("MAIL FROM:<j\u00f6rg@example.org> SMTPUTF8")[0],
                         250)
        self.assertEqual(c.cmd("RCPT TO:<demo@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(message("Gr\u00fc\u00dfe") + ".\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertIn("with UTF8SMTP id", self.stored()[0][1])

    def test_smuggling_is_one_message(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<demo@example.test>")
        c.cmd("DATA")
        # An attacker's ending "\n.\n" (and "\r\n.\n") followed by a second
        # transaction: it must stay content of the first message.
        c.send("Subject: one\r\n\r\nbody\n.\nMAIL FROM:<evil@example.org>\r\n"
               "RCPT TO:<bob@example.test>\r\nDATA\r\n\r\n.\n"
               "smuggled\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("NOOP")[0], 250)
        self.assertEqual(len(self.stored("demo")), 1)
        self.assertEqual(self.stored("bob"), [])
        self.assertIn("MAIL FROM:<evil@example.org>", self.stored()[0][1])

    def test_disconnect_mid_data_delivers_nothing(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<demo@example.test>")
        c.cmd("DATA")
        c.send("Subject: cut\r\n\r\nhalf a mess")
        c.close()
        self.d.wait_log(r"event=disconnect")
        time.sleep(0.2)
        self.assertEqual(self.stored(), [])

    def test_200_messages_exactly_once(self):
        s = smtplib.SMTP("127.0.0.1", self.mx, timeout=60)
        for i in range(200):
            s.sendmail("ann@example.org", ["demo@example.test"],
                       message("number %d" % i))
            if i % 50 == 49:
                s.quit()
                s = smtplib.SMTP("127.0.0.1", self.mx, timeout=60)
        s.quit()
        msgs = self.stored()
        self.assertEqual(len(msgs), 200)
        subjects = sorted(int(re.search(r"Subject: number (\d+)", t).group(1))
                          for _, t in msgs)
        self.assertEqual(subjects, list(range(200)))

    def test_line_too_long_and_errors(self):
        c = self.mx_client()
        code, lines = c.cmd("NOOP " + "x" * 3000)
        self.assertEqual(code, 500)
        self.assertIn("5.5.2", lines[0])
        for _ in range(8):
            self.assertEqual(c.cmd("BOGUS")[0], 500)
        # The tenth error: the connection ends instead (Postfix's
        # smtpd_hard_error_limit).
        code, lines = c.cmd("BOGUS")
        self.assertEqual(code, 421)
        self.assertIn("4.7.0 Too many errors", lines[0])
        self.assertTrue(c.is_closed())

    def test_sigterm_says_421(self):
        c = self.mx_client()
        self.d.send_signal(signal.SIGTERM)
        code, lines = c.reply()
        self.assertEqual(code, 421)
        self.assertIn("4.3.2", lines[0])
        self.d.proc.wait(harness.STOP_TIMEOUT)


class Submission(Base):
    def test_auth_needs_tls(self):
        c = SmtpClient(self.sub)
        c.reply()
        code, lines = c.cmd("EHLO x")
        self.assertFalse(any("AUTH" in l for l in lines), lines)
        self.assertEqual(c.cmd("AUTH PLAIN AGRlbW8AeA==")[0], 530)
        self.assertEqual(c.cmd("MAIL FROM:<demo@example.test>")[0], 530)
        c.cmd("STARTTLS")
        c.starttls()
        code, lines = c.cmd("EHLO x")
        self.assertIn("AUTH SCRAM-SHA-256 PLAIN LOGIN",
                      [l[4:] for l in lines])

    def test_submit_and_headers(self):
        s = self.submission()
        refused = s.sendmail("demo@example.test",
                             ["bob@example.test", "demo@example.test"],
                             "Subject: from demo\r\n\r\nhi\r\n")
        self.assertEqual(refused, {})
        s.quit()
        text = self.stored("bob")[0][1]
        header = text.split("\r\n\r\n")[0]
        self.assertIn("with ESMTPSA id ", header)
        self.assertIn("(authenticated as demo@example.test)", header)
        self.assertRegex(header, r"\r\nMessage-ID: <[0-9a-f]+\.\w+\.1@"
                                 r"mx\.example\.test>\r\n")
        self.assertRegex(header, r"\r\nDate: \w{3}, \d\d \w{3} \d{4} ")
        self.assertNotIn("for <", header)  # two recipients
        self.assertEqual(len(self.stored("demo")), 1)

    def test_sender_must_be_owned(self):
        s = self.submission()
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("bob@example.test", ["bob@example.test"], "x\r\n")
        self.assertEqual(e.exception.smtp_code, 553)
        # An alias that delivers to demo is demo's to send from.
        with open(os.path.join(self.data, "aliases"), "w") as f:
            f.write("team@example.test: demo@example.test, bob@example.test\n")
        time.sleep(1.1)  # the alias file is looked at once a second
        s.rset()
        self.assertEqual(s.sendmail("team@example.test",
                                    ["bob@example.test"], "x\r\n"), {})
        s.quit()

    def test_external_recipient_deferred(self):
        s = self.submission()
        s.mail("demo@example.test")
        code, msg = s.rcpt("friend@elsewhere.org")
        self.assertEqual(code, 451)
        self.assertIn(b"outbound queue", msg)
        s.quit()

    def test_wrong_password(self):
        s = smtplib.SMTP("127.0.0.1", self.sub, timeout=30)
        s.starttls(context=harness.client_tls_context())
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            s.login("demo@example.test", "wrong")
        self.assertEqual(e.exception.smtp_code, 535)
        self.d.wait_log(r"event=auth result=failed user=demo@example\.test "
                        r"ip=127\.0\.0\.1 service=smtp")
        self.assertNotIn("wrong", self.d.log())

    def test_auth_login_and_cancel(self):
        s = smtplib.SMTP("127.0.0.1", self.sub, timeout=30)
        s.starttls(context=harness.client_tls_context())
        s.ehlo()
        s.user, s.password = "demo@example.test", PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login)
        self.assertEqual(code, 235)
        s.quit()
        c = SmtpClient(self.sub)
        c.reply()
        c.cmd("EHLO x")
        c.cmd("STARTTLS")
        c.starttls()
        c.cmd("EHLO x")
        self.assertEqual(c.cmd("AUTH LOGIN")[0], 334)
        self.assertEqual(c.cmd("*")[0], 501)
        self.assertEqual(c.cmd("AUTH PLAIN !!!")[0], 501)
        self.assertEqual(c.cmd("AUTH CRAM-MD5")[0], 504)

    def test_scram_sha_256(self):
        c = SmtpClient(self.sub)
        c.reply()
        c.cmd("EHLO x")
        c.cmd("STARTTLS")
        c.starttls()
        c.cmd("EHLO x")
        first = [True]

        def exchange(msg):
            if first[0]:
                first[0] = False
                code, lines = c.cmd("AUTH SCRAM-SHA-256 " +
                                    base64.b64encode(msg).decode())
            else:
                code, lines = c.cmd(base64.b64encode(msg).decode())
            self.assertEqual(code, 334, lines)
            return base64.b64decode(lines[0][4:])

        self.assertTrue(scram_client("demo@example.test", PASSWORD, exchange))
        self.assertEqual(c.cmd("")[0], 235)
        self.assertEqual(c.cmd("MAIL FROM:<demo@example.test>")[0], 250)

    def test_submissions_implicit_tls(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.subs, timeout=30,
                             context=harness.client_tls_context())
        s.login("demo@example.test", PASSWORD)
        self.assertEqual(s.sendmail("demo@example.test", ["bob@example.test"],
                                    "Subject: 465\r\n\r\nx\r\n"), {})
        s.quit()
        self.assertEqual(len(self.stored("bob")), 1)


class Limits(Base):
    SMTP = 'max_message_size = "2K", max_recipients = 2, timeout = "2s"'

    def test_message_too_big(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<demo@example.test>")
        c.cmd("DATA")
        c.send(message("big", "x" * 70 + "\r\n") * 40 + ".\r\n")
        code, lines = c.reply()
        self.assertEqual(code, 552)
        self.assertIn("5.3.4", lines[0])
        self.assertEqual(self.stored(), [])
        self.assertEqual(c.cmd("NOOP")[0], 250)

    def test_too_many_recipients(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        c.cmd("MAIL FROM:<a@example.org>")
        self.assertEqual(c.cmd("RCPT TO:<demo@example.test>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.test>")[0], 250)
        code, lines = c.cmd("RCPT TO:<demo@example.test>")
        self.assertEqual(code, 452)
        self.assertIn("4.5.3", lines[0])

    def test_idle_timeout(self):
        c = self.mx_client()
        code, lines = c.reply()
        self.assertEqual(code, 421)
        self.assertIn("4.4.2", lines[0])


class Hooks(Base):
    RULES = r"""
moonpost.hook("smtp.helo", function(tx, helo)
    if helo == "accept.example" then
        return moonpost.accept()
    end
    if helo == "bad.example" then
        return moonpost.reject(550, "5.7.1", "go away " .. tx.ip)
    end
    tx.notes.helo_seen = true
end)
moonpost.hook("smtp.mail", function(tx, sender)
    if sender == "spam@example.org" then
        return moonpost.reject("no spam")
    end
    tx.notes.sender = sender
end)
moonpost.hook("smtp.rcpt", function(tx, rcpt)
    if rcpt == "bob@example.test" and tx.notes.sender == "later@example.org" then
        return moonpost.defer("bob is busy")
    end
end)
moonpost.hook("smtp.data", function(tx)
    local subject = tx:header("Subject") or ""
    if subject == "disconnect" then
        return moonpost.disconnect("bye")
    elseif subject == "broken" then
        local t = nil
        return t.x
    elseif subject == "check" then
        if tx.size < 10 or #tx.recipients ~= 1 or tx.sender ~= "a@example.org" then
            return moonpost.reject("tx object wrong")
        end
    end
end)
"""

    def start(self, helo="client.example.org"):
        c = self.mx_client()
        return c, c.cmd("EHLO " + helo)

    def test_verdicts(self):
        c, (code, lines) = self.start("accept.example")
        self.assertEqual(code, 250)
        c, (code, lines) = self.start("bad.example")
        self.assertEqual(code, 550)
        self.assertIn("go away 127.0.0.1", lines[0])
        c, _ = self.start()
        code, lines = c.cmd("MAIL FROM:<spam@example.org>")
        self.assertEqual(code, 550)
        self.assertIn("5.7.1 no spam", lines[0])
        self.assertEqual(c.cmd("MAIL FROM:<later@example.org>")[0], 250)
        code, lines = c.cmd("RCPT TO:<bob@example.test>")
        self.assertEqual(code, 451)
        self.assertIn("bob is busy", lines[0])
        self.assertEqual(c.cmd("RCPT TO:<demo@example.test>")[0], 250)
        c.cmd("RSET")

        for subject, code in (("check", 250), ("broken", 451)):
            c.cmd("MAIL FROM:<a@example.org>")
            c.cmd("RCPT TO:<demo@example.test>")
            c.cmd("DATA")
            c.send(message(subject) + ".\r\n")
            self.assertEqual(c.reply()[0], code)
        self.d.wait_log(r"event=lua_error hook=smtp\.data .*rules\.lua:28:")
        self.assertEqual(len(self.stored()), 1)

        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<demo@example.test>")
        c.cmd("DATA")
        c.send(message("disconnect") + ".\r\n")
        code, lines = c.reply()
        self.assertEqual(code, 421)
        self.assertTrue(c.is_closed())


def example(name, old=None, new=None):
    with open(os.path.join(harness.SRCDIR, "scripts", "examples", name)) as f:
        text = f.read()
    if old is not None:
        assert old in text, old
        text = text.replace(old, new)
    return text


class ExampleScripts(Base):
    """The shipped examples, loaded as an operator would."""

    RULES = (example("rate-limit.lua", "local LIMIT = 100", "local LIMIT = 2")
             + "\n" +
             example("disabled-users.lua",
                     '-- ["former.employee@example.org"] = true,',
                     '["bob@example.test"] = true,'))

    def test_rate_limit(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        for _ in range(2):
            self.assertEqual(c.cmd("MAIL FROM:<flood@example.org>")[0], 250)
            c.cmd("RSET")
        code, lines = c.cmd("MAIL FROM:<flood@example.org>")
        self.assertEqual(code, 451)
        self.assertIn("4.7.1", lines[0])
        self.assertEqual(c.cmd("MAIL FROM:<calm@example.org>")[0], 250)

    def test_disabled_user(self):
        c = self.mx_client()
        c.cmd("EHLO x")
        c.cmd("MAIL FROM:<a@example.org>")
        code, lines = c.cmd("RCPT TO:<bob@example.test>")
        self.assertEqual(code, 550)
        self.assertIn("5.2.1 mailbox disabled", lines[0])
        self.assertEqual(c.cmd("RCPT TO:<demo@example.test>")[0], 250)


if __name__ == "__main__":
    harness.main()
