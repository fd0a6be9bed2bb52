#!/usr/bin/env python3
"""`moonpost import maildir` and `moonpost export maildir` through the real
binary, on a dev data directory: a Dovecot-style tree in, a second run that
adds nothing, out again, into a second account and out once more, which
must give the very same tree."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import run_cli  # noqa: E402

EX_DATAERR, EX_NOINPUT, EX_NOUSER, EX_CANTCREAT = 65, 66, 67, 73

ALICE = "alice@example.test"
BOB = "bob@example.test"

MSG_LF = b"From: a@example.test\nSubject: one\n\nfirst line\nsecond line\n"
MSG_CRLF = b"From: b@example.test\r\nSubject: two\r\n\r\nbody\r\n"
MSG_NEW = b"Subject: new\n\nnot seen yet\n"


def write(path, data, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def make_maildir(path):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)


def is_message(path):
    return os.path.basename(os.path.dirname(path)) == "cur"


def read_tree(root):
    """{relative path: (bytes, mtime)} of every file under root; the time
    only for messages (it is their internal date)."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                mtime = int(os.stat(path).st_mtime)
                files[os.path.relpath(path, root)] = (
                    f.read(), mtime if is_message(path) else None)
    return files


class ImportExport(harness.TempDirTest):
    def setUp(self):
        super().setUp()
        self.data = os.path.join(self.tmp, "data")
        harness.start_dev(self.tmp, self.data).stop()
        self.src = os.path.join(self.tmp, "Maildir")
        self.build_source()
        for address in (ALICE, BOB):
            status, _, err = self.cli("user", "add", address,
                                      "--password-stdin", stdin="pw\n")
            self.assertEqual(status, 0, err)

    def cli(self, *args, stdin=None):
        return run_cli(list(args) + ["--data-dir", self.data],
                       input_text=stdin)

    def build_source(self):
        src = self.src
        make_maildir(src)
        write(os.path.join(src, "dovecot-uidlist"),
              "3 V1700000000 N12 G0123456789abcdef0123456789abcdef\n"
              "4 :1000.M1P1.oldhost,S=60:2,S\n"
              "6 W50 :1001.M2P1.oldhost,S=48:2,\n"
              "8 :0999.M9P1.oldhost:2,S\n"
              "10 :1002.M3P1.oldhost\n")
        write(os.path.join(src, "dovecot-keywords"), "0 $Junk\n1 Work\n")
        write(os.path.join(src, "cur", "1000.M1P1.oldhost,S=60:2,S"),
              MSG_LF, 1600000000)
        write(os.path.join(src, "cur", "1001.M2P1.oldhost,S=48:2,FRb"),
              MSG_CRLF, 1600000100)
        write(os.path.join(src, "new", "1002.M3P1.oldhost"),
              MSG_NEW, 1600000200)
        write(os.path.join(src, "cur", "1003.M4P1.oldhost:2,Sa"),
              MSG_LF, 1600000300)
        folder = os.path.join(src, ".Entw&APw-rfe")
        make_maildir(folder)
        write(os.path.join(folder, "dovecot-uidlist"),
              "1 1500000000 3\n1 2000.E.oldhost\n2 2001.F.oldhost\n")
        write(os.path.join(folder, "cur", "2000.E.oldhost:2,D"),
              MSG_LF, 1500000000)
        write(os.path.join(folder, "cur", "2001.F.oldhost:2,S"),
              MSG_CRLF, 1500000001)
        make_maildir(os.path.join(src, ".Lists.dev"))
        write(os.path.join(src, ".Lists.dev", "cur", "3000.G.oldhost:2,"),
              MSG_CRLF, 1400000000)
        write(os.path.join(src, "subscriptions"),
              "V\t2\n\nINBOX\nEntw&APw-rfe\nLists\tdev\n")

    def test_round_trip(self):
        status, out, err = self.cli("import", "maildir", self.src, ALICE)
        self.assertEqual(status, 0, out + err)
        self.assertEqual(err, "")  # not a terminal: no progress line
        # SOURCE BYTES AS-CRLF STORED BYTES NEW RESULT MAILBOX
        self.assertRegex(out, r"\n +4 +\d+ +\d+ +4 +\d+ +4  ok +INBOX\n")
        self.assertRegex(out, r"\n +2 +\d+ +\d+ +2 +\d+ +2  ok +Entwürfe\n")
        self.assertRegex(out, r"\n +1 +\d+ +\d+ +1 +\d+ +1  ok +Lists/dev\n")
        self.assertNotIn("problems:", out)

        # Twice: nothing new, and the summary still matches.
        status, again, err = self.cli("import", "maildir", self.src, ALICE)
        self.assertEqual(status, 0, again + err)
        self.assertEqual(again, re.sub(r" +\d+(  ok )", r"        0\1", out))

        dest = os.path.join(self.tmp, "out")
        status, out, err = self.cli("export", "maildir", ALICE, dest)
        self.assertEqual(status, 0, out + err)
        tree = read_tree(dest)

        # UIDVALIDITY and UIDs as the old server had them; the file it
        # did not list comes after its NEXTUID.
        uidlist = tree["dovecot-uidlist"][0].decode().splitlines()
        self.assertEqual(uidlist[0], "3 V1700000000 N13")
        self.assertEqual([line.split(" ")[0] for line in uidlist[1:]],
                         ["4", "6", "10", "12"])
        self.assertEqual(tree["dovecot-keywords"][0], b"0 $Junk\n1 Work\n")
        self.assertEqual(tree["subscriptions"][0].decode(),
                         "V\t2\n\nINBOX\nArchive\nDrafts\nEntw&APw-rfe\n"
                         "Junk\nLists\tdev\nSent\nTrash\n")
        names = {os.path.basename(p): v for p, v in tree.items()
                 if p.startswith("cur/")}
        by_uid = {n.split(".")[1].split("V")[0]: (n, v)
                  for n, v in names.items()}
        name, (body, mtime) = by_uid["M6"]
        self.assertTrue(name.endswith(":2,FRb"), name)
        self.assertEqual((body, mtime), (MSG_CRLF, 1600000100))
        name, (body, mtime) = by_uid["M4"]
        self.assertTrue(name.endswith(":2,S"), name)
        self.assertEqual(body, MSG_LF.replace(b"\n", b"\r\n"))
        self.assertEqual(mtime, 1600000000)
        self.assertTrue(by_uid["M12"][0].endswith(":2,Sa"))
        self.assertIn(".Entw&APw-rfe/dovecot-uidlist", tree)
        self.assertTrue(tree[".Entw&APw-rfe/dovecot-uidlist"][0]
                        .startswith(b"3 V1500000000 N3\n1 :"))

        # Into a second account, and out again: the same tree, byte for
        # byte (names carry date, UID, UIDVALIDITY, size and flags).
        status, out, err = self.cli("import", "maildir", dest, BOB)
        self.assertEqual(status, 0, out + err)
        dest2 = os.path.join(self.tmp, "out2")
        status, out, err = self.cli("export", "maildir", BOB, dest2)
        self.assertEqual(status, 0, out + err)
        self.assertEqual(read_tree(dest2), tree)

        # --lf: LF bodies, with the CRLF size in W=.
        dest3 = os.path.join(self.tmp, "out3")
        status, out, err = self.cli("export", "maildir", BOB, dest3, "--lf")
        self.assertEqual(status, 0, out + err)
        tree3 = read_tree(dest3)
        messages = [p for p in tree3 if is_message(p)]
        self.assertEqual(len(messages),
                         len([p for p in tree if is_message(p)]))
        for path in messages:
            body = tree3[path][0]
            self.assertNotIn(b"\r", body, path)
            self.assertIn(",S=%d," % len(body), path)
            self.assertIn(",W=%d:2," % (len(body) + body.count(b"\n")),
                          path)

    def test_refusals(self):
        status, _, err = self.cli("import", "maildir", self.src,
                                  "ghost@example.test")
        self.assertEqual(status, EX_NOUSER)
        self.assertIn("--force", err)
        status, _, err = self.cli("import", "maildir",
                                  os.path.join(self.tmp, "missing"), ALICE)
        self.assertEqual(status, EX_NOINPUT)
        # An account without mail has nothing to export; one with mail
        # is not written over a directory that holds something.
        dest = os.path.join(self.tmp, "full")
        status, _, err = self.cli("export", "maildir", ALICE, dest)
        self.assertEqual(status, EX_NOUSER)
        self.assertFalse(os.path.exists(dest))
        status, out, err = self.cli("import", "maildir", self.src, ALICE)
        self.assertEqual(status, 0, out + err)
        write(os.path.join(dest, "something"), "x")
        status, _, err = self.cli("export", "maildir", ALICE, dest)
        self.assertEqual(status, EX_CANTCREAT)
        self.assertIn("not empty", err)
        status, out, _ = run_cli(["import", "--help"])
        self.assertEqual(status, 0)
        self.assertIn("import maildir SRC ADDRESS", out)

    def test_problems_are_reported(self):
        # A folder whose name is not modified UTF-7 is reported; the rest
        # goes in.
        make_maildir(os.path.join(self.src, ".bad&name"))
        status, out, err = self.cli("import", "maildir", self.src, ALICE)
        self.assertEqual(status, EX_DATAERR, out + err)
        self.assertIn("problems:", out)
        self.assertIn(".bad&name: not a valid folder name", out)
        self.assertRegex(out, r"ok +INBOX\n")


if __name__ == "__main__":
    harness.main()
