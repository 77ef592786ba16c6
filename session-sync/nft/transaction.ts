// Encodes a write plan as one nftables transaction: BATCH_BEGIN, element deletions, element
// additions, BATCH_END, all in one datagram (nfnetlink applies a batch only when its END arrives in
// the same datagram). Element messages are split to stay small: each element list is a nested
// attribute (u16 length), and a refused message is echoed back whole in the error reply, so the
// size of every message bounds the receive-queue space the errors may need. Pure.

import type { NftRef } from './sets.js';
import {
  beginElemMessage,
  elemMessageOverhead,
  elemSize,
  endElemMessage,
  NlWriter,
  writeBatchBegin,
  writeBatchEnd,
  writeElem,
  writeFlush,
  type ElemCmd,
} from './codec.js';
import type { PlannedElem, WritePlan } from './plan.js';

/**
 * Largest element message: its error echo (message + 36 bytes of headers + 320 of skb_shared_info)
 * then fits one 16 KiB kernel allocation.
 */
export const MAX_MESSAGE_BYTES = 15_900;

/** What message i of a transaction carries, for error reports. */
export interface TxMessage {
  readonly cmd: ElemCmd | 'begin' | 'end' | 'flush';
  readonly elems: readonly PlannedElem[];
}

export interface Transaction {
  readonly writer: NlWriter;
  /** Aligned with the writer's messages (0 = BEGIN). */
  readonly messages: readonly TxMessage[];
  /** Worst-case receive-queue bytes if the kernel refuses every message (each echoed back). */
  readonly worstReplyBytes: number;
}

/** Receive-queue cost (skb truesize) of an error echoing a message of `len` bytes. */
export function echoCost(len: number): number {
  let alloc = 1024;
  while (alloc < len + 36 + 320) alloc *= 2;
  return alloc + 512;
}

/**
 * Deletions (of replaced elements) first, then additions of new and replaced elements: within one
 * transaction the delete and the add of a key both apply, so the element ends up with the new
 * data, timeout and expiry.
 */
export function encodeTransaction(ref: NftRef, plan: WritePlan, deleteCmd: 'delete' | 'destroy', maxMessageBytes = MAX_MESSAGE_BYTES): Transaction {
  const overhead = elemMessageOverhead(ref.table, ref.set);
  let bytes = 64;
  for (const e of plan.replace) bytes += elemSize(e.key.length, -1, 0, 0);
  for (const list of [plan.add, plan.replace]) {
    for (const e of list) bytes += elemSize(e.key.length, e.data ? e.data.length : -1, e.timeoutMs, e.expirationMs);
  }
  const w = new NlWriter(bytes + overhead * (2 + Math.ceil(bytes / maxMessageBytes)));
  const messages: TxMessage[] = [];
  let worst = 0;
  writeBatchBegin(w);
  messages.push({ cmd: 'begin', elems: [] });

  const emit = (cmd: ElemCmd, elems: readonly PlannedElem[], withValues: boolean): void => {
    let i = 0;
    while (i < elems.length) {
      const start = w.off;
      const open = beginElemMessage(w, cmd, ref.family, ref.table, ref.set);
      let size = overhead;
      const from = i;
      while (i < elems.length) {
        const e = elems[i]!;
        const n = withValues ? elemSize(e.key.length, e.data ? e.data.length : -1, e.timeoutMs, e.expirationMs) : elemSize(e.key.length, -1, 0, 0);
        if (i > from && size + n > maxMessageBytes) break;
        if (withValues) writeElem(w, e.key, e.data, e.timeoutMs, e.expirationMs);
        else writeElem(w, e.key, null, 0, 0);
        size += n;
        i++;
      }
      endElemMessage(w, open);
      worst += echoCost(w.off - start);
      messages.push({ cmd, elems: elems.slice(from, i) });
    }
  };
  emit(deleteCmd, plan.replace, false);
  emit('add', plan.add, true);
  emit('add', plan.replace, true);

  writeBatchEnd(w);
  messages.push({ cmd: 'end', elems: [] });
  return { writer: w, messages, worstReplyBytes: worst + 4 * echoCost(64) };
}

/** A transaction removing every element of the set. */
export function encodeFlush(ref: NftRef): Transaction {
  const w = new NlWriter(256);
  writeBatchBegin(w);
  writeFlush(w, ref.family, ref.table, ref.set);
  writeBatchEnd(w);
  return {
    writer: w,
    messages: [{ cmd: 'begin', elems: [] }, { cmd: 'flush', elems: [] }, { cmd: 'end', elems: [] }],
    worstReplyBytes: 4 * echoCost(256),
  };
}
