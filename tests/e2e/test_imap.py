#!/usr/bin/env python3
"""The IMAP session through the real daemon: greeting and capabilities,
LOGIN and AUTHENTICATE, STARTTLS, literals, state errors, SELECT and
EXAMINE, and the untagged responses other sessions and deliveries cause
(NOOP and IDLE), with imaplib and raw sockets. Mail comes in by SMTP and
by `moonpost deliver` (another process), and leaves by POP3."""

import base64
import hashlib
import hmac
import imaplib
import os
import poplib
import re
import smtplib
import socket
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient  # noqa: E402

PASSWORD = "correct horse battery"
USER = "demo@example.test"


def message(subject):
    return ("From: Ann <ann@example.org>\r\nTo: demo@example.test\r\n"
            "Subject: %s\r\n\r\nHello.\r\n" % subject).encode()


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


class ImapClient(LineClient):
    """Raw IMAP: send a tagged command, collect the untagged lines."""

    def __init__(self, port, **kw):
        super().__init__(port, **kw)
        self.n = 0

    def run(self, text, tag=None):
        """(untagged lines, tagged line) of one command."""
        self.n += 1
        tag = tag or "t%d" % self.n
        self.send("%s %s\r\n" % (tag, text))
        return self.until(tag)

    def until(self, tag):
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
        return untagged


class Base(harness.DaemonTest):
    """A daemon with an imap (STARTTLS) listener, an imaps one, an mx and
    a pop3 one on loopback, and an imap one on another address of the
    machine when it has one."""

    LISTENERS = (("imap", "imap", 'tls = "starttls"'),
                 ("imaps", "imap", 'tls = "implicit"'),
                 ("mx", "smtp", 'role = "mx", tls = "starttls"'),
                 ("pop3", "pop3", 'tls = "starttls"'))
    USERS = (USER, "bob@example.test")

    def before_daemon(self):
        self.outside = outside_address()

    def config_extra(self, ports):
        outside = ""
        if self.outside:
            outside = ('listen { name = "imap-out", protocol = "imap", '
                       'address = "%s:%d", tls = "starttls" }\n'
                       % (self.outside, ports[4]))
        return outside + "imap { max_errors = 5 }"

    def setUp(self):
        super().setUp()
        self.imap, self.imaps, self.mx, self.pop3, self.imap_out = \
            self.d.ports[:5]

    def smtp_deliver(self, msg, rcpt=USER):
        with smtplib.SMTP("127.0.0.1", self.mx, timeout=30) as s:
            s.sendmail("ann@example.org", [rcpt], msg)

    def client(self, port=None):
        c = ImapClient(port or self.imap)
        self.assertTrue(c.line().startswith("* OK [CAPABILITY "))
        return c

    def session(self):
        c = self.client()
        c.ok('LOGIN "%s" "%s"' % (USER, PASSWORD))
        return c


class Session(Base):
    def test_greeting_and_capabilities(self):
        c = ImapClient(self.imap)
        greeting = c.line()
        self.assertRegex(greeting, r"^\* OK \[CAPABILITY IMAP4rev1 "
                                   r"IMAP4rev2 .*\] ")
        for cap in ("STARTTLS", "AUTH=PLAIN", "AUTH=SCRAM-SHA-256",
                    "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"):
            self.assertIn(" " + cap, greeting)
        self.assertNotIn("LOGINDISABLED", greeting)
        untagged, tagged = c.run("CAPABILITY")
        self.assertEqual(tagged, "OK CAPABILITY completed")
        self.assertTrue(untagged[0].startswith("* CAPABILITY IMAP4rev1"))
        _, tagged = c.run('LOGIN "%s" "%s"' % (USER, PASSWORD))
        self.assertRegex(tagged, r"^OK \[CAPABILITY IMAP4rev1 .*"
                                 r"NAMESPACE.*\] Logged in$")
        self.assertNotIn("STARTTLS", tagged)
        self.assertNotIn("AUTH=", tagged)
        untagged, tagged = c.run("LOGOUT")
        self.assertEqual(untagged, ["* BYE Logging out"])
        self.assertEqual(tagged, "OK LOGOUT completed")
        self.assertTrue(c.is_closed())

    def test_login_failures_and_state(self):
        c = self.client()
        _, tagged = c.run('LOGIN "%s" "wrong"' % USER)
        self.assertEqual(tagged, "NO [AUTHENTICATIONFAILED] "
                                 "Authentication failed")
        _, tagged = c.run('LOGIN "nobody@example.test" "wrong"')
        self.assertEqual(tagged, "NO [AUTHENTICATIONFAILED] "
                                 "Authentication failed")
        _, tagged = c.run("SELECT INBOX")
        self.assertEqual(tagged, "BAD Not logged in")
        _, tagged = c.run("LOGIN onlyone")
        self.assertEqual(tagged,
                         "BAD LOGIN needs a user name and a password")
        c.ok('LOGIN "%s" "%s"' % (USER.upper(), PASSWORD))
        _, tagged = c.run('LOGIN "%s" "%s"' % (USER, PASSWORD))
        self.assertEqual(tagged, "BAD Already logged in")
        _, tagged = c.run("CLOSE")
        self.assertEqual(tagged, "BAD No mailbox selected")
        _, tagged = c.run("FROBNICATE")
        self.assertEqual(tagged, "BAD Unknown command")
        # A good command resets the count of BADs in a row (max 5 here).
        c.ok("NOOP")
        _, tagged = c.run("UID NOOP")
        self.assertEqual(tagged, "BAD Unknown command")
        _, tagged = c.run("NOOP extra")
        self.assertEqual(tagged, "BAD Unexpected arguments")
        c.ok("NOOP")

    def test_too_many_errors(self):
        c = self.client()
        for i in range(4):
            _, tagged = c.run("BOGUS%d" % i)
            self.assertEqual(tagged, "BAD Unknown command")
        c.send("x BOGUS\r\n")
        self.assertEqual(c.line(), "x BAD Unknown command")
        self.assertEqual(c.line(), "* BYE Too many invalid commands")
        self.assertTrue(c.is_closed())

    def test_syntax_errors(self):
        c = self.client()
        c.send("\r\n")
        self.assertTrue(c.line().startswith("* BAD"))
        _, tagged = c.run('LOGIN "unterminated')
        self.assertTrue(tagged.startswith("BAD"), tagged)
        c.send("a" * 9000 + "\r\n")
        self.assertTrue(c.line().startswith("* BAD"))
        self.assertTrue(c.line().startswith("* BYE"))
        self.assertTrue(c.is_closed())

    def test_literals(self):
        c = self.client()
        # A synchronising literal gets a continuation first.
        c.send("a1 LOGIN {%d}\r\n" % len(USER))
        self.assertTrue(c.line().startswith("+ "))
        c.send(USER + " {%d}\r\n" % len(PASSWORD))
        self.assertTrue(c.line().startswith("+ "))
        c.send(PASSWORD + "\r\n")
        _, tagged = c.until("a1")
        self.assertTrue(tagged.startswith("OK "), tagged)
        # LITERAL+: no continuation, and pipelined commands after it.
        c2 = self.client()
        c2.send("b1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\nb2 NOOP\r\n"
                % (len(USER), USER, len(PASSWORD), PASSWORD))
        _, tagged = c2.until("b1")
        self.assertTrue(tagged.startswith("OK "), tagged)
        _, tagged = c2.until("b2")
        self.assertEqual(tagged, "OK NOOP completed")
        # A literal too large before login is refused; a non-sync one
        # is read and dropped, and the next command is found.
        c3 = self.client()
        c3.send("c1 LOGIN {100000}\r\n")
        line = c3.line()
        self.assertTrue(line.startswith("c1 BAD [TOOBIG]"), line)
        c3.send("c2 LOGIN {5000+}\r\n" + "x" * 5000 + " y\r\nc3 NOOP\r\n")
        line = c3.line()
        self.assertTrue(line.startswith("c2 BAD"), line)
        _, tagged = c3.until("c3")
        self.assertEqual(tagged, "OK NOOP completed")

    def test_pipelining(self):
        c = self.client()
        c.send('p1 LOGIN "%s" "%s"\r\np2 SELECT INBOX\r\np3 NOOP\r\n'
               'p4 LOGOUT\r\n' % (USER, PASSWORD))
        for tag in ("p1", "p2", "p3"):
            _, tagged = c.until(tag)
            self.assertTrue(tagged.startswith("OK"), tagged)
        untagged, tagged = c.until("p4")
        self.assertEqual(untagged, ["* BYE Logging out"])

    def test_id_enable_namespace(self):
        c = self.session()
        untagged = c.ok('ID ("name" "test" "version" "1.0")')
        self.assertEqual(untagged, ['* ID ("name" "moonpost" "version" '
                                    '"%s")' % untagged[0].split('"')[7]])
        self.d.wait_log(r'event=imap_client_id name="?test"? '
                        r'version="?1.0"?')
        c.ok("ID NIL")
        _, tagged = c.run('ID ("name")')
        self.assertEqual(tagged, "BAD Invalid ID parameters")
        self.assertEqual(c.ok("ENABLE CONDSTORE X-UNKNOWN"),
                         ["* ENABLED CONDSTORE"])
        self.assertEqual(c.ok("ENABLE CONDSTORE"), ["* ENABLED"])
        self.assertEqual(c.ok("ENABLE QRESYNC IMAP4rev2"),
                         ["* ENABLED QRESYNC IMAP4rev2"])
        self.assertEqual(c.ok("NAMESPACE"),
                         ['* NAMESPACE (("" "/")) NIL NIL'])

    def test_imaplib_and_imaps(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps,
                              ssl_context=harness.client_tls_context())
        m.login(USER, PASSWORD)
        typ, data = m.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"0"]))
        m.logout()


class Auth(Base):
    def test_authenticate_plain(self):
        ir = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode())
        c = self.client()
        _, tagged = c.run("AUTHENTICATE PLAIN " + ir.decode())
        self.assertTrue(tagged.startswith("OK [CAPABILITY "), tagged)
        # Without an initial response: an empty challenge first.
        c = self.client()
        c.send("a AUTHENTICATE PLAIN\r\n")
        self.assertEqual(c.line(), "+ ")
        c.send(ir + b"\r\n")
        _, tagged = c.until("a")
        self.assertTrue(tagged.startswith("OK "), tagged)

    def test_authenticate_errors(self):
        c = self.client()
        c.send("a AUTHENTICATE PLAIN\r\n")
        self.assertEqual(c.line(), "+ ")
        c.send("*\r\n")
        self.assertEqual(c.line(), "a BAD Authentication cancelled")
        _, tagged = c.run("AUTHENTICATE PLAIN !!!")
        self.assertEqual(tagged, "BAD Invalid base64 data")
        _, tagged = c.run("AUTHENTICATE X-NONE")
        self.assertEqual(tagged, "NO [CANNOT] Unsupported authentication "
                                 "mechanism")
        bad = base64.b64encode(("\0%s\0nope" % USER).encode()).decode()
        _, tagged = c.run("AUTHENTICATE PLAIN " + bad)
        self.assertEqual(tagged, "NO [AUTHENTICATIONFAILED] "
                                 "Authentication failed")
        m = imaplib.IMAP4("127.0.0.1", self.imap)
        m.login(USER, PASSWORD)
        m.logout()

    def test_authenticate_scram(self):
        c = self.client()
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=%s,r=%s" % (USER, nonce)
        c.send("a AUTHENTICATE SCRAM-SHA-256 %s\r\n" % base64.b64encode(
            ("n,," + first_bare).encode()).decode())
        line = c.line()
        self.assertTrue(line.startswith("+ "), line)
        server_first = base64.b64decode(line[2:]).decode()
        fields = dict(f.split("=", 1) for f in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(),
                                     base64.b64decode(fields["s"]),
                                     int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        final_bare = "c=biws,r=%s" % fields["r"]
        auth_msg = ",".join([first_bare, server_first, final_bare])
        sig = hmac.new(hashlib.sha256(client_key).digest(),
                       auth_msg.encode(), "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        c.send(base64.b64encode((final_bare + ",p=" + base64.b64encode(
            proof).decode()).encode()) + b"\r\n")
        line = c.line()
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        want = base64.b64encode(hmac.new(server_key, auth_msg.encode(),
                                         "sha256").digest()).decode()
        self.assertEqual(base64.b64decode(line[2:]).decode(), "v=" + want)
        c.send("\r\n")
        _, tagged = c.until("a")
        self.assertTrue(tagged.startswith("OK "), tagged)

    def test_starttls_discards_injected_plaintext(self):
        c = self.client()
        c.send("a STARTTLS\r\nb LOGIN x y\r\n")
        self.assertEqual(c.line(), "a OK Begin TLS negotiation now")
        c.starttls()
        untagged, tagged = c.run("CAPABILITY")
        self.assertEqual(tagged, "OK CAPABILITY completed")
        self.assertNotIn("STARTTLS", untagged[0])
        self.assertNotIn("b ", "".join(untagged))
        _, tagged = c.run("STARTTLS")
        self.assertEqual(tagged, "BAD TLS is not available here")
        c.ok('LOGIN "%s" "%s"' % (USER, PASSWORD))

    def test_login_disabled_in_plaintext_from_outside(self):
        if not self.outside:
            self.skipTest("no address other than loopback")
        c = ImapClient(self.imap_out, host=self.outside)
        greeting = c.line()
        self.assertIn("LOGINDISABLED", greeting)
        self.assertNotIn("AUTH=PLAIN", greeting)
        self.assertIn("AUTH=SCRAM-SHA-256", greeting)
        _, tagged = c.run('LOGIN "%s" "%s"' % (USER, PASSWORD))
        self.assertTrue(tagged.startswith("NO [PRIVACYREQUIRED]"), tagged)
        c.ok("STARTTLS")
        c.starttls()
        untagged = c.ok("CAPABILITY")
        self.assertNotIn("LOGINDISABLED", untagged[0])
        c.ok('LOGIN "%s" "%s"' % (USER, PASSWORD))


class Mailbox(Base):
    def test_select_and_examine(self):
        self.deliver(message("one"))
        self.deliver(message("two"))
        c = self.session()
        untagged, tagged = c.run("SELECT INBOX")
        self.assertEqual(tagged, "OK [READ-WRITE] Select completed")
        self.assertIn("* 2 EXISTS", untagged)
        self.assertIn("* 2 RECENT", untagged)
        self.assertIn("* OK [UNSEEN 1] First unseen", untagged)
        self.assertTrue(any(re.match(r"\* OK \[UIDVALIDITY \d+\]", u)
                            for u in untagged))
        self.assertIn("* OK [UIDNEXT 3] Predicted next UID", untagged)
        self.assertTrue(any(u.startswith("* FLAGS (") for u in untagged))
        # \Recent went to the first session: a second sees none.
        c2 = self.session()
        untagged, tagged = c2.run("EXAMINE inbox")
        self.assertEqual(tagged, "OK [READ-ONLY] Select completed")
        self.assertIn("* 0 RECENT", untagged)
        # SELECT while selected closes the first with [CLOSED].
        untagged, tagged = c2.run("SELECT INBOX")
        self.assertEqual(untagged[0], "* OK [CLOSED] Previous mailbox "
                                      "closed")
        _, tagged = c2.run("SELECT Nope")
        self.assertEqual(tagged, "NO [NONEXISTENT] Mailbox does not exist")
        _, tagged = c2.run("NOOP")
        self.assertEqual(tagged, "OK NOOP completed")
        _, tagged = c2.run("CLOSE")
        self.assertEqual(tagged, "BAD No mailbox selected")
        c2.ok("SELECT Sent")
        c2.ok("UNSELECT")
        c2.ok("EXAMINE INBOX")
        c2.ok("CLOSE")

    def test_rev2_select_has_no_recent(self):
        self.deliver(message("one"))
        c = self.session()
        c.ok("ENABLE IMAP4rev2")
        untagged = c.ok("SELECT INBOX")
        self.assertIn("* 1 EXISTS", untagged)
        self.assertFalse(any("RECENT" in u or "UNSEEN" in u
                             for u in untagged), untagged)

    def test_noop_reports_deliveries_and_pop3_expunges(self):
        for i in range(3):
            self.deliver(message("m%d" % i))
        c = self.session()
        c.ok("SELECT INBOX")
        self.smtp_deliver(message("by smtp"))
        self.assertEqual(c.ok("NOOP"), ["* 4 EXISTS", "* 4 RECENT"])
        self.assertEqual(c.ok("NOOP"), [])
        # POP3 deletes the second message: the IMAP session hears of it.
        p = poplib.POP3("127.0.0.1", self.pop3, timeout=30)
        p.user(USER)
        p.pass_(PASSWORD)
        p.dele(2)
        p.quit()
        self.assertEqual(c.ok("NOOP"), ["* 2 EXPUNGE"])
        c.ok("ENABLE QRESYNC")
        p = poplib.POP3("127.0.0.1", self.pop3, timeout=30)
        p.user(USER)
        p.pass_(PASSWORD)
        p.dele(1)
        p.quit()
        self.assertEqual(c.ok("NOOP"), ["* VANISHED 1"])

    def test_qresync_select(self):
        for i in range(4):
            self.deliver(message("m%d" % i))
        c = self.session()
        c.ok("ENABLE QRESYNC")
        untagged = c.ok("SELECT INBOX")
        validity = next(re.match(r"\* OK \[UIDVALIDITY (\d+)\]", u).group(1)
                        for u in untagged if "UIDVALIDITY" in u)
        modseq = next(re.match(r"\* OK \[HIGHESTMODSEQ (\d+)\]", u).group(1)
                      for u in untagged if "HIGHESTMODSEQ" in u)
        c.ok("LOGOUT")
        p = poplib.POP3("127.0.0.1", self.pop3, timeout=30)
        p.user(USER)
        p.pass_(PASSWORD)
        p.dele(3)
        p.retr(1)  # \Seen at QUIT: a flag change
        p.quit()
        c = self.session()
        c.ok("ENABLE QRESYNC")
        untagged = c.ok("SELECT INBOX (QRESYNC (%s %s))" % (validity, modseq))
        self.assertIn("* VANISHED (EARLIER) 3", untagged)
        self.assertTrue(any(re.match(r"\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) "
                                     r"MODSEQ \(\d+\)\)", u)
                            for u in untagged), untagged)
        # A wrong UIDVALIDITY: a plain SELECT.
        c2 = self.session()
        c2.ok("ENABLE QRESYNC")
        untagged = c2.ok("SELECT INBOX (QRESYNC (1 %s))" % modseq)
        self.assertFalse(any("VANISHED" in u for u in untagged))
        _, tagged = c2.run("SELECT INBOX (QRESYNC (1))")
        self.assertTrue(tagged.startswith("BAD"), tagged)

    def test_idle_wakes_on_delivery(self):
        c = self.session()
        c.ok("SELECT INBOX")
        c.send("i1 IDLE\r\n")
        self.assertEqual(c.line(), "+ idling")
        # Delivered in this process (SMTP): the in-process notification.
        self.smtp_deliver(message("while idle"))
        self.assertEqual(c.line(), "* 1 EXISTS")
        self.assertEqual(c.line(), "* 1 RECENT")
        # Delivered by another process: inotify.
        self.deliver(message("from outside"))
        self.assertEqual(c.line(), "* 2 EXISTS")
        self.assertEqual(c.line(), "* 2 RECENT")
        c.send("DONE\r\n")
        self.assertEqual(c.line(), "i1 OK IDLE completed")
        c.send("i2 IDLE\r\n")
        self.assertEqual(c.line(), "+ idling")
        c.send("NOTDONE\r\n")
        self.assertEqual(c.line(), "i2 BAD Expected DONE")
        c.ok("NOOP")

    def test_compress_round_trip(self):
        body = b"".join(b"line %05d of a message that compresses well\r\n" % i
                        for i in range(20000))
        self.deliver(message("big").replace(b"Hello.\r\n", body))
        c = self.session()
        self.assertIn("COMPRESS=DEFLATE", c.ok("CAPABILITY")[0])
        _, tagged = c.run("COMPRESS X-LZ")
        self.assertEqual(tagged, "NO [CANNOT] Unknown compression mechanism")
        _, tagged = c.run("COMPRESS DEFLATE")
        self.assertEqual(tagged, "OK DEFLATE active")
        self.assertEqual(c.buf, b"")
        out = zlib.compressobj(wbits=-15)
        inflate = zlib.decompressobj(wbits=-15)
        plain = bytearray()

        def send(text):
            c.sock.sendall(out.compress(text.encode()) +
                           out.flush(zlib.Z_SYNC_FLUSH))

        def until(tag):
            lines = []
            while True:
                i = plain.find(b"\r\n")
                if i < 0:
                    chunk = c.sock.recv(65536)
                    self.assertTrue(chunk, "closed")
                    plain.extend(inflate.decompress(chunk))
                    continue
                line = bytes(plain[:i]).decode()
                del plain[:i + 2]
                m = re.search(r"\{(\d+)\}$", line)
                if m:
                    n = int(m.group(1))
                    while len(plain) < n:
                        plain.extend(inflate.decompress(c.sock.recv(65536)))
                    lines.append((line, bytes(plain[:n])))
                    del plain[:n]
                    continue
                if line.startswith(tag + " "):
                    return lines, line
                lines.append(line)

        # Pipelined, compressed: each answered, in order.
        send("z1 SELECT INBOX\r\nz2 NOOP\r\n")
        untagged, tagged = until("z1")
        self.assertEqual(tagged, "z1 OK [READ-WRITE] Select completed")
        self.assertIn("* 1 EXISTS", untagged)
        _, tagged = until("z2")
        self.assertEqual(tagged, "z2 OK NOOP completed")
        send("z3 FETCH 1 BODY.PEEK[TEXT]\r\n")
        lines, tagged = until("z3")
        self.assertEqual(tagged, "z3 OK FETCH completed")
        self.assertEqual(lines[0][1], body)
        send("z4 COMPRESS DEFLATE\r\n")
        _, tagged = until("z4")
        self.assertEqual(tagged, "z4 NO [COMPRESSIONACTIVE] Compression is "
                                 "already active")
        send("z5 LOGOUT\r\n")
        until("z5")
        self.d.wait_log(r"event=compress_stats in_compressed=\d+")

    def test_shutdown_sends_bye(self):
        c = self.session()
        c.ok("SELECT INBOX")
        c.send("i IDLE\r\n")
        self.assertEqual(c.line(), "+ idling")
        self.d.proc.send_signal(15)
        self.assertEqual(c.line(), "* BYE Server shutting down")
        self.assertTrue(c.is_closed())
        self.d.proc.wait(harness.STOP_TIMEOUT)


if __name__ == "__main__":
    harness.main()
