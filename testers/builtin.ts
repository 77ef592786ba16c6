// The testers shipped with surealived, registered by name. Third-party testers are added by the
// config loader (see testers/registry.ts).

import type { Tester } from './contract.js';
import { tcpTester } from './tcp.js';
import { httpTester } from './http.js';
import { dnsTester } from './dns.js';
import { execTester } from './exec.js';
import { noTestTester } from './no-test.js';
import { smtpTester } from './smtp.js';
import { udpTester } from './udp.js';
import { pingTester } from './ping.js';

export const BUILTIN_TESTERS: readonly Tester[] = [
  tcpTester as Tester,
  httpTester as Tester,
  dnsTester as Tester,
  execTester as Tester,
  noTestTester as Tester,
  smtpTester as Tester,
  udpTester as Tester,
  pingTester as Tester,
];
