// One link over a real loopback TCP connection: messages both ways, unknown frame types skipped,
// heartbeats on an idle link, the dead timer on a silent one, a bad frame closing with its reason.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'mocha';
import { Link } from '../../session-sync/link/link.js';
import { FrameDecoder, FrameEncoder } from '../../session-sync/wire/frame.js';
import type { Message } from '../../session-sync/wire/messages.js';
import { waitFor } from '../helpers/processes.js';

describe('session-sync link (loopback TCP)', () => {
  let server: Server;
  let port = 0;
  const accepted: Socket[] = [];
  before(async () => {
    server = createServer((s) => accepted.push(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  async function pair(): Promise<{ client: Socket; peer: Socket }> {
    const n = accepted.length;
    const client = connect(port, '127.0.0.1');
    await once(client, 'connect');
    await waitFor(() => accepted.length > n, 2000);
    return { client, peer: accepted[n]! };
  }

  it('delivers messages in order and skips a frame type it does not know', async () => {
    const { client, peer } = await pair();
    const got: Message[] = [];
    const link = new Link(peer, 'test', { onMessage: (m) => got.push(m), onClose: () => undefined }, Date.now);
    const enc = new FrameEncoder();
    const hb = (seq: number): Buffer => enc.encode(10, Buffer.from([0, 0, 0, 0, 0, seq]));
    client.write(Buffer.concat([hb(1), enc.encode(200, Buffer.from('from a newer version')), hb(2)]));
    assert.ok(await waitFor(() => got.length === 2, 2000));
    assert.deepEqual(got, [
      { type: 'heartbeat', seq: 1 },
      { type: 'heartbeat', seq: 2 },
    ]);
    assert.equal(link.skippedFrames, 1);
    link.close('done');
    client.destroy();
  });

  it('sends heartbeats while idle, and closes a link whose peer stays silent past the dead timer', async () => {
    const { client, peer } = await pair();
    let reason = '';
    // Frames, not reads: on a busy machine two heartbeats can arrive in one read.
    let beats = 0;
    const frames = new FrameDecoder();
    client.on('data', (chunk: Buffer) => {
      frames.push(chunk);
      while (frames.next() !== undefined) beats += 1;
    });
    new Link(peer, 'silent', { onMessage: () => undefined, onClose: (r) => (reason = r) }, Date.now, { heartbeatMs: 50, deadMs: 400 });
    assert.ok(await waitFor(() => reason !== '', 5000));
    assert.match(reason, /peer silent for \d+ ms \(dead timer 400 ms\)/);
    assert.ok(beats >= 2, `${beats} heartbeats before the dead timer`);
    client.destroy();
  });

  it('a frame that does not decode closes the link and says why', async () => {
    const { client, peer } = await pair();
    let reason = '';
    new Link(peer, 'bad', { onMessage: () => undefined, onClose: (r) => (reason = r) }, Date.now);
    client.write(new FrameEncoder().encode(9, Buffer.from([1, 2])));
    assert.ok(await waitFor(() => reason !== '', 2000));
    assert.match(reason, /bad frame from bad: ack seq at byte 0: needs 6 bytes, 2 left/);
    client.destroy();
  });
});
