#!/usr/bin/env python3
"""End-to-end check of ringcache-loadgen --tls against ringcached --tls-cert.

Usage: run_tls_e2e.py LOADGEN RINGCACHED

Makes a throwaway CA and server certificate (openssl command, temporary
directory, removed at the end), starts ringcached with --tls-cert/--tls-key
on ephemeral ports and checks that:
  1. pipelined runs with prefill, verified against the CA (--tls-ca), on the
     binary port (binary protocol) and on the text port (text and mcbin), and a
     1 MiB-value run (large values are read through TLS, not dropped in the
     kernel) all finish with non-zero ops, zero errors and every GET a hit;
  2. --tls-ca with a CA that did not sign the server's certificate fails the
     run at once with a certificate message;
  3. plaintext loadgen against the TLS port fails rather than hangs.
Every process is bounded in time and stopped on the way out.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))

from daemon import Daemon  # noqa: E402
from loadgen_checks import result_fields, run_checks  # noqa: E402
from tls_certs import Certificates  # noqa: E402

RUN_SECONDS_MAX = 60


def run_loadgen(loadgen, port, *args):
    return subprocess.run([loadgen, "--port", str(port), *args], capture_output=True, text=True,
                          timeout=RUN_SECONDS_MAX)


def check_clean(run, what):
    fields = result_fields(run.stdout)
    problems = []
    if run.returncode != 0:
        problems.append("%s: exit status %d" % (what, run.returncode))
    if fields is None:
        problems.append("%s: no RESULT line" % what)
    else:
        if int(fields["ops"]) <= 0:
            problems.append("%s: ops=%s" % (what, fields["ops"]))
        if int(fields["errors"]) != 0:
            problems.append("%s: errors=%s" % (what, fields["errors"]))
        if int(fields["misses"]) != 0:
            problems.append("%s: misses=%s after a prefill" % (what, fields["misses"]))
    if problems:
        print(run.stdout + run.stderr)
    return problems


def check_runs(loadgen, ringcached, certs):
    ca = certs.path("ca.pem")
    common = ["--threads", "2", "--connections", "8", "--keys", "2000", "--duration", "1.5",
              "--warmup", "0.3", "--prefill", "--tls-ca", ca]
    problems = []
    with Daemon(ringcached, "-t", "2", "-m", "64", "--tls-cert", certs.path("server.pem"),
                "--tls-key", certs.path("server.key"), text="bind") as d:
        problems += check_clean(run_loadgen(loadgen, d.port, *common, "--pipeline", "16"), "binary")
        problems += check_clean(run_loadgen(loadgen, d.text_port, *common, "--pipeline", "16",
                                            "--protocol", "text"), "text")
        problems += check_clean(run_loadgen(loadgen, d.text_port, *common, "--pipeline", "16",
                                            "--protocol", "mcbin"), "mcbin")
        problems += check_clean(run_loadgen(loadgen, d.text_port, "--tls", "--threads", "1",
                                            "--connections", "4", "--keys", "16", "--value-size", "1M",
                                            "--duration", "1.5", "--warmup", "0.3", "--prefill",
                                            "--protocol", "text", "--get-ratio", "1"), "1 MiB text")
    return problems


def check_wrong_ca(loadgen, ringcached, certs):
    with Daemon(ringcached, "--tls-cert", certs.path("server.pem"), "--tls-key", certs.path("server.key")) as d:
        run = run_loadgen(loadgen, d.port, "--tls-ca", certs.path("other-ca.pem"), "--duration", "1",
                          "--connections", "2")
    problems = []
    if run.returncode != 1:
        problems.append("exit status %d, wanted 1" % run.returncode)
    if "certificate" not in run.stderr:
        problems.append("no certificate message: %r" % run.stderr)
    return problems


def check_plaintext_refused(loadgen, ringcached, certs):
    with Daemon(ringcached, "--tls-cert", certs.path("server.pem"), "--tls-key", certs.path("server.key")) as d:
        run = run_loadgen(loadgen, d.port, "--duration", "2", "--warmup", "0", "--connections", "2")
    problems = []
    if run.returncode != 1:
        problems.append("plaintext against TLS: exit status %d, wanted 1" % run.returncode)
    return problems


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    loadgen, ringcached = sys.argv[1], sys.argv[2]
    with Certificates() as certs:
        return run_checks((check_runs, check_wrong_ca, check_plaintext_refused), loadgen, ringcached, certs)


if __name__ == "__main__":
    sys.exit(main())
