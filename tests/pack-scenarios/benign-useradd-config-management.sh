#!/bin/sh
# Benign: the configuration-management agent creating and removing a service account. The
# agent is the pack's trusted config-management path /opt/puppetlabs/puppet/bin/puppet (a
# stand-in is installed there when Puppet is not, and removed afterwards).
set -e
a=/opt/puppetlabs/puppet/bin/puppet
made=
if [ ! -e "$a" ]; then
  [ -d /opt/puppetlabs ] || made=1
  mkdir -p "$(dirname "$a")"
  cp "$(readlink -f /bin/sh)" "$a"
fi
u=svcscn$$
"$a" -c "useradd --system --no-create-home --shell /usr/sbin/nologin $u && usermod -c 'managed by puppet' $u && userdel $u"
[ -z "$made" ] || rm -rf /opt/puppetlabs
