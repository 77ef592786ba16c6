// The validated service configuration: what the XML says, as plain typed data.
// Produced by config/xml.ts, consumed by the engine, the hand-off writer and the dumps.

import type { AttrValues, Tester } from '../../testers/contract.js';

export type VProto = 'tcp' | 'udp' | 'fwmark';
export type Forwarding = 'dr' | 'masq' | 'tun';

/** Where a config item came from, for error messages and `-t` output. */
export interface SourceRef {
  readonly file: string;
  readonly line: number;
}

/** A min_reals / min_weight threshold: absolute count/weight or percent; 0 = not checked. */
export interface Threshold {
  readonly value: number;
  readonly percent: boolean;
}

export interface TesterConfig {
  /** Tester name (`proto` attribute): tcp, http, dns, exec, no-test, or a third-party name. */
  readonly proto: string;
  readonly tester: Tester;
  readonly testport: number;
  readonly loopdelay: number; // seconds
  readonly timeout: number; // seconds
  readonly retries2ok: number;
  readonly retries2fail: number;
  readonly removeOnFail: boolean;
  readonly debugcomm: boolean;
  readonly logmicro: boolean;
  readonly statsSamples: number; // 1..20
  readonly ssl: boolean;
  readonly notifyUp?: string;
  readonly notifyDown?: string;
  readonly notifyMinReals: Threshold;
  readonly notifyMinWeight: Threshold;
  readonly realNotifyUp?: string;
  readonly realNotifyDown?: string;
  /** The tester's own attribute values (defaults applied). */
  readonly values: AttrValues;
  readonly source: SourceRef;
}

export interface RealConfig {
  readonly name: string;
  readonly addr: string; // IPv4 or IPv6 literal, canonical form
  readonly family: 4 | 6;
  readonly port: number;
  readonly weight: number;
  readonly testport: number;
  readonly uthresh: number;
  readonly lthresh: number;
  readonly rt: Forwarding;
  /** Tester attribute values for this real: the tester's, overridden by the real's own. */
  readonly values: AttrValues;
  /** Compiled probe parameters (Tester.compile of `values`). */
  readonly params: unknown;
  /** Identity of the probe: equal keys = identical probe (shared between virtuals). */
  readonly probeKey: string;
  readonly source: SourceRef;
}

/**
 * The sorry server of a virtual (`<sorry>`, extension; keepalived's sorry_server, ldirectord's
 * fallback): never probed, put into IPVS with its weight while no real of the virtual serves (gets a
 * non-zero IPVS weight), taken out as soon as one does (engine/fallback.ts decides).
 */
export interface SorryConfig {
  readonly name: string;
  readonly addr: string; // IPv4 or IPv6 literal, canonical form
  readonly family: 4 | 6;
  readonly port: number;
  /** 1..65535: the IPVS weight while the sorry server is in service. */
  readonly weight: number;
  readonly uthresh: number;
  readonly lthresh: number;
  readonly rt: Forwarding;
  /** keepalived's sorry_server_inhibit: out of service it stays in IPVS at weight 0 instead of being deleted. */
  readonly inhibit: boolean;
  /** Run when the sorry server is put in (UP) / taken out (DOWN), with the real notifier's arguments. */
  readonly notifyUp?: string;
  readonly notifyDown?: string;
  readonly source: SourceRef;
}

export interface VirtualConfig {
  readonly name: string;
  readonly proto: VProto;
  /** `0.0.0.0` (IPv4) or `::` (IPv6) for fwmark virtuals. */
  readonly addr: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly fwmark: number;
  readonly sched: string;
  readonly rt: Forwarding;
  readonly pers: number;
  readonly ops: boolean;
  readonly tester: TesterConfig;
  readonly reals: readonly RealConfig[];
  /**
   * Healthy panic threshold in percent (`panic`, extension; Envoy's healthy_panic_threshold): while
   * fewer than this share of the reals the operator left ONLINE pass their tests, test verdicts are
   * disregarded and every real stays in IPVS. Absent or 0: off.
   */
  readonly panic?: number;
  /** The `<sorry>` server, if any. */
  readonly sorry?: SorryConfig;
  readonly source: SourceRef;
}

export interface ServiceConfig {
  readonly file: string;
  readonly virtuals: readonly VirtualConfig[];
}

/** Numeric protocol codes used in the dump files' VKEY (0=tcp, 1=udp, 2=fwmark). */
export const PROTO_CODE: Readonly<Record<VProto, number>> = { tcp: 0, udp: 1, fwmark: 2 };
