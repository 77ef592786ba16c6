// The main config of a surealived run in tests: every file under one temporary directory, the control
// port on an ephemeral port, short start-up spreading.

import { join } from 'node:path';
import { mainConfigWith, type MainConfig } from '../../common/main-config.js';

export function testMainConfig(dir: string, extra: Readonly<Record<string, string>> = {}): MainConfig {
  return mainConfigWith({
    listen_port: '0',
    startup_delay_ms: '100',
    loop_interval_ms: '50',
    lock_sync_file: join(dir, 'ipvsfull.lock'),
    full_sync_file: join(dir, 'ipvsfull.cfg'),
    full_reload_file: join(dir, 'ipvsfull.reload'),
    diff_sync_dir: join(dir, 'diffs'),
    offline_dump: join(dir, 'offline.dump'),
    override_dump: join(dir, 'override.dump'),
    stats_dump: join(dir, 'stats.dump'),
    notify_dump: join(dir, 'notify.dump'),
    stats_dir: join(dir, 'stats'),
    ...extra,
  });
}
