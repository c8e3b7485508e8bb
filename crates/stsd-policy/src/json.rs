//! A small JSON reader that keeps the line/column of every value (serde_json keeps none), rejects
//! duplicate object keys and limits nesting depth, so arbitrary input can neither recurse deeply nor
//! hide a second `Effect` behind the first.

use crate::Position;

/// Deepest nesting accepted; real policies use at most 5 levels.
const MAX_DEPTH: usize = 32;

/// A JSON value with its source span.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub v: JVal,
    pub start: Position,
    /// Position just after the last character of the value.
    pub end: Position,
}

/// JSON value kinds. Numbers keep their source text.
#[derive(Debug, Clone)]
pub(crate) enum JVal {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

impl Node {
    pub fn as_obj(&self) -> Option<&[(String, Node)]> {
        match &self.v {
            JVal::Obj(m) => Some(m),
            _ => None,
        }
    }
}

/// Looks up `key` (exact) in an object's members.
pub(crate) fn get<'a>(obj: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    obj.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Parses a complete document; `None` on any syntax error, duplicate key or excessive depth.
pub(crate) fn parse(text: &str) -> Option<Node> {
    let mut r = Reader {
        s: text.as_bytes(),
        text,
        i: 0,
        line: 1,
        col: 1,
    };
    r.ws();
    let n = r.value(0)?;
    r.ws();
    if r.i != r.s.len() {
        return None;
    }
    Some(n)
}

/// Duplicate keys, in O(n log n) so a document with many keys cannot make parsing quadratic.
fn has_duplicate(members: &[(String, Node)]) -> bool {
    if members.len() <= 8 {
        return members
            .iter()
            .enumerate()
            .any(|(i, (k, _))| members[..i].iter().any(|(m, _)| m == k));
    }
    let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    line: u32,
    col: u32,
}

impl Reader<'_> {
    fn pos(&self) -> Position {
        Position {
            line: self.line,
            column: self.col,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Advances one character (UTF-8 aware), keeping line/column.
    fn bump(&mut self) -> Option<char> {
        let c = self.text.get(self.i..)?.chars().next()?;
        self.i += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.bump();
        }
    }

    fn eat(&mut self, lit: &str) -> Option<()> {
        if self.s.get(self.i..self.i + lit.len())? == lit.as_bytes() {
            for _ in 0..lit.len() {
                self.bump();
            }
            Some(())
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.pos();
        let v = match self.peek()? {
            b'{' => {
                self.bump();
                let mut members: Vec<(String, Node)> = Vec::new();
                self.ws();
                if self.peek()? == b'}' {
                    self.bump();
                } else {
                    loop {
                        self.ws();
                        if self.peek()? != b'"' {
                            return None;
                        }
                        let k = self.string()?;
                        self.ws();
                        self.eat(":")?;
                        self.ws();
                        let v = self.value(depth + 1)?;
                        members.push((k, v));
                        self.ws();
                        match self.bump()? {
                            ',' => continue,
                            '}' => break,
                            _ => return None,
                        }
                    }
                }
                if has_duplicate(&members) {
                    return None;
                }
                JVal::Obj(members)
            }
            b'[' => {
                self.bump();
                let mut items = Vec::new();
                self.ws();
                if self.peek()? == b']' {
                    self.bump();
                } else {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.bump()? {
                            ',' => continue,
                            ']' => break,
                            _ => return None,
                        }
                    }
                }
                JVal::Arr(items)
            }
            b'"' => JVal::Str(self.string()?),
            b't' => {
                self.eat("true")?;
                JVal::Bool(true)
            }
            b'f' => {
                self.eat("false")?;
                JVal::Bool(false)
            }
            b'n' => {
                self.eat("null")?;
                JVal::Null
            }
            b'-' | b'0'..=b'9' => JVal::Num(self.number()?),
            _ => return None,
        };
        Some(Node {
            v,
            start,
            end: self.pos(),
        })
    }

    fn number(&mut self) -> Option<String> {
        let from = self.i;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek()? {
            b'0' => {
                self.bump();
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.bump();
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.bump();
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        Some(self.text.get(from..self.i)?.to_owned())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.bump();
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let c = self.bump()?;
            v = v * 16 + c.to_digit(16)?;
        }
        Some(v)
    }

    fn string(&mut self) -> Option<String> {
        self.eat("\"")?;
        let mut out = String::new();
        loop {
            // Fast path: a run of plain characters (stops at ASCII bytes only, so at a char
            // boundary; holds no newline, so only the column moves).
            let start = self.i;
            while self
                .s
                .get(self.i)
                .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.i += 1;
            }
            if self.i > start {
                let run = self.text.get(start..self.i)?;
                out.push_str(run);
                let n = u32::try_from(run.chars().count()).unwrap_or(u32::MAX);
                self.col = self.col.saturating_add(n);
            }
            let c = self.bump()?;
            match c {
                '"' => return Some(out),
                '\\' => {
                    let e = self.bump()?;
                    let ch = match e {
                        '"' => '"',
                        '\\' => '\\',
                        '/' => '/',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) {
                                self.eat("\\u")?;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                            } else {
                                char::from_u32(hi)?
                            }
                        }
                        _ => return None,
                    };
                    out.push(ch);
                }
                c if (c as u32) < 0x20 => return None,
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_values() {
        let n = parse("{\n  \"a\": [1, \"x\\u00e9\", true, null]\n}").unwrap();
        assert_eq!(n.start, Position { line: 1, column: 1 });
        assert_eq!(n.end, Position { line: 3, column: 2 });
        let m = n.as_obj().unwrap();
        let a = get(m, "a").unwrap();
        assert_eq!(a.start, Position { line: 2, column: 8 });
        match &a.v {
            JVal::Arr(items) => {
                assert!(matches!(&items[1].v, JVal::Str(s) if s == "xé"));
                assert_eq!(items.len(), 4);
            }
            _ => panic!(),
        }
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "{",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\":1,\"a\":2}",
            "01",
            "1.",
            "\"\\x\"",
            "{} x",
            "tru",
            "\"\\ud800\"",
            "\"a\nb\"",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_none());
        assert!(parse("-0.5e+3").is_some());
    }
}
