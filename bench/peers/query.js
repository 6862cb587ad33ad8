#!/usr/bin/env node
// query.js -- runs one SQL file of the peers benchmark in an embedded engine, in this process.
//
// Usage: node query.js clickhouse|duckdb SQL_FILE DATA_FILE [THREADS]
//
// Every `{file}` in SQL_FILE becomes DATA_FILE (a path without a quote), every `{threads}`
// THREADS (default 2). The SQL's result
// must be one row of 4 integers (how many reached each funnel stage); it is printed as
// "r0 r1 r2 r3". The engines' packages are found through NODE_PATH (run.sh points it at the
// npm install outside the source tree). Exit status: 0 done, 1 engine error, 2 bad arguments.
'use strict';
const fs = require('fs');

const [engine, sqlFile, dataFile, threads = '2'] = process.argv.slice(2);
if (!['clickhouse', 'duckdb'].includes(engine) || !sqlFile || !dataFile ||
    !/^[1-9][0-9]*$/.test(threads)) {
  process.stderr.write('usage: node query.js clickhouse|duckdb SQL_FILE DATA_FILE [THREADS]\n');
  process.exit(2);
}
if (dataFile.includes("'")) {
  process.stderr.write(`query.js: a quote in the data path: ${dataFile}\n`);
  process.exit(2);
}
const sql = fs.readFileSync(sqlFile, 'utf8').replaceAll('{file}', dataFile)
  .replaceAll('{threads}', threads);

function print(row) {
  const nums = row.map((v) => String(v).trim());
  if (nums.length !== 4 || !nums.every((v) => /^[0-9]+$/.test(v)))
    throw new Error(`expected one row of 4 counts, got: ${JSON.stringify(row)}`);
  process.stdout.write(nums.join(' ') + '\n');
}

async function clickhouse() {
  const chdb = require('chdb');
  // The SQL ends with SETTINGS max_threads = {threads} FORMAT TSV.
  const out = chdb.query(sql, 'TSV').trim();
  const lines = out.split('\n');
  if (lines.length !== 1) throw new Error(`expected one row, got: ${out}`);
  print(lines[0].split('\t'));
}

async function duckdb() {
  const { DuckDBInstance } = require('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  // The SQL starts with SET threads = {threads}; the result is that of its last statement.
  const rows = (await con.runAndReadAll(sql)).getRows();
  if (rows.length !== 1) throw new Error(`expected one row, got ${rows.length}`);
  print(rows[0]);
}

(engine === 'clickhouse' ? clickhouse() : duckdb()).catch((e) => {
  process.stderr.write(`query.js (${engine}): ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
