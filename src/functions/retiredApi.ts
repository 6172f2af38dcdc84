/**
 * The HTTP API's retired connections (JSON; see `./http` for access, validation and error answers):
 *
 *   GET  /api/retired                                       retired connections' recorded definitions (?limit=1..100)
 */
import { app } from '@azure/functions';
import { services } from './context';
import { apiHandler, checkQuery, json, limitQuery, ROLES } from './http';

/** `GET /api/retired[?limit=n]`: what the run ledger kept of retired connections (no secret). */
export const listRetired = apiHandler(ROLES.reader, async (request) => {
  checkQuery(request, ['limit']);
  const limit = limitQuery(request, 50);
  const retired = await (await services().ledger()).listRetired(limit);
  return json(200, { retired });
});

app.http('listRetired', { route: 'retired', methods: ['GET'], authLevel: 'function', handler: listRetired });
