// Inputs for the kmodule lab checks, as data: the malformed restore lines every one of which the patched
// xt_recent must refuse with EINVAL, and the upstream command sequence that must behave on the patched
// module exactly as on the stock one.

/** The longest write the module takes (kmodule/README.md): 45-char IPv6 address, ttl, 256 x 20 digits, "\n", NUL. */
export const RESTORE_LEN_MAX = 1 + 45 + 1 + 3 + 1 + 256 * 21 + 2;

export type MalformedCategory =
  | 'too long'
  | 'no NUL, unterminated'
  | 'bad address'
  | 'bad number'
  | 'empty field'
  | 'ttl over 255'
  | 'too many stamps'
  | 'future stamp'
  | 'out of order'
  | 'stray bytes';

export interface MalformedLine {
  readonly category: MalformedCategory;
  readonly why: string;
  readonly data: Buffer;
}

/**
 * The malformed corpus for a kernel whose jiffies are about `now` (the future-stamp lines need it; a
 * margin of 10 s keeps them in the future while the corpus is written).
 */
export function malformedCorpus(now: number): MalformedLine[] {
  const J = String(now - 1000);
  const FUT = String(now + 2500);
  const out: MalformedLine[] = [];
  const add = (category: MalformedCategory, why: string, data: string | Buffer): void => {
    out.push({ category, why, data: typeof data === 'string' ? Buffer.from(data, 'latin1') : data });
  };
  const stamps = (n: number, s: string): string => `${s};`.repeat(n);

  // Too long: over RESTORE_LEN_MAX bytes, valid-looking or not.
  add('too long', 'a valid-looking "=" line one byte over the limit', padTo(`=10.66.0.1;0;`, '0;', RESTORE_LEN_MAX + 1));
  add('too long', '"*" and digits without any ";" over the limit', `*${'7'.repeat(RESTORE_LEN_MAX)}`);
  add('too long', 'a 1 MiB write', Buffer.concat([Buffer.from('*10.66.0.1;0;'), Buffer.alloc(1 << 20, 0x31)]));
  add('too long', 'a 64 KiB write of ";"', `=${';'.repeat(65536)}`);

  // Unterminated: no NUL and the line stops inside a field (a reader relying on a NUL would run on).
  add('no NUL, unterminated', 'address only, no ";" at all (oopsed Zevenet\'s module)', '*10.66.0.1');
  add('no NUL, unterminated', '"=" address only, no ";"', '=10.66.0.1');
  add('no NUL, unterminated', 'address and ";" only', '*10.66.0.1;');
  add('no NUL, unterminated', 'ttl without its ";"', '*10.66.0.1;0');
  add('no NUL, unterminated', 'last stamp without its ";"', `*10.66.0.1;0;${J}`);
  add('no NUL, unterminated', 'last age without its ";"', '=10.66.0.1;0;5;6');
  add('no NUL, unterminated', 'the command byte alone', '*');
  add('no NUL, unterminated', 'the "=" byte alone', '=');
  add('no NUL, unterminated', 'a line of exactly the maximum length whose last field has no ";"', padTo(`*10.66.0.1;0;`, '1', RESTORE_LEN_MAX));

  // Bad addresses.
  for (const [a, why] of [
    ['300.0.0.1', 'an IPv4 byte over 255'],
    ['10.66.0', 'three IPv4 bytes'],
    ['10.66.0.1.5', 'five IPv4 bytes'],
    ['10.66.0.1x', 'junk after the address'],
    [' 10.66.0.1', 'a leading space'],
    ['10.66.0.1 ', 'a trailing space'],
    ['2001:db8::1::2', 'two "::"'],
    ['2001:db8:::1', 'three colons'],
    ['2001:db8::g', 'a non-hex IPv6 digit'],
    ['2001:db8::1%eth0', 'a zone id'],
    ['[2001:db8::1]', 'brackets'],
    ['10.66.0.1/32', 'a prefix length'],
    ['localhost', 'a host name'],
    ['1:2:3:4:5:6:7:8:9', 'nine IPv6 groups'],
    ['::ffff:300.1.1.1', 'a bad v4-mapped tail'],
    ['0x0a420001', 'hex'],
    ['0000:0000:0000:0000:0000:0000:0000:0000:0000', 'an address field over 45 characters'],
    ['=10.66.0.1', 'a second command byte'],
  ] as const) {
    add('bad address', why, `*${a};0;${J};`);
  }

  // Bad numbers.
  add('bad number', 'a negative ttl', `*10.66.0.1;-1;${J};`);
  add('bad number', 'a ttl with "+"', `*10.66.0.1;+5;${J};`);
  add('bad number', 'a hex ttl', `*10.66.0.1;0x10;${J};`);
  add('bad number', 'a ttl with a leading space', `*10.66.0.1; 5;${J};`);
  add('bad number', 'a ttl with a trailing space', `*10.66.0.1;5 ;${J};`);
  add('bad number', 'a ttl in exponent notation', `*10.66.0.1;1e2;${J};`);
  add('bad number', 'a negative stamp', '*10.66.0.1;0;-5;');
  add('bad number', 'a stamp with "+"', `*10.66.0.1;0;+${J};`);
  add('bad number', 'a fractional stamp', `*10.66.0.1;0;${J}.5;`);
  add('bad number', 'a stamp of 21 digits (leading zeros)', `*10.66.0.1;0;${J.padStart(21, '0')};`);
  add('bad number', 'a stamp of 2^64', '*10.66.0.1;0;18446744073709551616;');
  add('bad number', 'a stamp of 20 nines', '*10.66.0.1;0;99999999999999999999;');
  add('bad number', 'a negative age', '=10.66.0.1;0;-100;');
  add('bad number', 'an age of 2^64-1 ms', '=10.66.0.1;0;18446744073709551615;');
  add('bad number', 'an age reaching back before jiffies 0 (10^15 ms)', '=10.66.0.1;0;1000000000000000;');
  add('bad number', 'an age with a comma', '=10.66.0.1;0;1,5;');
  add('bad number', 'a stamp followed by a tab', `*10.66.0.1;0;${J}\t;`);

  // Empty fields.
  add('empty field', 'empty address', `*;0;${J};`);
  add('empty field', 'empty ttl', `*10.66.0.1;;${J};`);
  add('empty field', 'empty stamp', '*10.66.0.1;0;;');
  add('empty field', 'an empty field after the last stamp', `*10.66.0.1;0;${J};;`);
  add('empty field', 'an empty field between stamps', `*10.66.0.1;0;${J};;${J};`);
  add('empty field', 'no stamp at all', '*10.66.0.1;0;');
  add('empty field', 'no age at all', '=10.66.0.1;0;');
  add('empty field', 'every field empty', '*;;;');

  // TTL over 255.
  add('ttl over 255', 'ttl 256', `*10.66.0.1;256;${J};`);
  add('ttl over 255', 'ttl 1000', `=10.66.0.1;1000;5;`);
  add('ttl over 255', 'ttl 2^64', `*10.66.0.1;18446744073709551616;${J};`);

  // Too many stamps: more than XT_RECENT_MAX_NSTAMPS (256).
  add('too many stamps', '257 stamps', `*10.66.0.1;0;${stamps(257, J)}`);
  add('too many stamps', '257 ages', `=10.66.0.1;0;${stamps(257, '0')}`);
  add('too many stamps', '400 ages of one digit', `=10.66.0.1;0;${stamps(400, '0')}`);

  // Stamps in the future, or going back in time.
  add('future stamp', 'a stamp 10 s ahead', `*10.66.0.1;0;${FUT};`);
  add('future stamp', 'a good stamp, then one 10 s ahead', `*10.66.0.1;0;${J};${FUT};`);
  add('future stamp', 'the largest unsigned long', '*10.66.0.1;0;18446744073709551615;');
  add('out of order', 'stamps going back in time', `*10.66.0.1;0;${J};${now - 2000};`);
  add('out of order', 'ages growing', '=10.66.0.1;0;10;20;');

  // Stray bytes around a valid line.
  add('stray bytes', 'a NUL then junk after the line', Buffer.from(`*10.66.0.1;0;${J};\0X`, 'latin1'));
  add('stray bytes', 'a NUL inside the ttl', Buffer.from(`*10.66.0.1;0\0;${J};`, 'latin1'));
  add('stray bytes', 'two newlines', `*10.66.0.1;0;${J};\n\n`);
  add('stray bytes', 'two NULs', Buffer.from(`*10.66.0.1;0;${J};\0\0`, 'latin1'));
  add('stray bytes', 'a NUL then a newline (newline first is the order taken)', Buffer.from(`*10.66.0.1;0;${J};\0\n`, 'latin1'));
  add('stray bytes', 'a trailing space', `*10.66.0.1;0;${J}; `);
  add('stray bytes', 'CR LF', `*10.66.0.1;0;${J};\r\n`);
  add('stray bytes', 'two lines in one write', `*10.66.0.1;0;${J};\n*10.66.0.2;0;${J};`);
  return out;
}

/** `head` followed by repetitions of `unit`, cut to exactly `len` bytes. */
function padTo(head: string, unit: string, len: number): string {
  let s = head;
  while (s.length < len) s += unit;
  return s.slice(0, len);
}

/**
 * One step of the upstream command sequence: the bytes of one write(2), or `second` for a second write
 * on the descriptor of the previous step (the strict-protocol ESPIPE).
 */
export interface UpstreamStep {
  readonly what: string;
  readonly data: Buffer;
  readonly second?: boolean;
}

export function upstreamSteps(): UpstreamStep[] {
  const s = (what: string, data: string, second = false): UpstreamStep => ({ what, data: Buffer.from(data, 'latin1'), second });
  return [
    s('add', '+10.0.0.1'),
    s('add again with a newline: a second hit', '+10.0.0.1\n'),
    s('add another', '+10.0.0.2\n'),
    s('add IPv6', '+2001:db8::1'),
    s('add v4-mapped IPv6', '+::ffff:10.0.0.3'),
    s('remove', '-10.0.0.2'),
    s('remove an absent address', '-10.0.0.99'),
    s('byte over 255', '+300.0.0.1'),
    s('three bytes', '+10.0.0'),
    s('"+" alone', '+'),
    s('"-" alone', '-'),
    s('empty write', ''),
    s('unknown command', 'x10.0.0.1'),
    s('trailing space', '+10.0.0.4 '),
    s('leading space', '+ 10.0.0.6'),
    s('NUL then junk', '+10.0.0.8\0junk'),
    s('address with a port', '+1.2.3.4:5'),
    s('a long write (truncated to 47 bytes upstream)', `+10.0.0.5\n${'A'.repeat(60)}`),
    s('a long IPv6 write', `+2001:db8:0:0:0:0:0:7${' '.repeat(50)}`),
    s('add before a second write', '+10.0.0.9'),
    s('second write on the same descriptor', '+10.0.0.10', true),
    s('flush', '/'),
    s('add after the flush', '+10.0.0.7'),
    s('flush with junk after "/"', '/garbage'),
    s('add to be left over', '+10.0.0.11'),
  ];
}
