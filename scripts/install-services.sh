#!/usr/bin/env bash
# Install the services the "local" platform runs as real processes:
#   1. Debian packages from the machine's own (bookworm) suite: PostgreSQL 15,
#      HAProxy, Nginx (+ stream module), Prometheus and two exporters.
#   2. Consul 1.8.7 from Debian bullseye: one .deb fetched with a private apt
#      configuration (the system's sources are never touched), cached per
#      machine, unpacked into the tools folder, binary installed as
#      ${RUNTIME_DIR}/bin/consul.
#   3. The service virtualenv ${RUNTIME_DIR}/venv (built from /usr/bin/python3
#      so the unprivileged service user can execute it) with Patroni and
#      supervisor.
#   4. The unprivileged service user (PostgreSQL refuses to run as root).
#
# Idempotent: every step checks first; a second run takes a couple of seconds.
#
# Environment:
#   RUNTIME_DIR   default /opt/hastack
#   TOOLS_DIR     default <repo>/.tools
#   HASTACK_CACHE default ${HOME}/.cache/hastack   (per-machine download cache)
#   SERVICE_USER  default hastack
set -euo pipefail
umask 022

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNTIME_DIR="${RUNTIME_DIR:-/opt/hastack}"
TOOLS_DIR="${TOOLS_DIR:-${REPO_ROOT}/.tools}"
HASTACK_CACHE="${HASTACK_CACHE:-${HOME}/.cache/hastack}"
SERVICE_USER="${SERVICE_USER:-hastack}"
SERVICE_HOME="/var/lib/${SERVICE_USER}"

SYSTEM_PYTHON=/usr/bin/python3
VENV="${RUNTIME_DIR}/venv"
VENV_REQUIREMENTS=(
    'patroni[consul,psycopg3]==4.1.5'
    'psycopg[binary]'
    'supervisor==4.3.0'
)

APT_PACKAGES=(
    postgresql-15
    postgresql-contrib
    haproxy
    nginx
    libnginx-mod-stream
    prometheus
    prometheus-postgres-exporter
    prometheus-node-exporter
    tini
)

CONSUL_VERSION=1.8.7
# Exact version in bullseye/main (Debian's archive; bullseye has no newer one).
CONSUL_DEB_VERSION="${CONSUL_DEB_VERSION:-1.8.7+dfsg1-2+b3}"
CONSUL_SUITE=bullseye
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ARCHIVE_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
POLICY_RC_D=/usr/sbin/policy-rc.d

export DEBIAN_FRONTEND=noninteractive

say() { printf '  %s\n' "$*"; }
die() { printf 'install-services: error: %s\n' "$*" >&2; exit 1; }

need_root() {
    [[ ${EUID} -eq 0 ]] || die "$1 needs root (re-run as root or via sudo)"
}

# ---------------------------------------------------------------- cleanup ---
CREATED_POLICY_RC_D=""
TMP_DIRS=()
cleanup() {
    if [[ -n ${CREATED_POLICY_RC_D} ]]; then
        rm -f "${CREATED_POLICY_RC_D}"
    fi
    local d
    for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do
        rm -rf "${d}"
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Package postinst scripts must not start daemons. Most container images ship
# a policy-rc.d that exits 101; if this machine has none, add one for the
# duration of the install (removed by the EXIT trap).
ensure_policy_rc_d() {
    if [[ -e ${POLICY_RC_D} ]]; then
        local rc=0
        "${POLICY_RC_D}" hastack-probe start >/dev/null 2>&1 || rc=$?
        if [[ ${rc} != 101 ]]; then
            say "warning: ${POLICY_RC_D} exists but exits ${rc}, not 101; leaving it alone"
        fi
        return 0
    fi
    printf '#!/bin/sh\n# temporary, added by hastack install-services.sh\nexit 101\n' >"${POLICY_RC_D}"
    chmod 0755 "${POLICY_RC_D}"
    CREATED_POLICY_RC_D="${POLICY_RC_D}"
}

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

APT_UPDATED=""
apt_install() {
    need_root "installing Debian packages"
    ensure_policy_rc_d
    if [[ -z ${APT_UPDATED} ]]; then
        say "apt: updating package lists"
        apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null || die "apt-get update failed"
        APT_UPDATED=1
    fi
    say "apt: installing $*"
    apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends "$@" \
        || die "apt-get install $* failed"
}

# ------------------------------------------------- 1. Debian (own suite) ---
step_apt_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        pkg_installed "${p}" || missing+=("${p}")
    done
    if ((${#missing[@]} == 0)); then
        say "services: postgresql-15, haproxy, nginx, prometheus, exporters ... already installed"
        return 0
    fi
    say "services: missing ${missing[*]}"
    apt_install "${missing[@]}"
}

# ----------------------------------------------- 2. Consul from bullseye ---
consul_reports_version() {  # $1 = binary
    [[ -x $1 ]] && "$1" version 2>/dev/null | head -n1 | grep -qx "Consul v${CONSUL_VERSION}"
}

deb_is_consul() {  # $1 = .deb file; true if it is the wanted, intact package
    [[ -s $1 ]] || return 1
    local fields
    fields=$(dpkg-deb -W --showformat='${Package} ${Version}' "$1" 2>/dev/null) || return 1
    [[ ${fields} == "consul ${CONSUL_DEB_VERSION}" ]] || return 1
    dpkg-deb --fsys-tarfile "$1" >/dev/null 2>&1  # payload readable end to end
}

fetch_consul_deb() {  # $1 = target path in the cache
    local target=$1 arch apt_dir
    arch=$(dpkg --print-architecture)
    [[ -r ${ARCHIVE_KEYRING} ]] \
        || die "${ARCHIVE_KEYRING} missing (apt-get install debian-archive-keyring)"
    apt_dir="${HASTACK_CACHE}/apt-${CONSUL_SUITE}"
    mkdir -p "${apt_dir}/lists/partial" "${apt_dir}/cache/archives/partial"
    printf 'deb [arch=%s signed-by=%s] %s %s main\n' \
        "${arch}" "${ARCHIVE_KEYRING}" "${DEBIAN_MIRROR}" "${CONSUL_SUITE}" \
        >"${apt_dir}/sources.list"
    # A private apt configuration: own sources, lists and cache; the system's
    # sources, pins and state are not read or written.
    local apt_opts=(
        -o "Dir::Etc::SourceList=${apt_dir}/sources.list"
        -o Dir::Etc::SourceParts=/dev/null
        -o Dir::Etc::Preferences=/dev/null
        -o Dir::Etc::PreferencesParts=/dev/null
        -o "Dir::State::Lists=${apt_dir}/lists"
        -o "Dir::Cache=${apt_dir}/cache"
        -o "APT::Architecture=${arch}"
        -o "APT::Architectures::=${arch}"
        -o APT::Default-Release=
        -o Acquire::Languages=none
        -o APT::Sandbox::User=root
    )
    say "consul ${CONSUL_VERSION}: fetching ${CONSUL_SUITE} package index"
    apt-get -q "${apt_opts[@]}" update >/dev/null \
        || die "apt-get update for ${CONSUL_SUITE} (${DEBIAN_MIRROR}) failed"
    local dl
    dl=$(mktemp -d /tmp/hastack-consul-dl.XXXXXX)
    TMP_DIRS+=("${dl}")
    say "consul ${CONSUL_VERSION}: downloading consul=${CONSUL_DEB_VERSION} (${CONSUL_SUITE})"
    (cd "${dl}" && apt-get -q "${apt_opts[@]}" download "consul=${CONSUL_DEB_VERSION}" >/dev/null) \
        || die "apt-get download consul=${CONSUL_DEB_VERSION} from ${CONSUL_SUITE} failed"
    local got
    got=$(find "${dl}" -maxdepth 1 -name 'consul_*.deb' -print -quit)
    [[ -n ${got} ]] && deb_is_consul "${got}" || die "downloaded consul .deb is not ${CONSUL_DEB_VERSION}"
    mkdir -p "$(dirname "${target}")"
    mv -f "${got}" "${target}.part"
    mv -f "${target}.part" "${target}"
}

step_consul() {
    local arch deb unpack_dir stamp bin
    arch=$(dpkg --print-architecture)
    deb="${HASTACK_CACHE}/debs/consul_${CONSUL_DEB_VERSION//:/%3a}_${arch}.deb"
    unpack_dir="${TOOLS_DIR}/consul"
    stamp="${unpack_dir}/.hastack-deb-version"
    bin="${RUNTIME_DIR}/bin/consul"

    if [[ -f ${stamp} && $(<"${stamp}") == "${CONSUL_DEB_VERSION}" ]] \
        && consul_reports_version "${unpack_dir}/usr/bin/consul" \
        && consul_reports_version "${bin}" \
        && cmp -s "${unpack_dir}/usr/bin/consul" "${bin}"; then
        say "consul ${CONSUL_VERSION}: already installed (${bin})"
        return 0
    fi

    if deb_is_consul "${deb}"; then
        say "consul ${CONSUL_VERSION}: using cached ${deb}"
    else
        fetch_consul_deb "${deb}"
    fi

    if [[ -f ${stamp} && $(<"${stamp}") == "${CONSUL_DEB_VERSION}" ]] \
        && consul_reports_version "${unpack_dir}/usr/bin/consul"; then
        :
    else
        say "consul ${CONSUL_VERSION}: unpacking ${CONSUL_SUITE} .deb into ${unpack_dir}"
        mkdir -p "${TOOLS_DIR}"
        local tmp="${unpack_dir}.tmp.$$"
        rm -rf "${tmp}"
        TMP_DIRS+=("${tmp}")
        dpkg-deb -x "${deb}" "${tmp}"
        printf '%s\n' "${CONSUL_DEB_VERSION}" >"${tmp}/.hastack-deb-version"
        rm -rf "${unpack_dir}"
        mv "${tmp}" "${unpack_dir}"
    fi

    if ! { consul_reports_version "${bin}" && cmp -s "${unpack_dir}/usr/bin/consul" "${bin}"; }; then
        say "consul ${CONSUL_VERSION}: installing ${bin}"
        install -d -m 0755 "${RUNTIME_DIR}" "${RUNTIME_DIR}/bin"
        install -m 0755 "${unpack_dir}/usr/bin/consul" "${bin}.new"
        mv -f "${bin}.new" "${bin}"
    fi
    consul_reports_version "${bin}" \
        || die "${bin} does not report Consul v${CONSUL_VERSION}"
}

# ---------------------------------------------- 3. service virtualenv ---
venv_hash() {
    {
        printf '%s\n' "${VENV_REQUIREMENTS[@]}"
        "${SYSTEM_PYTHON}" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

venv_is_usable() {
    [[ -x ${VENV}/bin/python && -f ${VENV}/pyvenv.cfg ]] || return 1
    # Must be based on the system python (not a pyenv python under /root).
    grep -qx "home = $(dirname "$(readlink -f "${SYSTEM_PYTHON}")")" "${VENV}/pyvenv.cfg" \
        || grep -qx "home = $(dirname "${SYSTEM_PYTHON}")" "${VENV}/pyvenv.cfg" || return 1
    "${VENV}/bin/python" -c 'import sys' >/dev/null 2>&1
}

step_venv() {
    local want stamp="${VENV}/.hastack-requirements.sha256"
    [[ -x ${SYSTEM_PYTHON} ]] || die "${SYSTEM_PYTHON} missing (apt-get install python3)"
    want=$(venv_hash)
    if venv_is_usable && [[ -f ${stamp} && $(<"${stamp}") == "${want}" ]]; then
        say "venv: ${VENV} ... already up to date"
        return 0
    fi

    if ! venv_is_usable; then
        install -d -m 0755 "${RUNTIME_DIR}"
        rm -rf "${VENV}"
        say "venv: creating ${VENV} from ${SYSTEM_PYTHON}"
        if ! "${SYSTEM_PYTHON}" -m venv "${VENV}" >/dev/null 2>&1; then
            rm -rf "${VENV}"
            say "venv: ${SYSTEM_PYTHON} -m venv failed; installing python3-venv"
            apt_install python3-venv
            "${SYSTEM_PYTHON}" -m venv "${VENV}"
        fi
    fi

    say "venv: pip install ${VENV_REQUIREMENTS[*]}"
    # --use-pep517: build sdists (ydiff) as wheels instead of the deprecated
    # legacy "setup.py install" path.
    "${VENV}/bin/python" -m pip install -q --disable-pip-version-check --use-pep517 \
        "${VENV_REQUIREMENTS[@]}"
    "${VENV}/bin/python" -c 'import patroni.dcs.consul, psycopg' \
        || die "patroni's consul DCS (or psycopg) does not import in ${VENV}"
    chmod -R a+rX "${VENV}"
    chmod 0755 "${RUNTIME_DIR}"
    printf '%s\n' "${want}" >"${stamp}"
}

# ------------------------------------------------------ 4. service user ---
step_user() {
    if id -u "${SERVICE_USER}" >/dev/null 2>&1; then
        say "user: ${SERVICE_USER} ... already exists"
    else
        need_root "creating user ${SERVICE_USER}"
        say "user: creating system user ${SERVICE_USER} (home ${SERVICE_HOME})"
        useradd --system --user-group --home-dir "${SERVICE_HOME}" --no-create-home \
            --shell /usr/sbin/nologin --comment "hastack services" "${SERVICE_USER}"
    fi
    local home group
    home=$(getent passwd "${SERVICE_USER}" | cut -d: -f6)
    group=$(id -gn "${SERVICE_USER}")
    if [[ ! -d ${home} || $(stat -c '%U %a' "${home}") != "${SERVICE_USER} 755" ]]; then
        need_root "preparing ${home}"
        install -d -m 0755 -o "${SERVICE_USER}" -g "${group}" "${home}"
    fi
}

# ------------------------------------------------------------ 5. summary ---
first_match() {  # $1 = ERE; prints its first match on stdin (reads all input)
    awk -v re="$1" '!done && match($0, re) { print substr($0, RSTART, RLENGTH); done = 1 }'
}

summary() {
    # The service user must be able to execute what it will run.
    if [[ ${EUID} -eq 0 ]]; then
        runuser -u "${SERVICE_USER}" -- "${RUNTIME_DIR}/bin/consul" version >/dev/null 2>&1 \
            || die "${SERVICE_USER} cannot execute ${RUNTIME_DIR}/bin/consul (check directory modes)"
        runuser -u "${SERVICE_USER}" -- "${VENV}/bin/patroni" --version >/dev/null 2>&1 \
            || die "${SERVICE_USER} cannot execute ${VENV}/bin/patroni (check directory modes)"
    fi
    local consul patroni supervisor postgres haproxy nginx prometheus
    consul=$("${RUNTIME_DIR}/bin/consul" version | first_match 'v[0-9.]+')
    patroni=$("${VENV}/bin/patroni" --version | first_match '[0-9][0-9.]+')
    supervisor=$("${VENV}/bin/supervisord" --version | first_match '[0-9][0-9.]+')
    postgres=$(/usr/lib/postgresql/15/bin/postgres --version | first_match '[0-9]+\.[0-9]+')
    haproxy=$(haproxy -v | first_match '[0-9]+\.[0-9]+\.[0-9]+')
    nginx=$(nginx -v 2>&1 | first_match '[0-9]+\.[0-9]+\.[0-9]+')
    prometheus=$(prometheus --version 2>&1 | first_match '[0-9]+\.[0-9]+\.[0-9]+')
    [[ -n ${patroni} && -n ${supervisor} ]] || die "patroni/supervisord in ${VENV} do not report a version"
    printf 'services ready: consul %s, patroni %s, supervisor %s, postgres %s, haproxy %s, nginx %s, prometheus %s (runtime %s, user %s)\n' \
        "${consul}" "${patroni}" "${supervisor}" "${postgres}" "${haproxy}" "${nginx}" "${prometheus}" \
        "${RUNTIME_DIR}" "${SERVICE_USER}"
}

step_apt_packages
step_consul
step_venv
step_user
summary
