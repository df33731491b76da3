#!/usr/bin/python3
"""Runs one conformance suite against KVFS and checks its results.

    run_suite.py --suites DIR --expected DIR --out DIR [--phase PHASE] SUITE
    run_suite.py --suites DIR --expected DIR --out DIR --target TARGET pjdfstest

SUITE is pynfs40, pynfs41, cthon04 or pjdfstest; DIR of --suites holds the suites as
tests/conformance/build_suites.sh built them. The server is already running
(conformance_server starts it, passes the export's NFSv4 pseudo path and
NFSv3 path in KVFS_CONFORMANCE_EXPORT and KVFS_CONFORMANCE_NFS3_PATH, and
stops a suite that hangs or outlives the server).

Every test that does not pass must be listed in --expected/SUITE.txt (one
`CODE  reason` a line; CODE may be an fnmatch pattern such as `GSS*`); the
run fails on a test that is not listed and does not pass, and on a listed
test that passes. It prints `SUITE: N passed, N failed ...` and keeps the suite's own
output in --out (printed, for the offending tests, on failure).

--phase splits a pynfs run around a server restart: `maketree` only builds
pynfs's test tree, `existing` runs the whole suite on the tree left there.

pjdfstest runs as root in a directory of the file system under test: by
default (--target nfs) a fuse-nfs mount of the export; with --target
kvfs-fuse (--kvfs-fuse BIN: a fresh store in --out, under the same data limit
as the NFS server), passthrough_ll (libfuse's example over a directory of
--out: the FUSE floor) or local (a directory of --out itself, ext4 here), a
file system this script mounts itself (run it in private namespaces). Their
expected-results files are pjdfstest-TARGET.txt; failures of kvfs-fuse that
say "passthrough_ll: ..." must be in pjdfstest-passthrough_ll.txt too.
"""

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time

SERVER = "127.0.0.1"
PASS = "PASS"
FAIL = "FAILURE"


def export_path():
    """The export's NFSv4 (pseudo) path."""
    return os.environ.get("KVFS_CONFORMANCE_EXPORT", "/kvfs")


def nfs3_path():
    """The export's NFSv3 (MOUNT) path."""
    return os.environ.get("KVFS_CONFORMANCE_NFS3_PATH", export_path())


# ---------------------------------------------------------------- pynfs

# `CODE     st_module.testName        : RESULT`, then indented message lines.
PYNFS_RESULT = re.compile(r"^(\S+)\s+(st_\S+)\s+: (PASS|FAILURE|WARNING|UNSUPPORTED|OMIT)\s*$")

# Suite name: (pynfs folder, a quick test that needs the test tree).
PYNFS = {"pynfs40": ("nfs4.0", "INIT"), "pynfs41": ("nfs4.1", "COMP1")}


def run_pynfs(args):
    """Runs testserver.py; returns ({code: status}, {code: detail}, log path)."""
    minor_dir, quick_test = PYNFS[args.suite]
    suite_dir = os.path.join(args.suites, "pynfs", minor_dir)
    log = os.path.join(args.out, f"{args.suite}.{args.phase}.log")
    # --showomit: omitted tests (no ACL, no Kerberos) are listed as well.
    cmd = ["/usr/bin/python3", "testserver.py", f"{SERVER}:{export_path()}", "--showomit"]
    if args.phase in ("all", "maketree"):
        cmd.append("--maketree")
    if args.phase == "maketree":
        # The environment's set-up builds the tree; one quick test is
        # enough to get there.
        cmd.append(quick_test)
    else:
        cmd.append("all")
    # testserver.py finds its libraries relative to the working directory.
    run_logged(cmd, suite_dir, log)
    results, details = {}, {}
    current = None
    with open(log, errors="replace") as f:
        for line in f:
            m = PYNFS_RESULT.match(line)
            if m:
                current = m.group(1)
                results[current] = m.group(3)
                details[current] = line
            elif current and line.startswith(" " * 10):
                details[current] += line
            else:
                current = None
    return results, details, log


# ---------------------------------------------------------------- cthon04

BASIC = [f"test{i}" for i in range(1, 10)]

# general/runtests.wrk's steps, each on its own (the script stops at the
# first failure); each runs once instead of five timed times.
GENERAL = {
    "small_compile": "$CC $CFLAGS -o stat stat.c -lm",
    "tbl": "tbl nroff.in > nroff.tbl",
    "nroff": "nroff < nroff.tbl > nroff.out && rm nroff.out",
    "large_compile": "$CC $CFLAGS -o large large.c && rm large",
    "four_large_compiles": "./large4.sh",
    "makefile": "./mkdummy && make -e -f makefile.tst > /dev/null && ./rmdummy",
}

# special/runtests.wrk's steps, each on its own.
SPECIAL = {
    "op_unlk": "TMPDIR= ./op_unlk",
    "op_ren": "TMPDIR= ./op_ren",
    "op_chmod": "TMPDIR= ./op_chmod",
    "dupreq": "./dupreq 100 testfile",
    "excltest": "./excltest",
    "negseek": "./negseek testfile",
    "rename": "./rename 100",
    "truncate": "./truncate",
    "holey": "./holey",
    "nfsidem": "./nfsidem 50 testdir",
    "rewind": "./rewind",
    "telldir": "./telldir",
    "freesp": "./freesp",
    "bigfile": "./bigfile -s 30 bigfile$$",
    "bigfile2": "./bigfile2 bigfile$$",
}


class FuseDaemon:
    """A FUSE file system daemon in the foreground serving `mountpoint`:
    mounted on entry (within 60 s, or RuntimeError), unmounted on exit."""

    def __init__(self, cmd, mountpoint, log, env=None, unmount="fusermount3", data_limit=None):
        self.cmd, self.mountpoint, self.log = cmd, mountpoint, log
        self.env, self.unmount, self.data_limit = env, unmount, data_limit
        self.proc = None

    def __enter__(self):
        os.makedirs(self.mountpoint, exist_ok=True)
        self.log_file = open(self.log, "w")

        def limit():
            if self.data_limit:
                import resource
                resource.setrlimit(resource.RLIMIT_DATA, (self.data_limit, self.data_limit))

        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, preexec_fn=limit)
        deadline = time.monotonic() + 60
        while not os.path.ismount(self.mountpoint):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"{' '.join(self.cmd)} did not mount; see {self.log}")
            time.sleep(0.05)
        return self

    def alive(self):
        return self.proc.poll() is None

    def __exit__(self, *exc):
        if os.path.ismount(self.mountpoint):
            subprocess.run([self.unmount, "-u", self.mountpoint], check=False)
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.path.ismount(self.mountpoint):
            subprocess.run(["umount", "-l", self.mountpoint], check=False)
        self.log_file.close()


def fuse_nfs_mount(suites, mountpoint, log):
    """A fuse-nfs mount of the export over NFSv3 (third_party/README.md)."""
    binary = os.path.join(suites, "fuse-nfs", "fuse", "fuse-nfs")
    url = f"nfs://{SERVER}{nfs3_path()}"
    cmd = [binary, "-n", url, "-m", mountpoint,
           "-a", "-t", "0", "-q", "-T", "0", "-E", "0", "-N", "0"]
    # fuse-nfs is built on libfuse 2: its fusermount unmounts it.
    return FuseDaemon(cmd, mountpoint, log, env=dict(os.environ, FUSE_NFS_FOREGROUND="1"),
                      unmount="fusermount")


def run_cthon04(args):
    cthon = os.path.join(args.suites, "cthon04")
    log = os.path.join(args.out, "cthon04.log")
    mnt = os.path.join(args.out, "mnt")
    results, details = {}, {}
    with fuse_nfs_mount(args.suites, mnt, os.path.join(args.out, "fuse-nfs.log")), \
            open(log, "w") as out:
        # PATH with "." as tests.init sets it: test2 runs test1 to build its tree.
        env = dict(os.environ, PATH=os.environ["PATH"] + ":.", CC="cc", CFLAGS="-DLINUX -DHAVE_SOCKLEN_T -DGLIBC=22 -DMMAP "
                   "-DSTDARG -w", LIBS="-lnsl")

        def run(name, shell_cmd, cwd, test_env):
            out.write(f"==== {name}: {shell_cmd} (in {cwd})\n")
            out.flush()
            start = out.tell()
            proc = subprocess.run(["/bin/sh", "-c", shell_cmd], cwd=cwd, env=test_env,
                                  stdout=out, stderr=subprocess.STDOUT)
            out.write(f"==== {name}: exit status {proc.returncode}\n")
            out.flush()
            results[name] = PASS if proc.returncode == 0 else FAIL
            with open(log, errors="replace") as f:
                f.seek(start)
                details[name] = f.read()

        for test in BASIC:
            testdir = os.path.join(mnt, f"basic.{test}")
            run(f"basic/{test}", f"./{test} -t", os.path.join(cthon, "basic"),
                dict(env, NFSTESTDIR=testdir))
        for suite, tests in (("general", GENERAL), ("special", SPECIAL)):
            # What the suite's runtests does before runtests.wrk.
            testdir = os.path.join(mnt, suite)
            os.mkdir(testdir)
            subprocess.run(["make", "-s", "copy", f"DESTDIR={testdir}"],
                           cwd=os.path.join(cthon, suite), stdout=out, stderr=subprocess.STDOUT,
                           check=True, env=env)
            for name, shell_cmd in tests.items():
                run(f"{suite}/{name}", f"umask 0; {shell_cmd}", testdir, env)
    return results, details, log


# ---------------------------------------------------------------- pjdfstest

# A pjdfstest file that runs longer than this hangs (they take seconds).
PJDFSTEST_FILE_TIMEOUT = 300
TAP_PLAN = re.compile(r"^1\.\.(\d+)")
TAP_RESULT = re.compile(r"^(not )?ok (\d+)")
# "not ok N # TODO ...": a failure the test itself expects (TAP), not counted.
TAP_TODO = re.compile(r"^not ok \d+ # TODO")


class LocalDirectory:
    """A directory of the file system --out is on (no mount)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        os.makedirs(self.path, exist_ok=True)
        return self

    def alive(self):
        return True

    def __exit__(self, *exc):
        pass


# A FUSE daemon under test (kvfs-fuse) gets the NFS server's data limit: a
# request costing memory beyond what is stored fails instead of the machine.
FUSE_DAEMON_DATA_LIMIT = 2 * 1024 ** 3


def pjdfstest_target(args):
    """(context manager of the file system under test, its directory, what
    is checked alive after every test file). Every run starts on empty
    storage: what an earlier run left (its pjdfstest directory) is removed."""
    mnt = os.path.join(args.out, "mnt")
    for leftover in ("db", "source", "local"):
        shutil.rmtree(os.path.join(args.out, leftover), ignore_errors=True)
    if args.target == "kvfs-fuse":
        fs = FuseDaemon([args.kvfs_fuse, "-f", "--db", os.path.join(args.out, "db"),
                         "-o", "allow_other", mnt],
                        mnt, os.path.join(args.out, "kvfs-fuse.log"),
                        data_limit=FUSE_DAEMON_DATA_LIMIT)
        return fs, mnt, "kvfs-fuse"
    if args.target == "passthrough_ll":
        source = os.path.join(args.out, "source")
        os.makedirs(source, exist_ok=True)
        binary = os.path.join(args.suites, "passthrough_ll", "passthrough_ll")
        fs = FuseDaemon([binary, "-f", "-o", f"source={source},allow_other,default_permissions",
                         mnt], mnt, os.path.join(args.out, "passthrough_ll.log"))
        return fs, mnt, "passthrough_ll"
    if args.target == "local":
        local = os.path.join(args.out, "local")
        return LocalDirectory(local), local, "the local file system"
    return fuse_nfs_mount(args.suites, mnt, os.path.join(args.out, "fuse-nfs.log")), mnt, \
        "ganesha.nfsd"


def server_alive():
    """Whether the ganesha.nfsd conformance_server started still runs."""
    pid = os.environ.get("KVFS_CONFORMANCE_SERVER_PID")
    if pid is None:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def run_pjdfstest(args):
    """Runs every pjdfstest file on its own in the target's directory; a
    subtest is `dir/NN.t:N`. After each file the server (ganesha.nfsd, or the
    FUSE daemon) must still run; a file that hangs is stopped and counts as
    `dir/NN.t:hang`."""
    pjd = os.path.join(args.suites, "pjdfstest")
    tests = os.path.join(pjd, "tests")
    log = os.path.join(args.out, f"{expected_name(args)}.log")
    target, where, server = pjdfstest_target(args)
    files = sorted(os.path.relpath(os.path.join(d, f), tests)
                   for d, _, names in os.walk(tests) for f in names if f.endswith(".t"))
    if args.only:
        files = [f for f in files if fnmatch.fnmatchcase(f, args.only)]
    results, details = {}, {}
    with target, open(log, "w") as out:
        work = os.path.join(where, "pjdfstest")
        os.mkdir(work)
        for name in files:
            try:
                proc = subprocess.run(["/bin/sh", os.path.join(tests, name)], cwd=work,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      timeout=PJDFSTEST_FILE_TIMEOUT)
                text, hung = proc.stdout.decode(errors="replace"), False
            except subprocess.TimeoutExpired as e:
                text, hung = (e.stdout or b"").decode(errors="replace"), True
            out.write(f"==== {name}\n{text}")
            out.flush()
            planned, seen = 0, {}
            for line in text.splitlines():
                if m := TAP_PLAN.match(line):
                    planned = int(m.group(1))
                elif m := TAP_RESULT.match(line):
                    seen[int(m.group(2))] = (m.group(1) is None or bool(TAP_TODO.match(line)), line)
            for n in range(1, max([planned, *seen.keys()]) + 1):
                ok, line = seen.get(n, (False, f"not ok {n} - never ran"))
                results[f"{name}:{n}"] = PASS if ok else FAIL
                details[f"{name}:{n}"] = line
            if hung:
                results[f"{name}:hang"] = FAIL
                details[f"{name}:hang"] = f"{name} did not finish in {PJDFSTEST_FILE_TIMEOUT} s"
            if not server_alive() or not target.alive():
                results[f"{name}:server-died"] = FAIL
                details[f"{name}:server-died"] = f"{server} died during {name}"
                break
    return results, details, log


# ---------------------------------------------------------------- common


def run_logged(cmd, cwd, log):
    with open(log, "w") as out:
        subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)


def read_expected(path):
    """{pattern: reason} from an expected-results file."""
    expected = {}
    if not os.path.exists(path):
        return expected
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            code, _, reason = line.partition(" ")
            expected[code] = reason.strip()
    return expected


def expected_name(args):
    """The suite's expected-results file name, without .txt."""
    if args.suite == "pjdfstest" and args.target != "nfs":
        return f"pjdfstest-{args.target}"
    return args.suite


def check_floor(args):
    """kvfs-fuse's failures blamed on FUSE must be passthrough_ll's too."""
    mine = read_expected(os.path.join(args.expected, "pjdfstest-kvfs-fuse.txt"))
    floor_file = os.path.join(args.expected, "pjdfstest-passthrough_ll.txt")
    floor = read_expected(floor_file)
    ok = True
    for code, reason in sorted(mine.items()):
        if reason.startswith("passthrough_ll:") and code not in floor:
            print(f"pjdfstest: {code} is blamed on FUSE but not listed in {floor_file}")
            ok = False
    return ok


def check(args, results, details, log):
    expected_file = os.path.join(args.expected, f"{expected_name(args)}.txt")
    expected = read_expected(expected_file)

    def listed(code):
        return any(fnmatch.fnmatchcase(code, pattern) for pattern in expected)

    passed = [c for c, r in results.items() if r == PASS]
    failed = [c for c, r in results.items() if r != PASS]
    unexpected = sorted(c for c in failed if not listed(c))
    now_passing = sorted(c for c in passed if listed(c))
    unmatched = [] if args.only else sorted(
        p for p in expected if not any(fnmatch.fnmatchcase(c, p) for c in results))

    by_status = {}
    for r in results.values():
        by_status[r] = by_status.get(r, 0) + 1
    extra = ", ".join(f"{n} {s.lower()}" for s, n in sorted(by_status.items()) if s != PASS)
    print(f"{args.suite}: {len(passed)} passed, {len(failed)} failed"
          + (f" ({extra})" if extra else "") + f"; log {log}")

    ok = True
    if not results:
        print(f"{args.suite}: FAILURE: no results; end of {log}:")
        with open(log, errors="replace") as f:
            print("".join(f.readlines()[-60:]))
        return False
    for code in unexpected:
        ok = False
        print(f"{args.suite}: UNEXPECTED {results[code]} (not in {expected_file}):")
        print(details.get(code, "").rstrip()[-4000:])
    for code in now_passing:
        ok = False
        print(f"{args.suite}: {code} passes now; remove it from {expected_file}")
    for pattern in unmatched:
        ok = False
        print(f"{args.suite}: {pattern} in {expected_file} matches no test that ran")
    if ok:
        print(f"{args.suite}: every failure is listed in {expected_file}")
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suites", required=True)
    p.add_argument("--expected", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--phase", choices=["all", "maketree", "existing"], default="all")
    p.add_argument("--only", help="pjdfstest: only the test files matching this pattern "
                   "(e.g. 'chmod/*'); the expected-results check then covers those only")
    p.add_argument("--target", choices=["nfs", "kvfs-fuse", "passthrough_ll", "local"],
                   default="nfs", help="pjdfstest: the file system to run it on")
    p.add_argument("--kvfs-fuse", help="pjdfstest --target kvfs-fuse: the kvfs-fuse binary")
    p.add_argument("suite", choices=["pynfs40", "pynfs41", "cthon04", "pjdfstest"])
    args = p.parse_args()
    if args.target == "kvfs-fuse" and not args.kvfs_fuse:
        p.error("--target kvfs-fuse needs --kvfs-fuse BIN")
    args.suites = os.path.abspath(args.suites)
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)

    if args.suite == "cthon04":
        results, details, log = run_cthon04(args)
    elif args.suite == "pjdfstest":
        results, details, log = run_pjdfstest(args)
    else:
        results, details, log = run_pynfs(args)
    if args.phase == "maketree":
        ok = all(r == PASS for r in results.values()) and results
        print(f"{args.suite}: test tree made" if ok else
              f"{args.suite}: FAILURE: making the test tree failed; see {log}")
        return 0 if ok else 1
    ok = check(args, results, details, log)
    if args.suite == "pjdfstest" and args.target == "kvfs-fuse":
        ok = check_floor(args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
