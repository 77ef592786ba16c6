// The connection handshake as two small state machines (messages in, messages out), one per side:
//
//   backup                                   master
//   HELLO(backup, auth?, nonceB)  ───────►
//                                 ◄───────   HELLO(master, auth?, nonceM)      (or REFUSE)
//   [key] AUTH(proof of key)      ───────►
//                                 ◄───────   [key] AUTH_OK(proof of key)       (or REFUSE)
//   ... from here on, with a key, every frame carries a per-direction MAC ...
//
// Either side with a key refuses a peer without one (a backup never takes state from an unproven
// master; a master never hands client addresses to an unproven backup).

import { backupProof, masterProof, proofMatches, sessionKeys } from '../wire/auth.js';
import type { Message } from '../wire/messages.js';

export interface HandshakeStep {
  readonly send: Message[];
  /** Set once the peer is proven (or both sides run without a key): the link is up. */
  readonly ready?: { readonly peerNode: string; readonly keys?: { readonly send: Buffer; readonly recv: Buffer } };
  /** Set when the handshake failed: the reason to log; the connection is closed. */
  readonly fail?: string;
}

const none: HandshakeStep = { send: [] };

export class BackupHandshake {
  private state: 'start' | 'hello-sent' | 'auth-sent' | 'done' = 'start';
  private masterNonce: Buffer = Buffer.alloc(0);
  private masterNode = '';

  constructor(
    private readonly key: Buffer | undefined,
    private readonly node: string,
    private readonly nonce: Buffer,
  ) {}

  start(): HandshakeStep {
    this.state = 'hello-sent';
    return { send: [{ type: 'hello', role: 'backup', auth: this.key !== undefined, nonce: this.nonce, node: this.node }] };
  }

  receive(m: Message): HandshakeStep {
    if (m.type === 'refuse') return { send: [], fail: `master refused: ${m.reason}` };
    if (this.state === 'hello-sent' && m.type === 'hello') {
      if (m.role !== 'master') return { send: [], fail: 'peer is not a master' };
      if (this.key && !m.auth) {
        return { send: [{ type: 'refuse', reason: 'authentication required' }], fail: 'master runs without a key while we have one: refused' };
      }
      if (!this.key && m.auth) return { send: [], fail: 'master requires a key and we have none (set key_file / -k)' };
      this.masterNode = m.node;
      if (!this.key) {
        this.state = 'done';
        return { send: [], ready: { peerNode: m.node } };
      }
      this.masterNonce = m.nonce;
      this.state = 'auth-sent';
      return { send: [{ type: 'auth', proof: backupProof(this.key, m.nonce, this.nonce) }] };
    }
    if (this.state === 'auth-sent' && m.type === 'auth-ok' && this.key) {
      if (!proofMatches(masterProof(this.key, this.masterNonce, this.nonce), m.proof)) {
        return { send: [], fail: 'master failed to prove the shared key: refused' };
      }
      this.state = 'done';
      const k = sessionKeys(this.key, this.masterNonce, this.nonce);
      return { send: [], ready: { peerNode: this.masterNode, keys: { send: k.toMaster, recv: k.toBackup } } };
    }
    return { send: [], fail: `unexpected ${m.type} during the handshake` };
  }
}

export class MasterHandshake {
  private state: 'wait-hello' | 'wait-auth' | 'done' = 'wait-hello';
  private backupNonce: Buffer = Buffer.alloc(0);
  private backupNode = '';

  constructor(
    private readonly key: Buffer | undefined,
    private readonly node: string,
    private readonly nonce: Buffer,
  ) {}

  receive(m: Message): HandshakeStep {
    if (this.state === 'wait-hello' && m.type === 'hello') {
      if (m.role !== 'backup') return { send: [{ type: 'refuse', reason: 'not a backup' }], fail: 'peer is not a backup' };
      if (this.key && !m.auth) {
        return { send: [{ type: 'refuse', reason: 'authentication required' }], fail: `backup ${m.node} has no key: refused` };
      }
      const hello: Message = { type: 'hello', role: 'master', auth: this.key !== undefined, nonce: this.nonce, node: this.node };
      this.backupNode = m.node;
      if (!this.key) {
        if (m.auth) return { send: [hello], fail: `backup ${m.node} wants a key and we have none` };
        this.state = 'done';
        return { send: [hello], ready: { peerNode: m.node } };
      }
      this.backupNonce = m.nonce;
      this.state = 'wait-auth';
      return { send: [hello] };
    }
    if (this.state === 'wait-auth' && m.type === 'auth' && this.key) {
      if (!proofMatches(backupProof(this.key, this.nonce, this.backupNonce), m.proof)) {
        return { send: [{ type: 'refuse', reason: 'authentication failed' }], fail: `backup ${this.backupNode} failed to prove the shared key: refused` };
      }
      this.state = 'done';
      const k = sessionKeys(this.key, this.nonce, this.backupNonce);
      return {
        send: [{ type: 'auth-ok', proof: masterProof(this.key, this.nonce, this.backupNonce) }],
        ready: { peerNode: this.backupNode, keys: { send: k.toBackup, recv: k.toMaster } },
      };
    }
    if (m.type === 'refuse') return { send: [], fail: `backup refused: ${m.reason}` };
    return { ...none, fail: `unexpected ${m.type} during the handshake` };
  }
}
