// The nftables part of session sync: watch a set by polling it (NftPoller), write replicated
// entries into a set as one transaction (NftWriter), list the sets that can be replicated.
export { NftPoller, type NftPollerOptions, type PollStats } from './poller.js';
export { NftWriter, type NftWriterOptions, type WriteResult } from './writer.js';
export { listSets, readSetInfo, type NftRef, type NftSetSummary, type SetFilter } from './sets.js';
export { NftSocket, type NftSocketOptions } from './socket.js';
export { NftError, type NftErrorCode } from './errors.js';
export { classifySet, layoutName, typeName, type DataLayout, type SetLayout } from './types.js';
export type { NftSetInfo } from './codec.js';
