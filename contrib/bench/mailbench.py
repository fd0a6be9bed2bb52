"""mailbench.py - what the mail-reading benchmarks (pop3-bench.py,
imap-bench.py) share: the accounts and their mail written as Dovecot keeps
Maildirs, moonpost's own yescrypt hashes, and the two servers - moonpost
from a build directory, the mail imported with `moonpost import maildir`,
and a private Dovecot instance that serves the same Maildirs with the same
hash strings - plus the CPU of a process tree. Python 3 standard library
only."""

import ctypes
import email.utils
import os
import random
import shutil
import subprocess

from benchlib import (REFERENCE_DIR, fill, int_list, log, port_free, read_pid,
                      wait_gone, wait_port)

# Every account's password, on both servers.
PASSWORD = "bench-password"

WORDS = ("the quarterly report is attached please review the figures before "
         "our meeting on thursday we should also discuss the budget for next "
         "year and the new hires in the support team let me know if you have "
         "any questions or if anything in the numbers looks wrong to you "
         "thanks again for your help with the migration last week").split()


# ---- the accounts and their mail ------------------------------------------

def make_message(user, seq, size, domain):
    """A plain-text message of about size bytes, LF line ends (as Dovecot
    keeps them on disk), one body line starting with a dot so that RETR
    has to stuff it."""
    rnd = random.Random(user * 1000 + seq)
    date = email.utils.formatdate(1764000000 + user * 3600 + seq * 60)
    head = ("Return-Path: <sender%d@bench.example>\n"
            "Received: from client%d.bench.example ([192.0.2.%d])\n"
            "\tby mx.bench.example with ESMTPS id B%05d%03d\n"
            "\tfor <user%d@%s>; %s\n"
            "Date: %s\n"
            "From: \"Bench Sender %d\" <sender%d@bench.example>\n"
            "To: <user%d@%s>\n"
            "Subject: Quarterly figures, part %d\n"
            "Message-ID: <%d.%d.pop3-bench@bench.example>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=us-ascii\n"
            "Content-Transfer-Encoding: 7bit\n"
            "\n" % (seq, seq, seq % 254 + 1, user, seq, user, domain, date,
                    date, seq, seq, user, domain, seq, user, seq))
    lines, total = [], len(head)
    while total < size - 20:
        line = []
        while sum(len(w) + 1 for w in line) < 66:
            line.append(rnd.choice(WORDS))
        text = " ".join(line).capitalize()
        lines.append(text)
        total += len(text) + 1
    lines.insert(len(lines) // 2, ".. and the figures, once more")
    return (head + "\n".join(lines) + "\n").encode()


def write_maildirs(base, users, messages, size, domain):
    """Dovecot-style Maildirs base/userN/Maildir with the messages in cur/,
    named with their size (S=) and CRLF size (W=) as Dovecot names them."""
    for u in range(1, users + 1):
        md = os.path.join(base, "user%d" % u, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        for m in range(1, messages + 1):
            data = make_message(u, m, size, domain)
            name = "%d.M%dP%dQ%d.pop3-bench,S=%d,W=%d:2," % (
                1764000000 + m, m, os.getpid(), m, len(data),
                len(data) + data.count(b"\n"))
            with open(os.path.join(md, "cur", name), "wb") as f:
                f.write(data)


def yescrypt(password, cost):
    """A yescrypt hash of password at libxcrypt cost 1..11, made by
    libxcrypt itself (through ctypes: Python's crypt module is going)."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                  ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(b"$y$", cost, None, 0)
    out = lib.crypt(password.encode(), setting) if setting else None
    if not out or not out.startswith(b"$y$"):
        raise RuntimeError("libxcrypt cannot make a yescrypt hash of cost "
                           "%d" % cost)
    return out.decode()


# ---- the two servers -------------------------------------------------------

def free_port(first):
    return next(p for p in range(first, 60000, 101) if port_free(p))


class Moonpost:
    """moonpost serve from a build directory, all of it under root/moonpost;
    template is its config in reference/, with @DATA@, @PORT@, @DOMAIN@,
    @PLUGINS@ and the names of extra filled in."""
    name = "moonpost"

    def __init__(self, root, builddir, args, template="moonpost-pop3.conf.in",
                 port_base=31110, proto="pop3", extra=None):
        self.dir = os.path.join(root, "moonpost")
        self.data = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "moonpost.conf")
        self.builddir = os.path.abspath(builddir)
        self.binary = os.path.join(self.builddir, "moonpost")
        self.args = args
        self.proc = None
        self.logfile = os.path.join(root, "moonpost.log")
        self.template = template
        self.port_base = port_base
        self.proto = proto
        self.extra = extra or {}

    def cli(self, *argv, **kw):
        return subprocess.run([self.binary] + list(argv), check=True, **kw)

    def configure(self, maildirs):
        """The config, the accounts (hashed by moonpost) and their mail,
        imported from the Maildirs Dovecot will serve."""
        os.makedirs(self.data)
        self.port = free_port(self.port_base)
        fill(self.template, self.conf, dict(self.extra, **{
            "DATA": self.data, "PORT": self.port, "DOMAIN": self.args.domain,
            "PLUGINS": os.path.join(self.builddir, "plugins", ".libs")}))
        log("moonpost: adding %d accounts (yescrypt) and importing their "
            "mail" % self.args.users)
        for u in range(1, self.args.users + 1):
            user = "user%d@%s" % (u, self.args.domain)
            self.cli("user", "add", user, "-c", self.conf,
                     "--password-stdin", stdout=subprocess.DEVNULL,
                     input=(PASSWORD + "\n").encode())
            self.cli("import", "maildir", "-c", self.conf, "--quiet",
                     os.path.join(maildirs, "user%d" % u, "Maildir"), user,
                     stdout=subprocess.DEVNULL)
        if getattr(self.args, "yescrypt_cost", 0):
            self.rehash(self.args.yescrypt_cost)

    def rehash(self, cost):
        """Replaces every hash by one of the given cost, in the passwd
        file's own format (`address:{YESCRYPT}$y$...`)."""
        path = os.path.join(self.data, "passwd")
        with open(path) as f:
            addrs = [line.split(":", 1)[0] for line in f if ":" in line]
        with open(path + ".new", "w") as f:
            for addr in addrs:
                f.write("%s:{YESCRYPT}%s\n"
                        % (addr, yescrypt(PASSWORD, cost)))
        os.chmod(path + ".new", os.stat(path).st_mode & 0o777)
        os.replace(path + ".new", path)

    def hashes(self):
        """{address: yescrypt hash} of the passwd file, whose lines are
        `address:{YESCRYPT}$y$... {SCRAM-SHA-256}...`."""
        out = {}
        with open(os.path.join(self.data, "passwd")) as f:
            for line in f:
                addr, _, creds = line.rstrip("\n").partition(":")
                for cred in creds.split():
                    if cred.upper().startswith("{YESCRYPT}$Y$"):
                        out[addr] = cred[len("{YESCRYPT}"):]
        return out

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("no %s: build first" % self.binary)
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "-c", self.conf],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        wait_port(self.port, 30, self.proc)
        log("moonpost pid %d, %s on 127.0.0.1:%d, data in %s, log %s"
            % (self.proc.pid, self.proto, self.port, self.data,
               self.logfile))

    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        log("moonpost stopped")


class Dovecot:
    """A private Dovecot instance, all of it under root/reference: config
    from reference/template, with @CONF@, @RUN@, @STATE@, @LOG@, @USERS@,
    @PORT@ and the names of extra filled in; proto the one it serves,
    whose binary in /usr/lib/dovecot says whether Debian's dovecot-PROTOd
    is there."""
    name = "dovecot"

    def __init__(self, root, args, template="dovecot-pop3.conf.in",
                 port_base=32110, proto="pop3", extra=None):
        self.dir = os.path.join(root, "reference")
        self.args = args
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.vmail = os.path.join(self.dir, "vmail")
        self.up = False
        self.template = template
        self.port_base = port_base
        self.proto = proto
        self.extra = extra or {}

    def install(self, allowed):
        if os.path.exists("/usr/lib/dovecot/%s" % self.proto):
            return
        package = "dovecot-%sd" % self.proto
        if not allowed:
            raise RuntimeError("%s is missing (--no-install)" % package)
        log("installing dovecot-core, %s" % package)
        subprocess.run(["sh", os.path.join(REFERENCE_DIR, "install.sh"),
                        "dovecot-core", package], check=True)

    def home(self, u):
        return os.path.join(self.vmail, self.args.domain, "user%d" % u)

    def maildirs(self):
        return os.path.join(self.vmail, self.args.domain)

    def configure(self, hashes):
        """The users file with moonpost's own hashes, as {CRYPT}: Dovecot
        checks them with crypt(3), which is libxcrypt on Debian."""
        d = self.dir
        for sub in ("run", "state"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        for p in (os.path.dirname(d), d):
            os.chmod(p, 0o755)  # nobody passes through
        for top, dirs, files in os.walk(self.vmail):
            for name in dirs + files:
                shutil.chown(os.path.join(top, name), "nobody", "nogroup")
        shutil.chown(self.vmail, "nobody", "nogroup")
        users = os.path.join(d, "users")
        with open(users, "w") as f:
            for u in range(1, self.args.users + 1):
                addr = "user%d@%s" % (u, self.args.domain)
                f.write("%s:{CRYPT}%s:65534:65534::%s::\n"
                        % (addr, hashes[addr], self.home(u)))
        os.chmod(users, 0o600)
        shutil.chown(users, "dovecot")  # read by the auth process
        self.port = free_port(self.port_base)
        fill(self.template, self.conf, dict(self.extra, **{
            "CONF": self.conf, "RUN": os.path.join(d, "run"),
            "STATE": os.path.join(d, "state"),
            "LOG": os.path.join(d, "dovecot.log"), "USERS": users,
            "PORT": self.port}))

    def start(self):
        self.up = True  # from here on, stop() tries
        subprocess.run(["dovecot", "-c", self.conf], check=True)
        wait_port(self.port, 30)
        version = subprocess.run(["dovecot", "--version"],
                                 capture_output=True, text=True).stdout
        log("dovecot %s, %s on 127.0.0.1:%d, data in %s"
            % (version.split()[0] if version else "?", self.proto,
               self.port, self.dir))

    def pid(self):
        return read_pid(os.path.join(self.dir, "run", "master.pid"))

    def stop(self):
        if not self.up:
            return
        self.up = False
        pid = self.pid()
        subprocess.run(["dovecot", "-c", self.conf, "stop"])
        wait_gone(pid)
        log("dovecot stopped")


def _proc_stats():
    """{pid: (ppid, fields after the command name)} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[int(d)] = (int(fields[1]), fields)
    return out


def process_tree(pid, stats=None):
    """pid and every process below it."""
    stats = stats if stats is not None else _proc_stats()
    children = {}
    for p, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(p)
    tree, stack = [], [pid]
    while stack:
        p = stack.pop()
        tree.append(p)
        stack.extend(children.get(p, []))
    return tree


def tree_cpu(pid):
    """CPU seconds used by pid and its descendants (those reaped
    included)."""
    stats = _proc_stats()
    ticks = sum(sum(int(x) for x in stats[p][1][11:15])
                for p in process_tree(pid, stats) if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def add_compare_options(p, proto, clients, messages, duration):
    """The options of a `compare` subcommand that the POP3 and IMAP
    benchmarks share: the build, the load, the mail and Dovecot's
    tuning. proto is "pop3" or "imap"; the others are the defaults."""
    p.add_argument("--builddir",
                   default=os.path.join(os.path.dirname(
                       os.path.abspath(__file__)), "..", ".."))
    p.add_argument("-d", "--duration", type=float, default=duration,
                   help="seconds of load per point (default %g)"
                   % (duration or 15))
    p.add_argument("--clients", type=int_list, default=clients,
                   help="client counts (default %s)"
                   % ",".join(str(n) for n in clients))
    p.add_argument("--messages", type=int, default=messages,
                   help="messages in each INBOX (default %d)" % messages)
    p.add_argument("--size", type=int, default=5000,
                   help="message size in bytes (default 5000)")
    p.add_argument("--workdir", default="/var/tmp")
    p.add_argument("--no-moonpost", dest="moonpost", action="store_false")
    p.add_argument("--no-reference", dest="reference",
                   action="store_false")
    p.add_argument("--no-install", dest="install", action="store_false",
                   help="never apt-get the reference packages")
    p.add_argument("--%s-min" % proto, type=int,
                   default=8 if proto == "pop3" else 16,
                   help="Dovecot %s process_min_avail (default %d)"
                   % (proto, 8 if proto == "pop3" else 16))
    p.add_argument("--login-min", type=int, default=os.cpu_count() or 1,
                   help="Dovecot %s-login process_min_avail (default: "
                   "the CPUs)" % proto)
    p.add_argument("--yescrypt-cost", type=int, default=0,
                   help="libxcrypt cost of the yescrypt hashes, 1 to 11 "
                   "(default: as `moonpost user add` makes them, 5)")
