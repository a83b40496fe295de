// mongosh --file: a realistic report built with the aggregation framework against Monarch,
// checked against the exact documents mongod gives: monthly revenue with $dateTrunc in a
// named time zone (DST included), top customers with $group + $sort + $limit joined with
// $lookup, a $facet with a count and $bucket ranges, running totals with $setWindowFields,
// and a view over the orders. Prints "ok - ..." lines and exits non-zero on any mismatch.
load(__dirname + "/mongosh_checks.js");
const check = makeCheck("mongosh report");
const same = (a, b) => EJSON.stringify(a) === EJSON.stringify(b);

const rdb = db.getSiblingDB("shell_report");
rdb.dropDatabase();
rdb.customers.insertMany([
  { _id: "ann", name: "Ann" },
  { _id: "bob", name: "Bob" },
  { _id: "cy", name: "Cy" },
]);
rdb.orders.insertMany([
  { _id: 1, cust: "ann", amt: 100, at: ISODate("2024-01-31T23:30:00Z") }, // Paris: 1 Feb 00:30
  { _id: 2, cust: "bob", amt: 50, at: ISODate("2024-01-15T10:00:00Z") },
  { _id: 3, cust: "ann", amt: 25, at: ISODate("2024-02-29T22:59:00Z") }, // Paris: 29 Feb 23:59
  { _id: 4, cust: "cy", amt: 10, at: ISODate("2024-03-31T22:30:00Z") }, // Paris (CEST): 1 Apr 00:30
  { _id: 5, cust: "bob", amt: 40, at: ISODate("2024-03-10T12:00:00Z") },
]);

const monthly = rdb.orders.aggregate([
  { $group: { _id: { $dateTrunc: { date: "$at", unit: "month", timezone: "Europe/Paris" } }, revenue: { $sum: "$amt" } } },
  { $sort: { _id: 1 } },
]).toArray();
const monthlyWant = [
  { _id: ISODate("2023-12-31T23:00:00Z"), revenue: 50 },
  { _id: ISODate("2024-01-31T23:00:00Z"), revenue: 125 },
  { _id: ISODate("2024-02-29T23:00:00Z"), revenue: 40 },
  { _id: ISODate("2024-03-31T22:00:00Z"), revenue: 10 },
];
check("monthly revenue in Europe/Paris", same(monthly, monthlyWant), monthly);

const top = rdb.orders.aggregate([
  { $group: { _id: "$cust", total: { $sum: "$amt" }, orders: { $sum: 1 } } },
  { $sort: { total: -1 } },
  { $limit: 2 },
  { $lookup: { from: "customers", localField: "_id", foreignField: "_id", as: "who" } },
  { $unwind: "$who" },
  { $project: { _id: 0, name: "$who.name", total: 1, orders: 1 } },
]).toArray();
check("top customers joined", same(top, [{ total: 125, orders: 2, name: "Ann" }, { total: 90, orders: 2, name: "Bob" }]), top);

const faceted = rdb.orders.aggregate([
  { $facet: {
    count: [{ $count: "n" }],
    byAmount: [{ $bucket: { groupBy: "$amt", boundaries: [0, 50, 100, 1000], default: "other" } }],
  } },
]).toArray();
const facetWant = [{ count: [{ n: 5 }], byAmount: [{ _id: 0, count: 3 }, { _id: 50, count: 1 }, { _id: 100, count: 1 }] }];
check("facet with a count and buckets", same(faceted, facetWant), faceted);

const running = rdb.orders.aggregate([
  { $setWindowFields: { sortBy: { at: 1 }, output: { running: { $sum: "$amt", window: { documents: ["unbounded", "current"] } } } } },
  { $project: { running: 1 } },
]).toArray();
const runningWant = [{ _id: 2, running: 50 }, { _id: 1, running: 150 }, { _id: 3, running: 175 }, { _id: 5, running: 215 }, { _id: 4, running: 225 }];
check("running totals", same(running, runningWant), running);

rdb.createView("big_orders", "orders", [{ $match: { amt: { $gte: 40 } } }, { $project: { at: 0 } }]);
const viewed = rdb.big_orders.find({}, { cust: 1 }).sort({ _id: 1 }).toArray();
check("a view through find", same(viewed, [{ _id: 1, cust: "ann" }, { _id: 2, cust: "bob" }, { _id: 5, cust: "bob" }]), viewed);
check("a view counted", rdb.big_orders.countDocuments() === 3, rdb.big_orders.countDocuments());
const info = rdb.getCollectionInfos({ name: "big_orders" });
check("a view listed", info.length === 1 && info[0].type === "view" && info[0].options.viewOn === "orders", info);

rdb.orders.aggregate([{ $match: { cust: "ann" } }, { $out: "ann_orders" }]);
check("$out writes its target", rdb.ann_orders.countDocuments() === 2, rdb.ann_orders.find().toArray());

rdb.dropDatabase();
finish();
