// The Node.js driver against Monarch: connect (legacy OP_QUERY handshake), ping, buildInfo,
// hello fields, zlib compression, errors. One "ok - ..." / "not ok - ..." line per check.
import { MongoClient } from 'mongodb';

const uri = process.env.MONARCH_URI;
let failures = 0;
function check(what, condition, detail = '') {
  if (condition) {
    console.log(`ok - node: ${what}`);
  } else {
    failures += 1;
    console.log(`not ok - node: ${what} ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
  }
}

const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
try {
  await client.connect();
  const admin = client.db('admin');
  const ping = await admin.command({ ping: 1 });
  check('ping returns ok: 1', ping.ok === 1, ping);

  const build = await admin.command({ buildInfo: 1 });
  check('buildInfo reports a 7.0 version', String(build.version).startsWith('7.0.'), build);

  const hello = await admin.command({ hello: 1 });
  check('hello.isWritablePrimary', hello.isWritablePrimary === true, hello);
  check('hello.maxWireVersion is 21', hello.maxWireVersion === 21, hello);
  check('hello.logicalSessionTimeoutMinutes is 30', hello.logicalSessionTimeoutMinutes === 30, hello);

  try {
    await admin.command({ atlasVersion: 1 });
    check('unknown command fails with 59', false, 'no error');
  } catch (error) {
    check('unknown command fails with 59 CommandNotFound', error.code === 59 && error.codeName === 'CommandNotFound', error.message);
  }
} finally {
  await client.close();
}

const zlib = new MongoClient(uri, { serverSelectionTimeoutMS: 5000, compressors: ['zlib'] });
try {
  const admin = zlib.db('admin');
  await admin.command({ ping: 1 });
  const status = await admin.command({ serverStatus: 1 });
  const used = status.network.compression.zlib.decompressor.bytesOut;
  check('zlib compression negotiated and used', Number(used) > 0, status.network.compression);
} finally {
  await zlib.close();
}

process.exit(failures ? 1 : 0);
