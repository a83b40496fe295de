//! The names of the operator families that live in their own modules (strings, numbers,
//! conversions, sets, objects, array sequences, BSON sizes and timestamps): one enum per
//! family, so the expression tree can name an operator without importing its evaluator.

macro_rules! family {
    ($(#[$doc:meta])* $family:ident { $($(#[$vdoc:meta])* $variant:ident = $name:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $family {
            $($(#[$vdoc])* $variant,)*
        }

        impl $family {
            /// The operator spelled `name` (with its `$`), if it belongs to this family.
            pub(super) fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The operator's name as the user spells it.
            pub(super) fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

family! {
    /// The string operators (`string`).
    StringOp {
        /// `$strLenBytes`.
        StrLenBytes = "$strLenBytes",
        /// `$strLenCP`.
        StrLenCP = "$strLenCP",
        /// `$substr`, the old name of `$substrBytes`.
        Substr = "$substr",
        /// `$substrBytes`.
        SubstrBytes = "$substrBytes",
        /// `$substrCP`.
        SubstrCP = "$substrCP",
        /// `$indexOfBytes`.
        IndexOfBytes = "$indexOfBytes",
        /// `$indexOfCP`.
        IndexOfCP = "$indexOfCP",
        /// `$split`.
        Split = "$split",
        /// `$strcasecmp`.
        Strcasecmp = "$strcasecmp",
        /// `$trim`: `[input, chars?]`.
        Trim = "$trim",
        /// `$ltrim`: `[input, chars?]`.
        LTrim = "$ltrim",
        /// `$rtrim`: `[input, chars?]`.
        RTrim = "$rtrim",
        /// `$replaceOne`: `[input, find, replacement]`.
        ReplaceOne = "$replaceOne",
        /// `$replaceAll`: `[input, find, replacement]`.
        ReplaceAll = "$replaceAll",
        /// `$regexMatch`: `[input, regex, options?]`.
        RegexMatch = "$regexMatch",
        /// `$regexFind`: `[input, regex, options?]`.
        RegexFind = "$regexFind",
        /// `$regexFindAll`: `[input, regex, options?]`.
        RegexFindAll = "$regexFindAll",
    }
}

family! {
    /// The numeric operators beyond the four operations (`math`).
    MathOp {
        /// `$ceil`.
        Ceil = "$ceil",
        /// `$floor`.
        Floor = "$floor",
        /// `$round`: `[number, place?]`.
        Round = "$round",
        /// `$trunc`: `[number, place?]`.
        Trunc = "$trunc",
        /// `$sqrt`.
        Sqrt = "$sqrt",
        /// `$pow`.
        Pow = "$pow",
        /// `$exp`.
        Exp = "$exp",
        /// `$ln`.
        Ln = "$ln",
        /// `$log`: `[number, base]`.
        Log = "$log",
        /// `$log10`.
        Log10 = "$log10",
        /// `$sin`.
        Sin = "$sin",
        /// `$cos`.
        Cos = "$cos",
        /// `$tan`.
        Tan = "$tan",
        /// `$asin`.
        Asin = "$asin",
        /// `$acos`.
        Acos = "$acos",
        /// `$atan`.
        Atan = "$atan",
        /// `$atan2`.
        Atan2 = "$atan2",
        /// `$sinh`.
        Sinh = "$sinh",
        /// `$cosh`.
        Cosh = "$cosh",
        /// `$tanh`.
        Tanh = "$tanh",
        /// `$asinh`.
        Asinh = "$asinh",
        /// `$acosh`.
        Acosh = "$acosh",
        /// `$atanh`.
        Atanh = "$atanh",
        /// `$degreesToRadians`.
        DegreesToRadians = "$degreesToRadians",
        /// `$radiansToDegrees`.
        RadiansToDegrees = "$radiansToDegrees",
        /// `$bitAnd`.
        BitAnd = "$bitAnd",
        /// `$bitOr`.
        BitOr = "$bitOr",
        /// `$bitXor`.
        BitXor = "$bitXor",
        /// `$bitNot`.
        BitNot = "$bitNot",
    }
}

family! {
    /// The type conversions (`convert`).
    ConvertOp {
        /// `$convert`: `[input, to, onError?, onNull?]`, absent options as `$$REMOVE`-free
        /// slots (see the parser).
        Convert = "$convert",
        /// `$toBool`.
        ToBool = "$toBool",
        /// `$toInt`.
        ToInt = "$toInt",
        /// `$toLong`.
        ToLong = "$toLong",
        /// `$toDouble`.
        ToDouble = "$toDouble",
        /// `$toDecimal`.
        ToDecimal = "$toDecimal",
        /// `$toString`.
        ToString = "$toString",
        /// `$toObjectId`.
        ToObjectId = "$toObjectId",
        /// `$toDate`.
        ToDate = "$toDate",
        /// `$isNumber`.
        IsNumber = "$isNumber",
    }
}

family! {
    /// The set operators (`set`).
    SetOp {
        /// `$setUnion`.
        Union = "$setUnion",
        /// `$setIntersection`.
        Intersection = "$setIntersection",
        /// `$setDifference`.
        Difference = "$setDifference",
        /// `$setEquals`.
        Equals = "$setEquals",
        /// `$setIsSubset`.
        IsSubset = "$setIsSubset",
        /// `$allElementsTrue`.
        AllElementsTrue = "$allElementsTrue",
        /// `$anyElementTrue`.
        AnyElementTrue = "$anyElementTrue",
    }
}

family! {
    /// The object operators beyond `$getField`, `$setField` and `$unsetField` (`object`).
    ObjectOp {
        /// `$objectToArray`.
        ObjectToArray = "$objectToArray",
        /// `$arrayToObject`.
        ArrayToObject = "$arrayToObject",
        /// `$mergeObjects`.
        MergeObjects = "$mergeObjects",
    }
}

family! {
    /// The array operators that reorder, search or build arrays (`sequence`).
    SequenceOp {
        /// `$zip`: `[inputs, useLongestLength, defaults?]`.
        Zip = "$zip",
        /// `$range`.
        Range = "$range",
        /// `$reverseArray`.
        ReverseArray = "$reverseArray",
        /// `$indexOfArray`.
        IndexOfArray = "$indexOfArray",
        /// `$sortArray`: `[input, sortBy]`.
        SortArray = "$sortArray",
    }
}

family! {
    /// BSON sizes, timestamp parts and the hashed index key (`misc`).
    MiscOp {
        /// `$bsonSize`.
        BsonSize = "$bsonSize",
        /// `$binarySize`.
        BinarySize = "$binarySize",
        /// `$tsSecond`.
        TsSecond = "$tsSecond",
        /// `$tsIncrement`.
        TsIncrement = "$tsIncrement",
        /// `$toHashedIndexKey`.
        ToHashedIndexKey = "$toHashedIndexKey",
    }
}

family! {
    /// The accumulators used as expressions (`accumulate`).
    AccumulateOp {
        /// `$sum`.
        Sum = "$sum",
        /// `$avg`.
        Avg = "$avg",
        /// `$min`.
        Min = "$min",
        /// `$max`.
        Max = "$max",
        /// `$stdDevPop`.
        StdDevPop = "$stdDevPop",
        /// `$stdDevSamp`.
        StdDevSamp = "$stdDevSamp",
        /// `$firstN`: `[n, input]`.
        FirstN = "$firstN",
        /// `$lastN`: `[n, input]`.
        LastN = "$lastN",
        /// `$maxN`: `[n, input]`.
        MaxN = "$maxN",
        /// `$minN`: `[n, input]`.
        MinN = "$minN",
        /// `$median`: `[input]`.
        Median = "$median",
        /// `$percentile`: `[input, p...]` (the `p` values as literals).
        Percentile = "$percentile",
    }
}
