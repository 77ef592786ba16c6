// A UDP sender driven through stdin, for lab checks that need many packets from a namespace without a
// node start per packet (seconds each under TCG): one JSON line per packet,
// {"id":…, "family":4|6, "src":…, "dst":…, "port":…, "ttl"?:…}, answered "ok <id>" once sent or
// "err <id> <why>". Run it as `ip netns exec <ns> node dist/test/kernel/guest/udp-sender.js`.
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';

interface Packet {
  id: number;
  family: 4 | 6;
  src: string;
  dst: string;
  port: number;
  ttl?: number;
}

const sockets = new Map<string, Promise<Socket>>();

/** One socket per source address and ttl, bound once. */
function socketFor(p: Packet): Promise<Socket> {
  const key = `${p.src}/${p.ttl ?? ''}`;
  let s = sockets.get(key);
  if (!s) {
    s = new Promise<Socket>((res, rej) => {
      const sock = createSocket(p.family === 6 ? 'udp6' : 'udp4');
      sock.once('error', rej);
      sock.bind({ address: p.src, port: 0 }, () => {
        if (p.ttl !== undefined) sock.setTTL(p.ttl);
        res(sock);
      });
    });
    sockets.set(key, s);
  }
  return s;
}

const rl = createInterface({ input: process.stdin });
// Packets go out in the order they were asked for.
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let p: Packet | undefined;
    try {
      p = JSON.parse(line) as Packet;
      const sock = await socketFor(p);
      await new Promise<void>((res, rej) => sock.send('x', p!.port, p!.dst, (e) => (e ? rej(e) : res())));
      process.stdout.write(`ok ${p.id}\n`);
    } catch (e) {
      process.stdout.write(`err ${p?.id ?? -1} ${(e as Error).message.replace(/\n/g, ' ')}\n`);
    }
  });
});
rl.on('close', () => {
  void chain.then(async () => {
    for (const s of sockets.values()) (await s).close();
  });
});
