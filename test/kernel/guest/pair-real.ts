// A real server of the director-pair lab, run inside a real's namespace: on ports 80, 81 and 82 it
// greets each connection with its name and then echoes every line prefixed with it, so a client
// knows which real it reached and a held connection notices a lost or reordered message.
import { createServer } from 'node:net';

const name = process.argv[2] ?? 'real';
for (const port of [80, 81, 82]) {
  createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('error', () => undefined); // a client vanishing with its director is part of the test
    sock.write(`${name}\n`);
    let buf = '';
    sock.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        sock.write(`${name} ${buf.slice(0, nl)}\n`);
        buf = buf.slice(nl + 1);
      }
    });
  }).listen(port, '0.0.0.0');
}
process.stdout.write('ready\n');
