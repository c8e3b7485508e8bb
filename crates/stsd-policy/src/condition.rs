//! Condition operators: names, compiled values and evaluation with AWS's missing-key rules
//! (reference §1.3).

use crate::pattern::{ArnPattern, Pattern};
use crate::value::{Cidr, Context, Value};

/// Comparison of the Numeric and Date families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn test<T: PartialOrd>(self, req: T, pol: T) -> bool {
        match self {
            Cmp::Eq => req == pol,
            Cmp::Lt => req < pol,
            Cmp::Le => req <= pol,
            Cmp::Gt => req > pol,
            Cmp::Ge => req >= pol,
        }
    }
}

/// Operator family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    StringEq,
    StringEqIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// `ForAnyValue:` / `ForAllValues:` qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Qual {
    Single,
    Any,
    All,
}

/// A parsed operator name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Op {
    pub family: Family,
    pub negated: bool,
    pub if_exists: bool,
    pub qual: Qual,
}

impl Op {
    /// Parses `ForAnyValue:StringLikeIfExists` and the like; `None` for an unknown operator.
    pub fn parse(name: &str) -> Option<Op> {
        let (qual, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Qual::Any, r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Qual::All, r)
        } else {
            (Qual::Single, name)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        use Family::*;
        let (family, negated) = match base {
            "StringEquals" => (StringEq, false),
            "StringNotEquals" => (StringEq, true),
            "StringEqualsIgnoreCase" => (StringEqIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (StringEqIgnoreCase, true),
            "StringLike" => (StringLike, false),
            "StringNotLike" => (StringLike, true),
            "NumericEquals" => (Numeric(Cmp::Eq), false),
            "NumericNotEquals" => (Numeric(Cmp::Eq), true),
            "NumericLessThan" => (Numeric(Cmp::Lt), false),
            "NumericLessThanEquals" => (Numeric(Cmp::Le), false),
            "NumericGreaterThan" => (Numeric(Cmp::Gt), false),
            "NumericGreaterThanEquals" => (Numeric(Cmp::Ge), false),
            "DateEquals" => (Date(Cmp::Eq), false),
            "DateNotEquals" => (Date(Cmp::Eq), true),
            "DateLessThan" => (Date(Cmp::Lt), false),
            "DateLessThanEquals" => (Date(Cmp::Le), false),
            "DateGreaterThan" => (Date(Cmp::Gt), false),
            "DateGreaterThanEquals" => (Date(Cmp::Ge), false),
            "Bool" => (Bool, false),
            "BinaryEquals" => (Binary, false),
            "IpAddress" => (Ip, false),
            "NotIpAddress" => (Ip, true),
            "ArnEquals" | "ArnLike" => (Arn, false),
            "ArnNotEquals" | "ArnNotLike" => (Arn, true),
            "Null" => (Null, false),
            _ => return None,
        };
        Some(Op {
            family,
            negated,
            if_exists,
            qual,
        })
    }
}

/// Compiled policy values of one condition.
#[derive(Clone, Debug)]
pub(crate) enum Vals {
    /// String families (wildcards only for `Like`, variables when the version allows).
    Str(Box<[Pattern]>),
    Num(Box<[f64]>),
    /// (Unix seconds, nanoseconds).
    Date(Box<[(i64, u32)]>),
    /// `None`: a value that is neither true nor false (never matches).
    Bool(Box<[Option<bool>]>),
    Bin(Box<[Vec<u8>]>),
    Ip(Box<[Cidr]>),
    Arn(Box<[ArnPattern]>),
}

/// One `operator: {key: values}` entry.
#[derive(Clone, Debug)]
pub(crate) struct Cond {
    pub op: Op,
    pub key: Box<str>,
    pub vals: Vals,
}

impl Cond {
    /// Does one request value match any policy value (the positive test)?
    fn value_matches(&self, v: &Value, ctx: &Context) -> bool {
        match &self.vals {
            Vals::Str(pats) => {
                let ci = self.op.family == Family::StringEqIgnoreCase;
                let text = v.as_text();
                pats.iter().any(|p| p.matches(&text, ci, ctx) == Some(true))
            }
            Vals::Num(ns) => {
                let Family::Numeric(cmp) = self.op.family else {
                    return false;
                };
                v.as_num()
                    .is_some_and(|r| ns.iter().any(|p| cmp.test(r, *p)))
            }
            Vals::Date(ds) => {
                let Family::Date(cmp) = self.op.family else {
                    return false;
                };
                v.as_date()
                    .is_some_and(|r| ds.iter().any(|p| cmp.test(r, *p)))
            }
            Vals::Bool(bs) => v.as_bool().is_some_and(|r| bs.contains(&Some(r))),
            Vals::Bin(bs) => match v {
                Value::Binary(b) => bs.iter().any(|p| p == b),
                Value::Str(s) => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .is_ok_and(|b| bs.contains(&b))
                }
                _ => false,
            },
            Vals::Ip(cs) => v
                .as_ip()
                .is_some_and(|ip| cs.iter().any(|c| c.contains(ip))),
            Vals::Arn(ps) => {
                let text = v.as_text();
                ps.iter().any(|p| p.matches(&text, ctx) == Some(true))
            }
        }
    }

    /// Evaluates the condition against the request context.
    pub fn eval(&self, ctx: &Context) -> bool {
        let present = ctx.present(&self.key);
        if self.op.family == Family::Null {
            // "true": the key must be absent; "false": present. Several values: any.
            let Vals::Bool(bs) = &self.vals else {
                return false;
            };
            return bs.iter().any(|b| *b == Some(present.is_none()));
        }
        let Some(vs) = present else {
            return self.op.if_exists
                || match self.op.qual {
                    Qual::All => true,
                    Qual::Any => false,
                    Qual::Single => self.op.negated,
                };
        };
        let neg = self.op.negated;
        match self.op.qual {
            Qual::Single => vs.iter().any(|v| self.value_matches(v, ctx)) != neg,
            Qual::Any => vs.iter().any(|v| self.value_matches(v, ctx) != neg),
            Qual::All => vs.iter().all(|v| self.value_matches(v, ctx) != neg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        let op = Op::parse("ForAnyValue:StringNotLikeIfExists");
        assert_eq!(
            op,
            Some(Op {
                family: Family::StringLike,
                negated: true,
                if_exists: true,
                qual: Qual::Any
            })
        );
        assert!(Op::parse("StringEqual").is_none());
        assert!(Op::parse("stringequals").is_none());
        assert!(Op::parse("ForAnyValues:StringEquals").is_none());
        assert_eq!(Op::parse("ArnEquals").map(|o| o.family), Some(Family::Arn));
    }
}
