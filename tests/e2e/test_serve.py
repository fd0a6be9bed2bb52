#!/usr/bin/env python3
"""The daemon as a user meets it: serve --dev, check-config, signals, TLS
through openssl s_client, Lua hooks, reload, limits and shutdown. Protocol
behaviour is covered by the echo test plugin until the real plugins land."""

import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import LineClient, run_cli  # noqa: E402


def echo_config(tmp, ports, extra="", user=None):
    cert, key = harness.make_cert(tmp)
    user = user or pwd.getpwuid(os.geteuid()).pw_name
    return """
-- written by test_serve.py
hostname = "mail.test"
data_dir = "{tmp}/data"
user = "{user}"
tls {{ cert = "{cert}", key = "{key}" }}
listen {{ name = "plain", protocol = "echo", address = "127.0.0.1:{p0}" }}
listen {{ name = "starttls", protocol = "echo",
          address = {{ "127.0.0.1:{p1}", "[::1]:{p2}" }}, tls = "starttls" }}
listen {{ name = "tls", protocol = "echo", address = "127.0.0.1:{p3}",
          tls = "implicit" }}
{extra}
""".format(tmp=tmp, user=user, cert=cert, key=key, p0=ports[0],
           p1=ports[1], p2=ports[2], p3=ports[3], extra=extra)


def has_ipv6():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class DevServer(harness.TempDirTest):
    def test_first_start_prints_password_once(self):
        d = harness.start_dev(self.tmp)
        out = d.stdout()
        m = re.search(r"account demo@example\.test, password (\S+)", out)
        self.assertIsNotNone(m, out)
        password = m.group(1)
        self.assertGreaterEqual(len(password), 16)
        with open(os.path.join(self.tmp, "data", "passwd")) as f:
            stored = f.read()
        self.assertIn("demo@example.test:{YESCRYPT}$y$", stored)
        self.assertIn(" {SCRAM-SHA-256}", stored)
        self.assertNotIn(password, stored)
        # Every dev listener is either listening or skipped, with a log
        # line, because its plugin is not built yet.
        log = d.log()
        for name in harness.DEV_PORTS:
            listening = re.search(r"event=listening listener=%s " % name, log)
            skipped = re.search(r"event=listener_skipped listener=%s " % name, log)
            self.assertTrue(listening or skipped, name + "\n" + log)
            if listening:
                self.assertIn(" %s " % name, out)
        self.assertEqual(d.stop(), 0, d.log())

        d = harness.start_dev(self.tmp)
        self.assertNotIn(password, d.stdout())
        self.assertNotIn("password " , d.stdout().split("account")[-1].split("(")[0])
        self.assertEqual(d.stop(), 0, d.log())

    def test_dev_files(self):
        d = harness.start_dev(self.tmp)
        data = os.path.join(self.tmp, "data")
        self.assertEqual(os.stat(data).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(data, "tls", "key.pem")).st_mode & 0o777, 0o600)
        res = subprocess.run(["openssl", "x509", "-noout", "-text", "-in",
                              os.path.join(data, "tls", "cert.pem")],
                             capture_output=True, text=True, check=True)
        self.assertIn("prime256v1", res.stdout)
        self.assertIn("DNS:localhost", res.stdout)
        self.assertIn("IP Address:127.0.0.1", res.stdout)
        self.assertEqual(d.stop(), 0)

    def test_sigint_and_sigterm_exit_cleanly(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            d = harness.start_dev(self.tmp)
            self.assertEqual(d.stop(sig), 0, d.log())
            self.assertIn("event=stopped", d.log())

    def test_check_config_dev(self):
        harness.start_dev(self.tmp).stop()
        status, out, err = run_cli(["check-config", "--data-dir",
                                    os.path.join(self.tmp, "data")])
        self.assertEqual(status, 0, err)
        self.assertIn("ok", out)

    def test_bad_port_offset(self):
        status, _, err = run_cli(["serve", "--dev", "--data-dir", self.tmp,
                                  "--port-offset", "70000"])
        self.assertEqual(status, 64)
        self.assertIn("--port-offset", err)


class ConfigErrors(harness.TempDirTest):
    def write(self, text, name="moonpost.conf"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_error_names_file_and_line(self):
        path = self.write('hostname = "mail.test"\n'
                          'data_dir = "%s"\n'
                          'limits { connections = "many" }\n' % self.tmp)
        status, out, err = run_cli(["check-config", path])
        self.assertEqual(status, 78, err)
        self.assertRegex(err, r"^moonpost: %s:3: " % re.escape(path))
        # serve refuses the same file with the same message and binds
        # nothing.
        d = harness.Daemon(["serve", "-c", path], self.tmp)
        self.assertEqual(d.start(expect_fail=True), 78)
        self.assertIn("%s:3:" % path, d.log())
        self.assertNotIn("event=started", d.log())

    def test_syntax_error(self):
        path = self.write('hostname = "x"\n\nlisten {\n')
        status, _, err = run_cli(["check-config", path])
        self.assertEqual(status, 78)
        self.assertIn(path + ":", err)

    def test_unknown_plugin(self):
        ports = harness.free_ports(1)
        path = self.write('data_dir = "%s"\nuser = "%s"\n'
                          'listen { protocol = "nntp", address = "127.0.0.1:%d" }\n'
                          % (self.tmp, pwd.getpwuid(os.geteuid()).pw_name, ports[0]))
        status, _, err = run_cli(["check-config", path, "--plugin-dir",
                                  harness.TEST_PLUGIN_DIR])
        self.assertEqual(status, 78)
        self.assertIn("%s:3: listener nntp: no plugin 'nntp'" % path, err)

    def test_plugin_abi_mismatch(self):
        ports = harness.free_ports(1)
        path = self.write('data_dir = "%s"\n'
                          'listen { protocol = "bad-major", address = "127.0.0.1:%d" }\n'
                          % (self.tmp, ports[0]))
        status, _, err = run_cli(["check-config", path, "--plugin-dir",
                                  harness.TEST_PLUGIN_DIR])
        self.assertEqual(status, 78)
        self.assertIn("bad-major.so: plugin ABI 2.0 is incompatible", err)

    def test_plugin_section_checked(self):
        ports = harness.free_ports(4)
        path = self.write(echo_config(self.tmp, ports,
                                      'echo { greting = "hi" }'))
        status, _, err = run_cli(["check-config", path, "--plugin-dir",
                                  harness.TEST_PLUGIN_DIR])
        self.assertEqual(status, 78, err)
        self.assertIn("unknown key 'greting'", err)
        self.assertIn("greeting", err)  # the suggestion

    def test_script_error_refuses_start(self):
        ports = harness.free_ports(4)
        script = self.write('moonpost.hook("echo.comand", function() end)\n',
                            "rules.lua")
        path = self.write(echo_config(
            self.tmp, ports, 'lua { scripts = { "%s" } }' % script))
        status, _, err = run_cli(["check-config", path, "--plugin-dir",
                                  harness.TEST_PLUGIN_DIR])
        self.assertEqual(status, 78, err)
        self.assertIn("rules.lua:1:", err)
        self.assertIn("echo.comand", err)

    def test_refuses_root_without_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        ports = harness.free_ports(1)
        path = self.write('data_dir = "%s"\n'
                          'listen { protocol = "echo", address = "127.0.0.1:%d" }\n'
                          % (self.tmp, ports[0]))
        d = harness.Daemon(["serve", "-c", path, "--plugin-dir",
                            harness.TEST_PLUGIN_DIR], self.tmp)
        self.assertEqual(d.start(expect_fail=True), 78)
        self.assertIn("refusing to run as root", d.log())


class EchoServer(harness.TempDirTest):
    """The core's runtime through the real binary and the echo plugin."""

    def serve(self, extra="", user=None):
        return harness.start_config(
            self.tmp, lambda ports: echo_config(self.tmp, ports, extra, user))

    def test_greeting_and_lines(self):
        d = self.serve('echo { greeting = "hello from config" }')
        c = LineClient(d.ports[0])
        self.assertRegex(c.line(), r"^\+OK hello from config session=[0-9A-Z]{12}$")
        c.send("one\r\ntwo\nQUIT\r\n")
        self.assertEqual(c.line(), "+OK one")
        self.assertEqual(c.line(), "+LF two")
        self.assertEqual(c.line(), "+OK bye")
        self.assertTrue(c.is_closed())
        self.assertEqual(d.stop(), 0, d.log())
        self.assertRegex(d.log(), r"session=\w{12} event=connect listener=plain ip=127\.0\.0\.1")
        self.assertRegex(d.log(), r"event=disconnect reason=quit")

    def test_openssl_s_client_handshake(self):
        d = self.serve()
        res = subprocess.run(["openssl", "s_client", "-connect",
                              "127.0.0.1:%d" % d.ports[3], "-brief",
                              "-crlf", "-ign_eof"],
                             input="PEER\nQUIT\n", capture_output=True,
                             text=True, timeout=60)
        self.assertIn("CONNECTION ESTABLISHED", res.stderr)
        self.assertIn("Protocol version: TLSv1.3", res.stderr)
        self.assertIn("+OK echo ready", res.stdout)
        self.assertIn("tls=TLSv1.3", res.stdout)
        # STARTTLS through s_client is protocol-specific; TLS 1.2 here.
        res = subprocess.run(["openssl", "s_client", "-connect",
                              "127.0.0.1:%d" % d.ports[3], "-brief",
                              "-tls1_2", "-crlf", "-ign_eof"],
                             input="QUIT\n",
                             capture_output=True, text=True, timeout=60)
        self.assertIn("Protocol version: TLSv1.2", res.stderr)
        self.assertEqual(d.stop(), 0, d.log())

    def test_starttls_discards_injected_plaintext(self):
        d = self.serve()
        c = LineClient(d.ports[1])
        c.line()
        c.send("STARTTLS\r\nPEER\r\n")
        self.assertEqual(c.line(), "+OK begin TLS")
        c.starttls()
        self.assertEqual(c.cmd("NOTE"), "+OK NOTE")
        self.assertRegex(c.cmd("PEER"), r"tls=TLSv1\.3")
        c.close()
        d.wait_log(r"event=starttls_discard bytes=6")
        self.assertEqual(d.stop(), 0, d.log())

    def test_ipv6_listener(self):
        if not has_ipv6():
            self.skipTest("no IPv6 loopback")
        d = self.serve()
        c = LineClient(d.ports[2], host="::1")
        self.assertTrue(c.line().startswith("+OK"))
        self.assertIn("ip=::1 loopback=1", c.cmd("PEER"))
        c.close()
        self.assertEqual(d.stop(), 0, d.log())

    def test_connection_limit_per_ip(self):
        d = self.serve("limits { connections_per_ip = 3 }")
        clients = [LineClient(d.ports[0]) for _ in range(3)]
        for c in clients:
            self.assertTrue(c.line().startswith("+OK"))
        extra = LineClient(d.ports[0])
        self.assertEqual(extra.line(), "-ERR busy")
        self.assertTrue(extra.is_closed())
        clients[0].cmd("QUIT")
        self.assertTrue(clients[0].is_closed())
        again = LineClient(d.ports[0])
        self.assertTrue(again.line().startswith("+OK"))
        d.wait_log(r"event=refused listener=plain ip=127\.0\.0\.1 reason=too_many_connections_from_ip")
        self.assertEqual(d.stop(), 0, d.log())

    def test_idle_timeout(self):
        d = self.serve('echo { timeout = "1s" }')
        c = LineClient(d.ports[0])
        c.line()
        self.assertEqual(c.line(), "-ERR idle timeout")
        self.assertTrue(c.is_closed())
        self.assertEqual(d.stop(), 0, d.log())

    def test_sigterm_with_open_connections(self):
        d = self.serve()
        plain = LineClient(d.ports[0])
        plain.line()
        tls = LineClient(d.ports[3], tls=True)
        tls.line()
        d.send_signal(signal.SIGTERM)
        self.assertEqual(plain.line(), "-ERR server shutting down")
        self.assertEqual(tls.line(), "-ERR server shutting down")
        self.assertTrue(plain.is_closed())
        d.proc.wait(harness.STOP_TIMEOUT)
        self.assertEqual(d.stop(), 0, d.log())
        # The listeners are gone.
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", d.ports[0]), timeout=5)

    def test_big_output_and_slow_reader(self):
        d = self.serve()
        c = LineClient(d.ports[0])
        c.line()
        n = 20 * 1024 * 1024
        c.send("BIG %d\r\nAFTER\r\n" % n)
        time.sleep(0.5)  # let the server hit its high-water mark
        self.assertEqual(c.read_exact(n), b"x" * n)
        self.assertEqual(c.line(), "")
        self.assertEqual(c.line(), "+OK big done")
        self.assertEqual(c.line(), "+OK AFTER")
        self.assertEqual(d.stop(), 0, d.log())

    def test_thread_pool_keeps_order(self):
        d = self.serve()
        c = LineClient(d.ports[0])
        c.line()
        c.send("SLOW 100\r\nB\r\nSLOW 10\r\nC\r\n")
        self.assertEqual([c.line() for _ in range(4)],
                         ["+OK slow 100", "+OK B", "+OK slow 10", "+OK C"])
        self.assertEqual(d.stop(), 0, d.log())

    def test_privileges_dropped(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        os.chmod(self.tmp, 0o755)
        d = self.serve(user="nobody")
        with open("/proc/%d/status" % d.proc.pid) as f:
            uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
        nobody = pwd.getpwnam("nobody").pw_uid
        self.assertEqual([int(u) for u in uids], [nobody] * 4)
        c = LineClient(d.ports[3], tls=True)
        self.assertTrue(c.line().startswith("+OK"))
        self.assertEqual(d.stop(), 0, d.log())


class LuaHooks(harness.TempDirTest):
    def script(self, text):
        path = os.path.join(self.tmp, "rules.lua")
        with open(path, "w") as f:
            f.write(text)
        return path

    def serve(self, script_text, extra=""):
        path = self.script(script_text)
        return harness.start_config(self.tmp, lambda ports: echo_config(
            self.tmp, ports, 'lua { scripts = { "%s" }, timeout = "1s" }\n%s'
            % (path, extra)))

    RULES = """
moonpost.hook("echo.command", function(arg, info)
    if arg == "reject" then
        return moonpost.reject(550, "5.7.1", "not you, " .. info.ip)
    elseif arg == "defer" then
        return moonpost.defer("later")
    elseif arg == "error" then
        local t = nil
        return t.field
    elseif arg == "loop" then
        while true do end
    elseif arg == "sleep" then
        moonpost.sleep(0.05)
        return moonpost.accept()
    elseif arg == "hang" then
        moonpost.sleep(3600)
    elseif arg == "bye" then
        return moonpost.disconnect("bye")
    end
end)
"""

    def test_verdicts(self):
        d = self.serve(self.RULES)
        c = LineClient(d.ports[0])
        c.line()
        self.assertEqual(c.cmd("HOOK reject"),
                         "+OK verdict=reject code=550 enhanced=5.7.1 text=not you, 127.0.0.1")
        self.assertRegex(c.cmd("HOOK defer"), r"verdict=defer .*text=later")
        self.assertRegex(c.cmd("HOOK sleep"), r"verdict=accept")
        self.assertRegex(c.cmd("HOOK other"), r"verdict=continue")
        self.assertRegex(c.cmd("HOOK bye"), r"verdict=disconnect")
        self.assertTrue(c.is_closed())
        self.assertEqual(d.stop(), 0, d.log())

    def test_errors_become_tempfail_with_file_line(self):
        d = self.serve(self.RULES)
        c = LineClient(d.ports[0])
        c.line()
        self.assertRegex(c.cmd("HOOK error"), r"verdict=tempfail")
        d.wait_log(r"event=lua_error hook=echo\.command session=\w+ error=.*rules\.lua:9:")
        self.assertRegex(c.cmd("HOOK loop"), r"verdict=tempfail")
        self.assertRegex(c.cmd("HOOK hang"), r"verdict=tempfail")
        # The session and the runtime are still usable afterwards.
        self.assertRegex(c.cmd("HOOK reject"), r"verdict=reject")
        self.assertEqual(d.stop(), 0, d.log())

    def test_client_leaves_while_hook_waits(self):
        d = self.serve(self.RULES)
        c = LineClient(d.ports[0])
        c.line()
        c.send("HOOK hang\r\n")
        time.sleep(0.2)
        c.close()
        d.wait_log(r"event=disconnect")
        self.assertEqual(d.stop(), 0, d.log())

    def test_sighup_reloads_scripts_and_keeps_connections(self):
        d = self.serve('moonpost.hook("echo.command", function() '
                       'return moonpost.reject("old") end)\n')
        c = LineClient(d.ports[0])
        c.line()
        self.assertRegex(c.cmd("HOOK x"), r"text=old")
        self.script('moonpost.hook("echo.command", function() '
                    'return moonpost.reject("new") end)\n')
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"event=reloaded")
        self.assertRegex(c.cmd("HOOK x"), r"text=new")
        # A broken script is refused and the running one stays.
        self.script('moonpost.hook("echo.command", function() end\n')
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"event=reload_failed error=.*rules\.lua:")
        self.assertRegex(c.cmd("HOOK x"), r"text=new")
        self.assertEqual(d.stop(), 0, d.log())

    def test_sighup_applies_config(self):
        d = self.serve('moonpost.hook("echo.command", function() end)\n')
        c = LineClient(d.ports[0])
        self.assertIn("echo ready", c.line())
        with open(d.config_path, "a") as f:
            f.write('echo { greeting = "reloaded" }\n')
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"event=reloaded")
        # New connections get the new generation, the old one keeps its.
        self.assertIn("reloaded", LineClient(d.ports[0]).line())
        self.assertEqual(c.cmd("still"), "+OK still")
        self.assertEqual(d.stop(), 0, d.log())


if __name__ == "__main__":
    harness.main()
