#!/usr/bin/env node
// gen.js -- deterministic JSON-lines touchpoints for the peers benchmark (bench/peers/README.md).
//
// Usage: node gen.js OUT_FILE EVENTS [SEED]
//
// Writes EVENTS lines in funnelstream's JSON event format (SPEC §1: customer_id, ts, event,
// channel, segment, optional campaign, value on purchases), and OUT_FILE.expected with the
// 4 stage counts that a strict funnel product_view -> add_to_cart -> checkout_start -> purchase
// must find ("r0 r1 r2 r3", computed here while writing, independently of the engines).
//
// Shape of the data (the properties the agreement argument in README.md relies on):
// - ts = START + line index (ms): strictly increasing in file order, no two events of the
//   file share a timestamp, so order by ts = file order for every engine; the whole file spans
//   EVENTS ms (10M events: 2.8 h), far less than the 1-day conversion window.
// - Each customer walks the funnel at most once: after its purchase a customer never sends a
//   product_view again (stage 0), so no customer starts a second journey.
// - Customers act in interleaved sessions (a pool of active customers), with noise events in
//   no stage, repeated events of stages already reached (touches), and stray events of a stage
//   more than one above the customer's level (a cart or purchase before any view, a checkout
//   before the cart) which a strict funnel must ignore -- so a query that only looks at which
//   event types a customer has, or at the first time of each, gets the wrong answer.
'use strict';
const fs = require('fs');

const [out, eventsArg, seedArg] = process.argv.slice(2);
if (!out || !eventsArg) {
  process.stderr.write('usage: node gen.js OUT_FILE EVENTS [SEED]\n');
  process.exit(2);
}
const EVENTS = Number(eventsArg);
let seed = Number(seedArg || 42) >>> 0;
const START = 1732280400000; // 2024-11-22T13:00:00Z, funnelstream generate's default
const POOL = 50000;          // customers active at once

// mulberry32: small, fast, deterministic.
function rnd() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const below = (n) => Math.floor(rnd() * n);
const pick = (a) => a[below(a.length)];

const STAGES = ['product_view', 'add_to_cart', 'checkout_start', 'purchase'];
const NOISE = ['page_view', 'search', 'email_open', 'login', 'compare', 'ad_impression',
  'social_view', 'newsletter_signup'];
const CHANNELS = ['search', 'social', 'email', 'display', 'referral', 'direct', 'store', 'app',
  'partner'];
const CAMPAIGNS = ['spring_sale', 'black_friday', 'brand_search', 'retarget_01', 'webinar_q4',
  'newsletter_w47', 'partner_push', 'launch_2024'];
// P(reach stage k+1 | reached stage k); P(reach stage 0) below.
const ADVANCE = [0.55, 0.6, 0.7];

// A customer's plan: the list of stage indexes (-1 = noise) it will send, in order.
function plan() {
  const p = [];
  const noise = (max) => { for (let n = below(max + 1); n > 0; n--) p.push(-1); };
  let depth = -1; // last stage this customer will reach
  if (rnd() < 0.8) {
    depth = 0;
    while (depth < 3 && rnd() < ADVANCE[depth]) depth++;
  }
  noise(3);
  if (rnd() < 0.08) p.push(1 + below(3)); // stray: a later stage before any view
  for (let k = 0; k <= depth; k++) {
    p.push(k);
    noise(2);
    if (k < 3 && rnd() < 0.3) p.push(below(k + 1));      // touch: a stage already reached
    if (k < 2 && rnd() < 0.06) p.push(k + 2 + below(2 - k)); // stray: skips stage k+1
    if (k === 0 && rnd() < 0.2) p.push(0);                // views a second product
  }
  noise(2);
  if (depth === 3) {
    if (rnd() < 0.1) p.push(1 + below(3)); // after the purchase: never a view again
  } else if (depth >= 0) {
    if (rnd() < 0.3) p.push(below(depth + 1));                       // touch
    if (depth < 2 && rnd() < 0.1) p.push(depth + 2 + below(2 - depth)); // stray
  }
  return p;
}

const pool = new Array(POOL);
let nextCustomer = 0;
function newCustomer() {
  const b2b = rnd() < 0.2;
  return {
    id: (b2b ? 'acct-' : 'c') + nextCustomer++,
    segment: b2b ? 'b2b' : 'b2c',
    channel: below(CHANNELS.length),
    plan: plan(),
    i: 0,
    level: 0, // stages reached so far under strict rules (what the engines must find)
  };
}
for (let i = 0; i < POOL; i++) pool[i] = newCustomer();

const reached = [0, 0, 0, 0];
const fd = fs.openSync(out + '.tmp', 'w');
let buf = '';
for (let e = 0; e < EVENTS; e++) {
  const slot = below(POOL);
  let c = pool[slot];
  while (c.i >= c.plan.length) c = pool[slot] = newCustomer(); // empty plans send nothing
  const stage = c.plan[c.i++];
  if (stage >= 0 && stage === c.level) reached[c.level++]++; // strict: only the next stage
  const event = stage < 0 ? pick(NOISE) : STAGES[stage];
  const channel = rnd() < 0.6 ? CHANNELS[c.channel] : pick(CHANNELS);
  let line = `{"customer_id":"${c.id}","ts":${START + e},"event":"${event}","channel":"${channel}","segment":"${c.segment}"`;
  if (rnd() < 0.6) line += `,"campaign":"${pick(CAMPAIGNS)}"`;
  if (stage === 3) line += `,"value":${(5 + below(49500) / 100).toFixed(2)}`;
  buf += line + '}\n';
  if (buf.length > (1 << 20)) {
    fs.writeSync(fd, buf);
    buf = '';
  }
}
fs.writeSync(fd, buf);
fs.closeSync(fd);
fs.writeFileSync(out + '.expected', reached.join(' ') + '\n');
fs.renameSync(out + '.tmp', out);
process.stderr.write(`gen.js: ${EVENTS} events, ${nextCustomer} customers, expected reached ` +
  `${reached.join(' ')} -> ${out}\n`);
