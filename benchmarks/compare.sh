#!/usr/bin/env bash
# compare.sh: memcached (Debian's package) and ringcached's text port under the
# same load, side by side (issue 7).
#
# Both servers get the same worker threads (-t) and the same memory (-m). For
# each scenario both are started afresh, each is filled with every key once
# (then "items / MiB" = curr_items / -m: what the memory holds), and then each
# is measured --repeat times, alternately, with ringcache-loadgen speaking the
# memcached text protocol (or, with --protocol mcbin, memcached's binary
# protocol); the run with the median ops/s is reported, so a
# burst of unrelated load on the machine hits both servers alike. Printed and
# written to OUT/compare.md: ops/s, p50/p99 latency, server CPU seconds per
# million requests, hit ratio, items held per MiB after the fill and at the
# end, resident memory. OUT/compare.png draws the same table (gnuplot).
#
# usage: benchmarks/compare.sh [--build DIR] [--threads N] [--memory MIB]
#                              [--duration S] [--repeat N] [--out DIR] [--only NAMES]
#                              [--protocol text|mcbin] [--loadgen-threads N]
#                              [--tls [--tls-cert FILE --tls-key FILE --tls-ca FILE]]
#   --build DIR    meson build with server/ringcached and
#                  benchmarks/loadgen/ringcache-loadgen (default: the first of
#                  build-release, build-text-release, build that has both)
#   --threads N    server worker threads for both servers (1: on a 2-core
#                  machine the load generator needs the other core)
#   --memory MIB   -m for both servers (64)
#   --duration S   measured seconds per run (5), after 1 s of warmup
#   --repeat N     runs per server and scenario, median reported (3)
#   --out DIR      where compare.md, compare.dat and compare.png go (compare-results)
#   --only NAMES   run these scenarios (comma-separated): small, pipelined,
#                  gets, 4k, zipf, 1m (1 MiB values, 32 keys, memcached
#                  with -I 2m so that one fits)
#   --protocol P   text (set/get, the default) or mcbin: memcached's binary
#                  protocol (set; a batch's gets as getq ending in a noop,
#                  a lone get as get), which ringcached's text port speaks too
#   --loadgen-threads N
#                  load generator threads in every scenario (default: 1, and
#                  2 for 1m: one thread copying, and with --tls decrypting,
#                  1 MiB per reply saturates its core before either server
#                  does, which measures the client, not the servers)
#   --tls          both servers serve TLS with the same certificate and key
#                  (memcached -Z -o ssl_chain_cert=,ssl_key=; ringcached
#                  --tls-cert/--tls-key) and the load generator speaks TLS,
#                  verified against the CA; its handshakes happen before the
#                  warmup. Without --tls-cert/--tls-key/--tls-ca a throwaway CA
#                  and server certificate (EC P-256, openssl command) are made
#                  in OUT/tls/ (never commit them).
#
# Run time with the defaults: about 6 x (2 fills + 6 x 6 s), ~4 minutes.
# Exit status: 0 done, 1 a server or the load failed, 2 usage.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

threads=1
memory_mib=64
duration=5
warmup=1
repeat=3
out_dir=compare-results
build=""
only=""
protocol=text
loadgen_threads=""
start_timeout_s=10
tls=0
tls_cert=""
tls_key=""
tls_ca=""

usage() { sed -n '2,49p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "compare.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --memory) memory_mib=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --out) out_dir=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --protocol) protocol=$2; shift 2 ;;
        --loadgen-threads) loadgen_threads=$2; shift 2 ;;
        --tls) tls=1; shift ;;
        --tls-cert) tls_cert=$2; shift 2 ;;
        --tls-key) tls_key=$2; shift 2 ;;
        --tls-ca) tls_ca=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "compare.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
done
case "$protocol" in
    text|mcbin) ;;
    *) echo "compare.sh: --protocol is text or mcbin, not '$protocol'" >&2; exit 2 ;;
esac
for number in "$threads" "$memory_mib" "$duration" "$repeat" ${loadgen_threads:+"$loadgen_threads"}; do
    [[ "$number" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: '$number' is not a positive whole number" >&2; exit 2; }
done

if [ -z "$build" ]; then
    for candidate in build-release build-text-release build; do
        if [ -x "$root/$candidate/server/ringcached" ] && \
           [ -x "$root/$candidate/benchmarks/loadgen/ringcache-loadgen" ]; then
            build=$root/$candidate
            break
        fi
    done
    [ -n "$build" ] || die "no build with server/ringcached and the load generator; pass --build DIR"
fi
ringcached=$build/server/ringcached
loadgen=$build/benchmarks/loadgen/ringcache-loadgen
memcached=$(command -v memcached) || die "memcached is not installed (apt-get install memcached)"
[ -x "$ringcached" ] || die "$ringcached is missing"
[ -x "$loadgen" ] || die "$loadgen is missing"
memcached_version=$("$memcached" -V | awk '{ print $2 }')
mkdir -p "$out_dir"

transport=plaintext
if [ "$tls" = 1 ]; then
    transport=TLS
    [[ "$("$memcached" -h)" == *--enable-ssl* ]] || die "this memcached is built without TLS (-Z)"
    if [ -z "$tls_cert$tls_key$tls_ca" ]; then
        command -v openssl >/dev/null || die "the openssl command is missing (apt-get install openssl)"
        tls_dir=$out_dir/tls
        mkdir -p "$tls_dir"
        (
            cd "$tls_dir"
            umask 077
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -keyout ca.key -out ca.pem -subj "/CN=compare.sh throwaway CA"
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                -extfile server.ext -out server.pem
        ) >/dev/null 2>&1 || die "openssl could not make the throwaway certificates in $tls_dir"
        tls_cert=$tls_dir/server.pem
        tls_key=$tls_dir/server.key
        tls_ca=$tls_dir/ca.pem
    fi
    for file in "$tls_cert" "$tls_key" "$tls_ca"; do
        if [ -z "$file" ] || [ ! -r "$file" ]; then
            die "--tls needs readable --tls-cert, --tls-key and --tls-ca (or none of them)"
        fi
    done
fi

# name | label | chart label | key count | loadgen arguments. Every scenario
# but gets is 90% gets and 10% sets of 16-byte keys over 50 connections; only
# the zipf one has more data than memory.
scenarios=(
    "small|100 B, unpipelined|100 B|100000|--pipeline 1 --value-size 100"
    "pipelined|100 B, pipeline 16|100 B x16|100000|--pipeline 16 --value-size 100"
    "gets|100 B, gets only, pipeline 16|gets x16|100000|--pipeline 16 --value-size 100 --get-ratio 1"
    "4k|4 KiB, unpipelined|4 KiB|10000|--pipeline 1 --value-size 4K"
    "zipf|zipf 0.99, data 3x memory, pipeline 4|zipf, 3x|1000000|--pipeline 4 --value-size 200 --popularity zipf:0.99"
    "1m|1 MiB, unpipelined, 32 keys|1 MiB|32|--pipeline 1 --value-size 1M"
)
# memcached's largest item is 1 MiB with its header: a 1 MiB value needs -I 2m.
declare -A memcached_extra=([1m]="-I 2m")
# Load generator threads where one is not enough (see --loadgen-threads).
declare -A scenario_loadgen_threads=([1m]=2)

declare -A pid port
cleanup() {
    for kind in "${!pid[@]}"; do
        if kill -0 "${pid[$kind]}" 2>/dev/null; then
            kill "${pid[$kind]}" 2>/dev/null || true
            wait "${pid[$kind]}" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sends a text command, prints the reply up to END (stats) or the first line.
text_command() {
    python3 - "$1" "$2" "$tls_ca" <<'PYTHON'
import socket, ssl, sys
port, command = int(sys.argv[1]), sys.argv[2].encode() + b"\r\n"
with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
    if sys.argv[3]:
        sock = ssl.create_default_context(cafile=sys.argv[3]).wrap_socket(sock, server_hostname="127.0.0.1")
    sock.sendall(command)
    reply = b""
    while not (reply.endswith(b"END\r\n") or (not command.startswith(b"stats") and reply.endswith(b"\r\n"))):
        chunk = sock.recv(65536)
        if not chunk:
            break
        reply += chunk
sys.stdout.write(reply.decode("ascii", "replace"))
PYTHON
}

start_server() { # kind, extra memcached arguments
    local kind=$1 extra=${2:-}
    port[$kind]=$(free_port)
    if [ "$kind" = memcached ]; then
        local user=() secure=()
        [ "$(id -u)" -eq 0 ] && user=(-u nobody)
        [ "$tls" = 1 ] && secure=(-Z -o "ssl_chain_cert=$tls_cert,ssl_key=$tls_key")
        # shellcheck disable=SC2086 # extra is split on purpose
        "$memcached" -l 127.0.0.1 -p "${port[$kind]}" -U 0 -t "$threads" -m "$memory_mib" -c 4096 \
            "${user[@]}" "${secure[@]}" $extra >/dev/null 2>&1 &
    else
        local secure=()
        [ "$tls" = 1 ] && secure=(--tls-cert "$tls_cert" --tls-key "$tls_key")
        "$ringcached" -l 127.0.0.1 -p 0 --text-port "${port[$kind]}" -t "$threads" -m "$memory_mib" \
            "${secure[@]}" >/dev/null 2>&1 &
    fi
    pid[$kind]=$!
    local deadline=$((SECONDS + start_timeout_s))
    while ! text_command "${port[$kind]}" version >/dev/null 2>&1; do
        kill -0 "${pid[$kind]}" 2>/dev/null || die "$kind exited at start-up"
        [ $SECONDS -lt $deadline ] || die "$kind did not answer on port ${port[$kind]}"
        sleep 0.1
    done
}

stop_servers() {
    cleanup
    pid=()
}

stat_value() { # stats text, name
    printf '%s' "$1" | tr -d '\r' | awk -v name="$2" '$1 == "STAT" && $2 == name { print $3 }'
}

result_value() { # RESULT line, field
    printf '%s' "$1" | tr ' ' '\n' | awk -F= -v name="$2" '$1 == name { print $2 }'
}

items_per_mib() {
    awk -v i="$(stat_value "$(text_command "${port[$1]}" stats)" curr_items)" -v m="$memory_mib" \
        'BEGIN { printf "%.0f", i / m }'
}

# Prints the loadgen's RESULT line for one server.
load() { # kind, scenario name, extra loadgen arguments...
    local kind=$1 name=$2 result
    shift 2
    local client_threads=${loadgen_threads:-${scenario_loadgen_threads[$name]:-1}}
    local secure=()
    [ "$tls" = 1 ] && secure=(--tls-ca "$tls_ca")
    result=$("$loadgen" --protocol "$protocol" --port "${port[$kind]}" --threads "$client_threads" \
                 --connections 50 --server-pid "${pid[$kind]}" --seed 1 "${secure[@]}" "$@" 2>/dev/null |
                 grep '^RESULT') ||
        die "the load generator failed against $kind"
    [ "$(result_value "$result" status)" = ok ] || die "$kind: $result"
    printf '%s\n' "$result"
}

# One row per scenario and server:
# name kind ops p50 p99 cpu hit items_filled items_end rss
rows=()
run_scenario() {
    local name=$1 keys=$2 args=$3 kind
    declare -A filled results
    for kind in memcached ringcached; do
        start_server "$kind" "${memcached_extra[$name]:-}"
        # Every key once, then a moment of gets only: nothing overwritten yet.
        # shellcheck disable=SC2086 # the scenario's arguments are split on purpose
        load "$kind" "$name" --keys "$keys" $args --prefill --get-ratio 1 --duration 1 --warmup 0 >/dev/null
        filled[$kind]=$(items_per_mib "$kind")
    done
    for ((run = 1; run <= repeat; run++)); do
        for kind in memcached ringcached; do
            # shellcheck disable=SC2086
            results[$kind]+="$(load "$kind" "$name" --keys "$keys" $args --duration "$duration" --warmup "$warmup")"$'\n'
        done
    done
    for kind in memcached ringcached; do
        local median hits misses
        median=$(printf '%s' "${results[$kind]}" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^ops_per_s=/) {
                     split($i, f, "="); print f[2], $0 } }' | sort -n | awk -v n="$repeat" 'NR == int((n + 1) / 2)' |
                 cut -d' ' -f2-)
        hits=$(result_value "$median" hits)
        misses=$(result_value "$median" misses)
        rows+=("$name $kind $(result_value "$median" ops_per_s) $(result_value "$median" p50_us) \
$(result_value "$median" p99_us) $(result_value "$median" server_cpu_s_per_mreq) \
$(awk -v h="$hits" -v m="$misses" 'BEGIN { printf "%.4f", (h + m) ? h / (h + m) : 0 }') \
${filled[$kind]} $(items_per_mib "$kind") $(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/${pid[$kind]}/status")")
        echo "  $kind: $(result_value "$median" ops_per_s) ops/s, p99 $(result_value "$median" p99_us) us," \
             "$(result_value "$median" server_cpu_s_per_mreq) s CPU per M req (median of $repeat)" >&2
    done
    stop_servers
}

echo "memcached $memcached_version vs ringcached ($build), -t $threads -m $memory_mib," \
     "$repeat x ${duration}s per server and scenario, $protocol protocol over $transport, $(nproc) cores" >&2
labels=()
for scenario in "${scenarios[@]}"; do
    IFS='|' read -r name label short keys args <<<"$scenario"
    [ -z "$only" ] || [[ ",$only," == *",$name,"* ]] || continue
    echo "scenario $name: $label" >&2
    labels+=("$name|$label|$short")
    run_scenario "$name" "$keys" "$args"
done
[ ${#labels[@]} -gt 0 ] || die "no scenario named '$only'"

row_of() { printf '%s\n' "${rows[@]}" | awk -v n="$1" -v k="$2" '$1 == n && $2 == k'; }

if [ -n "$loadgen_threads" ]; then
    client_threads_said="$loadgen_threads load generator threads"
else
    client_threads_said="1 load generator thread (1 MiB: ${scenario_loadgen_threads[1m]})"
fi
table=$out_dir/compare.md
data=$out_dir/compare.dat
{
    echo "memcached $memcached_version vs ringcached $("$ringcached" -V | awk '{ print $2 }'), $protocol protocol over $transport," \
         "-t $threads -m $memory_mib, 50 connections over $client_threads_said, 90% get / 10% set unless said," \
         "median of $repeat runs of ${duration} s"
    echo
    echo "| scenario | server | ops/s | p50 µs | p99 µs | server CPU s / M req | hit ratio | items / MiB filled | items / MiB at end | RSS MiB |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for entry in "${labels[@]}"; do
        IFS='|' read -r name label _ <<<"$entry"
        for kind in memcached ringcached; do
            read -r _ _ ops p50 p99 cpu hit filled end rss <<<"$(row_of "$name" "$kind")"
            printf '| %s | %s | %.0f | %.0f | %.0f | %.2f | %.3f | %s | %s | %s |\n' \
                "$label" "$kind" "$ops" "$p50" "$p99" "$cpu" "$hit" "$filled" "$end" "$rss"
        done
    done
    echo
    echo "ringcached / memcached:"
    for entry in "${labels[@]}"; do
        IFS='|' read -r name label _ <<<"$entry"
        printf '%s\n%s\n' "$(row_of "$name" memcached)" "$(row_of "$name" ringcached)" | awk -v label="$label" '
            NR == 1 { ops = $3; p99 = $5; cpu = $6; hit = $7; items = $8 }
            NR == 2 { printf "- %s: %.2fx ops/s, %.2fx p99, %.2fx CPU per request, hit ratio %+.3f, %.2fx items/MiB\n",
                      label, $3 / ops, $5 / p99, (cpu > 0 ? $6 / cpu : 0), $7 - hit, (items > 0 ? $8 / items : 0) }'
    done
} >"$table"
{
    echo "# label mc_ops rc_ops mc_p50 rc_p50 mc_p99 rc_p99 mc_cpu rc_cpu mc_hit rc_hit mc_items rc_items"
    for entry in "${labels[@]}"; do
        IFS='|' read -r name _ short <<<"$entry"
        printf '"%s" %s\n' "$short" "$(printf '%s\n%s\n' "$(row_of "$name" memcached)" "$(row_of "$name" ringcached)" |
            awk 'NR == 1 { for (i = 3; i <= 8; i++) m[i] = $i }
                 NR == 2 { for (i = 3; i <= 8; i++) printf "%s %s ", m[i], $i }')"
    done
} >"$data"
cat "$table"

if command -v gnuplot >/dev/null; then
    gnuplot <<GNUPLOT
set terminal pngcairo size 1500,900 font "sans,10"
set output "$out_dir/compare.png"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key below horizontal
set grid ytics
set xtics scale 0
set yrange [0:*]
set multiplot layout 2,3 title "memcached $memcached_version vs ringcached, $protocol protocol over $transport, -t $threads -m $memory_mib, median of $repeat x ${duration} s"
set title "throughput (ops/s)"
plot "$data" using 2:xtic(1) title "memcached" lc rgb "#888888", "" using 3 title "ringcached" lc rgb "#1f77b4"
set title "p50 latency (µs)"
plot "$data" using 4:xtic(1) title "memcached" lc rgb "#888888", "" using 5 title "ringcached" lc rgb "#1f77b4"
set title "p99 latency (µs)"
plot "$data" using 6:xtic(1) title "memcached" lc rgb "#888888", "" using 7 title "ringcached" lc rgb "#1f77b4"
set title "server CPU seconds per million requests"
plot "$data" using 8:xtic(1) title "memcached" lc rgb "#888888", "" using 9 title "ringcached" lc rgb "#1f77b4"
set title "hit ratio"
set yrange [0:1.05]
plot "$data" using 10:xtic(1) title "memcached" lc rgb "#888888", "" using 11 title "ringcached" lc rgb "#1f77b4"
set title "items held per MiB of -m, after writing every key once"
set yrange [0:*]
plot "$data" using 12:xtic(1) title "memcached" lc rgb "#888888", "" using 13 title "ringcached" lc rgb "#1f77b4"
unset multiplot
GNUPLOT
    echo "chart: $out_dir/compare.png" >&2
else
    echo "gnuplot is not installed: no chart (apt-get install gnuplot-nox)" >&2
fi
