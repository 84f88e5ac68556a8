#!/bin/sh
# Benign: a locally built .deb installed and purged with dpkg. Its files include a cron job and
# a systemd unit, and its postinst writes under /etc and adds a system user: package
# management, trusted by the path of dpkg.
set -e
d=$(mktemp -d)
p=scn-benign-pkg
mkdir -p "$d/$p/DEBIAN" "$d/$p/etc/cron.d" "$d/$p/lib/systemd/system" "$d/$p/usr/bin"
printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: shrike <shrike@localhost>\nDescription: scenario package\n' "$p" > "$d/$p/DEBIAN/control"
printf '17 3 * * * root /usr/bin/%s\n' "$p" > "$d/$p/etc/cron.d/$p"
printf '[Service]\nExecStart=/usr/bin/%s\n' "$p" > "$d/$p/lib/systemd/system/$p.service"
printf '#!/bin/sh\nexit 0\n' > "$d/$p/usr/bin/$p"
chmod 755 "$d/$p/usr/bin/$p"
printf '#!/bin/sh\nset -e\nmkdir -p /etc/%s\necho enabled=1 > /etc/%s/%s.conf\nid %s >/dev/null 2>&1 || useradd --system --no-create-home %s\n' "$p" "$p" "$p" "$p" "$p" > "$d/$p/DEBIAN/postinst"
printf '#!/bin/sh\nset -e\nif [ "$1" = purge ]; then rm -rf /etc/%s; userdel %s 2>/dev/null || true; fi\n' "$p" "$p" > "$d/$p/DEBIAN/postrm"
chmod 755 "$d/$p/DEBIAN/postinst" "$d/$p/DEBIAN/postrm"
dpkg-deb --root-owner-group --build "$d/$p" "$d/$p.deb" > /dev/null
dpkg -i "$d/$p.deb" > /dev/null
dpkg --purge "$p" > /dev/null
rm -rf "$d"
