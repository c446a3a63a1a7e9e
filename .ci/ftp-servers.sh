#!/usr/bin/env bash
# Unpack vsftpd, ProFTPD (with its TLS module), Pure-FTPd, GNU inetutils'
# ftpd and OpenSSH's sshd into DEST for the interop and SFTP tests.
# (Twisted's FTP server, the fifth, comes with the test environment from
# buildout.cfg.)
#
# Usage: bash .ci/ftp-servers.sh DEST
#        CDS_FTP_SERVERS=DEST bin/test -t interop -t sftp
#
# Debian's four FTP packages conflict with one another (each provides
# ftp-server), so none of them is installed, and neither is openssh-server,
# which would start a daemon on port 22: they are fetched with
# `apt-get download` and unpacked with `dpkg-deb -x` into DEST, beside the
# few shared libraries they link against that a Debian 12 base system
# lacks. The tests run the binaries from DEST with LD_LIBRARY_PATH pointing
# there (zeit/cds/tests/realservers.py). Nothing outside DEST changes,
# except that apt's package lists are refreshed when they are too old to
# find the packages (as root).
#
# Safe to run again: a DEST unpacked from the same package list is kept.
set -euo pipefail

dest=${1:?usage: $0 DEST}
packages=(
    vsftpd proftpd-core pure-ftpd inetutils-ftpd openssh-server
    # ProFTPD's TLS module (mod_tls) is not in proftpd-core.
    proftpd-mod-crypto
    # Checked with ldd below: vsftpd, inetutils' ftpd and sshd need
    # libwrap, proftpd the rest.
    libwrap0 libhiredis0.14 libmemcached11 libmemcachedutil2 libhashkit2
    libpcre2-posix3 libsodium23
)
binaries=(usr/sbin/vsftpd usr/sbin/proftpd usr/sbin/pure-ftpd usr/bin/pure-pw
          usr/lib/proftpd/mod_tls.so usr/sbin/ftpd usr/sbin/sshd)
stamp=$dest/.packages

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${packages[*]}" ]; then
    echo "ftp-servers: $dest is ready"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/debs" "$work/root"

apt_options=(-q)
if [ "$(id -u)" = 0 ]; then
    # apt's sandbox user could not write into our private folder.
    apt_options+=(-o APT::Sandbox::User=root)
fi
download() {
    (cd "$work/debs" && apt-get download "${apt_options[@]}" "${packages[@]}")
}
if ! download; then
    if [ "$(id -u)" != 0 ]; then
        echo "ftp-servers: packages not found; run apt-get update" >&2
        exit 1
    fi
    echo "ftp-servers: refreshing apt's package lists"
    apt-get update -q
    download
fi

for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
done

libraries=$(echo "$work"/root/usr/lib/*-linux-gnu)
for binary in "${binaries[@]}"; do
    missing=$(LD_LIBRARY_PATH=$libraries ldd "$work/root/$binary" \
              | grep 'not found' || true)
    if [ -n "$missing" ]; then
        echo "ftp-servers: $binary lacks libraries:" >&2
        echo "$missing" >&2
        exit 1
    fi
done

echo "${packages[*]}" > "$work/root/.packages"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$work/root" "$dest"
echo "ftp-servers: unpacked into $dest:" \
     "$(cd "$work/debs" && ls | sed 's/_.*//' | tr '\n' ' ')"
