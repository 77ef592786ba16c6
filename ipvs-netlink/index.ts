// Public face of ipvs-netlink: the client, the IPVS nouns, typed errors and the default-filling helpers.
// Everything about attribute ids and byte order stays behind these exports.
export { IpvsClient, type ApplyOptions, type ApplyResult, type IpvsClientOptions } from './client.js';
export { IpvsError, type IpvsErrorCode, type IpvsOpName } from './errors.js';
export { canonicalAddress, describeDaemon, describeDestination, describeService, makeDestination, makeService } from './codec.js';
export type {
  Destination,
  DestinationSelector,
  Family,
  ForwardMethod,
  IpvsInfo,
  IpvsOp,
  IpvsOpKind,
  Protocol,
  Service,
  ServiceFlags,
  ServiceSelector,
  Stats,
  SyncDaemon,
  SyncDaemonState,
  Timeouts,
  TunnelFlags,
  TunnelType,
} from './types.js';
