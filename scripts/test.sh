#!/usr/bin/env bash
# Installs what is missing, builds, runs every test. Its last line is
# "N passed, M failed"; it exits non-zero when anything failed.
#
#   plain build   (mimalloc, assertions on): every meson suite, including the
#                 RLIMIT_AS tests and the root-only ones (SKIP when not root)
#   ASan+UBSan    every suite except rlimit (sanitizers cannot run under RLIMIT_AS);
#                 the chaos test's faults last 30 s here (60 s in the plain build)
#   TSan          the unit tests of the store (with its multi-threaded stress
#                 test), the daemon's modules and replication
#   libFuzzer     each protocol parser, 20 s per target (meson option fuzz_seconds)
#   EUnit         the Erlang client against real daemons from the plain build
#
# Environment: SKIP_SANITIZERS=1 for a quick run.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

passed=0
failed=0
skipped=0
failures=()

# Adds a meson build's results (meson-logs/testlog.json, one JSON per line).
count_meson() {
  local dir=$1 label=$2 p f s names
  read -r p f s names < <(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
bad = []
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif res == "SKIP":
            s += 1
        else:
            f += 1
            bad.append(r.get("name", "?"))
except FileNotFoundError:
    f += 1
    bad.append("no-testlog")
print(p, f, s, ",".join(bad) or "-")
PY
)
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  [[ $names != "-" ]] && failures+=("$label: $names")
  log "$label: $p passed, $f failed, $s skipped"
}

fail_step() {
  failed=$((failed + 1))
  failures+=("$1")
  log "FAILED: $1"
}

run_meson_suite() {  # dir label [meson test args...]
  local dir=$1 label=$2
  shift 2
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --no-rebuild --print-errorlogs "$@" >"$dir/test-output.txt" 2>&1
  count_meson "$dir" "$label"
  if grep -q "^Summary of Failures" "$dir/test-output.txt"; then
    sed -n '/^Summary of Failures/,$p' "$dir/test-output.txt" >&2
  fi
}

install_missing_packages || { echo "0 passed, 1 failed"; exit 1; }

log "plain build"
if configure_build build && ninja -C build >build/ninja-output.txt 2>&1; then
  run_meson_suite build plain
else
  tail -40 build/ninja-output.txt >&2
  fail_step "plain build"
fi

if [[ ${SKIP_SANITIZERS:-0} != 1 ]]; then
  log "ASan+UBSan build"
  # -O1, as the sanitizers' documentation advises: stack traces stay exact,
  # and the doctest files compile in two thirds of -O2's time (the ASan build
  # was 7 of CI's 18 minutes on two cores).
  if configure_build build-asan -Db_sanitize=address,undefined -Db_lundef=false \
       -Doptimization=1 -Dallocator=libc -Dbenchmarks=false &&
     ninja -C build-asan >build-asan/ninja-output.txt 2>&1; then
    RINGCACHE_CHAOS_SECONDS=30 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      run_meson_suite build-asan asan --no-suite rlimit
  else
    tail -40 build-asan/ninja-output.txt >&2
    fail_step "asan build"
  fi

  log "TSan build"
  if configure_build build-tsan -Db_sanitize=thread -Db_lundef=false \
       -Doptimization=1 -Dallocator=libc -Dbenchmarks=false &&
     ninja -C build-tsan tests/store/test_store tests/server/test_server \
       tests/replication/test_replication >build-tsan/ninja-output.txt 2>&1; then
    TSAN_OPTIONS=halt_on_error=1 run_meson_suite build-tsan tsan store server replication
  else
    tail -40 build-tsan/ninja-output.txt >&2
    fail_step "tsan build"
  fi
fi

log "fuzz build (clang, libFuzzer)"
# Only the fuzz targets (tests/**/fuzz_*) and their seed corpora are built
# with clang.
if CXX=clang++ configure_build build-fuzz -Dfuzz=true -Dfuzz_seconds=20 -Dallocator=libc -Dbenchmarks=false \
     -Db_lundef=false &&
   ninja -C build-fuzz $(ninja -C build-fuzz -t targets all |
                          sed -n 's|^\(tests/[^:]*fuzz_[^:/]*\): .*|\1|p' | grep -v '\.o$') \
     >build-fuzz/ninja-output.txt 2>&1; then
  run_meson_suite build-fuzz fuzz --suite fuzz
else
  tail -40 build-fuzz/ninja-output.txt >&2
  fail_step "fuzz build"
fi

if [[ -x build/server/ringcached && -f erlang/rebar.config ]]; then
  log "EUnit (Erlang client)"
  eunit_out=$(cd erlang && RINGCACHED="$PWD/../build/server/ringcached" rebar3 eunit 2>&1)
  eunit_rc=$?
  printf '%s\n' "$eunit_out" | tail -15 >&2
  read -r ep ef < <(printf '%s\n' "$eunit_out" | python3 -c '
import re, sys
text = sys.stdin.read()
m = re.search(r"All (\d+) tests passed", text)
if m:
    print(m.group(1), 0)
else:
    f = re.search(r"Failed: (\d+)\.", text)
    p = re.search(r"Passed: (\d+)\.", text)
    print(p.group(1) if p else 0, f.group(1) if f else 1)
')
  passed=$((passed + ep))
  failed=$((failed + ef))
  if ((eunit_rc != 0 && ef == 0)); then fail_step "eunit (rebar3 exit $eunit_rc)"; fi
  ((ef > 0)) && failures+=("eunit: $ef failed")
else
  fail_step "eunit: no daemon build or no erlang/ project"
fi

for f in "${failures[@]}"; do log "failure: $f"; done
log "skipped: $skipped"
echo "$passed passed, $failed failed"
((failed == 0))
