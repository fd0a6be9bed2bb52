#!/usr/bin/env python3
"""mbsync (isync), a real IMAP sync client, against the real daemon.

Mail is delivered to an account with a few folders, one with a
non-ASCII name (a ~1 MB message and one with raw UTF-8 headers among it); mbsync pulls it all into a local
Maildir, over implicit TLS with AUTHENTICATE PLAIN in one test and over
STARTTLS with SCRAM-SHA-256 and arrival dates copied both ways in
another, and with LOGIN and UIDPLUS, MOVE and COMPRESS turned off in a
third (the test certificate is self-signed: mbsync trusts it through
CertificateFile). Each local file must hold the server's bytes (mbsync
turns CRLF into LF and adds its X-TUID line) and the flags the server
has. Then flags are changed and a
message is trashed and one written locally, and a sync pushes that up
(UID STORE, APPEND with APPENDUID, UID MOVE to Trash, expunge); imaplib
checks the server. A message expunged on the server must then vanish
from the Maildir, and a sync with nothing to do must change nothing.

isync is installed with apt-get when it is missing and we are root;
otherwise the tests are skipped with the reason."""

import base64
import glob
import imaplib
import os
import random
import re
import shutil
import string
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = "correct horse battery"
USER = "demo@example.test"
# Generous: mbsync runs on a busy 2-core machine, maybe against a
# sanitizer build. Never a measure of speed.
MBSYNC_TIMEOUT = 600

FLAG_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R",
                "\\Seen": "S", "\\Deleted": "T"}


def sasl_modules_present():
    """Cyrus SASL's PLAIN and SCRAM modules, which mbsync authenticates
    with (Debian's libsasl2-modules: isync does not depend on it)."""
    return all(glob.glob("/usr/lib/*/sasl2/lib%s.so*" % m) or
               glob.glob("/usr/lib/sasl2/lib%s.so*" % m)
               for m in ("plain", "scram"))


def ensure_mbsync():
    """The mbsync binary, installed (Debian package isync, with the SASL
    modules) with apt-get when missing; None with a reason when that
    cannot be done here."""
    path = shutil.which("mbsync")
    if path and sasl_modules_present():
        return path, None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, ("mbsync or SASL modules missing and apt-get "
                      "unavailable (not root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Another test may be installing its client at the same time.
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    install = ["apt-get"] + lock + ["install", "-y", "-q", "isync",
                                    "libsasl2-modules"]
    for cmd in (install, ["apt-get"] + lock + ["update", "-q"], install):
        res = subprocess.run(cmd, capture_output=True, env=env, timeout=600)
        if res.returncode == 0 and "install" in cmd:
            break
    path = shutil.which("mbsync")
    if path and sasl_modules_present():
        return path, None
    return None, "apt-get install isync failed (no network?): %s" % (
        res.stderr.decode(errors="replace")[-300:])


def plain(subject, body):
    return ("From: Ann <ann@example.org>\r\nTo: demo@example.test\r\n"
            "Date: Tue, 1 Jul 2025 10:52:37 +0200\r\n"
            "Message-ID: <%s@example.org>\r\nSubject: %s\r\n\r\n%s"
            % (subject.replace(" ", "."), subject, body)).encode()


def large_message():
    """About 1 MB of text lines, the same every run."""
    rnd = random.Random(1)
    alphabet = string.ascii_letters + string.digits + "+/"
    lines = ["".join(rnd.choice(alphabet) for _ in range(76))
             for _ in range(13000)]
    return plain("large", "\r\n".join(lines) + "\r\n")


# Raw 8-bit UTF-8 in the header and body (RFC 6532), and body lines that
# look like IMAP responses: they must travel inside the literal.
UTF8_MSG = (
    "From: Jürgen Müller <juergen@example.org>\r\n"
    "To: Zoë <demo@example.test>\r\n"
    "Date: Wed, 2 Jul 2025 08:00:00 +0000\r\n"
    "Message-ID: <utf8@example.org>\r\n"
    "Subject: Grüße aus Köln – 日本語\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Schöne Grüße!\r\n"
    ")\r\n"
    "* 1 FETCH (FLAGS (\\Deleted))\r\n"
    "a1 OK done\r\n").encode()

# Written by a local MUA, raw UTF-8 subject included: mbsync never
# ENABLEs UTF8=ACCEPT, so this is an 8-bit header from an IMAP4rev1 client.
LOCAL_NEW = ("From: Demo <demo@example.test>\n"
             "To: Ann <ann@example.org>\n"
             "Subject: written offline – ünïcode\n"
             "Message-ID: <offline@example.test>\n"
             "\n"
             "Composed in the local Maildir.\n").encode()


def lf(data):
    return data.replace(b"\r\n", b"\n")


def strip_tuid(data):
    """LF text without the X-TUID line mbsync puts at the end of the
    header of each message it stores, on either side."""
    head, sep, body = data.partition(b"\n\n")
    lines = [h for h in head.split(b"\n") if not h.startswith(b"X-TUID: ")]
    return b"\n".join(lines) + sep + body


def mutf7_decode(name):
    """A modified UTF-7 mailbox name (RFC 3501 5.1.3) as text."""
    def chunk(m):
        if not m.group(1):
            return "&"
        b64 = m.group(1).replace(",", "/")
        return base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode(
            "utf-16-be")
    return re.sub(r"&([^-]*)-", chunk, name)


def parse_flags(text):
    return {f for f in text.split() if f != "\\Recent"}


class Base(harness.DaemonTest):
    """A daemon with an imap (STARTTLS) and an imaps listener on
    loopback; mbsync's config, state and Maildir in the temp dir."""

    LISTENERS = (("imap", "imap", 'tls = "starttls"'),
                 ("imaps", "imap", 'tls = "implicit"'))

    def setUp(self):
        self.mbsync, why = ensure_mbsync()
        if self.mbsync is None:
            self.skipTest(why)
        super().setUp()
        self.imap_port, self.imaps_port = self.d.ports[:2]
        self.local = os.path.join(self.tmp, "Mail")
        os.makedirs(self.local)
        self.runs = 0

    # --- the server side ---------------------------------------------------

    def imap(self):
        """imaplib over the plain port: LOGIN is allowed from loopback."""
        m = imaplib.IMAP4("127.0.0.1", self.imap_port,
                          timeout=harness.IO_TIMEOUT)
        self.assertEqual(m.login(USER, PASSWORD)[0], "OK")
        return m

    def server_boxes(self, m):
        typ, data = m.list()
        self.assertEqual(typ, "OK")
        names = []
        for line in data:
            match = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?$', line)
            self.assertIsNotNone(match, line)
            names.append(match.group(2).decode())
        return sorted(names)

    def server_box(self, m, name):
        """{uid: (flags, bytes)} of one mailbox, read without \\Seen."""
        typ, _ = m.select('"%s"' % name)
        self.assertEqual(typ, "OK", name)
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[0].decode()
            uid = int(re.search(r"UID (\d+)", head).group(1))
            flags = re.search(r"FLAGS \(([^)]*)\)", head).group(1)
            out[uid] = (parse_flags(flags), item[1])
        m.unselect()  # CLOSE would expunge
        return out

    def server_state(self):
        """{mailbox: sorted [(flags, bytes)]} of the whole account."""
        m = self.imap()
        try:
            return {mutf7_decode(name):
                    sorted((sorted(f), b) for f, b in
                           self.server_box(m, name).values())
                    for name in self.server_boxes(m)}
        finally:
            m.logout()

    # --- the local side ----------------------------------------------------

    def local_files(self):
        """{folder: [(path, flag letters, bytes)]} of the Maildir."""
        out = {}
        for root, dirs, _ in os.walk(self.local):
            if "cur" not in dirs:
                continue
            # mbsync 1.4 names the folder as the wire does (modified
            # UTF-7), later ones in UTF-8.
            folder = mutf7_decode(os.path.relpath(root, self.local)
                                  .replace(os.sep, "/"))
            out[folder] = []
            for sub in ("cur", "new"):
                for name in sorted(os.listdir(os.path.join(root, sub))):
                    path = os.path.join(root, sub, name)
                    letters = name.split(":2,", 1)[1] if ":2," in name else ""
                    with open(path, "rb") as f:
                        out[folder].append((path, letters, f.read()))
        return out

    def local_state(self):
        return {folder: sorted((letters, strip_tuid(data))
                               for _, letters, data in files)
                for folder, files in self.local_files().items()}

    def local_file(self, folder, needle):
        """The one local file of folder whose bytes hold needle."""
        found = [(p, letters) for p, letters, data in
                 self.local_files()[folder] if needle in data]
        self.assertEqual(len(found), 1, (folder, needle))
        return found[0]

    def set_local_flags(self, path, letters):
        """Renames a Maildir file to carry letters, into cur/ as an MUA
        does."""
        folder = os.path.dirname(os.path.dirname(path))
        base = os.path.basename(path).split(":2,", 1)[0]
        os.rename(path, os.path.join(folder, "cur", base + ":2," +
                                     "".join(sorted(letters))))

    # --- mbsync -------------------------------------------------------------

    def write_rc(self, tls, mechs, extra="", channel=""):
        port = self.imaps_port if tls == "IMAPS" else self.imap_port
        self.rc = os.path.join(self.tmp, "mbsyncrc")
        with open(self.rc, "w") as f:
            f.write("""\
IMAPAccount moon
# The certificate names localhost; mbsync checks the name it connects to.
Host localhost
Port {port}
User {user}
Pass "{password}"
SSLType {tls}
CertificateFile {cert}
AuthMechs {mechs}
Timeout 300
{extra}

IMAPStore moon-far
Account moon
Trash Trash

MaildirStore moon-near
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel moon
Far :moon-far:
Near :moon-near:
# mbsync's own advice: a Trash it moves to is not synced as well.
Patterns * !Trash
Create Both
Expunge Both
SyncState *
Sync All
{channel}
""".format(port=port, user=USER, password=PASSWORD, tls=tls,
                cert=self.cert, mechs=mechs, local=self.local,
                extra=extra, channel=channel))
        os.chmod(self.rc, 0o600)

    def sync(self):
        """Runs mbsync once; returns its protocol trace."""
        self.runs += 1
        trace = os.path.join(self.tmp, "mbsync-%d.log" % self.runs)
        with open(trace, "wb") as out:
            res = subprocess.run(
                [self.mbsync, "-Dn", "-c", self.rc, "moon"],
                stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=MBSYNC_TIMEOUT,
                env=dict(os.environ, HOME=self.tmp))
        with open(trace, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        # Commands, replies and mbsync's own messages, without the
        # message bodies the trace also holds.
        short = "\n".join(line for line in log.splitlines()
                          if re.match(r"(>>>|\d+ |\* |[A-Z][a-z]+ )", line)
                          and len(line) < 300)
        self.assertEqual(res.returncode, 0, short[-6000:] + "\n" +
                         self.d.log()[-3000:])
        for word in ("Error", "Warning", "warning:", "error:"):
            self.assertNotIn(word, log, short[-6000:])
        return log

    # --- the scenario -------------------------------------------------------

    def fill(self):
        """Mail in INBOX (delivered), in Work and Work/Sub (appended with
        flags), a draft; returns the bytes delivered or appended."""
        msgs = {"hello": plain("hello", "Hello.\r\n"),
                "large": large_message(),
                "utf8": UTF8_MSG,
                "work": plain("work item", "Ship it.\r\n"),
                "sub": plain("sub item", "Deep.\r\n"),
                "cafe": plain("cafe", "Unicode folder.\r\n"),
                "draft": plain("draft", "Unfinished\r\n")}
        for key in ("hello", "large", "utf8"):
            self.deliver(msgs[key])
        m = self.imap()
        # "Café/Ünter" in modified UTF-7, as imaplib sends names as
        # they are.
        for name in ("Work", "Work/Sub", "Caf&AOk-/&ANw-nter"):
            self.assertEqual(m.create(name)[0], "OK")
        self.assertEqual(m.append("Work", r"(\Flagged \Answered)", None,
                                  msgs["work"])[0], "OK")
        self.assertEqual(m.append("Work/Sub", r"(\Seen)", None,
                                  msgs["sub"])[0], "OK")
        self.assertEqual(m.append("Caf&AOk-/&ANw-nter", r"(\Flagged)", None,
                                  msgs["cafe"])[0], "OK")
        self.assertEqual(m.append("Drafts", r"(\Draft \Seen)", None,
                                  msgs["draft"])[0], "OK")
        m.select("INBOX")
        self.assertEqual(m.uid("STORE", "1", "+FLAGS", r"(\Seen)")[0], "OK")
        m.logout()
        return msgs

    def assert_in_sync(self):
        """Every server message is in the Maildir with its bytes and
        flags, and nothing else is."""
        server = self.server_state()
        local = self.local_state()
        synced = {k: v for k, v in server.items() if k != "Trash"}
        self.assertEqual(sorted(local), sorted(synced))
        for name, msgs in synced.items():
            want = sorted(("".join(sorted(FLAG_LETTERS[f] for f in flags
                                          if f in FLAG_LETTERS)),
                           strip_tuid(lf(data)))
                          for flags, data in msgs)
            got = local[name]
            self.assertEqual(len(got), len(want), name)
            for (wl, wd), (gl, gd) in zip(want, got):
                self.assertEqual(gd, wd, name)
                self.assertEqual(gl, wl, name)
        return server

    def scenario(self, tls, mechs, extra="", channel=""):
        self.write_rc(tls, mechs, extra, channel)
        msgs = self.fill()
        log = self.sync()
        self.assertIn("BODY.PEEK[]", log)
        server = self.assert_in_sync()
        self.assertEqual(sorted(server), [
            "Archive", "Café", "Café/Ünter", "Drafts", "INBOX", "Junk",
            "Sent", "Trash", "Work", "Work/Sub"])
        self.assertEqual(server["Café/Ünter"], [(["\\Flagged"],
                                                 msgs["cafe"])])
        # What was delivered is what the server keeps (after the two
        # fields delivery adds) and mbsync stored.
        inbox = [data for _, data in server["INBOX"]]
        for key in ("hello", "large", "utf8"):
            self.assertIn(b"Return-Path: <ann@example.org>\r\n"
                          b"Delivered-To: demo@example.test\r\n" + msgs[key],
                          inbox, key)
        self.assertIn((["\\Answered", "\\Flagged"], msgs["work"]),
                      server["Work"])
        self.assertIn((["\\Draft", "\\Seen"], msgs["draft"]),
                      server["Drafts"])
        self.assertEqual(self.local_file("INBOX", b"Hello.")[1], "S")
        self.assertEqual(self.local_file("INBOX", "Köln".encode())[1], "")
        self.assertEqual(self.local_file("Work", b"Ship it.")[1], "FR")

        # Offline: read one, flag another, trash one, write a new one.
        path, _ = self.local_file("INBOX", b"Hello.")
        self.set_local_flags(path, "FS")
        path, _ = self.local_file("INBOX", "Köln".encode())
        self.set_local_flags(path, "S")
        path, _ = self.local_file("Work", b"Ship it.")
        self.set_local_flags(path, "FRT")
        new = os.path.join(self.local, "Work", "Sub", "new",
                           "1751360000.offline.host:2,S")
        with open(new, "wb") as f:
            f.write(LOCAL_NEW)
        # Its arrival time, for CopyArrivalDate: 2025-07-01 12:00:00 UTC.
        os.utime(new, (1751371200, 1751371200))
        log = self.sync()
        self.assertRegex(log, r"UID STORE \d+ \+FLAGS")
        self.push_log = log

        m = self.imap()
        inbox = self.server_box(m, "INBOX")
        by_subject = {re.search(rb"Subject: ([^\r]*)", d).group(1): f
                      for f, d in inbox.values()}
        self.assertEqual(by_subject[b"hello"], {"\\Seen", "\\Flagged"})
        self.assertEqual(by_subject["Grüße aus Köln – 日本語".encode()],
                         {"\\Seen"})
        self.assertEqual(by_subject[b"large"], set())
        # The trashed message was moved to Trash, its flags kept.
        self.assertEqual(self.server_box(m, "Work"), {})
        trash = list(self.server_box(m, "Trash").values())
        self.assertEqual(len(trash), 1)
        self.assertEqual(trash[0][1], msgs["work"])
        self.assertTrue({"\\Flagged", "\\Answered"} <= trash[0][0])
        # The offline message, appended with its flag, CRLF on the wire.
        sub = sorted(self.server_box(m, "Work/Sub").values(),
                     key=lambda fd: fd[1])
        self.assertEqual(len(sub), 2)
        appended = [fd for fd in sub if b"offline" in fd[1]]
        self.assertEqual(len(appended), 1)
        self.assertEqual(strip_tuid(lf(appended[0][1])), LOCAL_NEW)
        self.assertEqual(appended[0][0], {"\\Seen"})
        self.assertFalse(os.path.exists(new))
        m.logout()
        self.assert_in_sync()

        # Expunged on the server: gone from the Maildir after a sync.
        m = self.imap()
        m.select("INBOX")
        typ, data = m.uid("SEARCH", "SUBJECT", "large")
        self.assertEqual(typ, "OK")
        (uid,) = data[0].split()
        self.assertEqual(m.uid("STORE", uid, "+FLAGS.SILENT",
                               r"(\Deleted)")[0], "OK")
        self.assertEqual(m.uid("EXPUNGE", uid)[0], "OK")
        m.logout()
        self.sync()
        server = self.assert_in_sync()
        self.assertEqual(len(server["INBOX"]), 2)
        self.assertFalse(any(b"Subject: large" in d for _, d in
                             self.local_state()["INBOX"]))

        # Nothing left to do: a sync changes nothing on either side.
        before_local = self.local_state()
        log = self.sync()
        self.assertEqual(self.server_state(), server)
        self.assertEqual(self.local_state(), before_local)
        self.assertNotRegex(log, r">>> \d+ (APPEND|UID STORE|UID MOVE)")


class Mbsync(Base):
    def test_imaps_plain(self):
        self.scenario("IMAPS", "PLAIN")
        self.assertIn("APPENDUID", self.push_log)
        self.assertIn("COMPRESS DEFLATE", self.push_log)
        self.assertRegex(self.push_log, r">>> \d+ UID MOVE \d+ \"Trash\"")
        self.assertRegex(self.push_log, r">>> \d+ UID EXPUNGE \d+")

    def test_starttls_scram_arrival_dates(self):
        # CopyArrivalDate: FETCH INTERNALDATE down, APPEND with a date up.
        self.scenario("STARTTLS", "SCRAM-SHA-256",
                      channel="CopyArrivalDate yes")
        self.assertRegex(self.push_log, r'>>> \d+ APPEND "Work/Sub" '
                         r'\(\\Seen\) "01-Jul-2025 12:00:00 \+0000" ')
        self.assertIn("APPENDUID", self.push_log)
        self.assertRegex(self.push_log, r">>> \d+ UID MOVE \d+ \"Trash\"")
        # Each local file's time is its message's INTERNALDATE.
        m = self.imap()
        wire = {mutf7_decode(n): n for n in self.server_boxes(m)}
        for name, files in self.local_files().items():
            typ, _ = m.select('"%s"' % wire[name])
            self.assertEqual(typ, "OK")
            typ, data = m.uid("FETCH", "1:*", "(INTERNALDATE BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            dates = {strip_tuid(lf(item[1])): time.mktime(
                         imaplib.Internaldate2tuple(item[0]))
                     for item in data if isinstance(item, tuple)}
            self.assertEqual(len(dates), len(files), name)
            for path, _, body in files:
                self.assertEqual(os.stat(path).st_mtime,
                                 dates[strip_tuid(body)], path)
            m.unselect()
        m.logout()
        self.assertIn(1751371200.0, [
            os.stat(p).st_mtime for p, _, body in
            self.local_files()["Work/Sub"] if b"offline" in body])

    def test_without_uidplus_move_compress(self):
        # mbsync then trashes with COPY and expunges with CLOSE, instead of
        # UID MOVE and UID EXPUNGE, uncompressed.
        self.scenario("STARTTLS", "LOGIN",
                      "DisableExtensions UIDPLUS MOVE COMPRESS=DEFLATE")
        self.assertRegex(self.push_log, r">>> \d+ UID COPY \d+ \"Trash\"\r?"
                         r"\n.*COPYUID[^\n]*\n>>> \d+ CLOSE")
        self.assertNotIn("UID EXPUNGE", self.push_log)
        self.assertNotIn("COMPRESS DEFLATE", self.push_log)


if __name__ == "__main__":
    harness.main()
