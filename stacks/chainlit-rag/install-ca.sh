#!/bin/sh
# Install Debian packages ($@) plus ca-certificates, then add /tmp/ops/ca-bundle.crt (an
# extra CA bundle, possibly empty) to the system store, so public CAs and the extra ones
# (a TLS-intercepting proxy, a corporate CA) are both trusted.
set -eu
if [ -s /tmp/ops/ca-bundle.crt ]; then
    # apt fetches over https only if the mirror is https; trust the extra CAs there too.
    mkdir -p /etc/apt/apt.conf.d
    echo 'Acquire::https::CAInfo "/tmp/ops/ca-bundle.crt";' > /etc/apt/apt.conf.d/99ops-ca
fi
apt-get update
apt-get install -y --no-install-recommends ca-certificates "$@"
rm -f /etc/apt/apt.conf.d/99ops-ca
if [ -s /tmp/ops/ca-bundle.crt ]; then
    # update-ca-certificates appends every *.crt here to /etc/ssl/certs/ca-certificates.crt.
    cp /tmp/ops/ca-bundle.crt /usr/local/share/ca-certificates/ops-extra-ca.crt
    update-ca-certificates >/dev/null
fi
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
