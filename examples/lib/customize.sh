#!/bin/sh
# Turns a Debian 12 (bookworm) or Ubuntu 24.04 (noble) root file system into a container that
# Wyrcan can boot. The one place for these steps, for both distributions: their Containerfiles run
# it (RUN), and their ./build scripts run it in a chroot of the mmdebstrap-made tree, so the ways of
# building cannot drift apart. Runs inside the root being built, as root, with network access to
# the distribution's mirror.
#
# Settings (environment; the Containerfile passes its ARGs of the same names):
#   WYRCAN_CMDLINE  the booted system's kernel cmdline, written to /boot/wyrcan.cmdline
#                   (Wyrcan appends the host's wyr.arg values after it)
#   AUTOLOGIN       consoles with a root autologin, e.g. "ttyS0 tty1"; "" for none (the default
#                   ttyS0 is for demos and labs: anyone on the serial console gets a root shell)
#   ROOT_PASSWORD   root's password, clear text or (starting with $) a crypt(3) hash such as
#                   `openssl passwd -6`'s; "" leaves root locked (only the autologin gets in)
#   KERNEL_PACKAGES the kernel. Debian: linux-image-amd64 (default: all of Debian's modules, no
#                   firmware) or linux-image-cloud-amd64 (fewer drivers, for virtual machines).
#                   Ubuntu: linux-image-virtual (default: the generic kernel with the modules for
#                   virtual machines and common server NICs/storage, no firmware) or
#                   linux-image-generic (all modules, plus linux-firmware: ~470 MB more)
#   EXTRA_PACKAGES  more packages to install (e.g. openssh-server, or on Debian firmware-bnx2x with
#                   COMPONENTS="main non-free-firmware" given to ./build)
#   DROP_MODULES    kernel module trees (under /lib/modules/VERSION/kernel/) to delete; "" keeps all
set -eu

WYRCAN_CMDLINE=${WYRCAN_CMDLINE-console=tty0 console=ttyS0,115200}
AUTOLOGIN=${AUTOLOGIN-ttyS0}
ROOT_PASSWORD=${ROOT_PASSWORD-}
DISTRIBUTION=$(. /etc/os-release && echo "$ID")
case $DISTRIBUTION in
  debian) KERNEL_PACKAGES=${KERNEL_PACKAGES-linux-image-amd64} ;;
  ubuntu) KERNEL_PACKAGES=${KERNEL_PACKAGES-linux-image-virtual} ;;
  *) echo "customize.sh: $DISTRIBUTION is neither debian nor ubuntu" >&2; exit 2 ;;
esac
EXTRA_PACKAGES=${EXTRA_PACKAGES-}
DROP_MODULES=${DROP_MODULES-sound drivers/media drivers/bluetooth net/bluetooth drivers/net/wireless net/wireless net/mac80211 drivers/staging drivers/isdn drivers/gpu/drm/amd drivers/gpu/drm/nouveau drivers/gpu/drm/radeon drivers/gpu/drm/i915 drivers/infiniband}

# systemd (PID 1 and udev), networkd + resolved for the network, the kernel and its modules, and a
# few tools to look around. No initramfs is wanted (the image *is* the initramfs), but the kernel
# package pulls in initramfs-tools: INITRD=No below keeps the kernel's postinst from running it.
PACKAGES="systemd systemd-sysv systemd-resolved udev dbus kmod $KERNEL_PACKAGES
  iproute2 iputils-ping procps less ca-certificates"

# INITRD=No: the kernel's postinst hook does not build an initramfs (see above).
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 INITRD=No

# --- 1. Small: no documentation, manual pages or translations (as Debian's -slim and Ubuntu's
# minimized images).
mkdir -p /etc/dpkg/dpkg.cfg.d
cat > /etc/dpkg/dpkg.cfg.d/90-wyrcan-nodoc <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/groff/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF

# --- 2. Packages.
apt-get update
# shellcheck disable=SC2086 # word splitting of the package lists is intended
apt-get install -y --no-install-recommends $PACKAGES $EXTRA_PACKAGES

# --- 3. Wyrcan's contract: /boot/wyrcan.kernel, /init, /boot/wyrcan.cmdline.
set -- /boot/vmlinuz-*
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
    echo "customize.sh: expected exactly one kernel in /boot, found: $*" >&2
    exit 1
fi
kernel=${1#/boot/}
kver=${kernel#vmlinuz-}
ln -sfn "$kernel" /boot/wyrcan.kernel
ln -sfn /lib/systemd/systemd /init
printf '%s\n' "$WYRCAN_CMDLINE" > /boot/wyrcan.cmdline
# initramfs-tools' initrd is never used: the kernel unpacks the whole image as its initramfs.
rm -f /boot/initrd.img-* /initrd.img /initrd.img.old /boot/initrd.img /boot/initrd.img.old

# --- 4. systemd as PID 1 of an initramfs.
# The root is the kernel's rootfs (a tmpfs, as long as the cmdline has no root=): nothing to mount,
# no fsck, nothing to switch to. systemd treats it as the real root because there is no
# /etc/initrd-release (that file would make it behave as an initrd and try to switch root).
printf '# The root file system is the initramfs Wyrcan booted (a tmpfs): nothing to mount.\n' > /etc/fstab
rm -f /etc/initrd-release
# Every machine booting the image must get its own machine ID: an empty /etc/machine-id makes systemd
# generate one at each boot (without the first-boot wizard that a missing file would start).
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
# Let DHCP (or the host's static name) name the machine. In a container build /etc/hostname is a
# bind mount that cannot be removed; then the base image's empty one stays.
rm -f /etc/hostname 2>/dev/null || true
systemctl set-default multi-user.target

# --- 5. Network: DHCP on every Ethernet link (the same default as Wyrcan's own), DNS via resolved.
mkdir -p /etc/systemd/network
cat > /etc/systemd/network/80-wyrcan-dhcp.network <<'EOF'
[Match]
Type=ether

[Network]
DHCP=yes
IPv6AcceptRA=yes
EOF
systemctl enable systemd-networkd.service systemd-resolved.service
# /etc/resolv.conf → resolved's stub. A container build bind-mounts /etc/resolv.conf (the link fails
# there), so systemd-tmpfiles also makes the link at every boot.
ln -sfn ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf 2>/dev/null || true
echo 'L+ /etc/resolv.conf - - - - ../run/systemd/resolve/stub-resolv.conf' > /etc/tmpfiles.d/wyrcan-resolv.conf
# Do not wait up to 2 minutes for "network online" when a link has no DHCP server.
systemctl mask systemd-networkd-wait-online.service

# --- 6. Logging in: root password and/or autologin on the given consoles.
case $ROOT_PASSWORD in
    '') ;;
    '$'*) echo "root:$ROOT_PASSWORD" | chpasswd -e ;;
    *) echo "root:$ROOT_PASSWORD" | chpasswd ;;
esac
for tty in $AUTOLOGIN; do
    case $tty in
        tty[0-9]*) unit=getty@$tty.service; baud= ;;
        *) unit=serial-getty@$tty.service; baud="--keep-baud 115200,57600,38400,9600" ;;
    esac
    mkdir -p "/etc/systemd/system/$unit.d"
    cat > "/etc/systemd/system/$unit.d/autologin.conf" <<EOF
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear $baud - \$TERM
EOF
done
# (systemd-getty-generator starts serial-getty@ for the console named last on the kernel cmdline,
# ttyS0 by default, and getty@tty1 on the screen.)

# --- 7. A marker on the console once the system is up (what the demo and the tests look for): the
# line "wyrcan-demo-ok" on its own.
cat > /etc/systemd/system/wyrcan-demo-ok.service <<'EOF'
[Unit]
Description=Demo marker on the console at multi-user.target
After=multi-user.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/echo wyrcan-demo-ok
StandardOutput=tty
TTYPath=/dev/console

[Install]
WantedBy=multi-user.target
EOF
systemctl enable wyrcan-demo-ok.service

# --- 8. Trim: module trees a server rarely needs, package caches, docs of the base packages.
if [ -n "$DROP_MODULES" ]; then
    for tree in $DROP_MODULES; do rm -rf "/lib/modules/$kver/kernel/$tree"; done
    depmod -a "$kver"
fi
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old \
    /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log
find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find /usr/share/doc -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian /usr/share/linda
find /usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
