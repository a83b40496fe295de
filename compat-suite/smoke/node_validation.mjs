// Collection validators through the Node.js driver: a refused insert is a MongoServerError
// (code 121) whose errInfo carries mongod's explanation; updateOne and findOneAndUpdate too.
// One "ok - ..." / "not ok - ..." line per check; exits 1 on any mismatch.
import { MongoClient } from 'mongodb';

let failures = 0;
function check(what, condition, detail = '') {
  if (condition) {
    console.log(`ok - node validation: ${what}`);
  } else {
    failures += 1;
    console.log(`not ok - node validation: ${what} ${JSON.stringify(detail)}`);
  }
}

const client = new MongoClient(process.env.MONARCH_URI, { serverSelectionTimeoutMS: 5000 });
try {
  const db = client.db('validation_node');
  await db.dropDatabase();
  const items = await db.createCollection('items', { validator: { qty: { $type: 'int', $gte: 0 } } });
  await items.insertOne({ _id: 1, qty: 3 });

  const refused = await items.insertOne({ _id: 2, qty: 'many' }).catch((error) => error);
  check('insertOne refused with 121 DocumentValidationFailure', refused.code === 121, String(refused));
  check('errInfo names the failing document and operators', refused.errInfo?.failingDocumentId === 2
    && refused.errInfo?.details?.operatorName === '$and'
    && refused.errInfo.details.clausesNotSatisfied?.[0]?.details?.reason === 'type did not match', refused.errInfo);

  const update = await items.updateOne({ _id: 1 }, { $inc: { qty: -10 } }).catch((error) => error);
  check('updateOne refused with 121', update.code === 121 && update.errInfo?.details?.clausesNotSatisfied?.[0]?.index === 1,
    update.errInfo);
  const found = await items.findOneAndUpdate({ _id: 1 }, { $set: { qty: 1.5 } }).catch((error) => error);
  check('findOneAndUpdate refused with 121 and errInfo', found.code === 121 && found.errInfo?.failingDocumentId === 1,
    String(found));

  const bypassed = await items.insertOne({ _id: 3, qty: -1 }, { bypassDocumentValidation: true });
  check('bypassDocumentValidation stores a failing document', bypassed.insertedId === 3, bypassed);
  await db.dropDatabase();
} catch (error) {
  check('no unexpected error', false, String(error));
} finally {
  await client.close();
}
process.exit(failures ? 1 : 0);
