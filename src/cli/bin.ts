#!/usr/bin/env node
/**
 * The installed `sc-remediator` command: decides first (loading nothing heavy) whether the work runs
 * in this process or in one started with a bounded heap or a CA bundle (launch.ts), then runs it.
 */
import { relaunchIfNeeded } from './launch';
import type * as Main from './main';

relaunchIfNeeded({ boundHeap: true });
// Loaded only now, so a process that is about to be replaced never loads the SDKs.
// eslint-disable-next-line @typescript-eslint/no-require-imports
(require('./main') as typeof Main).runFromTerminal(process.argv.slice(2));
