/**
 * `npm run test:faults [-- --rounds 14] [-- --json <file>]`: the fault campaign (bench/faultCampaign.ts)
 * at a chosen size; `npm test` runs it small (test/faults/campaign.test.ts). Prints the counters and,
 * with `--json`, writes them. Exits 1 when a counter that must be 0 is not.
 *
 *   --rounds N       rounds, each killing one run at one rotation phase (default 14: every phase twice)
 *   --connections N  connections of each round's tenant (default 12)
 *   --fault-rate R   probability per request and fault kind (default 0.04)
 *   --seed S         replays a campaign exactly (faults, tenants, kill points)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runCampaign, type CampaignOptions } from './faultCampaign';

function parseArgs(argv: string[]): CampaignOptions & { json?: string } {
  const o: CampaignOptions & { json?: string } = {
    rounds: 14,
    seed: 'faults',
    connections: 12,
    maxReruns: 8,
    faultRate: 0.04,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = (min: number, max: number): number => {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
        throw new Error(`${a}: a whole number from ${min} to ${max}`);
      return Number(v);
    };
    if (a === '--rounds' || a === '--runs') o.rounds = int(1, 500);
    else if (a === '--connections') o.connections = int(4, 400);
    else if (a === '--max-reruns') o.maxReruns = int(1, 50);
    else if (a === '--fault-rate') {
      const r = Number(value());
      if (!(r >= 0 && r <= 0.3)) throw new Error('--fault-rate: from 0 to 0.3');
      o.faultRate = r;
    } else if (a === '--seed') o.seed = value();
    else if (a === '--json') o.json = value();
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: npm run test:faults -- [--rounds 14] [--connections 12] [--fault-rate 0.04] [--max-reruns 8] [--seed faults] [--json <file>]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown argument '${a}' (see --help)`);
  }
  return o;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  process.stderr.write(
    `fault campaign: ${o.rounds} rounds of ${o.connections} connections, fault rate ${o.faultRate}, seed '${o.seed}'\n`,
  );
  const result = await runCampaign({ ...o, log: (line) => process.stderr.write(`  ${line}\n`) });
  const { details, ...counters } = result;
  const mustBeZero = [
    'secretsLost',
    'orphanCredentialsLeft',
    'connectionsLeftBroken',
    'secretLeaks',
    'duplicateRotations',
  ] as const;
  for (const [k, v] of Object.entries(counters))
    process.stdout.write(`${k.padEnd(24)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
  if (details.length > 0) process.stdout.write(`details:\n  ${details.join('\n  ')}\n`);
  if (o.json) {
    const path = resolve(o.json);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`wrote ${path}\n`);
  }
  const failed = mustBeZero.filter((k) => result[k] !== 0);
  if (failed.length > 0) process.stdout.write(`NOT ZERO: ${failed.join(', ')}\n`);
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`test:faults: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
