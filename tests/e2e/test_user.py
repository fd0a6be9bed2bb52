#!/usr/bin/env python3
"""`moonpost user add|passwd|del|list` through the real binary, on a dev
data directory and with a config file."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import run_cli  # noqa: E402

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_CONFIG = 64, 65, 67, 78


class UserCommand(harness.TempDirTest):
    def setUp(self):
        super().setUp()
        self.data = os.path.join(self.tmp, "data")
        harness.start_dev(self.tmp, self.data).stop()

    def user(self, *args, password=None):
        return run_cli(["user"] + list(args) + ["--data-dir", self.data],
                       input_text=password)

    def passwd_line(self, address):
        with open(os.path.join(self.data, "passwd")) as f:
            for line in f:
                if line.startswith(address + ":"):
                    return line.strip()
        return None

    def test_add_list_passwd_del(self):
        status, out, _ = self.user("list")
        self.assertEqual((status, out), (0, "demo@example.test\n"))

        status, out, err = self.user("add", "Alice@Example.TEST",
                                     "--password-stdin", password="s3cret pw\n")
        self.assertEqual(status, 0, err)
        line = self.passwd_line("alice@example.test")
        self.assertRegex(line, r"^alice@example\.test:\{YESCRYPT\}\$y\$")
        # A SCRAM-SHA-256 secret in Dovecot's form follows the hash.
        self.assertRegex(line, r" \{SCRAM-SHA-256\}4096,[A-Za-z0-9+/]{22}==,"
                               r"[A-Za-z0-9+/]{43}=,[A-Za-z0-9+/]{43}=$")
        self.assertNotIn("s3cret", line)

        status, out, _ = self.user("list")
        self.assertEqual(out, "alice@example.test\ndemo@example.test\n")

        status, _, err = self.user("add", "alice@example.test",
                                   "--password-stdin", password="x\n")
        self.assertEqual(status, EX_DATAERR)
        self.assertIn("alice@example.test", err)

        status, _, err = self.user("passwd", "alice@example.test",
                                   "--password-stdin", password="other\n")
        self.assertEqual(status, 0, err)
        self.assertNotEqual(self.passwd_line("alice@example.test"), line)

        status, out, err = self.user("del", "alice@example.test")
        self.assertEqual(status, 0, err)
        self.assertIsNone(self.passwd_line("alice@example.test"))
        status, _, _ = self.user("del", "alice@example.test")
        self.assertEqual(status, EX_NOUSER)

    def test_no_scram(self):
        status, _, err = self.user("add", "nos@example.test", "--no-scram",
                                   "--password-stdin", password="pw\n")
        self.assertEqual(status, 0, err)
        line = self.passwd_line("nos@example.test")
        self.assertRegex(line, r"^nos@example\.test:\{YESCRYPT\}\$y\$\S+$")
        status, _, err = self.user("passwd", "nos@example.test",
                                   "--password-stdin", password="pw2\n")
        self.assertEqual(status, 0, err)
        self.assertIn(" {SCRAM-SHA-256}4096,",
                      self.passwd_line("nos@example.test"))
        status, _, err = self.user("del", "nos@example.test", "--no-scram")
        self.assertEqual(status, EX_USAGE)

    def test_schemes(self):
        for scheme, prefix in (("bcrypt", "{BLF-CRYPT}$2"),
                               ("sha512-crypt", "{SHA512-CRYPT}$6$")):
            address = "%s@example.test" % scheme.replace("-", "")
            status, _, err = self.user("add", address, "--scheme", scheme,
                                       "--password-stdin", password="pw\n")
            self.assertEqual(status, 0, err)
            self.assertIn(":" + prefix, self.passwd_line(address))

    def test_refusals(self):
        cases = [
            (("add", "bob@elsewhere.org", "--password-stdin"), "pw\n",
             EX_DATAERR, "not a local domain"),
            (("add", "no spaces@example.test", "--password-stdin"), "pw\n",
             EX_DATAERR, ""),
            (("add", "empty@example.test", "--password-stdin"), "\n",
             EX_DATAERR, ""),
            (("add", "x@example.test", "--password-stdin"),
             "p" * 600 + "\n", EX_DATAERR, ""),
            (("passwd", "ghost@example.test", "--password-stdin"), "pw\n",
             EX_NOUSER, "ghost@example.test"),
            (("add", "tty@example.test"), "", None, "--password-stdin"),
            (("frobnicate",), None, EX_USAGE, "user --help"),
            (("add",), None, EX_USAGE, ""),
        ]
        for args, stdin, want, text in cases:
            status, _, err = self.user(*args, password=stdin)
            if want is None:
                self.assertNotEqual(status, 0, args)
            else:
                self.assertEqual(status, want, (args, err))
            self.assertIn(text, err, args)
        # Nothing of that reached the file.
        status, out, _ = self.user("list")
        self.assertEqual(out, "demo@example.test\n")

    def test_help_and_config_file(self):
        status, out, _ = run_cli(["user", "--help"])
        self.assertEqual(status, 0)
        self.assertIn("user add ADDRESS", out)
        # -c with the shipped example config: it must at least load.
        example = os.path.join(harness.SRCDIR, "contrib", "moonpost.conf.example")
        status, out, err = run_cli(["user", "list", "-c", example])
        self.assertEqual(status, 0, err)
        status, _, err = run_cli(["user", "list", "-c",
                                  os.path.join(self.tmp, "missing.conf")])
        self.assertEqual(status, EX_CONFIG)
        self.assertIn("missing.conf", err)

    def test_server_sees_no_plaintext(self):
        status, _, _ = self.user("add", "carol@example.test",
                                 "--password-stdin", password="hunter2\n")
        self.assertEqual(status, 0)
        for name in os.listdir(self.data):
            path = os.path.join(self.data, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(b"hunter2", f.read(), name)
        mode = os.stat(os.path.join(self.data, "passwd")).st_mode & 0o777
        self.assertEqual(mode & 0o007, 0, oct(mode))


if __name__ == "__main__":
    harness.main()
