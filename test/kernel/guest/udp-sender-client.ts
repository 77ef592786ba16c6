// Drives udp-sender.js inside a network namespace: one process for many packets, each send resolved
// once the datagram has left the socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'udp-sender.js');

export interface Datagram {
  id: number;
  family: 4 | 6;
  src: string;
  dst: string;
  port: number;
  ttl?: number;
}

export class UdpSender {
  private readonly child: ChildProcess;
  private buf = '';
  private readonly waiting = new Map<number, (line: string) => void>();

  /** Starts the sender in namespace `ns` (`ip netns exec`). */
  constructor(ns: string) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.on('data', (b: Buffer) => {
      this.buf += b.toString();
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const id = Number(line.split(' ')[1]);
        this.waiting.get(id)?.(line);
        this.waiting.delete(id);
      }
    });
  }

  send(d: Datagram): Promise<void> {
    return new Promise((res, rej) => {
      this.waiting.set(d.id, (line) => (line.startsWith('ok ') ? res() : rej(new Error(`udp-sender: ${line}`))));
      this.child.stdin!.write(JSON.stringify(d) + '\n');
    });
  }

  close(): void {
    this.child.stdin!.end();
    this.child.kill('SIGKILL');
  }
}
