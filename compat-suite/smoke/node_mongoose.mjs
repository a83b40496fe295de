// An application built on mongoose (the most used Node.js ODM): schemas with refs, populate,
// Model.aggregate with $lookup/$unwind/$group, $facet pagination with a total count, and a
// report with the string, date and conversion operators applications use.
// One "ok - ..." / "not ok - ..." line per check; exits 1 on any mismatch.
import mongoose from 'mongoose';

let failures = 0;
function check(what, condition, detail = '') {
  if (condition) {
    console.log(`ok - node mongoose: ${what}`);
  } else {
    failures += 1;
    console.log(`not ok - node mongoose: ${what} ${JSON.stringify(detail)}`);
  }
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

const customerSchema = new mongoose.Schema({ _id: String, name: String, city: String });
const orderSchema = new mongoose.Schema({
  _id: Number,
  customer: { type: String, ref: 'Customer' },
  amount: Number,
  placed: Date,
  sku: String,
});

try {
  await mongoose.connect(process.env.MONARCH_URI, { dbName: 'mongoose_shop', serverSelectionTimeoutMS: 5000 });
  const Customer = mongoose.model('Customer', customerSchema);
  const Order = mongoose.model('Order', orderSchema);
  await mongoose.connection.db.dropDatabase();
  await Customer.init();
  await Order.init();

  await Customer.insertMany([
    { _id: 'ann', name: 'Ann Lee', city: 'Paris' },
    { _id: 'bob', name: 'Bob Ray', city: 'Oslo' },
    { _id: 'cy', name: 'Cy Young', city: 'Paris' },
  ]);
  const day = (d) => new Date(Date.UTC(2026, 0, d, 10));
  await Order.insertMany([
    { _id: 1, customer: 'ann', amount: 30, placed: day(3), sku: 'pen-blue' },
    { _id: 2, customer: 'bob', amount: 12.5, placed: day(3), sku: 'ink-black' },
    { _id: 3, customer: 'ann', amount: 7, placed: day(14), sku: 'pad-a4' },
    { _id: 4, customer: 'cy', amount: 50, placed: day(20), sku: 'pen-red' },
    { _id: 5, customer: 'bob', amount: 20, placed: day(28), sku: 'pen-blue' },
    { _id: 6, customer: 'ann', amount: 1, placed: day(30), sku: 'ink-blue' },
  ]);

  const populated = await Order.find({ amount: { $gte: 20 } }).sort({ _id: 1 }).populate('customer').lean();
  check('populate replaces each ref with its customer',
    same(populated.map((o) => [o._id, o.customer?.name]), [[1, 'Ann Lee'], [4, 'Cy Young'], [5, 'Bob Ray']]), populated);

  const byCity = await Order.aggregate([
    { $lookup: { from: 'customers', localField: 'customer', foreignField: '_id', as: 'who' } },
    { $unwind: '$who' },
    { $group: { _id: '$who.city', total: { $sum: '$amount' }, orders: { $sum: 1 } } },
    { $sort: { total: -1 } },
  ]);
  check('Model.aggregate: $lookup, $unwind and $group by the joined city',
    same(byCity, [{ _id: 'Paris', total: 88, orders: 4 }, { _id: 'Oslo', total: 32.5, orders: 2 }]), byCity);

  const [page] = await Order.aggregate([
    { $match: { amount: { $gt: 1 } } },
    { $sort: { placed: -1, _id: 1 } },
    { $facet: {
      items: [{ $skip: 1 }, { $limit: 2 }, { $project: { _id: 1 } }],
      total: [{ $count: 'n' }],
    } },
    { $project: { items: '$items._id', total: { $arrayElemAt: ['$total.n', 0] } } },
  ]);
  check('$facet pagination: one page and the total count', same(page, { items: [4, 3], total: 5 }), page);

  const report = await Order.aggregate([
    { $addFields: { kind: { $arrayElemAt: [{ $split: ['$sku', '-'] }, 0] } } },
    { $match: { kind: 'pen' } },
    { $group: {
      _id: { $dateToString: { date: '$placed', format: '%Y-%m' } },
      skus: { $addToSet: { $toUpper: '$sku' } },
      revenue: { $sum: '$amount' },
    } },
    { $project: {
      _id: 0,
      month: '$_id',
      skus: { $sortArray: { input: '$skus', sortBy: 1 } },
      revenue: { $concat: [{ $toString: { $round: ['$revenue', 0] } }, ' EUR'] },
    } },
  ]);
  check('a report with $split, $toUpper, $sortArray, $round and $toString',
    same(report, [{ month: '2026-01', skus: ['PEN-BLUE', 'PEN-RED'], revenue: '100 EUR' }]), report);
} catch (error) {
  failures += 1;
  console.log(`not ok - node mongoose: unexpected error ${String(error)}`);
} finally {
  await mongoose.disconnect();
}
process.exit(failures === 0 ? 0 : 1);
