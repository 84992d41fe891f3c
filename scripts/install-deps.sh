#!/usr/bin/env bash
# Installs exactly the Debian packages trawl needs to build, run and test.
# Idempotent: packages already present are left alone and apt is not touched.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libyara-dev libsqlite3-dev libmicrohttpd-dev libjansson-dev libssl-dev
  libzstd-dev libfuzzy-dev libmagic-dev libzip-dev libroaring-dev libtlsh-dev
  libpcre2-dev
  libpcap-dev
  libgeoip-dev libmaxminddb-dev
  libpsl-dev libxml2-dev libpoppler-glib-dev libgmime-3.0-dev
  libpng-dev libgsf-1-dev libclamav-dev
)
RUN_PKGS=( libmagic-mgc yara sqlite3 geoip-database publicsuffix )
TEST_PKGS=( libcmocka-dev python3 python3-pytest python3-requests python3-jsonschema ssdeep tlsh-tools p7zip-full chromium
  tcpdump redis-tools netcat-openbsd openssh-client curl openssl
  iproute2 nmap masscan zmap hping3 telnet tshark
  groff qpdf time osslsigncode golang-go )

want=( "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}" "${TEST_PKGS[@]}" )
# Browser tests run playwright-core under Node.js; use the machine's node if it has one.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || want+=( nodejs npm )

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: this is not a Debian system (no dpkg/apt-get)." >&2
  echo "install-deps: install the equivalents of: ${want[*]}" >&2
  exit 1
fi

missing=()
for p in "${want[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = "installed" ] || missing+=( "$p" )
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "install-deps: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
