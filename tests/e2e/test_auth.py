#!/usr/bin/env python3
"""Authentication through the real daemon and the echo plugin's AUTH
command: passwords, `moonpost user` on a running server, failed-login
throttling, alias file errors, and the SQLite passdb example script."""

import os
import pwd
import re
import shutil
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient, run_cli  # noqa: E402

EX_CONFIG = 78

# The server looks at the passwd file at most once a second.
SETTLE = 1.3


def auth_config(tmp, ports, extra=""):
    user = pwd.getpwuid(os.geteuid()).pw_name
    return """
-- written by test_auth.py
hostname = "mail.test"
data_dir = "{tmp}/data"
user = "{user}"
domains = {{ "example.test" }}
listen {{ name = "plain", protocol = "echo", address = "127.0.0.1:{p0}" }}
{extra}
""".format(tmp=tmp, user=user, p0=ports[0], extra=extra)


class Client(LineClient):
    """A LineClient whose connection comes from a chosen loopback address
    (Linux answers for all of 127/8), to play several clients."""

    def __init__(self, port, source="127.0.0.1"):
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=harness.IO_TIMEOUT,
            source_address=(source, 0))
        self.buf = b""
        greeting = self.line()
        assert greeting.startswith("+OK"), greeting

    def auth(self, user, password):
        return self.cmd("AUTH %s %s" % (user, password))


def other_loopback_works():
    try:
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.close()
        return True
    except OSError:
        return False


class AuthTest(harness.TempDirTest):
    def setUp(self):
        super().setUp()
        self.data = os.path.join(self.tmp, "data")
        os.makedirs(self.data)

    def serve(self, extra=""):
        d = harness.start_config(
            self.tmp, lambda ports: auth_config(self.tmp, ports, extra))
        self.config = d.config_path
        return d

    def user(self, *args, password=None, config=None):
        status, out, err = run_cli(
            ["user"] + list(args) + ["-c", config or self.config],
            input_text=password + "\n" if password is not None else None)
        self.assertEqual(status, 0, err)
        return out

    def add(self, address, password):
        self.user("add", address, "--password-stdin", password=password)


class Passwords(AuthTest):
    def test_ok_failed_and_the_log(self):
        d = self.serve()
        self.add("alice@example.test", "alice pw 1")
        time.sleep(SETTLE)
        c = Client(d.ports[0])
        self.assertEqual(c.auth("alice@example.test", "alice pw 1"),
                         "+OK auth=ok user=alice@example.test")
        self.assertEqual(c.auth("Alice@Example.TEST", "alice pw 1"),
                         "+OK auth=ok user=alice@example.test")
        self.assertEqual(c.auth("alice@example.test", "wrong"),
                         "-ERR auth=failed")
        self.assertEqual(c.auth("nobody@example.test", "alice pw 1"),
                         "-ERR auth=failed")
        self.assertEqual(c.cmd("AUTH onlyuser"),
                         "-ERR usage: AUTH user password")
        # The session goes on after a failure.
        self.assertEqual(c.cmd("NOTE"), "+OK NOTE")
        c.close()
        self.assertEqual(d.stop(), 0, d.log())
        log = d.log()
        self.assertRegex(log, r"session=\w{12} event=auth result=ok "
                         r"user=alice@example\.test ip=127\.0\.0\.1 "
                         r"service=echo mechanism=PLAIN reason=password")
        self.assertRegex(log, r"event=auth result=failed "
                         r"user=alice@example\.test ip=127\.0\.0\.1 "
                         r"service=echo mechanism=PLAIN reason=bad_password")
        self.assertRegex(log, r"event=auth result=failed "
                         r"user=nobody@example\.test .*reason=unknown_user")
        self.assertIn("event=passwd_loaded", log)
        self.assertNotIn("alice pw 1", log)
        self.assertNotIn("wrong", log)

    def test_user_commands_take_effect_while_running(self):
        d = self.serve()
        self.add("alice@example.test", "first")
        time.sleep(SETTLE)
        c = Client(d.ports[0])
        self.assertEqual(c.auth("alice@example.test", "first"),
                         "+OK auth=ok user=alice@example.test")
        self.user("passwd", "alice@example.test", "--password-stdin",
                  password="second")
        time.sleep(SETTLE)
        self.assertEqual(c.auth("alice@example.test", "second"),
                         "+OK auth=ok user=alice@example.test")
        self.assertEqual(c.auth("alice@example.test", "first"),
                         "-ERR auth=failed")
        self.user("del", "alice@example.test")
        time.sleep(SETTLE)
        self.assertEqual(c.auth("alice@example.test", "second"),
                         "-ERR auth=failed")
        self.assertEqual(d.stop(), 0, d.log())
        self.assertGreaterEqual(d.log().count("event=passwd_loaded"), 3)

    def test_client_leaves_while_its_password_is_checked(self):
        d = self.serve()
        self.add("alice@example.test", "pw")
        time.sleep(SETTLE)
        for _ in range(5):
            c = Client(d.ports[0])
            c.send("AUTH alice@example.test pw\r\n")
            c.close()
        d.wait_log(r"event=auth result=ok", count=5)
        # Still serving.
        c = Client(d.ports[0])
        self.assertEqual(c.auth("alice@example.test", "pw"),
                         "+OK auth=ok user=alice@example.test")
        self.assertEqual(d.stop(), 0, d.log())


class Throttling(AuthTest):
    def test_address_and_account_limits(self):
        if not other_loopback_works():
            self.skipTest("no 127.0.0.2 on this host")
        d = self.serve("auth { max_failures_per_ip = 4, "
                       "max_failures_per_account = 3 }")
        self.add("alice@example.test", "alice pw")
        self.add("bob@example.test", "bob pw")
        time.sleep(SETTLE)
        home = Client(d.ports[0], "127.0.0.2")
        self.assertEqual(home.auth("alice@example.test", "alice pw"),
                         "+OK auth=ok user=alice@example.test")

        # An attacker guesses at alice's password from 127.0.0.1.
        attacker = Client(d.ports[0], "127.0.0.1")
        for _ in range(3):
            self.assertEqual(attacker.auth("alice@example.test", "guess"),
                             "-ERR auth=failed")
        self.assertEqual(attacker.auth("alice@example.test", "alice pw"),
                         "-ERR auth=throttled")
        # The account is closed to addresses it never logged in from...
        elsewhere = Client(d.ports[0], "127.0.0.3")
        self.assertEqual(elsewhere.auth("alice@example.test", "alice pw"),
                         "-ERR auth=throttled")
        # ...but not to alice at home, even on a new connection.
        home = Client(d.ports[0], "127.0.0.2")
        self.assertEqual(home.auth("alice@example.test", "alice pw"),
                         "+OK auth=ok user=alice@example.test")

        # The attacker's address runs out for every account.
        self.assertEqual(attacker.auth("bob@example.test", "guess"),
                         "-ERR auth=failed")
        self.assertEqual(attacker.auth("bob@example.test", "bob pw"),
                         "-ERR auth=throttled")
        self.assertEqual(elsewhere.auth("bob@example.test", "bob pw"),
                         "+OK auth=ok user=bob@example.test")
        self.assertEqual(d.stop(), 0, d.log())
        log = d.log()
        self.assertRegex(log, r"event=auth result=throttled "
                         r"user=alice@example\.test ip=127\.0\.0\.1 "
                         r"service=echo mechanism=PLAIN "
                         r"reason=account_throttled")
        self.assertRegex(log, r"result=throttled user=alice@example\.test "
                         r"ip=127\.0\.0\.3 .*reason=account_throttled")
        self.assertRegex(log, r"result=throttled user=bob@example\.test "
                         r"ip=127\.0\.0\.1 .*reason=ip_throttled")


class AliasFile(AuthTest):
    def test_errors_are_reported_with_file_and_line(self):
        with open(os.path.join(self.data, "aliases"), "w") as f:
            f.write("postmaster@example.test: alice@example.test\n"
                    "# a comment\n"
                    "broken line\n")
        ports = harness.free_ports(1)
        path = os.path.join(self.tmp, "moonpost.conf")
        with open(path, "w") as f:
            f.write(auth_config(self.tmp, ports))
        status, _, err = run_cli(["check-config", path, "--plugin-dir",
                                  harness.TEST_PLUGIN_DIR])
        self.assertEqual(status, EX_CONFIG, err)
        self.assertIn("%s/aliases:3: expected 'address: target, ...'"
                      % self.data, err)
        d = harness.Daemon(["serve", "-c", path, "--plugin-dir",
                            harness.TEST_PLUGIN_DIR], self.tmp)
        self.assertEqual(d.start(expect_fail=True), EX_CONFIG)
        self.assertIn("aliases:3:", d.log())


class SqlitePassdb(AuthTest):
    def hash_of(self, password):
        """A hash made by `moonpost user add` in a scratch data dir."""
        scratch = os.path.join(self.tmp, "scratch")
        os.makedirs(scratch, exist_ok=True)
        conf = os.path.join(self.tmp, "scratch.conf")
        with open(conf, "w") as f:
            f.write('data_dir = "%s"\ndomains = { "example.test" }\n'
                    % scratch)
        self.hashes = getattr(self, "hashes", 0) + 1
        address = "h%d@example.test" % self.hashes
        self.user("add", address, "--password-stdin", password=password,
                  config=conf)
        with open(os.path.join(scratch, "passwd")) as f:
            for line in f:
                if line.startswith(address + ":"):
                    # The hash; a SCRAM secret may follow it.
                    return line.strip().split(":", 1)[1].split(" ")[0]
        self.fail("no passwd line for " + address)

    def make_db(self, path):
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE users (address TEXT PRIMARY KEY, "
                   "password TEXT NOT NULL, "
                   "enabled INTEGER NOT NULL DEFAULT 1)")
        db.executemany("INSERT INTO users VALUES (?, ?, ?)", [
            ("dave@example.test", self.hash_of("dave pw"), 1),
            ("erin@example.test", self.hash_of("erin pw"), 0),
        ])
        db.commit()
        db.close()

    def test_example_script(self):
        example = os.path.join(harness.SRCDIR, "scripts", "examples",
                               "sqlite-passdb.lua")
        db_path = os.path.join(self.tmp, "users.sqlite")
        script = os.path.join(self.tmp, "sqlite-passdb.lua")
        with open(example) as f:
            text = f.read()
        text, n = re.subn(r'local DB_PATH = "[^"]*"',
                          'local DB_PATH = "%s"' % db_path, text)
        self.assertEqual(n, 1, "the example no longer sets DB_PATH")
        with open(script, "w") as f:
            f.write(text)
        d = self.serve('lua { scripts = { "%s" } }' % script)
        self.add("alice@example.test", "alice pw")
        time.sleep(SETTLE)
        c = Client(d.ports[0])

        # No database yet: nobody can be decided (the table might hold
        # alice too, disabled), so everyone is told to come back later.
        self.assertEqual(c.auth("dave@example.test", "dave pw"),
                         "-ERR auth=tempfail")
        d.wait_log(r"event=script hook=auth .*account database: "
                   r".*sqlite-passdb\.lua:\d+: sqlite\.open: ")
        self.assertEqual(c.auth("alice@example.test", "alice pw"),
                         "-ERR auth=tempfail")

        self.make_db(db_path)
        self.assertEqual(c.auth("dave@example.test", "dave pw"),
                         "+OK auth=ok user=dave@example.test")
        self.assertEqual(c.auth("Dave@Example.Test", "dave pw"),
                         "+OK auth=ok user=dave@example.test")
        self.assertEqual(c.auth("dave@example.test", "alice pw"),
                         "-ERR auth=failed")
        self.assertEqual(c.auth("erin@example.test", "erin pw"),
                         "-ERR auth=failed")
        # Not in the table: the passwd file decides.
        self.assertEqual(c.auth("alice@example.test", "alice pw"),
                         "+OK auth=ok user=alice@example.test")
        self.assertEqual(c.auth("alice@example.test", "dave pw"),
                         "-ERR auth=failed")

        # The file turns into garbage under the open handle.
        with open(db_path, "r+b") as f:
            f.write(b"this is not an SQLite database" * 200)
        self.assertEqual(c.auth("dave@example.test", "dave pw"),
                         "-ERR auth=tempfail")
        # Repaired: opened afresh.
        os.unlink(db_path)
        self.make_db(db_path)
        self.assertEqual(c.auth("dave@example.test", "dave pw"),
                         "+OK auth=ok user=dave@example.test")
        self.assertEqual(d.stop(), 0, d.log())
        log = d.log()
        self.assertRegex(log, r"result=ok user=dave@example\.test .*"
                         r"reason=hook_accept")
        self.assertRegex(log, r"result=failed user=erin@example\.test .*"
                         r"reason=hook_reject")
        self.assertRegex(log, r"result=tempfail user=dave@example\.test .*"
                         r"reason=hook_defer")
        self.assertNotIn("dave pw", log)


if __name__ == "__main__":
    harness.main()
