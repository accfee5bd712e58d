"""What the load generator's end-to-end checks (run_echo_e2e.py,
run_tls_e2e.py) share: reading the RESULT line of a run, and running a list
of checks, each returning its problems, into one "N passed, M failed" and
an exit status."""
import subprocess


def result_fields(stdout):
    """The key=value fields of the RESULT line, or None without one."""
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(item.split("=", 1) for item in line.split()[1:])
    return None


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
