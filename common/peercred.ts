// Who is on the other end of a unix socket: pid, uid and gid from SO_PEERCRED, through the small native
// module common/native/peercred.c (Node has no API for it). Control socket servers check the uid of
// every connection with it; a client can name the daemon holding a socket path.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

interface Binding {
  peerCred(fd: number): PeerCred;
}

/** The credentials could not be read: the module is not built, the socket has no fd, or getsockopt failed. */
export class PeerCredError extends Error {
  override readonly name = 'PeerCredError';
  constructor(
    message: string,
    /** errno name from getsockopt (EBADF, ENOTSOCK, ...), or NOT_BUILT / NO_FD. */
    readonly code: string,
  ) {
    super(message);
  }
}

const require = createRequire(import.meta.url);
const MODULE_PATH = '../../build/Release/peercred.node';

let binding: Binding | undefined;
let loadError: string | undefined;

function load(): Binding {
  if (binding) return binding;
  if (loadError === undefined) {
    try {
      binding = require(MODULE_PATH) as Binding;
      return binding;
    } catch (e) {
      loadError = e instanceof Error ? e.message : String(e);
    }
  }
  throw new PeerCredError(
    `peer credentials unavailable: build/Release/peercred.node is not loadable (npm install builds it; it needs a C compiler): ${loadError}`,
    'NOT_BUILT',
  );
}

/** Whether the native module is built and loadable. */
export function peerCredAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

/** Credentials of the peer of the connected unix socket `fd`; throws PeerCredError. */
export function peerCred(fd: number): PeerCred {
  const b = load();
  try {
    const c = b.peerCred(fd);
    return { pid: c.pid, uid: c.uid, gid: c.gid };
  } catch (e) {
    const err = e as Error & { code?: unknown };
    throw new PeerCredError(err.message, typeof err.code === 'string' ? err.code : 'EUNKNOWN');
  }
}

/** Credentials of the peer of a connected net.Socket on a unix path (its libuv handle's fd). */
export function peerCredOf(socket: Socket): PeerCred {
  // Node keeps the fd on the internal handle; there is no public accessor.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new PeerCredError('peer credentials: the socket has no file descriptor (closed?)', 'NO_FD');
  return peerCred(fd);
}
