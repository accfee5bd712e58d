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
from loadgen_checks import clean_run_problems, main_of, refused_run_problems, run_checks  # noqa: E402
from tls_certs import Certificates  # noqa: E402

RUN_SECONDS_MAX = 60


def run_loadgen(loadgen, port, *args):
    return subprocess.run([loadgen, "--port", str(port), *args], capture_output=True, text=True,
                          timeout=RUN_SECONDS_MAX)


def check_clean(run, what):
    problems, _ = clean_run_problems(run)
    if problems:
        print(run.stdout + run.stderr)
    return ["%s: %s" % (what, problem) for problem in problems]


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
    return refused_run_problems(run, "certificate")


def check_plaintext_refused(loadgen, ringcached, certs):
    with Daemon(ringcached, "--tls-cert", certs.path("server.pem"), "--tls-key", certs.path("server.key")) as d:
        run = run_loadgen(loadgen, d.port, "--duration", "2", "--warmup", "0", "--connections", "2")
    problems = []
    if run.returncode != 1:
        problems.append("plaintext against TLS: exit status %d, wanted 1" % run.returncode)
    return problems


def check_with_certificates(loadgen, ringcached):
    with Certificates() as certs:
        return run_checks((check_runs, check_wrong_ca, check_plaintext_refused), loadgen, ringcached, certs)


def main():
    return main_of(__doc__, check_with_certificates)


if __name__ == "__main__":
    sys.exit(main())
