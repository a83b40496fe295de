// The Node.js driver against a Monarch started with --auth: credentials in the connection
// string with authSource=admin, both SCRAM mechanisms, 18 for a wrong password, 13 for a
// missing privilege, users created and listed through db.command, and listDatabases showing a
// user only its databases. One "ok - ..." / "not ok - ..." line per check; exits 1 on any
// mismatch. MONARCH_AUTH_URI has no credentials; MONARCH_ROOT_USER/PASSWORD name a root user.
import { MongoClient } from 'mongodb';

let failures = 0;
function check(what, condition, detail = '') {
  if (condition) {
    console.log(`ok - node auth: ${what}`);
  } else {
    failures += 1;
    console.log(`not ok - node auth: ${what} ${JSON.stringify(detail)}`);
  }
}

const host = process.env.MONARCH_AUTH_URI.replace('mongodb://', '').replace(/\/$/, '');
const uri = (user, password, extra = '') =>
  `mongodb://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}/?authSource=admin${extra}`;
const rootUser = process.env.MONARCH_ROOT_USER;
const rootPassword = process.env.MONARCH_ROOT_PASSWORD;
const options = { serverSelectionTimeoutMS: 5000 };

const clients = [];
async function connect(user, password, extra) {
  const client = new MongoClient(uri(user, password, extra), options);
  clients.push(client);
  await client.connect();
  return client;
}

try {
  for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256']) {
    const client = await connect(rootUser, rootPassword, `&authMechanism=${mechanism}`);
    const reply = await client.db('admin').command({ ping: 1 });
    check(`root authenticates with ${mechanism}`, reply.ok === 1, reply);
  }
  const wrong = await connect(rootUser, 'not the password').catch((error) => error);
  check('a wrong password answers 18 AuthenticationFailed', wrong.code === 18, String(wrong));

  const root = await connect(rootUser, rootPassword);
  const admin = root.db('admin');
  if ((await admin.command({ usersInfo: 'nodeReader' })).users.length > 0) {
    await admin.command({ dropUser: 'nodeReader' });
  }
  await root.db('nodeshop').dropDatabase();
  await root.db('nodehr').dropDatabase();
  await root.db('nodeshop').collection('items').insertOne({ _id: 1, name: 'apple' });
  await root.db('nodehr').collection('staff').insertOne({ _id: 1, name: 'ann' });
  await admin.command({ createUser: 'nodeReader', pwd: 'reader pw', roles: [{ role: 'read', db: 'nodeshop' }] });
  const info = await admin.command({ usersInfo: 'nodeReader' });
  check('usersInfo lists the new user with its role',
    info.users.length === 1 && info.users[0].roles[0]?.role === 'read' && info.users[0].roles[0]?.db === 'nodeshop', info);

  const reader = await connect('nodeReader', 'reader pw');
  const found = await reader.db('nodeshop').collection('items').findOne({ _id: 1 });
  check('read: findOne works', found?.name === 'apple', found);
  const refused = await reader.db('nodeshop').collection('items').insertOne({ _id: 2 }).catch((error) => error);
  check('read: insertOne answers 13 Unauthorized', refused.code === 13 && refused.codeName === 'Unauthorized',
    String(refused));
  const other = await reader.db('nodehr').collection('staff').findOne({}).catch((error) => error);
  check('read on one database: another answers 13', other.code === 13, String(other));
  const listed = await reader.db('admin').admin().listDatabases({ nameOnly: true });
  const names = listed.databases.map((d) => d.name);
  check('listDatabases shows only its database', JSON.stringify(names) === '["nodeshop"]', names);

  await admin.command({ grantRolesToUser: 'nodeReader', roles: [{ role: 'readWrite', db: 'nodeshop' }] });
  const inserted = await reader.db('nodeshop').collection('items').insertOne({ _id: 2 }).catch((error) => error);
  check('grantRolesToUser reaches the open connection', inserted.acknowledged === true, String(inserted));

  await admin.command({ dropUser: 'nodeReader' });
  const dropped = await connect('nodeReader', 'reader pw').catch((error) => error);
  check('a dropped user no longer authenticates (18)', dropped.code === 18, String(dropped));
  await root.db('nodeshop').dropDatabase();
  await root.db('nodehr').dropDatabase();
} catch (error) {
  failures += 1;
  console.log(`not ok - node auth: unexpected error ${error}`);
} finally {
  await Promise.all(clients.map((c) => c.close()));
}
process.exit(failures > 0 ? 1 : 0);
