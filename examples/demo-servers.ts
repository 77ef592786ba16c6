// Real servers for the embedded demo, all on loopback: HTTP (IPv4 and IPv6), plain TCP and DNS over UDP.

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';

export interface DemoServers {
  describe(): string[];
  /** Status code the HTTP server on `addr` answers with from now on. */
  setHttpStatus(addr: string, status: number): void;
  close(): Promise<void>;
}

const listen = (s: HttpServer | TcpServer, port: number, host: string): Promise<void> =>
  new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => resolve());
  });

export async function startDemoServers(): Promise<DemoServers> {
  const status = new Map<string, number>();
  const closers: Array<() => Promise<void>> = [];
  const lines: string[] = [];

  for (const [addr, port] of [['127.0.0.11', 18080], ['127.0.0.12', 18080], ['127.0.0.13', 18080], ['::1', 18082]] as const) {
    status.set(addr, 200);
    const s = createHttpServer((req, res) => {
      const code = status.get(addr) ?? 200;
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(code === 200 ? 'ok\n' : 'unavailable\n');
    });
    await listen(s, port, addr);
    closers.push(
      () =>
        new Promise((r) => {
          s.close(() => r());
          s.closeAllConnections();
        }),
    );
    lines.push(`http  ${addr.includes(':') ? `[${addr}]` : addr}:${port}`);
  }
  for (const addr of ['127.0.0.21', '127.0.0.22']) {
    const s = createTcpServer((c) => {
      c.on('error', () => undefined);
      c.end();
    });
    await listen(s, 18081, addr);
    closers.push(() => new Promise((r) => s.close(() => r())));
    lines.push(`tcp   ${addr}:18081`);
  }
  const dns: UdpSocket = createSocket('udp4');
  dns.on('message', (msg, rinfo) => {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question) return;
    const answer = dnsPacket.encode({
      id: q.id ?? 0,
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER,
      questions: [question],
      answers: [
        {
          type: 'SOA',
          name: question.name,
          ttl: 60,
          data: { mname: 'ns1.demo.test', rname: 'hostmaster.demo.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60 },
        },
      ],
    });
    dns.send(answer, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    dns.once('error', reject);
    dns.bind(18053, '127.0.0.31', () => resolve());
  });
  closers.push(() => new Promise((r) => dns.close(() => r())));
  lines.push('dns   127.0.0.31:18053/udp');

  return {
    describe: () => lines,
    setHttpStatus: (addr, code) => status.set(addr, code),
    close: async () => {
      await Promise.all(closers.map((c) => c()));
    },
  };
}
