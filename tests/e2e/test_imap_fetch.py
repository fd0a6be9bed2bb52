#!/usr/bin/env python3
"""FETCH and UID FETCH through the real daemon: every data item and macro,
sections of multipart messages, BODYSTRUCTURE of the MIME corpus, raw
UTF-8 headers in ENVELOPE and BODYSTRUCTURE with and without UTF-8
enabled, implicit \\Seen, CHANGEDSINCE and VANISHED, BINARY, an expunged
message in the set, and a 20 MB body read slowly (the server must not
buffer it)."""

import base64
import hashlib
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient, run_cli  # noqa: E402

PASSWORD = "correct horse battery"
USER = "demo@example.test"
SRCDIR = os.environ.get("MOONPOST_SRCDIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))

LITERAL = re.compile(rb"~?\{(\d+)\}$")

MULTI = (b"From: Ann <ann@example.org>\r\n"
         b"To: demo@example.test\r\n"
         b"Subject: parts\r\n"
         b"X-Extra: yes\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"zz\"\r\n"
         b"\r\n"
         b"preamble\r\n"
         b"--zz\r\n"
         b"Content-Type: text/plain; charset=us-ascii\r\n"
         b"\r\n"
         b"first part\r\n"
         b"--zz\r\n"
         b"Content-Type: application/octet-stream\r\n"
         b"Content-Transfer-Encoding: base64\r\n"
         b"\r\n" + base64.encodebytes(b"bin\x00ary\xffdata").replace(
             b"\n", b"\r\n") +
         b"--zz\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n"
         b"\r\n"
         b"caf=C3=A9 =3D soft=\r\n"
         b"break\r\n"
         b"--zz\r\n"
         b"Content-Type: message/rfc822\r\n"
         b"\r\n"
         b"From: Bob <bob@example.net>\r\n"
         b"Subject: inner\r\n"
         b"\r\n"
         b"inner body\r\n"
         b"--zz\r\n"
         b"Content-Type: text/plain\r\n"
         b"Content-Transfer-Encoding: x-weird\r\n"
         b"\r\n"
         b"strange\r\n"
         b"--zz--\r\n")


def message(subject, body="Hello.\r\n"):
    return ("From: Ann <ann@example.org>\r\nTo: demo@example.test\r\n"
            "Subject: %s\r\n\r\n%s" % (subject, body)).encode()


class ImapClient(LineClient):
    """Raw IMAP: responses as bytes with their literals inline."""

    tag_n = 0

    def response(self):
        """One response: its bytes, literals included."""
        out = b""
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise EOFError("closed; buffered %r" % self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            out += line
            m = LITERAL.search(line)
            if not m:
                return out
            out += b"\r\n" + self.read_exact(int(m.group(1)))

    def run(self, text):
        """Sends a command; returns (untagged responses, tagged line)."""
        ImapClient.tag_n += 1
        tag = b"t%d" % ImapClient.tag_n
        self.send(tag + b" " + (text.encode() if isinstance(text, str)
                                else text) + b"\r\n")
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                return untagged, r[len(tag) + 1:].decode("utf-8", "replace")
            untagged.append(r)

    def ok(self, text):
        untagged, tagged = self.run(text)
        if not tagged.startswith("OK"):
            raise AssertionError("%s: %s" % (text, tagged))
        return untagged


def literal_of(resp, name):
    """The bytes of the literal after `name` in a FETCH response."""
    i = resp.index(name + b" ")
    rest = resp[i + len(name) + 1:]
    m = re.match(rb"~?\{(\d+)\}\r\n", rest)
    if not m:
        raise AssertionError("no literal after %r in %r" % (name, resp[:300]))
    n = int(m.group(1))
    return rest[m.end():m.end() + n]


class Base(harness.DaemonTest):
    LISTENERS = (("imap", "imap", 'tls = "starttls"'),)
    USERS = (USER, "bob@example.test")

    def setUp(self):
        super().setUp()
        self.port = self.d.ports[0]
        self.account = os.path.join(self.data, "mail", "example.test", "demo")

    def stored(self, uid):
        import sqlite3
        db = sqlite3.connect(os.path.join(self.account, "index.sqlite"))
        folder, file = db.execute(
            "SELECT b.dir, m.file FROM messages m JOIN mailboxes b ON "
            "b.id = m.mailbox WHERE b.name = 'INBOX' AND m.uid = ?",
            (uid,)).fetchone()
        db.close()
        with open(os.path.join(self.account, folder, file), "rb") as f:
            return f.read()

    def client(self, user=USER, select="INBOX"):
        c = ImapClient(self.port)
        self.assertTrue(c.response().startswith(b"* OK"))
        c.ok("LOGIN %s \"%s\"" % (user, PASSWORD))
        if select:
            c.ok("SELECT " + select)
        return c

    def fetch1(self, c, text):
        """The one FETCH response of a command that must succeed."""
        untagged = c.ok(text)
        fetches = [u for u in untagged if re.match(rb"\* \d+ FETCH", u)]
        self.assertEqual(len(fetches), 1, untagged)
        return fetches[0]


class Items(Base):
    def test_simple_items_and_macros(self):
        self.deliver(message("one"))
        raw = self.stored(1)
        c = self.client()
        r = self.fetch1(c, "FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)")
        self.assertRegex(r, rb'^\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) '
                         rb'INTERNALDATE "[ \d]\d-[A-Z][a-z]{2}-\d{4} '
                         rb'\d\d:\d\d:\d\d [-+]\d{4}" RFC822.SIZE %d\)$'
                         % len(raw))
        fast = self.fetch1(c, "FETCH 1 FAST")
        self.assertRegex(fast, rb"^\* 1 FETCH \(FLAGS \(.*\) INTERNALDATE "
                         rb"\".*\" RFC822.SIZE \d+\)$")
        full = self.fetch1(c, "FETCH 1 full")
        self.assertIn(b'ENVELOPE (NIL "one" (("Ann" NIL "ann" '
                      b'"example.org"))', full)
        self.assertIn(b'BODY ("text" "plain" ("charset" "us-ascii") NIL '
                      b'NIL "7bit" 8 1)', full)
        allm = self.fetch1(c, "FETCH 1 ALL")
        self.assertIn(b"ENVELOPE", allm)
        self.assertNotIn(b"BODY", allm)
        bs = self.fetch1(c, "FETCH 1 BODYSTRUCTURE")
        self.assertIn(b'BODYSTRUCTURE ("text" "plain" ("charset" '
                      b'"us-ascii") NIL NIL "7bit" 8 1 NIL NIL NIL NIL)', bs)
        # RFC822 and friends: the stored bytes, split at the blank line.
        r = self.fetch1(c, "FETCH 1 (RFC822.HEADER RFC822.TEXT)")
        self.assertIn(b"FLAGS (\\Seen \\Recent)", r)
        head, text = raw.split(b"\r\n\r\n", 1)
        self.assertEqual(literal_of(r, b"RFC822.HEADER"), head + b"\r\n\r\n")
        self.assertEqual(literal_of(r, b"RFC822.TEXT"), text)
        r = self.fetch1(c, "FETCH 1 RFC822")
        self.assertEqual(literal_of(r, b"RFC822"), raw)
        self.assertNotIn(b"FLAGS", r)

    def test_internaldate_zone(self):
        self.deliver(message("date"))
        c = self.client()
        r = self.fetch1(c, "FETCH 1 INTERNALDATE")
        m = re.search(rb'"([ \d]\d)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) '
                      rb'([-+])(\d\d)(\d\d)"', r)
        self.assertIsNotNone(m, r)
        when = time.strptime(m.group(0).decode().strip('"').strip(),
                             "%d-%b-%Y %H:%M:%S %z")
        self.assertIsNotNone(when)

    def test_uid_fetch_includes_uid(self):
        for i in range(3):
            self.deliver(message("m%d" % i))
        c = self.client()
        untagged = c.ok("UID FETCH 2:* FLAGS")
        fetches = [u for u in untagged if b"FETCH" in u]
        self.assertEqual(fetches[0][:22], b"* 2 FETCH (UID 2 FLAGS")
        self.assertEqual(len(fetches), 2)
        # UID asked explicitly is not repeated.
        r = self.fetch1(c, "UID FETCH 1 (FLAGS UID)")
        self.assertEqual(r.count(b"UID"), 1)
        # A sequence FETCH without UID has none.
        r = self.fetch1(c, "FETCH 3 RFC822.SIZE")
        self.assertNotIn(b"UID", r)

    def test_bad_items(self):
        self.deliver(message("bad"))
        c = self.client()
        for i, text in enumerate(("FETCH 1 (FOO)", "FETCH 1", "FETCH 1 ()",
                     "FETCH 1 (BODY[XYZ])", "FETCH 1 (BODY[1.MIMEX])",
                     "FETCH 1 BODY[]<0.0>", "FETCH 1 (FLAGS (FLAGS))",
                     "FETCH x FLAGS", "FETCH 1 FLAGS (FOO 1)",
                     "FETCH 1 FLAGS (CHANGEDSINCE x)",
                     "UID FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)",
                     "FETCH 1 (FAST)", "FETCH 1 BINARY.SIZE",
                     "FETCH 1 (BINARY[HEADER])")):
            if i % 5 == 4:  # under the limit of BADs in a row
                c.ok("NOOP")
            _, tagged = c.run(text)
            self.assertTrue(tagged.startswith("BAD"), (text, tagged))
        _, tagged = c.run("FETCH 5 FLAGS")
        self.assertTrue(tagged.startswith("BAD"), tagged)
        # The session goes on.
        self.fetch1(c, "FETCH 1 FLAGS")

    def test_not_selected(self):
        c = self.client(select=None)
        _, tagged = c.run("FETCH 1 FLAGS")
        self.assertTrue(tagged.startswith("BAD"), tagged)


class Sections(Base):
    def setUp(self):
        super().setUp()
        self.deliver(MULTI)
        self.raw = self.stored(1)
        self.c = self.client()

    def part(self, spec):
        r = self.fetch1(self.c, "FETCH 1 BODY.PEEK[%s]" % spec)
        return literal_of(r, b"BODY[%s]" % spec.encode())

    def test_parts(self):
        self.assertEqual(self.part(""), self.raw)
        self.assertEqual(self.part("1"), b"first part")
        self.assertEqual(self.part("1.MIME"),
                         b"Content-Type: text/plain; charset=us-ascii\r\n"
                         b"\r\n")
        self.assertEqual(self.part("4"),
                         b"From: Bob <bob@example.net>\r\n"
                         b"Subject: inner\r\n\r\ninner body")
        self.assertEqual(self.part("4.HEADER"),
                         b"From: Bob <bob@example.net>\r\n"
                         b"Subject: inner\r\n\r\n")
        self.assertEqual(self.part("4.TEXT"), b"inner body")
        self.assertEqual(self.part("4.1"), b"inner body")
        head, text = self.raw.split(b"\r\n\r\n", 1)
        self.assertEqual(self.part("HEADER"), head + b"\r\n\r\n")
        self.assertEqual(self.part("TEXT"), text)
        # A part that is not there, and HEADER of a non-message part: NIL.
        r = self.fetch1(self.c, "FETCH 1 (BODY.PEEK[9] BODY.PEEK[1.HEADER])")
        self.assertIn(b"BODY[9] NIL", r)
        self.assertIn(b"BODY[1.HEADER] NIL", r)

    def test_header_fields(self):
        r = self.fetch1(self.c, 'FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject '
                        '"X-EXTRA" nope)])')
        self.assertEqual(
            literal_of(r, b"BODY[HEADER.FIELDS (SUBJECT X-EXTRA NOPE)]"),
            b"Subject: parts\r\nX-Extra: yes\r\n\r\n")
        r = self.fetch1(self.c, "FETCH 1 BODY.PEEK[4.HEADER.FIELDS.NOT "
                        "(From)]")
        self.assertEqual(literal_of(r, b"BODY[4.HEADER.FIELDS.NOT (FROM)]"),
                         b"Subject: inner\r\n\r\n")
        r = self.fetch1(self.c, "FETCH 1 BODY.PEEK[HEADER.FIELDS "
                        "(Subject)]<2.5>")
        self.assertEqual(literal_of(r, b"BODY[HEADER.FIELDS (SUBJECT)]<2>"),
                         b"bject")

    def test_partials(self):
        r = self.fetch1(self.c, "FETCH 1 (BODY.PEEK[]<0.4> BODY.PEEK[1]<6.100>"
                        " BODY.PEEK[TEXT]<100000.5>)")
        self.assertEqual(literal_of(r, b"BODY[]<0>"), self.raw[:4])
        self.assertEqual(literal_of(r, b"BODY[1]<6>"), b"part")
        self.assertEqual(literal_of(r, b"BODY[TEXT]<100000>"), b"")

    def test_bodystructure(self):
        r = self.fetch1(self.c, "FETCH 1 BODYSTRUCTURE")
        self.assertIn(b'("application" "octet-stream" NIL NIL NIL "base64"',
                      r)
        self.assertIn(b'"mixed" ("boundary" "zz") NIL NIL NIL)', r)
        self.assertIn(b'("message" "rfc822" NIL NIL NIL "7bit"', r)

    def test_binary(self):
        r = self.fetch1(self.c, "FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] "
                        "BINARY.PEEK[3] BINARY.SIZE[3] BINARY.PEEK[1] "
                        "BINARY.PEEK[2]<3.3>)")
        self.assertIn(b"BINARY[2] ~{", r)
        self.assertEqual(literal_of(r, b"BINARY[2]"), b"bin\x00ary\xffdata")
        self.assertIn(b"BINARY.SIZE[2] 12", r)
        self.assertEqual(literal_of(r, b"BINARY[3]"),
                         "café = softbreak".encode())
        self.assertIn(b"BINARY.SIZE[3] %d" % len("café = softbreak".encode()),
                      r)
        self.assertEqual(literal_of(r, b"BINARY[1]"), b"first part")
        self.assertEqual(literal_of(r, b"BINARY[2]<3>"), b"\x00ar")
        self.assertNotIn(b"\\Seen", r)

    def test_unknown_cte(self):
        untagged, tagged = self.c.run("FETCH 1 BINARY.PEEK[5]")
        self.assertTrue(tagged.startswith("NO [UNKNOWN-CTE]"), tagged)
        self.assertEqual([u for u in untagged if b"FETCH" in u], [])
        # BODY of the same part is fine.
        self.assertEqual(self.part("5"), b"strange")


class Corpus(Base):
    NAMES = ("mixed-attachments", "rfc822-attachment", "nested-multipart",
             "alternative", "simple-text", "digest", "rfc2231")

    def test_bodystructure_matches_unit_expectations(self):
        for name in self.NAMES:
            with open(os.path.join(SRCDIR, "tests", "mime", name + ".eml"),
                      "rb") as f:
                self.deliver(f.read())
        c = self.client()
        untagged = c.ok("FETCH 1:* (BODY BODYSTRUCTURE)")
        fetches = [u for u in untagged if b"FETCH" in u]
        self.assertEqual(len(fetches), len(self.NAMES))
        for name, resp in zip(self.NAMES, fetches):
            with open(os.path.join(SRCDIR, "tests", "imap", name + ".fetch"),
                      "rb") as f:
                lines = f.read().split(b"\n")
            body = [x for x in lines if x.startswith(b"BODY ")][0]
            bs = [x for x in lines if x.startswith(b"BODYSTRUCTURE ")][0]
            self.assertIn(body + b" " + bs + b")", resp, name)


# Raw UTF-8 in the header (RFC 6532), as SMTPUTF8 mail arrives: subject,
# display names, a description and parameters, and an attached
# message/global whose own header is UTF-8.
UTF8_MSG = (
    'From: "Jürgen Müller" <juergen@example.org>\r\n'
    'To: "Zoë \\"Z\\" Ng" <zoe@example.test>\r\n'
    'Subject: Grüße aus Köln – 日本語\r\n'
    'Message-ID: <utf8@example.org>\r\n'
    'MIME-Version: 1.0\r\n'
    'Content-Type: multipart/mixed; boundary="b1"\r\n'
    '\r\n'
    '--b1\r\n'
    'Content-Type: text/plain; charset=utf-8; name="Überblick.txt"\r\n'
    'Content-Description: Überblick\r\n'
    'Content-Transfer-Encoding: 8bit\r\n'
    '\r\n'
    'Schöne Grüße\r\n'
    '--b1\r\n'
    'Content-Type: message/global\r\n'
    '\r\n'
    'From: Ünal <unal@example.org>\r\n'
    'Subject: İç ünïcode\r\n'
    '\r\n'
    'inner\r\n'
    '--b1--\r\n').encode()
# 8-bit that is not UTF-8 (Latin-1): no client may take it as UTF-8.
LATIN1_MSG = (b"From: Ann <ann@example.org>\r\n"
              b"Subject: Caf\xe9 cr\xe8me\r\n\r\nx\r\n")


class Quoted(bytes):
    """An IMAP quoted string, unescaped."""


class Literal(bytes):
    """An IMAP literal."""


def parse_sexp(data, pos=0):
    """One IMAP value at data[pos:]: NIL is None, an atom or number
    bytes, a string Quoted or Literal, a list a list; returns (value,
    next position)."""
    if data[pos:pos + 1] == b"(":
        out, pos = [], pos + 1
        while data[pos:pos + 1] != b")":
            if data[pos:pos + 1] == b" ":
                pos += 1
                continue
            value, pos = parse_sexp(data, pos)
            out.append(value)
        return out, pos + 1
    if data[pos:pos + 1] == b'"':
        out, pos = bytearray(), pos + 1
        while data[pos:pos + 1] != b'"':
            if data[pos:pos + 1] == b"\\":
                pos += 1
            out += data[pos:pos + 1]
            pos += 1
        return Quoted(out), pos + 1
    m = re.match(rb"~?\{(\d+)\}\r\n", data[pos:])
    if m:
        start = pos + m.end()
        return Literal(data[start:start + int(m.group(1))]), \
            start + int(m.group(1))
    m = re.match(rb"[^ ()]+", data[pos:])
    atom = m.group(0)
    return (None if atom == b"NIL" else atom), pos + m.end()


def fetch_items(resp):
    """{item name: value} of one "* n FETCH (...)" response."""
    m = re.match(rb"\* \d+ FETCH ", resp)
    items, _ = parse_sexp(resp, m.end())
    return {items[i].decode(): items[i + 1]
            for i in range(0, len(items), 2)}


def outside_literals(resp):
    """The bytes of a response that are not inside a literal."""
    out, pos = b"", 0
    for m in re.finditer(rb"~?\{(\d+)\}\r\n", resp):
        if m.start() < pos:
            continue
        out += resp[pos:m.end()]
        pos = m.end() + int(m.group(1))
    return out + resp[pos:]


class Utf8(Base):
    """ENVELOPE and BODYSTRUCTURE of raw 8-bit headers: UTF-8 in quoted
    strings only for a client that enabled UTF8=ACCEPT or IMAP4rev2 (RFC
    9755 3, RFC 9051); a literal for any other client and for 8-bit that
    is not UTF-8; parameters in RFC 2231 form either way; message/global
    as a message under IMAP4rev2 (RFC 9051 7.5.2) and UTF8=ACCEPT (RFC
    9755 7), a basic body under IMAP4rev1 (RFC 3501 media-message)."""

    def setUp(self):
        super().setUp()
        self.deliver(UTF8_MSG)
        self.deliver(LATIN1_MSG)

    def fetch(self, enable):
        c = self.client(select=None)
        if enable:
            untagged = c.ok("ENABLE " + enable)
            self.assertEqual(untagged, [b"* ENABLED " + enable.encode()])
        c.ok("SELECT INBOX")
        untagged = c.ok("FETCH 1:2 (ENVELOPE BODY BODYSTRUCTURE)")
        fetches = [u for u in untagged if re.match(rb"\* \d+ FETCH", u)]
        self.assertEqual(len(fetches), 2, untagged)
        return fetches

    def check_envelope(self, env, kind):
        """The envelope of UTF8_MSG with each 8-bit string of type kind."""
        subject = "Grüße aus Köln – 日本語".encode()
        self.assertEqual(env[1], subject)
        self.assertIsInstance(env[1], kind)
        (frm,) = env[2]
        self.assertEqual(frm, ["Jürgen Müller".encode(), None, b"juergen",
                               b"example.org"])
        self.assertIsInstance(frm[0], kind)
        self.assertEqual(env[3], env[2])  # Sender and Reply-To: From
        self.assertEqual(env[4], env[2])
        (to,) = env[5]
        # Quoted-pair unquoted; '"' escaped again if quoted.
        self.assertEqual(to[0], 'Zoë "Z" Ng'.encode())
        self.assertIsInstance(to[0], kind)
        self.assertEqual(env[9], b"<utf8@example.org>")
        self.assertIsInstance(env[9], Quoted)

    def check_text_part(self, part, kind):
        self.assertEqual(part[:2], [b"text", b"plain"])
        # Raw UTF-8 in a parameter goes back as RFC 2231, 7-bit.
        self.assertEqual(part[2], [b"charset", b"utf-8", b"name*",
                                   b"utf-8''%C3%9Cberblick.txt"])
        self.assertTrue(all(isinstance(x, Quoted) for x in part[2]))
        self.assertEqual(part[4], "Überblick".encode())
        self.assertIsInstance(part[4], kind)
        self.assertEqual(part[5:7], [b"8bit",
                                     str(len("Schöne Grüße".encode()))
                                     .encode()])

    def check_latin1(self, resp):
        env = fetch_items(resp)["ENVELOPE"]
        self.assertEqual(env[1], b"Caf\xe9 cr\xe8me")
        self.assertIsInstance(env[1], Literal)

    def test_not_enabled(self):
        resp, latin1 = self.fetch(None)
        # No 8-bit byte outside a literal (RFC 9755 3: no UTF-8 in quoted
        # strings unless enabled), yet every byte is there.
        self.assertTrue(all(b < 0x80 for b in outside_literals(resp)))
        self.assertTrue(all(b < 0x80 for b in outside_literals(latin1)))
        items = fetch_items(resp)
        self.check_envelope(items["ENVELOPE"], Literal)
        self.check_latin1(latin1)
        for name in ("BODY", "BODYSTRUCTURE"):
            text, glob = items[name][0], items[name][1]
            self.check_text_part(text, Literal)
            # message/global is a basic body to an IMAP4rev1 client.
            self.assertEqual(glob[:7], [b"message", b"global", None, None,
                                        None, b"7bit", glob[6]])
            self.assertEqual(len(glob), 7 if name == "BODY" else 11)

    def check_enabled(self, enable):
        resp, latin1 = self.fetch(enable)
        items = fetch_items(resp)
        self.check_envelope(items["ENVELOPE"], Quoted)
        self.assertIn('"Grüße aus Köln – 日本語"'.encode(), resp)
        self.assertIn('"Zoë \\"Z\\" Ng"'.encode(), resp)
        # Latin-1 is no UTF-8: still a literal.
        self.check_latin1(latin1)
        for name in ("BODY", "BODYSTRUCTURE"):
            text, glob = items[name][0], items[name][1]
            self.check_text_part(text, Quoted)
            # message/global as message/rfc822: envelope, body, lines.
            self.assertEqual(glob[:2], [b"message", b"global"])
            inner = glob[7]
            self.assertEqual(inner[1], "İç ünïcode".encode())
            self.assertIsInstance(inner[1], Quoted)
            self.assertEqual(inner[2][0][0], "Ünal".encode())
            self.assertEqual(glob[8][:2], [b"text", b"plain"])
            # Lines of the attached message: its last has no CRLF of its
            # own (that one belongs to the boundary), as Dovecot counts.
            self.assertEqual(glob[9], b"3")
            self.assertEqual(len(glob), 10 if name == "BODY" else 14)

    def test_utf8_accept(self):
        self.check_enabled("UTF8=ACCEPT")

    def test_imap4rev2(self):
        self.check_enabled("IMAP4rev2")


class Seen(Base):
    def test_implicit_seen_and_peek(self):
        for i in range(3):
            self.deliver(message("s%d" % i))
        c = self.client()
        other = self.client()
        r = self.fetch1(c, "FETCH 1 BODY.PEEK[]")
        self.assertNotIn(b"FLAGS", r)
        untagged = c.ok("FETCH 1:2 BODY[TEXT]")
        fetches = [u for u in untagged if b"FETCH" in u]
        self.assertEqual(len(fetches), 2, untagged)
        for f in fetches:
            self.assertRegex(f, rb"FLAGS \(\\Seen( \\Recent)?\)\)$")
        # Our own change is not reported a second time.
        untagged = c.ok("NOOP")
        self.assertEqual([u for u in untagged if b"FETCH" in u], [])
        # Already seen: no FLAGS.
        r = self.fetch1(c, "FETCH 1 BODY[TEXT]")
        self.assertNotIn(b"FLAGS", r)
        r = self.fetch1(c, "FETCH 1:* FLAGS" if False else "FETCH 3 FLAGS")
        self.assertNotIn(b"\\Seen", r)
        # The other session hears of it at its next command.
        untagged = other.ok("NOOP")
        seen = [u for u in untagged if b"\\Seen" in u]
        self.assertEqual(len(seen), 2, untagged)

    def test_examine_sets_nothing(self):
        self.deliver(message("ro"))
        c = self.client(select=None)
        c.ok("EXAMINE INBOX")
        r = self.fetch1(c, "FETCH 1 (BODY[] FLAGS)")
        self.assertIn(b"FLAGS ()", r)
        c.ok("SELECT INBOX")
        r = self.fetch1(c, "FETCH 1 FLAGS")
        self.assertNotIn(b"\\Seen", r)

    def test_condstore_modseq(self):
        for i in range(3):
            self.deliver(message("c%d" % i))
        c = self.client()
        untagged = c.ok("FETCH 1:* (FLAGS MODSEQ)")
        before = max(int(m) for m in re.findall(rb"MODSEQ \((\d+)\)",
                                                b"".join(untagged)))
        # CONDSTORE is on now: every FETCH carries MODSEQ.
        r = self.fetch1(c, "FETCH 2 BODY[TEXT]")
        m2 = re.search(rb"MODSEQ \((\d+)\)", r)
        self.assertIsNotNone(m2, r)
        self.assertGreater(int(m2.group(1)), before)
        untagged = c.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % before)
        fetches = [u for u in untagged if b"FETCH" in u]
        self.assertEqual(len(fetches), 1, untagged)
        self.assertTrue(fetches[0].startswith(b"* 2 FETCH"), fetches)


class Expunges(Base):
    def import_deleted(self, n_keep, n_deleted):
        """bob's INBOX: n_keep messages, then n_deleted with \\Deleted."""
        src = os.path.join(self.tmp, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(src, sub), exist_ok=True)
        for i in range(n_keep + n_deleted):
            flags = "T" if i >= n_keep else ""
            with open(os.path.join(src, "cur", "%d.M%dP1.h:2,%s"
                                   % (1000 + i, i, flags)), "wb") as f:
                f.write(message("imported %d" % i))
        status, out, err = run_cli(["import", "maildir", src,
                                    "bob@example.test", "-c",
                                    self.d.config_path])
        self.assertEqual(status, 0, out + err)

    def test_expunge_issued(self):
        self.import_deleted(2, 2)
        a = self.client("bob@example.test")
        b = self.client("bob@example.test")
        b.ok("CLOSE")
        untagged, tagged = a.run("FETCH 1:4 (UID RFC822.SIZE)")
        self.assertTrue(tagged.startswith("NO [EXPUNGEISSUED]"), tagged)
        fetches = [u for u in untagged if b"FETCH" in u]
        self.assertEqual(len(fetches), 2, untagged)
        self.assertEqual([u for u in untagged if b"EXPUNGE" in u], [])
        # UID FETCH may report the expunges.
        untagged = a.ok("UID FETCH 1:* FLAGS")
        self.assertEqual(len([u for u in untagged if b"EXPUNGE" in u]), 2)

    def test_changedsince_vanished(self):
        self.import_deleted(3, 2)
        a = self.client("bob@example.test", select=None)
        a.ok("ENABLE QRESYNC")
        untagged = a.ok("SELECT INBOX")
        hms = [u for u in untagged if b"HIGHESTMODSEQ" in u][0]
        modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", hms).group(1))
        b = self.client("bob@example.test")
        b.ok("FETCH 2 BODY[TEXT]")  # \Seen: a new MODSEQ
        b.ok("CLOSE")  # expunges UIDs 4 and 5
        untagged = a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)"
                        % modseq)
        self.assertEqual(untagged[0], b"* VANISHED (EARLIER) 4:5")
        # Then the session's own sync reports the same changes as
        # unsolicited responses (VANISHED without EARLIER, FETCH).
        end = untagged.index(b"* VANISHED 4:5")
        fetches = [u for u in untagged[:end] if b"FETCH" in u]
        self.assertEqual(len(fetches), 1, untagged)
        self.assertRegex(fetches[0], rb"^\* 2 FETCH \(UID 2 FLAGS "
                         rb"\(\\Seen\) MODSEQ \(\d+\)\)$")
        # Without QRESYNC, VANISHED is refused.
        c = self.client("bob@example.test")
        _, tagged = c.run("UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)")
        self.assertTrue(tagged.startswith("BAD"), tagged)


class Large(Base):
    def sanitized(self):
        with open("/proc/%d/maps" % self.d.proc.pid) as f:
            return "libasan" in f.read()

    def rss_kb(self):
        with open("/proc/%d/status" % self.d.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def test_slow_reader_20mb(self):
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        body = (line + b"\r\n") * (20 * 1024 * 1024 // (len(line) + 2))
        self.deliver(message("big", body.decode()))
        for i in range(3):
            self.deliver(message("small %d" % i))
        raw = self.stored(1)
        c = self.client()
        base = self.rss_kb()
        c.send(b"big FETCH 1:* (BODY.PEEK[] RFC822.SIZE)\r\n")
        time.sleep(3)  # the server fills the socket and must stop there
        grown = self.rss_kb() - base
        # ASan keeps freed memory in quarantine: no measure there.
        if not self.sanitized():
            self.assertLess(grown, 8 * 1024,
                            "server RSS grew by %d kB" % grown)
        first = c.response()
        self.assertEqual(hashlib.sha256(literal_of(first, b"BODY[]"))
                         .hexdigest(), hashlib.sha256(raw).hexdigest())
        for i in range(3):
            self.assertIn(b"BODY[]", c.response())
        self.assertTrue(c.response().startswith(b"big OK"))
        # The session is still fine.
        self.fetch1(c, "FETCH 2 FLAGS")

    def test_many_messages(self):
        for i in range(40):
            self.deliver(message("n%d" % i, "x" * 2000 + "\r\n"))
        c = self.client()
        untagged = c.ok("FETCH 1:* (ENVELOPE BODY.PEEK[])")
        self.assertEqual(len([u for u in untagged if b"FETCH" in u]), 40)


if __name__ == "__main__":
    harness.main()
