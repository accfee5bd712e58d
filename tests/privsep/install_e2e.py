#!/usr/bin/env python3
"""scripts/install.sh into a staging tree, checked with systemd-analyze.

Never touches the machine: everything goes under a temporary --destdir.
Checks the installed files, `systemd-analyze verify` on the staged units,
the `systemd-analyze security --offline=true` exposure (at most 2.0), the
MemoryMax derived from --memory, clear errors for bad options, and that
--uninstall removes everything it installed.

usage: install_e2e.py --install-script PATH --builddir PATH
"""

import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

EXPOSURE_MAX = 2.0
COMMAND_TIMEOUT_S = 60
PREFIX = "/usr/local"
UNITDIR = "/etc/systemd/system"
UNITS = ("ringcached.service", "ringcached.socket", "ringcached-text.socket")
BINARIES = ("ringcached", "ringcached-privsep")
HOST_UNITS = "/lib/systemd/system"
DEBIAN_MEMCACHED_UNIT = "/lib/systemd/system/memcached.service"


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(argv):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    return result.returncode, result.stdout + result.stderr


def files_under(root):
    found = []
    for directory, _, names in os.walk(root):
        found.extend(os.path.relpath(os.path.join(directory, name), root) for name in names)
    return sorted(found)


def exposure(unit_path, root=None):
    argv = ["systemd-analyze", "security", "--offline=true", "--no-pager"]
    if root:
        argv.append(f"--root={root}")
    status, output = run(argv + [unit_path])
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    check(match is not None, f"no exposure level in systemd-analyze output (status {status}):\n{output}")
    return float(match.group(1)), output


def test_install_verify_security_uninstall(script, builddir, stage):
    status, output = run([script, "--destdir", stage, "--builddir", builddir])
    check(status == 0, f"install.sh failed ({status}):\n{output}")
    expected = sorted([f"{PREFIX[1:]}/bin/{b}" for b in BINARIES] + [f"{UNITDIR[1:]}/{u}" for u in UNITS])
    check(files_under(stage) == expected, f"staged files {files_under(stage)}, expected {expected}")
    for binary in BINARIES:
        mode = os.stat(os.path.join(stage, PREFIX[1:], "bin", binary)).st_mode
        check(stat.S_IMODE(mode) == 0o755, f"{binary} has mode {oct(mode)}")
    service_text = open(os.path.join(stage, UNITDIR[1:], "ringcached.service")).read()
    check(f"ExecStart={PREFIX}/bin/ringcached -m 64\n" in service_text, "ExecStart does not run the installed daemon")
    check("MemoryMax=160M\n" in service_text, "MemoryMax for -m 64 is not 1.25*64+48+32 = 160M")
    check(re.search(r"@[a-z_]+@", service_text) is None, "a placeholder was left in the service")
    print(f"ok: staged {len(expected)} files")

    # --root makes systemd-analyze read the staged tree; it also needs the
    # standard targets (sysinit.target, sockets.target...) from there.
    shutil.copytree(HOST_UNITS, os.path.join(stage, HOST_UNITS[1:]), symlinks=True)
    units = [os.path.join(stage, UNITDIR[1:], u) for u in UNITS]
    status, output = run(["systemd-analyze", "verify", f"--root={stage}"] + units)
    check(status == 0 and output.strip() == "", f"systemd-analyze verify failed ({status}):\n{output}")
    print("ok: systemd-analyze verify passes on the staged units, no warnings")

    ours, report = exposure(units[0], root=stage)
    check(ours <= EXPOSURE_MAX, f"exposure {ours} above {EXPOSURE_MAX}:\n{report}")
    print(f"ok: systemd-analyze security --offline=true: ringcached.service exposure {ours}")
    for line in report.splitlines():
        if line.startswith("\u2717"):
            print("   remaining: " + " ".join(line.split()))
    if os.path.exists(DEBIAN_MEMCACHED_UNIT):
        theirs, _ = exposure(DEBIAN_MEMCACHED_UNIT)
        print(f"   for comparison, Debian's memcached.service: {theirs}")
    shutil.rmtree(os.path.join(stage, HOST_UNITS[1:].split("/")[0]))

    status, output = run([script, "--destdir", stage, "--builddir", builddir, "--uninstall"])
    check(status == 0, f"install.sh --uninstall failed ({status}):\n{output}")
    check(files_under(stage) == [] and os.listdir(stage) == [],
          f"left after --uninstall: {files_under(stage) or os.listdir(stage)}")
    print("ok: --uninstall removes every file and the directories it created")


def test_memory_and_prefix(script, builddir, stage):
    status, output = run([script, "--destdir", stage, "--builddir", builddir, "--prefix", "/opt/ringcache",
                          "--memory", "1024"])
    check(status == 0, f"install.sh --memory 1024 failed ({status}):\n{output}")
    service_text = open(os.path.join(stage, UNITDIR[1:], "ringcached.service")).read()
    check("ExecStart=/opt/ringcache/bin/ringcached -m 1024\n" in service_text, "--prefix/--memory not applied")
    check("MemoryMax=1360M\n" in service_text, "MemoryMax for -m 1024 is not 1280+48+32 = 1360M")
    check(os.access(os.path.join(stage, "opt/ringcache/bin/ringcached-privsep"), os.X_OK), "helper not installed")
    status, output = run([script, "--destdir", stage, "--prefix", "/opt/ringcache", "--uninstall"])
    check(status == 0 and os.listdir(stage) == [], f"uninstall with --prefix left {files_under(stage)}")
    print("ok: --prefix and --memory (MemoryMax 1360M for -m 1024)")


def test_bad_options(script, builddir, stage):
    cases = [
        (["--builddir", os.path.join(stage, "no-such-build")], "not found"),
        (["--builddir", builddir, "--memory", "lots"], "--memory must be a whole number"),
        (["--builddir", builddir, "--memory", "2"], "--memory must be 4.."),
        (["--builddir", builddir, "--prefix", "relative/path"], "--prefix must be an absolute path"),
        (["--bogus"], "unknown option '--bogus'"),
        (["--prefix"], "option --prefix needs a value"),
    ]
    for extra, message in cases:
        status, output = run([script, "--destdir", stage] + extra)
        check(status != 0, f"install.sh {' '.join(extra)} succeeded")
        check(message in output, f"install.sh {' '.join(extra)}: no '{message}' in:\n{output}")
    check(os.listdir(stage) == [], f"a failed install left files: {files_under(stage)}")
    if os.geteuid() != 0:
        status, output = run([script, "--builddir", builddir])
        check(status != 0 and "needs root" in output, f"non-root install into / was not refused:\n{output}")
    print(f"ok: {len(cases)} bad invocations refused with a clear message, nothing staged")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install-script", required=True)
    parser.add_argument("--builddir", required=True)
    args = parser.parse_args()
    if shutil.which("systemd-analyze") is None:
        print("FAIL: systemd-analyze is not installed (package systemd)")
        return 1
    failed = 0
    for test in (test_install_verify_security_uninstall, test_memory_and_prefix, test_bad_options):
        stage = tempfile.mkdtemp(prefix="ringcache-install-")
        try:
            test(args.install_script, args.builddir, stage)
        except (Failure, subprocess.TimeoutExpired) as failure:
            print(f"FAIL: {test.__name__}: {failure}")
            failed += 1
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    print(f"{3 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
