// The tcp tester [spec 6.2]: a real is up iff a TCP connection (and, with SSL="1", the TLS
// handshake) completes before the deadline. No data is sent; the connection is reset at once.

import type { AttrValues, GenericSettings, ProbeContext, ProbeResult, ProbeTarget, Tester } from './contract.js';
import { compileTls, probeConnection, TLS_ATTRS, type ConnectionHooks, type TlsParams } from './socket.js';

export interface TcpParams {
  readonly tls?: TlsParams;
}

const PLAIN: ConnectionHooks = {
  onConnected: (conn) => conn.finish(true, 'connected'),
  deadlineDetail: () => 'deadline',
};

const SECURE: ConnectionHooks = {
  onConnected: (conn) => conn.finish(true, 'connected, TLS handshake done'),
  deadlineDetail: () => 'deadline',
};

export const tcpTester: Tester<TcpParams> = {
  name: 'tcp',
  attrs: TLS_ATTRS,

  compile(values: AttrValues, generic: GenericSettings): TcpParams {
    const tls = compileTls(values, generic);
    return tls === undefined ? {} : { tls };
  },

  probe(target: ProbeTarget, params: TcpParams, ctx: ProbeContext): Promise<ProbeResult> {
    return probeConnection(target, params.tls, ctx, params.tls === undefined ? PLAIN : SECURE);
  },
};
