#!/usr/bin/env node
/**
 * The installed `sc-remediator` command: decides first (loading nothing heavy) whether the work runs
 * in this process or in one started with a bounded heap or a CA bundle (launch.ts), then runs it.
 */
import { caBundleFromArgs, relaunch, relaunchFor } from './launch';
import type * as Main from './main';

const args = process.argv.slice(2);
const plan = relaunchFor({
  execArgv: process.execArgv,
  script: process.argv.slice(1),
  env: process.env,
  caBundle: caBundleFromArgs(args),
  boundHeap: true,
});
if (plan) relaunch(plan);
// Loaded only now, so a process that is about to be replaced never loads the SDKs.
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('./main') as typeof Main).runFromTerminal(args);
