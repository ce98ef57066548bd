/**
 * Hostile requests for every route of both APIs (Ganymede's and a gateway's): wrong types, missing and unknown
 * fields, bodies past the 64 KiB limit, prototype-poisoning keys, invalid UTF-8, wrong content types, absurd
 * numbers, very long strings, SQL-looking strings, bad UUIDs in bodies and paths, malformed URLs.
 * Each carries a token that would let an otherwise valid request through, so what refuses it is the input.
 * `hostile-input.test.ts` sends each and expects exactly this status with the contract's error body.
 */
import type { ErrorCode } from '@ganymede/contracts';

export interface HostileContext {
  /** Authorization headers: each the right kind for the routes it is used on. */
  auth: {
    admin: Record<string, string>;
    /** A user of `freeOrganization` (which has no allocation; a free gateway waits). */
    user: Record<string, string>;
    /** Gateway A, whose process `instanceA` holds `allocationA`. */
    gatewayA: Record<string, string>;
    /** A's allocation's organization token. */
    orgA: Record<string, string>;
    /** Ganymede's genuine notice to the gateway under test for `allocationA`, and for UNKNOWN. */
    noticeA: Record<string, string>;
    noticeUnknown: Record<string, string>;
  };
  /** A's allocation, its process, its organization and gateway; an organization nobody serves. */
  ids: { allocationA: string; instanceA: string; organizationA: string; gatewayA: string; freeOrganization: string };
}

export interface HostileRequest {
  api: 'ganymede' | 'gateway';
  /** The contract route it aims at. */
  route: string;
  name: string;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  status: number;
  /** The error code expected, when the case is about one. */
  error?: ErrorCode;
}

const JSON_TYPE = { 'content-type': 'application/json' };
export const SQL = "'; DROP TABLE allocations; --";
const LONG = 'x'.repeat(60_000); // long, but under the body limit
const OVERSIZE = 'x'.repeat(70 * 1024); // past the 64 KiB body limit
const INVALID_UTF8 = Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xff, 0xfe]);
const TWO_POW_53 = '9007199254740992';
export const UNKNOWN = '0f0e0d0c-0b0a-4908-8706-050403020100'; // a well-formed uuid nothing has

/** `prefix`, invalid UTF-8 bytes, `suffix`. */
const withInvalidUtf8 = (prefix: string, suffix: string) => Buffer.concat([Buffer.from(prefix), INVALID_UTF8, Buffer.from(suffix)]);
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

export function hostileCorpus(ctx: HostileContext): HostileRequest[] {
  const { auth, ids } = ctx;
  const cases: HostileRequest[] = [];
  const add = (
    api: HostileRequest['api'],
    route: string,
    method: HostileRequest['method'],
    path: string,
    headers: Record<string, string>,
    list: [name: string, body: string | Buffer | undefined, status: number, error?: ErrorCode, extraHeaders?: Record<string, string>][],
  ) => {
    for (const [name, body, status, error, extraHeaders] of list) {
      cases.push({
        api,
        route,
        name,
        method,
        path,
        headers: { ...headers, ...(body === undefined ? {} : JSON_TYPE), ...extraHeaders },
        body,
        status,
        error,
      });
    }
  };
  const json = (v: unknown) => JSON.stringify(v);

  // Ganymede: POST /gateway/start (user token)
  add('ganymede', 'start', 'POST', '/gateway/start', auth.user, [
    ['organization_id SQL-looking', json({ organization_id: SQL }), 400, 'bad_request'],
    ['organization_id 1e308', '{"organization_id":1e308}', 400, 'bad_request'],
    ['organization_id a 60 000-character string', json({ organization_id: LONG }), 400, 'bad_request'],
    ['organization_id with invalid UTF-8 bytes', withInvalidUtf8('{"organization_id":"', '"}'), 400, 'bad_request'],
    ['a __proto__ key', `{"__proto__":{"admin":true},"organization_id":"${ids.freeOrganization}"}`, 400, 'bad_request'],
    [
      'a constructor.prototype key',
      `{"constructor":{"prototype":{"admin":true}},"organization_id":"${ids.freeOrganization}"}`,
      400,
      'bad_request',
    ],
    ['a body past 64 KiB', json({ organization_id: ids.freeOrganization, pad: OVERSIZE }), 413, 'payload_too_large'],
    ['text/html', `<p>${ids.freeOrganization}</p>`, 415, 'unsupported_media_type', { 'content-type': 'text/html' }],
    ['10 000 nested arrays', `{"organization_id":${nested(10_000)}}`, 400, 'bad_request'],
    ['the body JSON-encoded twice', json(json({ organization_id: ids.freeOrganization })), 400, 'bad_request'],
  ]);

  // POST /gateway/config (gateway token)
  add('ganymede', 'config', 'POST', '/gateway/config', auth.gatewayA, [
    ['an unknown SQL-looking key', json({ [SQL]: 1 }), 400, 'bad_request'],
    ['a __proto__ key', '{"__proto__":{"polluted":true}}', 400, 'bad_request'],
    ['multipart/form-data', '--x\r\n\r\n--x--', 415, 'unsupported_media_type', { 'content-type': 'multipart/form-data; boundary=x' }],
    ['invalid UTF-8 bytes for a body', INVALID_UTF8, 400, 'bad_request'],
    ['a body past 64 KiB', json({ pad: OVERSIZE }), 413, 'payload_too_large'],
  ]);

  // POST /gateway/ready (gateway token)
  add('ganymede', 'ready', 'POST', '/gateway/ready', auth.gatewayA, [
    ['allocation_id SQL-looking', json({ allocation_id: SQL, instance_id: ids.instanceA }), 400, 'bad_request'],
    ['allocation_id with a NUL', json({ allocation_id: `${ids.allocationA}\u0000`, instance_id: ids.instanceA }), 400, 'bad_request'],
    ['instance_id "NaN"', json({ allocation_id: ids.allocationA, instance_id: 'NaN' }), 400, 'bad_request'],
    ['allocation_id true', json({ allocation_id: true }), 400, 'bad_request'],
    ['allocation_id 2**53', `{"allocation_id":${TWO_POW_53}}`, 400, 'bad_request'],
    ['allocation_id with invalid UTF-8 bytes', withInvalidUtf8('{"allocation_id":"', '"}'), 400, 'bad_request'],
    ['an allocation that does not exist', json({ allocation_id: UNKNOWN, instance_id: ids.instanceA }), 404, 'allocation_not_found'],
    ['a constructor.prototype key', `{"constructor":{"prototype":{"x":1}},"allocation_id":null}`, 400, 'bad_request'],
  ]);

  // POST /gateway/reclaim (gateway token)
  add('ganymede', 'reclaim', 'POST', '/gateway/reclaim', auth.gatewayA, [
    ['instance_id SQL-looking', json({ instance_id: SQL }), 400, 'bad_request'],
    ['instance_id with a NUL', json({ instance_id: `${ids.instanceA}\u0000` }), 400, 'bad_request'],
    ['instance_id "NaN"', json({ instance_id: 'NaN' }), 400, 'bad_request'],
    ['instance_id 2**53', `{"instance_id":${TWO_POW_53}}`, 400, 'bad_request'],
    ['instance_id with invalid UTF-8 bytes', withInvalidUtf8('{"instance_id":"', '"}'), 400, 'bad_request'],
    [
      'an allocation_id besides (the gateway holds it: never named)',
      json({ instance_id: ids.instanceA, allocation_id: ids.allocationA }),
      400,
      'bad_request',
    ],
    ['a __proto__ key', `{"__proto__":{"polluted":true},"instance_id":"${ids.instanceA}"}`, 400, 'bad_request'],
    ['a body past 64 KiB', json({ instance_id: ids.instanceA, pad: OVERSIZE }), 413, 'payload_too_large'],
    ['text/plain', ids.instanceA, 415, 'unsupported_media_type', { 'content-type': 'text/plain' }],
  ]);

  // POST /gateway/lease (gateway token)
  const lease = (over: Record<string, unknown>) => json({ instance_id: ids.instanceA, allocation_id: ids.allocationA, epoch: 1, ...over });
  add('ganymede', 'lease', 'POST', '/gateway/lease', auth.gatewayA, [
    ['instance_id SQL-looking', lease({ instance_id: SQL }), 400, 'bad_request'],
    ['epoch 1e308', lease({}).replace('"epoch":1', '"epoch":1e308'), 400, 'bad_request'],
    ['epoch -1', lease({ epoch: -1 }), 400, 'bad_request'],
    ['epoch 2**53', lease({}).replace('"epoch":1', `"epoch":${TWO_POW_53}`), 400, 'bad_request'],
    ['epoch "NaN"', lease({ epoch: 'NaN' }), 400, 'bad_request'],
    ['epoch NaN (not JSON)', lease({}).replace('"epoch":1', '"epoch":NaN'), 400, 'bad_request'],
    ['epoch 1e999 (Infinity)', lease({}).replace('"epoch":1', '"epoch":1e999'), 400, 'bad_request'],
    ['allocation_id an array of it', lease({ allocation_id: [ids.allocationA] }), 400, 'bad_request'],
    ['a nested __proto__ key', `{"x":{"__proto__":{"y":1}},${lease({}).slice(1)}`, 400, 'bad_request'],
    ['an allocation that does not exist', lease({ allocation_id: UNKNOWN }), 409, 'allocation_ended'],
    ['an instance that is not the current one', lease({ instance_id: UNKNOWN }), 409, 'superseded'],
    ['an epoch the allocation is not at (int4 max)', lease({ epoch: 2_147_483_647 }), 409, 'stale_epoch'],
    ['application/json-patch+json', lease({}), 415, 'unsupported_media_type', { 'content-type': 'application/json-patch+json' }],
  ]);

  // POST /gateway/stop (organization token)
  add('ganymede', 'stop', 'POST', '/gateway/stop', auth.orgA, [
    ['reason SQL-looking', json({ reason: SQL }), 400, 'bad_request'],
    ['reason upper-case', json({ reason: 'STOP' }), 400, 'bad_request'],
    ['epoch 1e308', '{"reason":"stop","epoch":1e308}', 400, 'bad_request'],
    ['epoch "1"', json({ reason: 'stop', epoch: '1' }), 400, 'bad_request'],
    ['allocation_id SQL-looking', json({ reason: 'stop', allocation_id: SQL }), 400, 'bad_request'],
    ['reason with invalid UTF-8 bytes', withInvalidUtf8('{"reason":"st', 'op"}'), 400, 'bad_request'],
    ['a body past 64 KiB', json({ reason: 'stop', pad: OVERSIZE }), 413, 'payload_too_large'],
    ['naming an allocation the token is not bound to', json({ reason: 'stop', allocation_id: UNKNOWN }), 403, 'forbidden'],
    ['an epoch the allocation is not at (int4 max)', json({ reason: 'stop', epoch: 2_147_483_647 }), 409, 'stale_epoch'],
  ]);

  // POST /gateway/restart (organization token)
  add('ganymede', 'restart', 'POST', '/gateway/restart', auth.orgA, [
    ['grace_seconds 1e308', '{"reason":"reload","grace_seconds":1e308}', 400, 'bad_request'],
    ['grace_seconds -1', json({ reason: 'reload', grace_seconds: -1 }), 400, 'bad_request'],
    ['grace_seconds 2**53', `{"reason":"reload","grace_seconds":${TWO_POW_53}}`, 400, 'bad_request'],
    ['grace_seconds "NaN"', json({ reason: 'reload', grace_seconds: 'NaN' }), 400, 'bad_request'],
    ['reason a 60 000-character string', json({ reason: LONG }), 400, 'bad_request'],
    ['a constructor.prototype key', '{"constructor":{"prototype":{"x":1}},"reason":"reload"}', 400, 'bad_request'],
    ['text/plain', json({ reason: 'reload' }), 415, 'unsupported_media_type', { 'content-type': 'text/plain' }],
    ['an epoch the allocation is not at (int4 max)', json({ reason: 'reload', epoch: 2_147_483_647 }), 409, 'stale_epoch'],
  ]);

  // POST /gateway/restart/withdraw (organization token); A is active at epoch 1
  add('ganymede', 'withdrawRestart', 'POST', '/gateway/restart/withdraw', auth.orgA, [
    ['no epoch (a withdrawal is always fenced)', json({}), 400, 'bad_request'],
    ['epoch 1e308', '{"epoch":1e308}', 400, 'bad_request'],
    ['epoch 2**53', `{"epoch":${TWO_POW_53}}`, 400, 'bad_request'],
    ['epoch "1"', json({ epoch: '1' }), 400, 'bad_request'],
    ['epoch SQL-looking', json({ epoch: SQL }), 400, 'bad_request'],
    ['allocation_id SQL-looking', json({ epoch: 1, allocation_id: SQL }), 400, 'bad_request'],
    ['a reason (none is taken)', json({ epoch: 1, reason: 'reload' }), 400, 'bad_request'],
    ['a __proto__ key', '{"__proto__":{"x":1},"epoch":1}', 400, 'bad_request'],
    ['epoch with invalid UTF-8 bytes', withInvalidUtf8('{"epoch":"', '"}'), 400, 'bad_request'],
    ['a body past 64 KiB', json({ epoch: 1, pad: OVERSIZE }), 413, 'payload_too_large'],
    ['naming an allocation the token is not bound to', json({ epoch: 1, allocation_id: UNKNOWN }), 403, 'forbidden'],
    ['an epoch the allocation is not at (int4 max)', json({ epoch: 2_147_483_647 }), 409, 'stale_epoch'],
  ]);

  // POST /gateway/data/push (organization token): A's state. Unknown top-level keys are dropped, not refused (the
  // platform's bodies), so none is here; the body limit is the snapshot limit (16 MiB), so no oversize case either.
  const push = (over: Record<string, unknown>) =>
    json({ organization_id: ids.organizationA, gateway_id: ids.gatewayA, timestamp: 1, data: { doc: 'A' }, epoch: 1, ...over });
  add('ganymede', 'dataPush', 'POST', '/gateway/data/push', auth.orgA, [
    ['organization_id SQL-looking', push({ organization_id: SQL }), 400, 'bad_request'],
    [
      'gateway_id with invalid UTF-8 bytes',
      withInvalidUtf8(`{"organization_id":"${ids.organizationA}","timestamp":1,"data":{},"gateway_id":"`, '"}'),
      400,
      'bad_request',
    ],
    ['no data', push({ data: undefined }), 400, 'bad_request'],
    ['data 10 000 nested arrays', push({}).replace('{"doc":"A"}', nested(10_000)), 400, 'bad_request'],
    ['data 600 nested objects', push({}).replace('{"doc":"A"}', '{"a":'.repeat(600) + '1' + '}'.repeat(600)), 400, 'bad_request'],
    ['a __proto__ key in data', push({}).replace('{"doc":"A"}', '{"__proto__":{"admin":true}}'), 400, 'bad_request'],
    ['a constructor.prototype key in data', push({}).replace('{"doc":"A"}', '{"constructor":{"prototype":{"x":1}}}'), 400, 'bad_request'],
    ['epoch 1e308', push({}).replace('"epoch":1', '"epoch":1e308'), 400, 'bad_request'],
    ['base_revision -1', push({ base_revision: -1 }), 400, 'bad_request'],
    ['base_revision 2**53', push({}).replace('"epoch":1', `"epoch":1,"base_revision":${TWO_POW_53}`), 400, 'bad_request'],
    ['base_revision "NaN"', push({ base_revision: 'NaN' }), 400, 'bad_request'],
    ['timestamp a 60 000-character string', push({ timestamp: LONG }), 400, 'bad_request'],
    ['timestamp 1e999 (Infinity)', push({}).replace('"timestamp":1', '"timestamp":1e999'), 400, 'bad_request'],
    ['the body JSON-encoded twice', json(push({})), 400, 'bad_request'],
    ['text/plain', push({}), 415, 'unsupported_media_type', { 'content-type': 'text/plain' }],
    ['naming an organization the token is not bound to', push({ organization_id: UNKNOWN }), 403, 'forbidden'],
    ['naming a gateway the token is not bound to', push({ gateway_id: UNKNOWN }), 403, 'forbidden'],
    ['an epoch the allocation is not at (int4 max)', push({ epoch: 2_147_483_647 }), 409, 'stale_epoch'],
    ['a base_revision past the latest (none yet)', push({ base_revision: 7 }), 409, 'revision_conflict'],
  ]);

  // POST /gateway/data/pull (organization token)
  add('ganymede', 'dataPull', 'POST', '/gateway/data/pull', auth.orgA, [
    ['organization_id SQL-looking', json({ organization_id: SQL }), 400, 'bad_request'],
    ['organization_id an array of it', json({ organization_id: [ids.organizationA] }), 400, 'bad_request'],
    ['gateway_id 1e308', `{"organization_id":"${ids.organizationA}","gateway_id":1e308}`, 400, 'bad_request'],
    ['a nested __proto__ key', `{"x":{"__proto__":{"y":1}},"organization_id":"${ids.organizationA}"}`, 400, 'bad_request'],
    ['a body past 64 KiB', json({ organization_id: ids.organizationA, pad: OVERSIZE }), 413, 'payload_too_large'],
    ['naming an organization the token is not bound to', json({ organization_id: UNKNOWN }), 403, 'forbidden'],
    ['nothing was pushed yet', json({ organization_id: ids.organizationA }), 404, 'not_found'],
  ]);

  // POST /admin/gateways (admin token)
  add('ganymede', 'addGateway', 'POST', '/admin/gateways', auth.admin, [
    ['url SQL-looking', json({ url: SQL }), 400, 'bad_request'],
    ['url file://', json({ url: 'file:///etc/passwd' }), 400, 'bad_request'],
    ['url a 60 000-character string', json({ url: `http://127.0.0.1/${LONG}` }), 400, 'bad_request'],
    ['url with invalid UTF-8 bytes in its host', withInvalidUtf8('{"url":"http://', '/"}'), 400, 'bad_request'],
    ['url 1e308', '{"url":1e308}', 400, 'bad_request'],
    ['url null', json({ url: null }), 400, 'bad_request'],
    ['a __proto__ key', '{"__proto__":{"x":1},"url":"http://127.0.0.1:4999"}', 400, 'bad_request'],
    [
      'application/x-www-form-urlencoded',
      'url=http%3A%2F%2F127.0.0.1%3A4999',
      415,
      'unsupported_media_type',
      {
        'content-type': 'application/x-www-form-urlencoded',
      },
    ],
  ]);

  // GET /admin/status (admin token)
  add('ganymede', 'status', 'GET', '/admin/status', {}, [
    ['a SQL-looking bearer token', undefined, 401, 'unauthorized', { authorization: `Bearer ${SQL.replace(/ /g, '')}` }],
    ['an 8 KiB bearer token', undefined, 401, 'unauthorized', { authorization: `Bearer ${'a'.repeat(8192)}` }],
    [
      'Authorization without a scheme',
      undefined,
      401,
      'unauthorized',
      { authorization: auth.admin.authorization!.slice('Bearer '.length) },
    ],
  ]);
  add('ganymede', 'status', 'POST', '/admin/status', auth.admin, [['POST instead of GET', '{}', 404, 'not_found']]);

  // GET /admin/allocations/:allocation_id (admin token)
  const allocation = (param: string, status: number, error: ErrorCode, name: string) =>
    cases.push({
      api: 'ganymede',
      route: 'allocation',
      name,
      method: 'GET',
      path: `/admin/allocations/${param}`,
      headers: auth.admin,
      status,
      error,
    });
  allocation(encodeURIComponent(SQL), 400, 'bad_request', 'path SQL-looking');
  allocation('%ZZ', 400, 'bad_request', 'path with bad percent-encoding');
  allocation('%E0%A4%A', 400, 'bad_request', 'path with a truncated percent-encoded character');
  allocation('%C3%28', 400, 'bad_request', 'path with percent-encoded invalid UTF-8');
  allocation('a'.repeat(200), 400, 'bad_request', 'path a 200-character id');
  allocation('..%2F..%2Fadmin%2Fstatus', 400, 'bad_request', 'path traversal');
  allocation('NaN', 400, 'bad_request', 'path NaN');
  allocation(UNKNOWN, 404, 'allocation_not_found', 'path an allocation that does not exist');

  // GET /admin/events?after=&limit= (admin token): the dashboard's feed, its only query parameters
  const events = (query: string, name: string, status = 400, error: ErrorCode = 'bad_request', headers = auth.admin) =>
    cases.push({ api: 'ganymede', route: 'events', name, method: 'GET', path: `/admin/events?${query}`, headers, status, error });
  events(`after=${encodeURIComponent(SQL)}`, 'after SQL-looking');
  events('after=-1', 'after -1');
  events('after=1.5', 'after fractional');
  events('after=1e308', 'after 1e308');
  events('after=NaN', 'after NaN');
  events('after=Infinity', 'after Infinity');
  events(`after=${TWO_POW_53}`, 'after 2**53');
  events('after=0x10', 'after hexadecimal');
  events('after=1&after=2', 'after twice');
  events('after[]=1', 'after as an array');
  events('after[__proto__]=1', 'after as a __proto__ object');
  events(`after=${'9'.repeat(5000)}`, 'after 5 000 digits');
  events('after=%ZZ', 'after with bad percent-encoding');
  events('after=%C3%28', 'after percent-encoded invalid UTF-8');
  events('limit=0', 'limit 0');
  events('limit=501', 'limit over the page maximum');
  events('limit=', 'limit empty');
  events('limit=ten', 'limit a word');
  events('__proto__=1', 'an unknown __proto__ parameter');
  events('token=x', 'an unknown parameter');
  events('after=0', 'no token', 401, 'unauthorized', {});
  add('ganymede', 'events', 'POST', '/admin/events', auth.admin, [['POST instead of GET', '{}', 404, 'not_found']]);

  // The dashboard's static files (outside the contract, no query parameters): only their fixed paths, only GET
  add('ganymede', 'ui', 'POST', '/ui', {}, [['POST instead of GET', json({ token: 'x' }), 404, 'not_found']]);
  for (const [name, path] of [
    ['path traversal', '/ui/..%2F..%2Fpackage.json'],
    ['path traversal, encoded dots', '/ui/%2e%2e/%2e%2e/src/auth.ts'],
    ['a file beside the served ones', '/ui/../migrations/001_allocations.sql'],
    ['the script with a NUL', '/ui/dashboard.js%00.html'],
    ['a directory listing', '/ui/'],
  ] as const) {
    cases.push({ api: 'ganymede', route: 'ui', name, method: 'GET', path, headers: {}, status: 404, error: 'not_found' });
  }
  cases.push({
    api: 'ganymede',
    route: 'ui',
    name: 'with bad percent-encoding',
    method: 'GET',
    path: '/ui/%ZZ',
    headers: {},
    status: 400,
    error: 'bad_request',
  });

  // Health and the API's description (no token), metrics (admin token)
  for (const [route, path] of [
    ['healthz', '/healthz'],
    ['readyz', '/readyz'],
    ['openapi', '/openapi.json'],
  ] as const) {
    add('ganymede', route, 'POST', path, {}, [['POST instead of GET', '{}', 404, 'not_found']]);
    add('ganymede', route, 'GET', `${path}%ZZ`, {}, [['a bad percent-encoding after the path', undefined, 400, 'bad_request']]);
  }
  add('ganymede', 'metrics', 'GET', '/metrics', {}, [
    ['no Authorization (not opened by --metrics-open)', undefined, 401, 'unauthorized'],
    ['a SQL-looking bearer token', undefined, 401, 'unauthorized', { authorization: `Bearer ${SQL.replace(/ /g, '')}` }],
    ['a Basic credential', undefined, 401, 'unauthorized', { authorization: 'Basic YWRtaW46YWRtaW4=' }],
    ['a user token', undefined, 403, 'forbidden', auth.user],
    ["a gateway's token", undefined, 403, 'forbidden', auth.gatewayA],
  ]);
  add('ganymede', 'metrics', 'POST', '/metrics', auth.admin, [['POST instead of GET', '{}', 404, 'not_found']]);

  // The gateway's API (no tokens, but Ganymede's notice carries its proof; /metrics takes the gateway's own token)
  add('gateway', 'readyz', 'POST', '/readyz', {}, [['POST instead of GET', '{}', 404, 'not_found']]);
  add('gateway', 'metrics', 'GET', '/metrics', {}, [
    ['no Authorization', undefined, 401, 'unauthorized'],
    ["another gateway's token", undefined, 401, 'unauthorized', auth.gatewayA],
    ["Ganymede's notice token", undefined, 401, 'unauthorized', auth.noticeA],
    ['an 8 KiB bearer token', undefined, 401, 'unauthorized', { authorization: `Bearer ${'a'.repeat(8192)}` }],
  ]);
  add('gateway', 'healthz', 'POST', '/healthz', {}, [['POST instead of GET', '{}', 404, 'not_found']]);
  add('gateway', 'whoami', 'POST', '/whoami', {}, [['POST instead of GET', json({ allocation_id: ids.allocationA }), 404, 'not_found']]);
  add('gateway', 'whoami', 'GET', '/whoami%ZZ', {}, [['a bad percent-encoding after the path', undefined, 400, 'bad_request']]);
  const serve = (param: string, status: number, error: ErrorCode, name: string) =>
    cases.push({ api: 'gateway', route: 'serve', name, method: 'GET', path: `/orgs/${param}`, headers: {}, status, error });
  serve(encodeURIComponent(SQL), 400, 'bad_request', 'organization SQL-looking');
  serve('%ZZ', 400, 'bad_request', 'organization with bad percent-encoding');
  serve('%C3%28', 400, 'bad_request', 'organization percent-encoded invalid UTF-8');
  serve('b'.repeat(200), 400, 'bad_request', 'organization a 200-character id');
  serve('NaN', 400, 'bad_request', 'organization NaN');
  serve(UNKNOWN, 404, 'not_found', 'an organization this gateway does not serve');
  const echo = (param: string) => `/orgs/${param}/echo`;
  add('gateway', 'echo', 'POST', echo(ids.freeOrganization), {}, [
    ['data past 60 000 characters', json({ data: 'd'.repeat(60_001) }), 400, 'bad_request'],
    ['data a number', json({ data: 1e308 }), 400, 'bad_request'],
    ['an unknown field', json({ data: 'x', organization_id: ids.freeOrganization }), 400, 'bad_request'],
    ['a __proto__ key', '{"__proto__":{"x":1},"data":"x"}', 400, 'bad_request'],
    ['a body past 64 KiB', json({ data: 'x', pad: OVERSIZE }), 413, 'payload_too_large'],
    ['text/plain', json({ data: 'x' }), 415, 'unsupported_media_type', { 'content-type': 'text/plain' }],
    ['an organization this gateway does not serve', json({ data: 'x' }), 404, 'not_found'],
  ]);
  add('gateway', 'echo', 'POST', echo(encodeURIComponent(SQL)), {}, [
    ['organization SQL-looking', json({ data: 'x' }), 400, 'bad_request'],
  ]);
  add('gateway', 'allocated', 'POST', '/allocated', auth.noticeA, [
    ['allocation_id SQL-looking', json({ allocation_id: SQL }), 400, 'bad_request'],
    ['a __proto__ key', `{"__proto__":{"x":1},"allocation_id":"${ids.allocationA}"}`, 400, 'bad_request'],
    ['a constructor.prototype key', `{"constructor":{"prototype":{"x":1}},"allocation_id":"${ids.allocationA}"}`, 400, 'bad_request'],
    ['a body past 64 KiB', json({ allocation_id: ids.allocationA, pad: OVERSIZE }), 413, 'payload_too_large'],
    ['text/plain', json({ allocation_id: ids.allocationA }), 415, 'unsupported_media_type', { 'content-type': 'text/plain' }],
    ['allocation_id with invalid UTF-8 bytes', withInvalidUtf8('{"allocation_id":"', '"}'), 400, 'bad_request'],
    ['allocation_id 1e308', '{"allocation_id":1e308}', 400, 'bad_request'],
    ['allocation_id -1', json({ allocation_id: -1 }), 400, 'bad_request'],
    ['missing allocation_id, an unknown field', json({ organization_id: ids.freeOrganization }), 400, 'bad_request'],
    ['10 000 nested arrays', `{"allocation_id":${nested(10_000)}}`, 400, 'bad_request'],
    ['allocation_id a 60 000-character string', json({ allocation_id: LONG }), 400, 'bad_request'],
    // Well-formed and proven, but Ganymede holds no such allocation for this gateway: it asks, and refuses.
    ['an allocation that does not exist', json({ allocation_id: UNKNOWN }), 409, 'allocation_ended', auth.noticeUnknown],
    ["another gateway's allocation", json({ allocation_id: ids.allocationA }), 409, 'allocation_ended'],
    // Well-formed, without Ganymede's proof: refused before Ganymede is asked.
    ['a notice token for another allocation', json({ allocation_id: UNKNOWN }), 401, 'unauthorized'],
    ["a gateway's own token instead of a notice token", json({ allocation_id: ids.allocationA }), 401, 'unauthorized', auth.gatewayA],
    [
      'a notice token with its signature cut off',
      json({ allocation_id: ids.allocationA }),
      401,
      'unauthorized',
      {
        authorization: (auth.noticeA.authorization ?? '').replace(/\.[^.]*$/, '.'),
      },
    ],
  ]);
  add('gateway', 'allocated', 'POST', '/allocated', {}, [
    ['no notice token', json({ allocation_id: ids.allocationA }), 401, 'unauthorized'],
  ]);
  return cases;
}
