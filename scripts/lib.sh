# Shared by run.sh and test.sh: install what is missing, configure builds.
# shellcheck shell=bash

RINGCACHE_PACKAGES=(
  g++ clang libclang-rt-14-dev meson ninja-build cmake pkg-config
  liburing-dev libmimalloc-dev libxxhash-dev libssl-dev doctest-dev libbenchmark-dev
  erlang-nox rebar3 python3 python3-pymemcache libmemcached-tools python3-pylibmc libsasl2-modules memcached gnuplot-nox
  iproute2 procps faketime nutcracker openssl nodejs npm
)
# A package that is present when its command is: a Node.js from another
# source than Debian (NodeSource's) bundles npm and conflicts with Debian's
# npm package, which apt would then refuse to install.
declare -A RINGCACHE_PACKAGE_COMMANDS=([npm]=npm)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Installs the Debian packages that are not installed yet (never upgrades).
install_missing_packages() {
  local missing=() p
  for p in "${RINGCACHE_PACKAGES[@]}"; do
    [[ -n ${RINGCACHE_PACKAGE_COMMANDS[$p]:-} ]] && command -v "${RINGCACHE_PACKAGE_COMMANDS[$p]}" >/dev/null && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing: ${missing[*]}"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { log "need root (or sudo) to install: ${missing[*]}"; return 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q >/dev/null
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# configure_build DIR [meson options...]: sets up DIR once, reconfigures
# when it exists with other options.
configure_build() {
  local dir=$1
  shift
  if [[ -f $dir/build.ninja ]]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}
