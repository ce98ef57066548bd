// The pool, live: polls /admin/status and /admin/events with the admin token kept in this tab's sessionStorage (sent
// in the Authorization header, never in a URL, so it reaches no access log). No framework: the DOM is built here.

const TOKEN_KEY = 'ganymede.admin_token';
const POLL_MS = 1000;
/** How long a gateway's row shows a transition that just happened (a reclaim is over in an instant). */
const FLASH_MS = 6000;
const FEED_KEPT = 50;

const $ = (id) => document.getElementById(id);
let cursor = 0;
let selected = null;
let timer = null;
/** gateway id → { kind, until } */
const flashes = new Map();

class Refused extends Error {}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) throw new Refused(`${res.status} ${body.error}: ${body.message}`);
  if (!res.ok) throw new Error(`${path} answered ${res.status} ${body.error ?? ''}`);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const short = (id) => (id ? id.slice(0, 8) : '–');
const time = (iso) => el('time', { datetime: iso, title: iso }, new Date(iso).toLocaleTimeString());
const pill = (kind, text = kind.replace(/_/g, ' ')) => el('span', { class: `pill ${kind}`, 'data-kind': kind }, text);

function leaseBar(age, leaseSeconds) {
  if (age === null) return '–';
  const share = Math.min(age / leaseSeconds, 1);
  const bar = el('span', { class: `bar${age > leaseSeconds ? ' lapsed' : share > 0.66 ? ' late' : ''}` }, el('span'));
  bar.firstChild.style.width = `${Math.round(share * 100)}%`;
  return el(
    'span',
    { class: 'lease', title: `renewed ${age.toFixed(1)} s ago; a lease lasts ${leaseSeconds} s` },
    bar,
    `${age.toFixed(1)} s`,
  );
}

function renderPool({ gateways, lease_seconds }) {
  const counts = { idle: 0, active: 0, restarting: 0 };
  const rows = gateways.map((g) => {
    counts[g.state] += 1;
    const flash = flashes.get(g.gateway_id);
    const state = el('td', {}, pill(g.state, g.ready ? g.state : `${g.state} (not ready)`));
    if (flash && flash.until > Date.now()) state.append(el('span', { class: 'flash' }, pill(flash.kind)));
    const row = el(
      'tr',
      {
        'data-gateway': g.gateway_id,
        'data-state': g.state,
        'data-epoch': String(g.epoch ?? ''),
        'data-allocation': g.allocation_id ?? '',
      },
      el('td', { class: 'mono', title: `${g.gateway_id}\n${g.url}` }, short(g.gateway_id)),
      state,
      el('td', { class: 'mono', title: g.organization_id ?? '' }, short(g.organization_id)),
      el('td', {}, String(g.epoch ?? '–')),
      el('td', {}, leaseBar(g.lease_age_seconds, lease_seconds)),
      el('td', {}, time(g.since)),
    );
    if (g.allocation_id === selected) row.classList.add('selected');
    if (g.allocation_id) row.addEventListener('click', () => select(g.allocation_id));
    return row;
  });
  $('pool').tBodies[0].replaceChildren(...rows);
  $('counts').replaceChildren(
    ...Object.entries(counts).map(([state, n]) =>
      el('div', { class: `count ${state}`, 'data-count': state }, el('b', {}, String(n)), state),
    ),
  );
}

function renderEvents(events) {
  const feed = $('feed');
  for (const e of events) {
    flashes.set(e.gateway_id, { kind: e.kind, until: Date.now() + FLASH_MS });
    const item = el(
      'li',
      { 'data-kind': e.kind, 'data-gateway': e.gateway_id },
      time(e.at),
      pill(e.kind),
      el('span', { class: 'mono' }, `gateway ${short(e.gateway_id)} · epoch ${e.epoch}${e.reason ? ` · ${e.reason}` : ''}`),
    );
    item.addEventListener('click', () => select(e.allocation_id));
    feed.prepend(item);
  }
  while (feed.children.length > FEED_KEPT) feed.lastChild.remove();
}

async function select(allocationId) {
  selected = allocationId;
  const a = await api(`/admin/allocations/${encodeURIComponent(allocationId)}`);
  $('timeline').replaceChildren(
    el(
      'p',
      { class: 'mono' },
      `allocation ${a.allocation_id} · organization ${short(a.organization_id)} · `,
      pill(a.state),
      ` · epoch ${a.epoch}`,
    ),
    el(
      'ol',
      { 'data-allocation': a.allocation_id },
      ...a.events.map((e) =>
        el('li', { 'data-kind': e.kind }, pill(e.kind), ` epoch ${e.epoch}${e.reason ? ` · ${e.reason}` : ''} `, time(e.at)),
      ),
    ),
  );
}

function connection(ok, text) {
  const c = $('connection');
  c.hidden = false;
  c.classList.toggle('down', !ok);
  c.textContent = text;
}

/** One tick: the pool, then every event since the cursor (page by page when far behind). */
async function tick() {
  try {
    renderPool(await api('/admin/status'));
    for (;;) {
      const page = await api(`/admin/events?after=${cursor}&limit=500`);
      cursor = page.last_id;
      renderEvents(page.events);
      if (page.events.length < 500) break;
    }
    if (selected) await select(selected);
    connection(true, `live · ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    if (error instanceof Refused) return logout(`The server refused the token (${error.message}).`);
    connection(false, `cannot reach Ganymede: ${error.message}; retrying`);
  }
  timer = setTimeout(tick, POLL_MS);
}

function show(loggedIn) {
  $('login').hidden = loggedIn;
  $('dashboard').hidden = !loggedIn;
  $('logout').hidden = !loggedIn;
}

function logout(message = '') {
  clearTimeout(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  $('connection').hidden = true;
  $('login-error').textContent = message;
  show(false);
}

function start() {
  show(true);
  void tick();
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  $('token').value = '';
  start();
});
$('logout').addEventListener('click', () => logout());

if (sessionStorage.getItem(TOKEN_KEY)) start();
else show(false);
