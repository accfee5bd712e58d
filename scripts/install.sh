#!/bin/sh
# Installs ringcached, ringcached-privsep and the hardened systemd units.
#
#   scripts/install.sh [--prefix DIR] [--destdir DIR] [--builddir DIR]
#                      [--unitdir DIR] [--memory MIB] [--uninstall]
#
# --prefix    where bin/ goes (default /usr/local)
# --destdir   stage everything under DIR instead of /: no user is created, no
#             systemctl is run, nothing outside DIR is touched (packaging, tests)
# --builddir  meson build directory holding the binaries (default: build-release,
#             else build, in the checkout)
# --unitdir   where the units go (default /etc/systemd/system, which systemd
#             reads whatever the prefix)
# --memory    the daemon's -m in MiB (default 64); MemoryMax follows from it
# --uninstall remove what an install with the same options put in place,
#             including the system user "ringcache" when not staging
set -eu

service_user=ringcache
memory_headroom_mib=48      # resident (docs/command_line.md): <= 1.25 x SIZE + 48 MiB
socket_buffers_mib=32       # kernel socket memory charged to the cgroup
memory_mib_max=1048576      # the daemon refuses -m above 1 TiB

prefix=/usr/local
destdir=
builddir=
unitdir=/etc/systemd/system
memory_mib=64
action=install

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then die "option $1 needs a value"; fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) need_value "$@"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) need_value "$@"; destdir=$2; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --builddir) need_value "$@"; builddir=$2; shift 2 ;;
        --builddir=*) builddir=${1#*=}; shift ;;
        --unitdir) need_value "$@"; unitdir=$2; shift 2 ;;
        --unitdir=*) unitdir=${1#*=}; shift ;;
        --memory) need_value "$@"; memory_mib=$2; shift 2 ;;
        --memory=*) memory_mib=${1#*=}; shift ;;
        --uninstall) action=uninstall; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (try --help)" ;;
    esac
done

case "$prefix" in /*) ;; *) die "--prefix must be an absolute path: '$prefix'" ;; esac
case "$unitdir" in /*) ;; *) die "--unitdir must be an absolute path: '$unitdir'" ;; esac
case "$memory_mib" in
    ''|*[!0-9]*) die "--memory must be a whole number of MiB: '$memory_mib'" ;;
esac
if [ "$memory_mib" -lt 4 ] || [ "$memory_mib" -gt "$memory_mib_max" ]; then
    die "--memory must be 4..$memory_mib_max MiB: '$memory_mib'"
fi
if [ -n "$destdir" ]; then
    case "$destdir" in /*) ;; *) destdir=$(pwd)/$destdir ;; esac
    # prune_empty_dirs stops at exactly this path: no trailing slash.
    while [ "${destdir%/}" != "$destdir" ]; do destdir=${destdir%/}; done
    [ -n "$destdir" ] || die "--destdir / is the real system: leave --destdir out instead"
fi

bindir=$prefix/bin
units="ringcached.service ringcached.socket ringcached-text.socket"
binaries="ringcached ringcached-privsep"

staging() { [ -n "$destdir" ]; }
systemd_running() { [ -d /run/systemd/system ]; }

if ! staging && [ "$(id -u)" -ne 0 ]; then
    die "installing into / needs root (or stage with --destdir DIR)"
fi

# rmdir the directories we may have created, innermost first, while empty.
prune_empty_dirs() {
    for dir in "$@"; do
        while [ "$dir" != "$destdir" ] && [ "$dir" != "/" ] && [ -d "$dir" ]; do
            rmdir "$dir" 2>/dev/null || break
            dir=$(dirname "$dir")
        done
    done
}

uninstall() {
    if ! staging && systemd_running; then
        systemctl disable --now ringcached.socket ringcached-text.socket ringcached.service \
            >/dev/null 2>&1 || true
    fi
    for b in $binaries; do rm -f "$destdir$bindir/$b"; done
    for u in $units; do rm -f "$destdir$unitdir/$u"; done
    if staging; then
        prune_empty_dirs "$destdir$bindir" "$destdir$unitdir"
    else
        if systemd_running; then systemctl daemon-reload; fi
        if getent passwd "$service_user" >/dev/null; then
            userdel "$service_user"
            say "removed system user $service_user"
        fi
    fi
    say "uninstalled from ${destdir:-/} (prefix $prefix, units in $unitdir)"
}

find_builddir() {
    checkout=$(cd "$(dirname "$0")/.." && pwd)
    for candidate in "$checkout/build-release" "$checkout/build"; do
        if [ -x "$candidate/server/ringcached" ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

render_unit() {
    # $1 template, $2 destination
    sed -e "s|@bindir@|$bindir|g" \
        -e "s|@memory_mib@|$memory_mib|g" \
        -e "s|@memory_max_mib@|$memory_max_mib|g" "$1" > "$2.tmp"
    if grep -q '@[a-z_]*@' "$2.tmp"; then
        rm -f "$2.tmp"
        die "unreplaced placeholder left in $1"
    fi
    chmod 0644 "$2.tmp"
    mv "$2.tmp" "$2"
}

install_all() {
    if [ -z "$builddir" ]; then
        builddir=$(find_builddir) ||
            die "no build with server/ringcached found (build-release, build); pass --builddir DIR"
    fi
    daemon=$builddir/server/ringcached
    helper=$builddir/privsep/ringcached-privsep
    for path in "$daemon" "$helper"; do
        [ -x "$path" ] || die "$path not found (build it first: ninja -C $builddir)"
    done
    templates=$(cd "$(dirname "$0")/systemd" && pwd)
    # 1.25 x SIZE rounded up, then the fixed headroom and the socket buffers.
    memory_max_mib=$(( (memory_mib * 5 + 3) / 4 + memory_headroom_mib + socket_buffers_mib ))

    mkdir -p "$destdir$bindir" "$destdir$unitdir"
    install -m 0755 "$daemon" "$destdir$bindir/ringcached"
    install -m 0755 "$helper" "$destdir$bindir/ringcached-privsep"
    for u in $units; do render_unit "$templates/$u" "$destdir$unitdir/$u"; done

    if staging; then
        say "staged in $destdir (prefix $prefix, units in $unitdir, -m $memory_mib, MemoryMax ${memory_max_mib}M)"
        return
    fi
    if ! getent passwd "$service_user" >/dev/null; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "ringcache daemon" "$service_user"
        say "created system user $service_user"
    fi
    if systemd_running; then
        systemctl daemon-reload
        say "start it with: systemctl enable --now ringcached.socket"
    else
        say "systemd is not running here; units installed but not loaded"
    fi
    say "installed into $prefix (units in $unitdir, -m $memory_mib, MemoryMax ${memory_max_mib}M)"
}

case "$action" in
    install) install_all ;;
    uninstall) uninstall ;;
esac
