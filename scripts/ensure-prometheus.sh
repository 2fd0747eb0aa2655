#!/bin/sh
# Make sure `prometheus` and `promtool` are on PATH, for the monitoring tests.
#
# Quick and silent when both are there already. Otherwise installs the Debian package
# `prometheus` with apt-get (needs root, or sudo without a password). The package's
# own service is never started: tests launch Prometheus themselves on 127.0.0.1.
# Exit status: 0 when both commands are available afterwards, 1 when not.
set -eu

have_both() {
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1
}

if have_both; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "ensure-prometheus: prometheus/promtool missing and not root (no passwordless sudo);" \
        "install the Debian package 'prometheus' by hand" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-prometheus: prometheus/promtool missing and apt-get is not available;" \
        "install Prometheus 2.x so that 'prometheus' and 'promtool' are on PATH" >&2
    exit 1
fi

echo "ensure-prometheus: installing the Debian package 'prometheus'" >&2
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 keeps the package's postinst from starting its service
# (on hosts where invoke-rc.d is in use); the tests run their own Prometheus.
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    ADDED_POLICY=1
fi
status=0
{
    $SUDO apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null 2>&1 \
            && $SUDO apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
} || status=$?
if [ -n "$ADDED_POLICY" ]; then
    $SUDO rm -f "$POLICY"
fi
if [ "$status" -ne 0 ] || ! have_both; then
    echo "ensure-prometheus: installing 'prometheus' failed (apt-get exit $status)" >&2
    exit 1
fi
echo "ensure-prometheus: $(prometheus --version 2>&1 | head -n 1)" >&2
