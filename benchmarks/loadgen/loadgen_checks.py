"""What the load generator's end-to-end checks (run_echo_e2e.py,
run_tls_e2e.py) share: reading the RESULT line of a run, judging a run that
should have finished cleanly or been refused, and a main that runs a list of
checks, each returning its problems, into one "N passed, M failed" and an
exit status."""
import subprocess
import sys


def result_fields(stdout):
    """The key=value fields of the RESULT line, or None without one."""
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(item.split("=", 1) for item in line.split()[1:])
    return None


def clean_run_problems(run):
    """(problems, fields) of a run that should have finished cleanly after a
    prefill: exit status 0, a RESULT line, some ops, no errors, no misses.
    fields is None without a RESULT line."""
    fields = result_fields(run.stdout)
    problems = []
    if run.returncode != 0:
        problems.append("exit status %d" % run.returncode)
    if fields is None:
        problems.append("no RESULT line")
        return problems, None
    if int(fields["ops"]) <= 0:
        problems.append("ops=%s" % fields["ops"])
    if int(fields["errors"]) != 0:
        problems.append("errors=%s" % fields["errors"])
    if int(fields["misses"]) != 0:
        problems.append("misses=%s after a prefill" % fields["misses"])
    return problems, fields


def refused_run_problems(run, wanted):
    """The problems of a run that should have failed (exit status 1) with a
    message containing `wanted` on stderr."""
    problems = []
    if run.returncode != 1:
        problems.append("exit status %d, wanted 1" % run.returncode)
    if wanted not in run.stderr:
        problems.append("no message with %r: %r" % (wanted, run.stderr))
    return problems


def main_of(usage, run):
    """A check script's main: run(loadgen, server) with the two paths of the
    command line; without them, prints usage and returns 2."""
    if len(sys.argv) != 3:
        print(usage)
        return 2
    return run(sys.argv[1], sys.argv[2])


def run_checks(checks, *args):
    """Calls each check with args; returns 1 if any found a problem, else 0."""
    passed = failed = 0
    for check in checks:
        try:
            problems = check(*args)
        except (AssertionError, subprocess.TimeoutExpired, OSError) as error:
            problems = [str(error)]
        if problems:
            failed += 1
            print("FAIL %s: %s" % (check.__name__, "; ".join(problems)))
        else:
            passed += 1
            print("ok   %s" % check.__name__)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
