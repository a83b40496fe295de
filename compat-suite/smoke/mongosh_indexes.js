// mongosh --file: secondary indexes through the shell's index helpers against Monarch: each
// index kind (single, compound, multikey, unique, sparse, partial, TTL, hidden, hashed), the
// errors with mongod's codes, explain("executionStats") figures, hint, hidden indexes and TTL
// expiry (the server runs with --setParameter ttlMonitorSleepSecs=1). Prints "ok - ..." lines
// and exits non-zero (quit(1)) on any mismatch.
load(__dirname + "/mongosh_checks.js");
const check = makeCheck("mongosh indexes");
const same = (a, b) => EJSON.stringify(a) === EJSON.stringify(b);
// The stage names of the winning plan, root first.
function stages(explained) {
  const names = [];
  for (let s = explained.queryPlanner.winningPlan; s; s = s.inputStage) names.push(s.stage);
  return names;
}
// The innermost stage (COLLSCAN, IXSCAN, ...).
function access(explained) {
  let s = explained.queryPlanner.winningPlan;
  while (s.inputStage) s = s.inputStage;
  return s;
}
// [nReturned, totalKeysExamined, totalDocsExamined].
function figures(explained) {
  const e = explained.executionStats;
  return [e.nReturned, e.totalKeysExamined, e.totalDocsExamined].map(Number);
}
// The server error code thrown by fn, or null when it succeeds.
function errorCode(fn) {
  try {
    fn();
  } catch (e) {
    return e.code ?? `no code: ${e.message}`;
  }
  return null;
}
const names = (coll) => coll.getIndexes().map((ix) => ix.name);

const ixdb = db.getSiblingDB('shell_indexes');
ixdb.dropDatabase();

// Single field: COLLSCAN before, exact figures after.
const people = ixdb.people;
people.insertMany(Array.from({ length: 300 }, (_, i) => ({ _id: i, age: i % 30, city: ['paris', 'oslo', 'rome'][i % 3] })));
let ex = people.find({ age: 7 }).explain('executionStats');
check('before the index an equality is a COLLSCAN over every document', access(ex).stage === 'COLLSCAN' && same(figures(ex), [10, 0, 300]), [stages(ex), figures(ex)]);
check('createIndex returns the index name', people.createIndex({ age: 1 }) === 'age_1');
check('getIndexes lists _id_ and age_1', same(names(people), ['_id_', 'age_1']), people.getIndexes());
ex = people.find({ age: 7 }).explain('executionStats');
check('explain("executionStats"): FETCH over IXSCAN on age_1', same(stages(ex), ['FETCH', 'IXSCAN']) && access(ex).indexName === 'age_1', stages(ex));
check('an indexed equality examines exactly the matches (keys == docs == nReturned == 10)', same(figures(ex), [10, 10, 10]), figures(ex));
ex = people.find({ age: { $gte: 28 } }, { age: 1, _id: 0 }).explain('executionStats');
check('a covered query reads no documents (totalDocsExamined 0)', figures(ex)[2] === 0 && figures(ex)[0] === 20 && stages(ex).includes('PROJECTION_COVERED'), [stages(ex), figures(ex)]);

// Compound with -1, via createIndexes.
const created = people.createIndexes([{ city: 1, age: -1 }, { city: -1 }], { sparse: false });
check('createIndexes returns both names', same(created, ['city_1_age_-1', 'city_-1']), created);
check('getIndexKeys keeps the compound order and -1', same(people.getIndexKeys()[2], { city: 1, age: -1 }), people.getIndexKeys());
const top = people.find({ city: 'oslo' }).sort({ city: 1, age: -1 }).limit(3).toArray().map((d) => [d.city, d.age]);
check('the compound index serves a (city 1, age -1) sort', same(top, [['oslo', 28], ['oslo', 28], ['oslo', 28]]), top);
ex = people.find({ city: 'oslo' }).sort({ city: 1, age: -1 }).limit(2).explain('executionStats');
check('... without a SORT stage', !stages(ex).includes('SORT') && access(ex).indexName === 'city_1_age_-1', stages(ex));

// hint by name and by key pattern.
ex = people.find({ city: 'rome' }).hint('age_1').explain('executionStats');
check('hint by name', access(ex).indexName === 'age_1' && figures(ex)[1] === 300, [access(ex).indexName, figures(ex)]);
ex = people.find({ age: 3 }).hint({ city: 1, age: -1 }).explain('executionStats');
check('hint by key pattern', access(ex).indexName === 'city_1_age_-1', access(ex));
check('a hinted find returns the right documents', people.find({ age: 3 }).hint({ city: 1, age: -1 }).itcount() === 10);
const keys = people.find({ age: { $gt: 28 } }).returnKey(true).limit(2).toArray();
check('returnKey(true) yields the index keys', same(keys, [{ age: 29 }, { age: 29 }]), keys);
check('hint of a missing index: 2 BadValue', errorCode(() => people.find().hint('nope').toArray()) === 2);

// Multikey.
const posts = ixdb.posts;
posts.insertMany(Array.from({ length: 40 }, (_, i) => ({ _id: i, tags: [`t${i % 4}`, `t${i % 5}`] })));
posts.createIndex({ tags: 1 });
ex = posts.find({ tags: 't3' }).explain('executionStats');
check('multikey index on an array field (isMultiKey)', access(ex).stage === 'IXSCAN' && access(ex).isMultiKey === true, access(ex));
check('array element queries return each document once', posts.find({ tags: 't3' }).itcount() === 16 && figures(ex)[0] === 16, figures(ex));

// Unique, single and compound.
const users = ixdb.users;
users.createIndex({ email: 1 }, { unique: true });
users.insertOne({ _id: 1, email: 'a@x.org' });
let err = null;
try {
  users.insertOne({ _id: 2, email: 'a@x.org' });
} catch (e) {
  err = e;
}
check('insertOne of a taken unique key: 11000 with keyValue', err && err.code === 11000 && same(err.keyValue, { email: 'a@x.org' }), err && err.message);
check('getIndexes shows unique: true', users.getIndexes()[1].unique === true);
const members = ixdb.members;
members.createIndex({ org: 1, user: 1 }, { unique: true, name: 'org_user' });
members.insertMany([{ org: 1, user: 'ann' }, { org: 2, user: 'ann' }]);
check('compound unique: a repeated pair is 11000', errorCode(() => members.insertOne({ org: 1, user: 'ann' })) === 11000);
const dups = ixdb.dups;
dups.insertMany([{ k: 1 }, { k: 1 }]);
check('building a unique index over duplicates: 11000', errorCode(() => dups.createIndex({ k: 1 }, { unique: true })) === 11000);
check('... and the index is absent from getIndexes', same(names(dups), ['_id_']), names(dups));

// Sparse.
const sparse = ixdb.sparse;
sparse.insertMany(Array.from({ length: 20 }, (_, i) => (i % 2 ? { _id: i } : { _id: i, opt: i })));
sparse.createIndex({ opt: 1 }, { sparse: true });
ex = sparse.find({ opt: { $gt: 10 } }).explain('executionStats');
check('sparse index serves a range on its field', access(ex).indexName === 'opt_1' && same(figures(ex), [4, 4, 4]), [stages(ex), figures(ex)]);
ex = sparse.find({ opt: null }).explain('executionStats');
check('{opt: null} is not answered from the sparse index (COLLSCAN, 10 found)', access(ex).stage === 'COLLSCAN' && figures(ex)[0] === 10, [stages(ex), figures(ex)]);

// Partial.
const orders = ixdb.orders;
orders.insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: i, total: i, open: i % 2 === 1 })));
orders.createIndex({ total: 1 }, { partialFilterExpression: { open: true }, name: 'open_total' });
check('getIndexes shows partialFilterExpression', same(orders.getIndexes()[1].partialFilterExpression, { open: true }), orders.getIndexes());
ex = orders.find({ open: true, total: { $gte: 45 } }).explain('executionStats');
check('a query implying the filter uses the partial index', access(ex).indexName === 'open_total' && same(figures(ex), [3, 3, 3]), [stages(ex), figures(ex)]);
ex = orders.find({ total: { $gte: 45 } }).explain('executionStats');
check('a query outside the filter does not (COLLSCAN)', access(ex).stage === 'COLLSCAN' && figures(ex)[0] === 5, [stages(ex), figures(ex)]);

// Hashed.
const visits = ixdb.visits;
visits.insertMany(Array.from({ length: 100 }, (_, i) => ({ user: `u${i % 10}` })));
check('createIndex hashed', visits.createIndex({ user: 'hashed' }) === 'user_hashed');
ex = visits.find({ user: 'u7' }).explain('executionStats');
check('an equality uses the hashed index, one key per match', access(ex).indexName === 'user_hashed' && same(figures(ex), [10, 10, 10]), [stages(ex), figures(ex)]);

// Hidden: not used, still maintained; hideIndex/unhideIndex.
const items = ixdb.items;
items.insertMany(Array.from({ length: 100 }, (_, i) => ({ _id: i, sku: i % 10 })));
items.createIndex({ sku: 1 }, { hidden: true });
check('getIndexes shows hidden: true', items.getIndexes()[1].hidden === true, items.getIndexes());
ex = items.find({ sku: 4 }).explain('executionStats');
check('the planner does not use a hidden index (COLLSCAN)', access(ex).stage === 'COLLSCAN', stages(ex));
items.insertOne({ _id: 500, sku: 4 });
items.unhideIndex('sku_1');
ex = items.find({ sku: 4 }).explain('executionStats');
check('unhideIndex: used again, and it was kept up to date (11 keys)', access(ex).indexName === 'sku_1' && same(figures(ex), [11, 11, 11]), [stages(ex), figures(ex)]);
items.hideIndex({ sku: 1 });
check('hideIndex by key pattern', items.getIndexes()[1].hidden === true && access(items.find({ sku: 4 }).explain()).stage === 'COLLSCAN');

// Errors with mongod's codes.
check('same keys, another name: 85 IndexOptionsConflict', errorCode(() => people.createIndex({ age: 1 }, { name: 'other' })) === 85);
check('same name, other keys: 86 IndexKeySpecsConflict', errorCode(() => people.createIndex({ zip: 1 }, { name: 'age_1' })) === 86);
check('a bad key value: 67 CannotCreateIndex', errorCode(() => people.createIndex({ age: 'sideways' })) === 67);
check('dropIndex("_id_"): 72 InvalidOptions', errorCode(() => people.dropIndex('_id_')) === 72);
check('dropIndex of a missing index: 27 IndexNotFound', errorCode(() => people.dropIndex('nope')) === 27);
const parallel = ixdb.parallel;
parallel.createIndex({ a: 1, b: 1 });
check('parallel arrays in a compound index: 171', errorCode(() => parallel.insertOne({ a: [1], b: [2] })) === 171);
check('dropIndex by key pattern', people.dropIndex({ city: 1, age: -1 }).ok === 1 && !names(people).includes('city_1_age_-1'), names(people));
people.dropIndexes();
check('dropIndexes keeps only _id_', same(names(people), ['_id_']), names(people));

// TTL.
const sessions = ixdb.sessions;
sessions.insertMany([
  { _id: 'old', lastSeen: new Date(Date.now() - 3600 * 1000) },
  { _id: 'fresh', lastSeen: new Date() },
]);
sessions.createIndex({ lastSeen: 1 }, { expireAfterSeconds: 60 });
check('getIndexes shows expireAfterSeconds', sessions.getIndexes()[1].expireAfterSeconds === 60, sessions.getIndexes());
let left = [];
for (const deadline = Date.now() + 10000; Date.now() < deadline;) {
  left = sessions.find().toArray().map((d) => d._id);
  if (!left.includes('old')) break;
  sleep(250);
}
check('the TTL monitor deletes the expired document within 10 s', same(left, ['fresh']), left);

ixdb.dropDatabase();
finish();
