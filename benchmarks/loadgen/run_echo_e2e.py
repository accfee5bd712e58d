#!/usr/bin/env python3
"""End-to-end check of ringcache-loadgen against ringcache-echo-server.

Usage: run_echo_e2e.py LOADGEN ECHO_SERVER

Starts the echo server on an ephemeral 127.0.0.1 port and checks that:
  1. a 2-second pipelined run with prefill completes with non-zero ops, zero
     errors, every GET a hit, and exit status 0;
  2. a run whose server dies midway ends promptly with a clear message and a
     non-zero exit status;
  3. a run against a port nobody listens on fails at once with non-zero status;
  4. a bad command line is refused with exit status 2.
Every process is bounded in time and killed on the way out.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))

from daemon import ECHO_LISTENING_RE, Server  # noqa: E402
from loadgen_checks import clean_run_problems, main_of, refused_run_problems, run_checks  # noqa: E402

STARTUP_SECONDS_MAX = 10
STOP_SECONDS_MAX = 5
RUN_SECONDS_MAX = 30


def start_echo(echo_path):
    """The echo server on an ephemeral port (its start-up line, on stdout, names it)."""
    return Server([echo_path, "-p", "0", "-t", "1"], ready=ECHO_LISTENING_RE, stream="stdout",
                  start_timeout_s=STARTUP_SECONDS_MAX, stop_timeout_s=STOP_SECONDS_MAX,
                  label="ringcache-echo-server").start()


def check_pipelined_run(loadgen, echo):
    server = start_echo(echo)
    try:
        run = subprocess.run(
            [loadgen, "--port", str(server.port), "--threads", "2", "--connections", "8",
             "--pipeline", "8", "--keys", "1000", "--duration", "2", "--warmup", "0.2",
             "--prefill", "--server-pid", str(server.pid)],
            capture_output=True, text=True, timeout=RUN_SECONDS_MAX)
    finally:
        server.close()
    problems, fields = clean_run_problems(run)
    if fields is not None:
        if int(fields["hits"]) != int(fields["gets"]):
            problems.append("the echo server always hits, got %s" % fields)
        if "server_cpu_s_per_mreq" not in fields:
            problems.append("--server-pid gave no server CPU figure")
        if float(fields["p50_us"]) <= 0 or float(fields["p999_us"]) < float(fields["p50_us"]):
            problems.append("implausible latency percentiles %s" % fields)
    if "prefill     1000 PUTs" not in run.stdout:
        problems.append("prefill did not PUT every key once")
    if problems:
        print(run.stdout + run.stderr)
    return problems


def check_server_death(loadgen, echo):
    server = start_echo(echo)
    try:
        started = time.monotonic()
        run = subprocess.Popen(
            [loadgen, "--port", str(server.port), "--threads", "1", "--connections", "4",
             "--duration", "20", "--warmup", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        server.kill()
        stdout, stderr = run.communicate(timeout=RUN_SECONDS_MAX)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    problems = []
    if run.returncode == 0:
        problems.append("exit status 0 although the server died")
    if "closed the connection" not in stderr and "receive failed" not in stderr:
        problems.append("no clear message about the lost connection")
    if elapsed > 5:
        problems.append("took %.1f s to notice the dead server" % elapsed)
    if problems:
        print(stdout + stderr)
    return problems


def check_refused(loadgen, echo):
    server = start_echo(echo)
    server.close()  # the port is now closed: nothing of ours listens on it
    run = subprocess.run([loadgen, "--port", str(server.port), "--duration", "1"],
                         capture_output=True, text=True, timeout=RUN_SECONDS_MAX)
    return refused_run_problems(run, "cannot connect")


def check_bad_command_line(loadgen, _echo):
    run = subprocess.run([loadgen, "--pipeline", "0"], capture_output=True, text=True,
                         timeout=RUN_SECONDS_MAX)
    problems = []
    if run.returncode != 2 or "--pipeline" not in run.stderr:
        problems.append("exit %d, stderr %r" % (run.returncode, run.stderr))
    return problems


def main():
    return main_of(__doc__, lambda loadgen, echo: run_checks(
        (check_pipelined_run, check_server_death, check_refused, check_bad_command_line), loadgen, echo))


if __name__ == "__main__":
    sys.exit(main())
