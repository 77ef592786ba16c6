// The tcp tester [spec 6.2]: a real is up iff a TCP connection (and, with SSL="1", the TLS
// handshake) completes before the deadline. No data is sent; the connection is reset at once.

import type { AttrValues, GenericSettings, ProbeContext, ProbeResult, ProbeTarget, Tester } from './contract.js';
import { compileTls, probeConnection, TLS_ATTRS, type ConnectionHooks, type TlsParams } from './socket.js';
import { nativeCanReach, nativeProber, probeNative, startNative, type NativeJudge } from './native.js';

export interface TcpParams {
  readonly tls?: TlsParams;
  /** Plain tcp on the native prober. */
  readonly native?: NativeJudge;
}

const PLAIN: ConnectionHooks = {
  onConnected: (conn) => conn.finish(true, 'connected'),
  deadlineDetail: () => 'deadline',
};

const SECURE: ConnectionHooks = {
  onConnected: (conn) => conn.finish(true, 'connected, TLS handshake done'),
  deadlineDetail: () => 'deadline',
};

const NATIVE_CONNECT: NativeJudge = {
  compiled: null,
  verdict: () => ({ ok: true, detail: 'connected' }),
  deadlineDetail: () => 'deadline',
};

export const tcpTester: Tester<TcpParams> = {
  name: 'tcp',
  attrs: TLS_ATTRS,

  compile(values: AttrValues, generic: GenericSettings): TcpParams {
    const tls = compileTls(values, generic);
    if (tls !== undefined) return { tls };
    return nativeProber() !== undefined ? { native: NATIVE_CONNECT } : {};
  },

  probe(target: ProbeTarget, params: TcpParams, ctx: ProbeContext): Promise<ProbeResult> {
    if (params.native !== undefined && nativeCanReach(target)) return probeNative(target, params.native, ctx);
    return probeConnection(target, params.tls, ctx, params.tls === undefined ? PLAIN : SECURE);
  },

  start(target: ProbeTarget, params: TcpParams, ctx: ProbeContext, done: (r: ProbeResult) => void): void {
    if (params.native !== undefined && nativeCanReach(target)) return startNative(target, params.native, ctx, done);
    void probeConnection(target, params.tls, ctx, params.tls === undefined ? PLAIN : SECURE).then(done);
  },
};
