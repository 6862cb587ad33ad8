#!/usr/bin/env node
// reached.js -- stage counts from `funnelstream replay` output (JSON lines on stdin or a file).
//
// Usage: node reached.js FUNNEL [OUTPUT_FILE]
//
// Prints "r0 r1 r2 r3 ...": `reached[s]` summed over every flow record of FUNNEL (SPEC §4: a
// count is made once, in the window of the event that caused it, so the sum over all windows is
// the number of journeys that reached stage s). As a consistency check of funnelstream itself,
// the same sum over the final cohort records (journeys started in each window, by how far they
// got) must be equal; if not, or if nothing was found, it exits 1.
'use strict';
const fs = require('fs');
const readline = require('readline');

const [funnel, file] = process.argv.slice(2);
if (!funnel) {
  process.stderr.write('usage: node reached.js FUNNEL [OUTPUT_FILE]\n');
  process.exit(2);
}

const add = (sum, arr) => arr.forEach((v, i) => { sum[i] = (sum[i] || 0) + v; });

(async () => {
  const flow = [], cohort = [];
  let flows = 0, cohorts = 0;
  const input = file ? fs.createReadStream(file) : process.stdin;
  for await (const line of readline.createInterface({ input, crlfDelay: Infinity })) {
    if (!line) continue;
    const r = JSON.parse(line);
    if (r.funnel !== funnel) continue;
    if (r.kind === 'flow') {
      add(flow, r.reached);
      flows++;
    } else if (r.kind === 'cohort' && r.final) {
      add(cohort, r.reached);
      cohorts++;
    }
  }
  if (flows === 0) {
    process.stderr.write(`reached.js: no flow record of funnel '${funnel}'\n`);
    process.exit(1);
  }
  if (flow.join(' ') !== cohort.join(' ')) {
    process.stderr.write(`reached.js: flow records (${flows}) sum to ${flow.join(' ')} but final ` +
      `cohort records (${cohorts}) to ${cohort.join(' ')}\n`);
    process.exit(1);
  }
  process.stdout.write(flow.join(' ') + '\n');
})().catch((e) => {
  process.stderr.write(`reached.js: ${e.stack || e}\n`);
  process.exit(1);
});
