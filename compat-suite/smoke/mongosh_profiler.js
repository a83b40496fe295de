// mongosh --file: the profiler and operation statistics through the shell's helpers against
// Monarch: db.setProfilingLevel / getProfilingStatus, db.system.profile,
// db.currentOp() (an aggregate with $currentOp on admin in current mongosh),
// db.serverStatus().opLatencies and db.collection.latencyStats(). Prints "ok - ..." lines and
// exits non-zero (quit(1)) on any mismatch.
load(__dirname + "/mongosh_checks.js");
const check = makeCheck("mongosh profiler");
// Profile entries are written just after each reply: poll for them.
function profiled(pdb, filter, n) {
  let found = [];
  for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
    found = pdb.system.profile.find(filter).toArray();
    if (found.length >= n) break;
    sleep(100);
  }
  return found;
}

const pdb = db.getSiblingDB('compat_profiler');
pdb.dropDatabase();
const status = pdb.getProfilingStatus();
check('getProfilingStatus starts at level 0', status.was === 0 && status.slowms === 100 && status.sampleRate === 1, status);
// mongosh has no db.getProfilingLevel() (the legacy shell's); its getProfilingStatus() sends
// {profile: -1}.

const set = pdb.setProfilingLevel(2);
check('setProfilingLevel(2) answers with the previous level', set.was === 0 && set.ok === 1, set);
check('getProfilingStatus().was is now 2', pdb.getProfilingStatus().was === 2, pdb.getProfilingStatus());
check('system.profile is listed', pdb.getCollectionNames().includes('system.profile'), pdb.getCollectionNames());

pdb.items.insertOne({ sku: 'a', qty: 1 });
pdb.items.find({ sku: 'a' }).toArray();
const queries = profiled(pdb, { op: 'query', ns: 'compat_profiler.items' }, 1);
const q = queries[0] || {};
check('db.system.profile.find() shows the query', queries.length === 1, queries);
check(
  'the entry has mongod fields',
  q.command && q.command.filter && q.command.filter.sku === 'a' && q.planSummary === 'COLLSCAN' &&
    Number(q.nreturned) === 1 && Number(q.docsExamined) === 1 && typeof Number(q.millis) === 'number' &&
    q.ts instanceof Date && q.protocol === 'op_msg',
  q
);
check('the insert is profiled', profiled(pdb, { op: 'insert' }, 1).length === 1, pdb.system.profile.find().toArray());

const slow = pdb.setProfilingLevel(1, { slowms: 50 });
check('setProfilingLevel(1, {slowms: 50}) answers was 2', slow.was === 2, slow);
const after = pdb.getProfilingStatus();
check('getProfilingStatus shows level 1 and slowms 50', after.was === 1 && after.slowms === 50, after);
pdb.setProfilingLevel(0, { slowms: 100 });

const inprog = db.currentOp();
check(
  'db.currentOp() lists its own operation',
  inprog.ok === 1 && Array.isArray(inprog.inprog) && inprog.inprog.some((op) => op.command && op.command.aggregate === 1),
  inprog
);

const latencies = db.serverStatus({ opLatencies: { histograms: true } }).opLatencies;
check(
  'serverStatus().opLatencies has reads, writes, commands, transactions',
  ['reads', 'writes', 'commands', 'transactions'].every((k) => latencies[k] && latencies[k].ops !== undefined),
  latencies
);
check('opLatencies.reads counted the finds', Number(latencies.reads.ops) > 0 && latencies.reads.histogram.length > 0, latencies.reads);
const latencyResult = pdb.items.latencyStats({ histograms: true });
const collLatency = (Array.isArray(latencyResult) ? latencyResult : latencyResult.toArray())[0];
check('latencyStats() per collection', collLatency && Number(collLatency.latencyStats.reads.ops) >= 1, collLatency);

pdb.dropDatabase();
finish();
