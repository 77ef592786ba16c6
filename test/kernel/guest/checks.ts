// The checks the guest-side IPVS script runs, by id, shared with the host test so that the host can
// declare one mocha `it` per check before the guest has run (and notice a check that never reported).

import type { GuestCheckReport, GuestCheckResult } from './report.js';

export const IPVS_CHECKS = {
  'open': 'open() resolves the IPVS generic-netlink family',
  'info': 'getInfo() reports version 1.2.1 and the connection table size that ipvsadm prints',
  'timeouts.get': 'getTimeouts() equals `ipvsadm -Ln --timeout`',
  'timeouts.set': 'setTimeouts() changes tcp/tcpfin/udp; 0 or absent leaves a value unchanged',
  'services.add': 'addService() of IPv4/IPv6 tcp/udp/sctp/fwmark services with rr/wrr/lc/sh/wlc/mh, persistence, netmask, one-packet, sched flags, pe sip',
  'services.list': 'listServices() returns every field exactly as added (HASHED stripped)',
  'services.get': 'getService() returns each service exactly as added',
  'services.stats': 'every listed service carries stats',
  'services.ipvsadm': '`ipvsadm -Sn` shows the same services (scheduler, persistence, mask, -o, -b, --pe)',
  'dests.add': 'addDestination() of masq/route/local/tunnel (ipip, gue+port+csum, gre) and a v6 tunnel under a v4 service',
  'dests.list': 'listDestinations() returns every field exactly as added',
  'dests.local': 'forward "local" is stored as LOCALNODE; a "route" dest on 127.0.0.1 stays "route" (6.1 does not switch it)',
  'dests.ipvsadm': '`ipvsadm -Sn` shows the same destinations (forward, weight, thresholds, tunnel options)',
  'dests.thresholds': '`ipvsadm -Ln --thresholds` shows the same upper/lower thresholds',
  'dests.tuninfo': '`ipvsadm -Ln --tun-info` shows the tunnel type, port and checksum flags',
  'dests.weights': 'weights 0 and 2147483647 are accepted; 2147483648 and 4294967295 fail with ERANGE',
  'dests.thresholds.range': 'a lower threshold above the upper one fails with ERANGE; one above 2147483647 with EINVAL',
  'services.update': 'updateService() changes scheduler, persistence and netmask, seen by netlink and ipvsadm',
  'dests.update': 'updateDestination() changes forward, weight and thresholds, seen by netlink and ipvsadm',
  'errors.service.exists': 'adding an existing service fails with EEXIST "Service already exists"',
  'errors.service.scheduler': 'an unknown scheduler fails with ENOSCHED "Scheduler or persistence engine not found"',
  'errors.service.missing': 'update/delete/get of a missing service fail with ESRCH "No such service"',
  'errors.dest.exists': 'adding an existing destination fails with EEXIST "Destination already exists"',
  'errors.dest.noservice': 'destination ops and listDestinations on a missing service fail with ESRCH',
  'errors.dest.missing': 'update/delete of a missing destination fail with ENOENT "No such destination"',
  'errors.dest.invalid': 'a GUE tunnel without port and a non-tunnel v6 dest under a v4 service fail with EINVAL',
  'dests.delete': 'deleteDestination() removes it from netlink and ipvsadm views',
  'services.delete': 'deleteService() removes it (and its destinations) from both views',
  'traffic': 'a TCP connection through a local virtual service shows up in conns, activeConns and stats',
  'zero': 'zero() resets the counters of a service',
  'apply.order': 'apply() of 2,000 ops (services then their destinations) in order, all succeed, all visible',
  'apply.errors': 'apply() reports each failing op at its own index with its typed error; later ops still run',
  'apply.flood': 'apply() of 5,000 failing ops with an oversized window: every op gets ESRCH, no lost reply (ENOBUFS)',
  'concurrent': '1,000 concurrent addDestination() calls all resolve and all are in the table',
  'flush': 'flush() empties the table (netlink and ipvsadm agree)',
  'daemons.mixed-family': 'while a service has a destination of the other address family, startDaemon() fails with EINVAL saying why',
  'daemons.start': 'startDaemon() of a master (defaults) and a backup (maxlen, group, port, ttl) on a dummy interface; getDaemons() returns every field',
  'daemons.ipvsadm': '`ipvsadm -L --daemon` prints, line for line, what ipvssync prints from getDaemons()',
  'daemons.stop': 'stopDaemon(master) leaves the backup: getDaemons() and ipvsadm show only it; its kernel thread stays',
  'daemons.errors': 'a second backup fails with EEXIST, stopping a stopped master with ESRCH, an unknown interface with ENODEV, a unicast group with EINVAL before sending',
  'daemons.from-ipvsadm': 'a daemon started by ipvsadm with every option reads back through getDaemons() with the same values (port in host order)',
  'daemons.ipv6': 'master and backup with IPv6 groups on an interface with IPv6: MCAST_GROUP6 read back, maxlen 1452, ipvsadm agrees line for line',
  'ipvssync.daemons.start': 'ipvssync --once with ipvs_sync_daemon both starts both daemons with the keys\' settings and leaves them running at exit',
  'ipvssync.daemons.list': '`ipvssync --list` prints `ipvsadm -Ln` followed by `ipvsadm -L --daemon`, exactly',
  'ipvssync.daemons.again': 'a second ipvssync start with the same keys changes nothing (same kernel threads, nothing started or stopped)',
  'ipvssync.daemons.restart': 'a changed ipvs_sync_id restarts both daemons with it (new threads, logged with the reason); ipvs_sync_daemon master then stops the backup',
} as const;

export type IpvsCheckId = keyof typeof IPVS_CHECKS;

export type CheckResult = GuestCheckResult<IpvsCheckId>;
export type GuestReport = GuestCheckReport<IpvsCheckId>;
