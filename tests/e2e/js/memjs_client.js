// memjs (the npm package pinned in package.json) against a ringcached text
// port: set, get, delete and a get that misses. Each call's outcome goes
// into one JSON line on stdout; tests/e2e/test_memjs.py decides what must
// hold. Usage: node memjs_client.js [user:password@]host:port
'use strict';

const memjs = require('memjs');

// Everything, connection and SASL included, ends within this.
const run_ms_max = 10000;

const server = process.argv[2];
// retries 0: a refused call fails once, so the daemon counts one attempt per call.
const client = memjs.Client.create(server, {retries: 0, timeout: 2, conntimeout: 2, logger: {log() {}}});
const outcomes = {};

const deadline = setTimeout(() => {
  process.stdout.write(JSON.stringify({...outcomes, timeout_ms: run_ms_max}) + '\n');
  process.exit(2);
}, run_ms_max);

async function attempt(name, call) {
  try {
    outcomes[name] = {ok: true, value: await call()};
  } catch (error) {
    outcomes[name] = {ok: false, error: String(error && error.message ? error.message : error)};
  }
}

async function main() {
  const key = 'memjs-' + process.pid;
  const value = 'hello from memjs';
  await attempt('set', () => client.set(key, value, {expires: 0}));
  await attempt('get', async () => {
    const reply = await client.get(key);
    return reply.value === null ? null : reply.value.toString();
  });
  await attempt('delete', () => client.delete(key));
  await attempt('miss', async () => (await client.get(key)).value);
  client.close();
  process.stdout.write(JSON.stringify(outcomes) + '\n');
  // After a refused SASL attempt memjs 1.3.2 leaves sockets open (its close
  // handler forgets the socket that replaced the refused one; the same
  // against memcached 1.6.18 -S), which would keep node running.
  process.exit(0);
}

main();
