// Typed IPVS errors: the kernel's errno for an op becomes a code and libipvs's wording
// ("Service already exists", "No such destination", ...), naming the service/destination concerned.
import { constants } from 'node:os';
import type { IpvsOpKind } from './types.js';

export type IpvsErrorCode =
  | 'ENOIPVS' // the kernel has no IPVS generic-netlink family (module absent, or not built)
  | 'EPERM' // not CAP_NET_ADMIN (every IPVS op, reads too)
  | 'EEXIST' // service / destination already exists; a sync daemon of that state already runs
  | 'ENOENT' // no such destination
  | 'ESRCH' // no such service; stopDaemon: no daemon of that state is running
  | 'ENODEV' // startDaemon: no such network interface
  | 'ENOSCHED' // scheduler or persistence engine not found (ENOENT on add/edit service)
  | 'EINVAL'
  | 'ERANGE' // weight < 0 (i.e. > 2^31-1 on the wire) or lower threshold > upper
  | 'ENOMEM'
  | 'EBUSY'
  | 'ENOBUFS' // our receive queue overflowed: replies were lost
  | 'ETIMEDOUT'
  | 'ECLOSED' // the client was closed with the request in flight
  | 'EPROTO' // a reply we cannot parse
  | 'EOTHER';

export type IpvsOpName =
  | IpvsOpKind
  | 'open'
  | 'getInfo'
  | 'listServices'
  | 'getService'
  | 'listDestinations'
  | 'getTimeouts'
  | 'startDaemon'
  | 'stopDaemon'
  | 'getDaemons';

export class IpvsError extends Error {
  override readonly name = 'IpvsError';
  constructor(
    readonly code: IpvsErrorCode,
    readonly op: IpvsOpName,
    message: string,
    /** Positive errno from the kernel, when the error came from it. */
    readonly errno?: number,
  ) {
    super(message);
  }
}

const E = constants.errno;

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(E)) if (value === errno) return name;
  return `errno ${errno}`;
}

/** libipvs's texts (ipvs_strerror) for errno per op; the fallback is strerror-like. */
function text(op: IpvsOpName, errno: number): string {
  const svcOp = op === 'addService' || op === 'updateService' || op === 'deleteService' || op === 'getService';
  const destOp = op === 'addDestination' || op === 'updateDestination' || op === 'deleteDestination';
  if (errno === E.EPERM) return 'Permission denied (you must be root)';
  if (op === 'addService' && errno === E.EEXIST) return 'Service already exists';
  if ((op === 'addService' || op === 'updateService') && errno === E.ENOENT) {
    return 'Scheduler or persistence engine not found';
  }
  if (svcOp && errno === E.ESRCH) return 'No such service';
  if ((destOp || op === 'listDestinations' || op === 'zero') && errno === E.ESRCH) return 'Service not defined';
  if (op === 'addDestination' && errno === E.EEXIST) return 'Destination already exists';
  if (destOp && errno === E.ENOENT) return 'No such destination';
  if (destOp && errno === E.ERANGE) return 'Weight or threshold out of range (weight 0..2147483647, lower <= upper)';
  if (op === 'startDaemon' && errno === E.EEXIST) return 'A sync daemon of this state is already running';
  if (op === 'startDaemon' && errno === E.ENODEV) return 'No such network interface';
  if (op === 'startDaemon' && errno === E.EINVAL) {
    return 'Invalid argument (a group that is not multicast, or a service with destinations of the other address family)';
  }
  if (op === 'stopDaemon' && errno === E.ESRCH) return 'No daemon is running';
  if (errno === E.EINVAL) return 'Invalid argument';
  if (errno === E.ENOMEM) return 'Memory allocation problem';
  if (errno === E.EBUSY) return 'Device or resource busy';
  return errnoName(errno);
}

function codeFor(op: IpvsOpName, errno: number): IpvsErrorCode {
  if ((op === 'addService' || op === 'updateService') && errno === E.ENOENT) return 'ENOSCHED';
  switch (errno) {
    case E.EPERM:
    case E.EACCES:
      return 'EPERM';
    case E.EEXIST:
      return 'EEXIST';
    case E.ENOENT:
      return 'ENOENT';
    case E.ESRCH:
      return 'ESRCH';
    case E.ENODEV:
      return 'ENODEV';
    case E.EINVAL:
      return 'EINVAL';
    case E.ERANGE:
      return 'ERANGE';
    case E.ENOMEM:
      return 'ENOMEM';
    case E.EBUSY:
      return 'EBUSY';
    case E.ENOBUFS:
      return 'ENOBUFS';
    default:
      return 'EOTHER';
  }
}

/** Turns a kernel errno (positive) for `op` on `subject` (e.g. "TCP 10.0.0.1:80") into an IpvsError. */
export function kernelError(op: IpvsOpName, errno: number, subject?: string): IpvsError {
  const where = subject ? `${op} ${subject}` : op;
  return new IpvsError(codeFor(op, errno), op, `${where}: ${text(op, errno)}`, errno);
}
