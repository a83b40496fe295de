use super::*;

fn d(s: &str) -> Decimal128 {
    s.parse().unwrap()
}

fn show(x: Decimal128) -> String {
    x.to_string()
}

#[test]
fn decimal_add_and_subtract() {
    let rows = [
        ("1", "2", "3"),
        ("0.1", "0.2", "0.3"),
        ("1.10", "2.2", "3.30"),
        ("1E+2", "1", "101"),
        ("-5", "3", "-2"),
        ("5", "-5", "0"),
        ("-5", "-0", "-5"),
        ("-0", "-0", "-0"),
        ("0", "-0", "0"),
        ("1.00", "-1", "0.00"),
        ("9999999999999999999999999999999999", "1", "1.000000000000000000000000000000000E+34"),
        // Ties go to the even neighbour.
        ("1000000000000000000000000000000000", "0.5", "1000000000000000000000000000000000"),
        ("1000000000000000000000000000000001", "0.5", "1000000000000000000000000000000002"),
        ("1000000000000000000000000000000000", "0.50001", "1000000000000000000000000000000001"),
        // A tiny operand only nudges the rounding.
        ("1", "1E-100", "1.000000000000000000000000000000000"),
        ("1", "-1E-100", "1.000000000000000000000000000000000"),
        ("1000000000000000000000000000000001", "-1E-100", "1000000000000000000000000000000001"),
        ("1000000000000000000000000000000001", "-0.5", "1000000000000000000000000000000000"),
        ("1E+6000", "1", "1.000000000000000000000000000000000E+6000"),
        ("1E-6176", "1E-6176", "2E-6176"),
        ("9.999999999999999999999999999999999E+6144", "1E+6111", "Infinity"),
        ("1E+10", "0E-10", "10000000000.0000000000"),
        ("1E+100", "0E-100", "1.000000000000000000000000000000000E+100"),
        ("0E+10", "1E-10", "1E-10"),
        ("Infinity", "1", "Infinity"),
        ("Infinity", "-Infinity", "NaN"),
        ("NaN", "1", "NaN"),
    ];
    for (a, b, expected) in rows {
        assert_eq!(show(add(d(a), d(b))), expected, "{a} + {b}");
    }
    assert_eq!(show(sub(d("1"), d("0.9"))), "0.1");
    assert_eq!(show(sub(d("-Infinity"), d("-Infinity"))), "NaN");
}

#[test]
fn decimal_multiply() {
    let rows = [
        ("2", "3", "6"),
        ("1.5", "1.5", "2.25"),
        ("-2", "0.50", "-1.00"),
        ("0", "-3", "-0"),
        ("1.1", "1.1", "1.21"),
        // 34 nines squared rounds up to 10^68 at 34 digits.
        (
            "9999999999999999999999999999999999",
            "9999999999999999999999999999999999",
            "9.999999999999999999999999999999998E+67",
        ),
        ("1E+6000", "1E+6000", "Infinity"),
        ("1E-6000", "1E-6000", "0E-6176"),
        ("Infinity", "0", "NaN"),
        ("-Infinity", "2", "-Infinity"),
    ];
    for (a, b, expected) in rows {
        assert_eq!(show(mul(d(a), d(b))), expected, "{a} * {b}");
    }
}

#[test]
fn decimal_divide() {
    let rows = [
        ("1", "4", "0.25"),
        ("10", "2", "5"),
        ("1.00", "2", "0.50"),
        ("1", "3", "0.3333333333333333333333333333333333"),
        ("2", "3", "0.6666666666666666666666666666666667"),
        ("-1", "3", "-0.3333333333333333333333333333333333"),
        ("1E+2", "1", "1E+2"),
        ("0", "5", "0"),
        ("0.00", "1E-2", "0"),
        ("1", "0", "Infinity"),
        ("-1", "0", "-Infinity"),
        ("0", "0", "NaN"),
        ("1", "Infinity", "0E-6176"),
        ("Infinity", "-2", "-Infinity"),
    ];
    for (a, b, expected) in rows {
        assert_eq!(show(div(d(a), d(b))), expected, "{a} / {b}");
    }
}

#[test]
fn decimal_remainder() {
    let rows = [
        ("7", "3", "1"),
        ("-7", "3", "-1"),
        ("7", "-3", "1"),
        ("7.5", "2", "1.5"),
        ("1", "10", "1"),
        ("1E+40", "7", "4"),
        ("5", "0", "NaN"),
        ("5", "Infinity", "5"),
    ];
    for (a, b, expected) in rows {
        assert_eq!(show(rem(d(a), d(b))), expected, "{a} % {b}");
    }
}

#[test]
fn decimal_conversions() {
    assert_eq!(show(from_i64(-42)), "-42");
    assert_eq!(show(from_i64(i64::MIN)), "-9223372036854775808");
    assert_eq!(show(from_f64(0.5)), "0.5");
    assert_eq!(show(from_f64(3.0)), "3");
    assert_eq!(show(from_f64(0.1)), "0.1000000000000000055511151231257827");
    assert_eq!(show(from_f64(-0.0)), "-0");
    assert_eq!(show(from_f64(1e20)), "100000000000000000000");
    assert_eq!(show(from_f64(f64::INFINITY)), "Infinity");
    assert_eq!(show(from_f64_15(0.1)), "0.100000000000000");
    assert_eq!(show(from_f64_15(2.5)), "2.50000000000000");
    assert_eq!(show(from_f64_15(-3.0)), "-3.00000000000000");
    assert_eq!(show(from_f64_15(1e20)), "1.00000000000000E+20");
    assert_eq!(show(from_f64_15(0.9999999999999994)), "0.999999999999999");
    assert_eq!(show(from_f64_15(0.99999999999999995)), "1.00000000000000");
    assert_eq!(show(from_f64_15(123_456_789.123_456_79)), "123456789.123457");
    assert_eq!(show(from_f64_15(0.0)), "0");
    assert_eq!(show(from_f64_15(f64::NAN)), "NaN");
    assert_eq!(to_f64(d("0.1")), 0.1);
    assert_eq!(to_f64(d("-2.5E+3")), -2500.0);
    assert_eq!(to_f64(d("1E+400")), f64::INFINITY);
    assert!(to_f64(d("NaN")).is_nan());
    assert_eq!(to_i64(d("2.5")), Some(2));
    assert_eq!(to_i64(d("3.5")), Some(4));
    assert_eq!(to_i64(d("-2.51")), Some(-3));
    assert_eq!(to_i64(d("1E+2")), Some(100));
    assert_eq!(to_i64(d("1E+30")), None);
    assert_eq!(to_i64(d("-9223372036854775808")), Some(i64::MIN));
    assert_eq!(to_i64(d("Infinity")), None);
    assert!(is_zero(d("-0E+5")));
    assert_eq!(show(abs(d("-1.5"))), "1.5");
    assert_eq!(show(negate(d("1.5"))), "-1.5");
}

mod properties {
    use super::super::*;
    use num_bigint::BigInt;
    use proptest::prelude::*;

    /// A finite decimal: sign, a coefficient of up to 34 digits, a small exponent.
    fn operand() -> impl Strategy<Value = (bool, u128, i32)> {
        let coefficient = prop_oneof![0u128..1000, 0u128..10u128.pow(20), 0u128..10u128.pow(34)];
        (any::<bool>(), coefficient, -40i32..40)
    }

    fn make((negative, coefficient, exponent): (bool, u128, i32)) -> Decimal128 {
        encode(negative, coefficient, i64::from(exponent))
    }

    fn signed(negative: bool, coefficient: u128) -> BigInt {
        let c = BigInt::from(coefficient);
        if negative { -c } else { c }
    }

    fn pow10(n: i32) -> BigInt {
        BigInt::from(10u32).pow(u32::try_from(n).unwrap())
    }

    /// The decimal with this exact value and exponent, when the coefficient fits.
    fn exact(value: &BigInt, exponent: i32) -> Option<Decimal128> {
        if value.magnitude() >= pow10(34).magnitude() {
            return None;
        }
        Some(format!("{value}E{exponent}").parse().unwrap())
    }

    proptest! {
        /// A sum or product that fits 34 digits is exact, at the preferred exponent.
        #[test]
        fn decimal_exact_sums_and_products(a in operand(), b in operand()) {
            let (x, y) = (make(a), make(b));
            let e = a.2.min(b.2);
            let sum = signed(a.0, a.1) * pow10(a.2 - e) + signed(b.0, b.1) * pow10(b.2 - e);
            if let Some(expected) = exact(&sum, e) {
                let got = add(x, y);
                // The sign of a zero sum is checked by the table tests.
                if sum != BigInt::from(0) {
                    prop_assert_eq!(got.to_string(), expected.to_string());
                }
            }
            let product = signed(a.0, a.1) * signed(b.0, b.1);
            if let Some(expected) = exact(&product, a.2 + b.2)
                && product != BigInt::from(0)
            {
                prop_assert_eq!(mul(x, y).to_string(), expected.to_string());
            }
        }

        /// A quotient is within half a unit in its last place of the exact value.
        #[test]
        fn decimal_quotients_are_correctly_rounded(a in operand(), b in operand()) {
            prop_assume!(a.1 != 0 && b.1 != 0);
            let q = div(make(a), make(b));
            let Decimal::Finite { negative, coefficient, exponent } = decode_decimal(q) else {
                return Err(TestCaseError::fail("finite quotient"));
            };
            prop_assert!(coefficient < 10u128.pow(34));
            let m = a.2.min(exponent + b.2);
            let lhs = signed(a.0, a.1) * pow10(a.2 - m)
                - signed(negative, coefficient) * signed(b.0, b.1) * pow10(exponent + b.2 - m);
            let rhs = BigInt::from(b.1) * pow10(exponent + b.2 - m);
            let twice_error = BigInt::from(2) * BigInt::from(lhs.magnitude().clone());
            prop_assert!(twice_error <= rhs, "{} / {} = {}", make(a), make(b), q);
        }
    }
}
