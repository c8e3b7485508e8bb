//! The Coral validation grammar used by STS and IAM:
//! `N validation error(s) detected: Value '<v>' at '<member>' failed to satisfy constraint: Member must <rule>`,
//! clauses joined with `; `, no trailing period. STS echoes the value; IAM omits it (`Value at '<member>'`).

use crate::error::ApiError;

/// Whether messages echo the offending value (STS) or omit it (IAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `Value '899' at 'durationSeconds' ...` (STS).
    EchoValue,
    /// `Value at 'userName' ...` (IAM).
    OmitValue,
}

/// Collects constraint violations of one request, then turns them into one `ValidationError`.
#[derive(Debug)]
pub struct Violations {
    style: Style,
    clauses: Vec<String>,
}

impl Violations {
    /// No violations yet.
    pub fn new(style: Style) -> Self {
        Violations {
            style,
            clauses: Vec::new(),
        }
    }

    /// Records that `member` (lowerCamel name) with `value` breaks `rule` (the text after `Member must `).
    pub fn push(&mut self, member: &str, value: &str, rule: &str) {
        let clause = match self.style {
            Style::EchoValue => format!(
                "Value '{value}' at '{member}' failed to satisfy constraint: Member must {rule}"
            ),
            Style::OmitValue => {
                format!("Value at '{member}' failed to satisfy constraint: Member must {rule}")
            }
        };
        self.clauses.push(clause);
    }

    /// Checks `min <= value <= max`.
    pub fn int_range(&mut self, member: &str, value: i64, min: Option<i64>, max: Option<i64>) {
        if let Some(min) = min
            && value < min
        {
            self.push(
                member,
                &value.to_string(),
                &format!("have value greater than or equal to {min}"),
            );
        }
        if let Some(max) = max
            && value > max
        {
            self.push(
                member,
                &value.to_string(),
                &format!("have value less than or equal to {max}"),
            );
        }
    }

    /// Checks the length (in characters) of `value`.
    pub fn length(&mut self, member: &str, value: &str, min: Option<usize>, max: Option<usize>) {
        let len = value.chars().count();
        if let Some(min) = min
            && len < min
        {
            self.push(
                member,
                value,
                &format!("have length greater than or equal to {min}"),
            );
        }
        if let Some(max) = max
            && len > max
        {
            self.push(
                member,
                value,
                &format!("have length less than or equal to {max}"),
            );
        }
    }

    /// Checks that every character of `value` satisfies `allowed`; `pattern` is the model's pattern text.
    /// With `non_empty`, the empty string fails too (patterns ending in `+`).
    pub fn pattern(
        &mut self,
        member: &str,
        value: &str,
        pattern: &str,
        non_empty: bool,
        allowed: impl Fn(char) -> bool,
    ) {
        if (non_empty && value.is_empty()) || !value.chars().all(allowed) {
            self.push(
                member,
                value,
                &format!("satisfy regular expression pattern: {pattern}"),
            );
        }
    }

    /// Records a missing required member (`Value null at '<member>' ...`, in both styles).
    pub fn not_null(&mut self, member: &str) {
        self.clauses.push(format!(
            "Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ));
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// `Ok` when nothing was recorded, else one `ValidationError` listing every clause.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.clauses.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!(
                "1 validation error detected: {}",
                self.clauses[0]
            ))),
            n => Err(ApiError::validation(format!(
                "{n} validation errors detected: {}",
                self.clauses.join("; ")
            ))),
        }
    }
}

/// `\w` as Java regexes define it by default: ASCII letters, digits and `_`.
pub fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parses an integer parameter as Coral's query deserialiser does (optional sign, ASCII digits, 32-bit range).
/// A value that is not an integer is a 400 `MalformedInput` naming the member.
pub fn parse_int(member: &str, raw: &str) -> Result<i64, ApiError> {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_an_integer(member, raw));
    }
    raw.parse::<i32>()
        .map(i64::from)
        .map_err(|_| not_an_integer(member, raw))
}

fn not_an_integer(member: &str, raw: &str) -> ApiError {
    ApiError::malformed_input(format!(
        "Value '{raw}' at '{member}' failed to parse: Member must be an integer between -2147483648 and 2147483647"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_clause_matches_aws_capture() {
        let mut v = Violations::new(Style::EchoValue);
        v.int_range("durationSeconds", 20, Some(900), Some(129600));
        let e = v.finish().unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.code, "ValidationError");
        assert_eq!(
            e.message,
            "1 validation error detected: Value '20' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        );
    }

    #[test]
    fn several_clauses_are_counted_and_joined() {
        let mut v = Violations::new(Style::EchoValue);
        v.int_range("durationSeconds", 345600, Some(900), Some(129600));
        v.length("tokenCode", "11111111111111", Some(6), Some(6));
        let e = v.finish().unwrap_err();
        assert_eq!(
            e.message,
            "2 validation errors detected: Value '345600' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 129600; Value '11111111111111' at 'tokenCode' failed to satisfy constraint: Member must have length less than or equal to 6"
        );
    }

    #[test]
    fn iam_style_omits_value() {
        let mut v = Violations::new(Style::OmitValue);
        v.pattern("userName", "a b", "[\\w+=,.@-]+", true, |c| {
            is_word(c) || "+=,.@-".contains(c)
        });
        assert_eq!(
            v.finish().unwrap_err().message,
            "1 validation error detected: Value at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        );
    }

    #[test]
    fn empty_is_ok() {
        assert!(Violations::new(Style::EchoValue).finish().is_ok());
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int("durationSeconds", "900").unwrap(), 900);
        assert_eq!(parse_int("durationSeconds", "+900").unwrap(), 900);
        assert_eq!(parse_int("durationSeconds", "-5").unwrap(), -5);
        for bad in ["abc", "1.5", "9e2", "", "-", " 900", "99999999999"] {
            let e = parse_int("durationSeconds", bad).unwrap_err();
            assert_eq!(e.code, "MalformedInput", "{bad}");
            assert!(e.message.contains("'durationSeconds'"), "{}", e.message);
        }
    }
}
