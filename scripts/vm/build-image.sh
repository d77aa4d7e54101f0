#!/bin/bash
# Build (once, cached) the Debian bookworm test VM used by `make test-vm`:
#   $CACHE/vmlinuz      Debian's 6.1 kernel (linux-image-amd64 from bookworm)
#   $CACHE/initrd.img   Debian initramfs with virtio_pci/virtio_blk/ext4
#   $CACHE/rootfs.img   ext4 raw image (2 GiB sparse) with systemd, dbus, ifupdown2, lvm2 ...
# The VM always boots the image with snapshot=on, so it is never modified.
# Needs root and apt (Debian host). Recipe: docs/development.md, "VM tier".
#
# CACHE defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/pvehci-vm (override with
# PVEHCI_VM_CACHE). It lives outside the repository on purpose. The build is
# skipped when $CACHE/stamp matches sha256(this script) + the kernel package.
set -euo pipefail
CACHE=${PVEHCI_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pvehci-vm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PKGS=systemd-sysv,udev,kmod,dbus,util-linux,iproute2,ifupdown2,lvm2,thin-provisioning-tools,iputils-ping,procps,e2fsprogs,initramfs-tools,zstd
ts() { echo "[$(date +%T)] build-image: $*" >&2; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  ts "installing host packages: ${need[*]}"
  [ "$(id -u)" = 0 ] || { echo "build-image: need root to apt-get install ${need[*]}" >&2; exit 1; }
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$KPKG" ]; then apt-get update -qq; KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
KV=${KPKG#linux-image-}
STAMP="$(sha256sum "$0" | cut -d' ' -f1) $KPKG $(apt-cache policy "$KPKG" | awk '/Candidate:/{print $2}')"
uptodate() {
  [ -f "$CACHE/stamp" ] && [ "$(cat "$CACHE/stamp")" = "$STAMP" ] &&
    [ -f "$CACHE/rootfs.img" ] && [ -f "$CACHE/vmlinuz" ] && [ -f "$CACHE/initrd.img" ]
}
if uptodate; then ts "up to date ($CACHE, kernel $KV)"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "build-image: need root (debootstrap, chroot)" >&2; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"; flock 9
# Another build may have finished while this one waited for the lock.
if uptodate; then ts "up to date ($CACHE, kernel $KV)"; exit 0; fi
start=$(date +%s)
W=$(mktemp -d "$CACHE/build.XXXXXX"); R=$W/rootfs
cleanup() { for d in proc sys dev; do umount "$R/$d" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
rm -f "$CACHE/stamp"

ts "debootstrap $SUITE ($PKGS)"
debootstrap --variant=minbase --include=$PKGS "$SUITE" "$R" "$MIRROR" >"$W/debootstrap.log" 2>&1 ||
  { tail -30 "$W/debootstrap.log" >&2; exit 1; }

ts "kernel $KPKG"
K=$W/kernel; mkdir -p "$K"
(cd "$K" && apt-get download "$KPKG" >/dev/null 2>&1 && dpkg-deb -x ./*.deb x)
cp "$K/x/boot/vmlinuz-$KV" "$W/vmlinuz"
cp "$K/x/boot/config-$KV" "$R/boot/"   # mkinitramfs reads it
# Not dpkg -x into $R: that replaces the merged-/usr lib -> usr/lib symlink.
mkdir -p "$R/usr/lib/modules"; cp -a "$K/x/lib/modules/$KV" "$R/usr/lib/modules/"; rm -rf "$K"
M=$R/usr/lib/modules/$KV/kernel
rm -rf "$M/sound" "$M"/drivers/{gpu,media,iio,comedi,staging,usb,hid,hwmon,bluetooth,isdn,mtd,thunderbolt,platform} \
       "$M"/drivers/net/{wireless,ethernet} "$M/drivers/infiniband/hw" "$M"/net/{bluetooth,wireless,mac80211}
chroot "$R" depmod -a "$KV"

ts configure
echo pvehci-vm >"$R/etc/hostname"
printf '127.0.0.1 localhost\n' >"$R/etc/hosts"
echo '/dev/vda / ext4 rw,noatime 0 0' >"$R/etc/fstab"
: >"$R/etc/machine-id"
chroot "$R" passwd -d root >/dev/null
mkdir -p "$R/mnt/host"
# ifupdown2 reads /etc/network/interfaces; start with loopback only.
mkdir -p "$R/etc/network/interfaces.d"
printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' >"$R/etc/network/interfaces"
# Load the modules the tests need at boot (systemd-modules-load).
printf '%s\n' bonding 9pnet_virtio 9p dm_thin_pool >"$R/etc/modules-load.d/pvehci-vm.conf"

cat >"$R/usr/local/sbin/vmtest-run" <<'EOS'
#!/bin/bash
# Runs as a oneshot unit after multi-user.target: mount the 9p share "host",
# run /mnt/host/run.sh, write vmtest.log + vmtest.rc back, power off hard.
exec >/dev/ttyS0 2>&1
echo "VMTEST-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"
modprobe 9pnet_virtio 2>/dev/null; rc=99
if mountpoint -q /mnt/host || mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /mnt/host; then
  if [ -x /mnt/host/run.sh ]; then
    /mnt/host/run.sh 2>&1 | tee /mnt/host/vmtest.log; rc=${PIPESTATUS[0]}
  fi
  echo "$rc" >/mnt/host/vmtest.rc
fi
echo "VMTEST-RC=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
sync; umount /mnt/host 2>/dev/null
echo o >/proc/sysrq-trigger
EOS
chmod +x "$R/usr/local/sbin/vmtest-run"
cat >"$R/etc/systemd/system/vmtest.service" <<'EOS'
[Unit]
Description=pvehci VM test runner
After=multi-user.target dbus.service systemd-udev-settle.service
Wants=dbus.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vmtest-run
TimeoutStartSec=infinity
StandardOutput=journal+console
[Install]
WantedBy=default.target
EOS
chroot "$R" systemctl enable vmtest.service >/dev/null 2>&1
chroot "$R" systemctl mask serial-getty@ttyS0.service getty@tty1.service e2scrub_reap.service \
  e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer fstrim.timer >/dev/null 2>&1 || true

ts initrd
sed -i 's/^MODULES=.*/MODULES=list/' "$R/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >>"$R/etc/initramfs-tools/modules"
for d in proc sys dev; do mount --bind "/$d" "$R/$d"; done
chroot "$R" mkinitramfs -o /tmp/initrd.img "$KV"
mv "$R/tmp/initrd.img" "$W/initrd.img"
for d in proc sys dev; do umount "$R/$d"; done
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*_Packages

ts image
mke2fs -q -t ext4 -d "$R" -L vmroot "$W/rootfs.img" 2G
mv "$W/vmlinuz" "$W/initrd.img" "$W/rootfs.img" "$CACHE/"
echo "$KV" >"$CACHE/kernel-version"
echo "$STAMP" >"$CACHE/stamp"
ts "done in $(( $(date +%s) - start ))s -> $CACHE"
