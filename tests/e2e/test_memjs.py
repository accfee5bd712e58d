"""memjs, the Node.js client from the npm registry (version pinned in
js/package.json and js/package-lock.json), against the real daemon's text
port: set, get, delete and a miss over memcached's binary protocol without
--auth-file; and with --auth-file, memjs's SASL PLAIN accepted with the
password and refused with a wrong one (every call fails, the daemon counts
the failures).

memjs is installed here, into the build directory of the daemon under test
(BUILD/tests/e2e/js), with `npm ci` bounded by
NPM_INSTALL_TIMEOUT_S, and only when the installed tree is not the locked
one: after the first install the test needs no network. Node.js and npm come
from scripts/lib.sh. Without them, or when npm cannot install, the test
fails and says why: it is never skipped."""

import json
import os
import shutil
import subprocess
import tempfile

from auth_files import PASSWORD, USER, write_auth_file
from clients import TextClient
from daemon import Daemon
from harness import run_tests

JS_SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
CLIENT_SCRIPT = os.path.join(JS_SOURCE_DIR, "memjs_client.js")
NPM_INSTALL_TIMEOUT_S = 120
# memjs_client.js stops itself after 10 s; this bounds node itself.
CLIENT_TIMEOUT_S = 20
# Written into node_modules after an install: the package-lock.json it installed.
INSTALLED_LOCK = ".ringcache-package-lock.json"

_installed_dir = None


def js_dir(exe):
    """BUILD/tests/e2e/js for BUILD/server/ringcached: each build directory has its own."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(exe)))
    return os.path.join(build, "tests", "e2e", "js")


def install_memjs(exe):
    """The directory whose node_modules holds the locked memjs."""
    global _installed_dir
    if _installed_dir is not None:
        return _installed_dir
    for tool in ("node", "npm"):
        assert shutil.which(tool), "%s is not installed: scripts/lib.sh installs nodejs and npm" % tool
    directory = js_dir(exe)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(JS_SOURCE_DIR, "package-lock.json"), "rb") as f:
        lock = f.read()
    stamp = os.path.join(directory, "node_modules", INSTALLED_LOCK)
    installed = None
    if os.path.exists(stamp):
        with open(stamp, "rb") as f:
            installed = f.read()
    if installed != lock:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(JS_SOURCE_DIR, name), os.path.join(directory, name))
        command = ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]
        try:
            result = subprocess.run(command, cwd=directory, capture_output=True, text=True,
                                    timeout=NPM_INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s in %s took over %d s (is the npm registry reachable?)"
                                 % (" ".join(command), directory, NPM_INSTALL_TIMEOUT_S))
        assert result.returncode == 0, "%s in %s failed (exit %d):\n%s%s" % (
            " ".join(command), directory, result.returncode, result.stdout, result.stderr)
        with open(stamp, "wb") as f:
            f.write(lock)
    with open(os.path.join(JS_SOURCE_DIR, "package.json")) as f:
        pinned = json.load(f)["dependencies"]["memjs"]
    with open(os.path.join(directory, "node_modules", "memjs", "package.json")) as f:
        assert json.load(f)["version"] == pinned
    _installed_dir = directory
    return directory


def memjs(exe, server):
    """The outcome of each call memjs_client.js makes: {name: {ok, value|error}}."""
    env = dict(os.environ, NODE_PATH=os.path.join(install_memjs(exe), "node_modules"))
    result = subprocess.run(["node", CLIENT_SCRIPT, server], capture_output=True, text=True, env=env,
                            timeout=CLIENT_TIMEOUT_S)
    assert result.returncode == 0, "node exited %d:\n%s%s" % (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


def served(outcomes):
    return outcomes == {"set": {"ok": True, "value": True}, "get": {"ok": True, "value": "hello from memjs"},
                        "delete": {"ok": True, "value": True}, "miss": {"ok": True, "value": None}}


def test_memjs_set_get_delete(exe):
    with Daemon(exe, "-t", "1", "-m", "16", text="bind") as d:
        outcomes = memjs(exe, "127.0.0.1:%d" % d.text_port)
        assert served(outcomes), outcomes


def test_memjs_sasl(exe):
    directory = tempfile.mkdtemp(prefix="ringcache-auth-")
    try:
        path = write_auth_file(directory)
        with Daemon(exe, "-t", "1", "-m", "16", "--auth-file", path, text="bind") as d:
            server = "127.0.0.1:%d" % d.text_port
            outcomes = memjs(exe, "%s:%s@%s" % (USER.decode(), PASSWORD.decode(), server))
            assert served(outcomes), outcomes
            refused = memjs(exe, "%s:wrong@%s" % (USER.decode(), server))
            assert set(refused) == {"set", "get", "delete", "miss"}, refused
            for name, outcome in refused.items():
                assert not outcome["ok"] and "authentication failed" in outcome["error"], (name, refused)
            with TextClient(d.text_port) as text:
                assert text.store(b"set", b"auth", USER + b" " + PASSWORD) == b"STORED"
                assert text.get(b"memjs") == {}
                stats = text.stats()
            # Two accepted attempts (memjs's good connection, this one); every refused call failed one.
            attempts, failures = int(stats["auth_cmds"]), int(stats["auth_errors"])
            assert failures >= len(refused) and attempts == failures + 2, stats
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
