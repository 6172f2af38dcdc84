/**
 * Jest set-up (every test file): ends the engine threads a file started (src/engineThread), which
 * the Functions app keeps for the life of its process, so no test file leaves one running.
 */
import { closeEngineThreads } from '../../src/engineThread/engineThread';

afterAll(() => closeEngineThreads());
