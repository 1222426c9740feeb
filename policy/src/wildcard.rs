//! Patterns with `*` / `?` wildcards and `${...}` policy variables, and their matching.
//!
//! A policy string is turned into a [`Pattern`], a list of tokens, once at parse time.
//! Before matching, variables are substituted with the request's values; a substituted
//! value is always literal text (a `*` in a user name does not become a wildcard).
//!
//! Matching is the classic single-backtrack glob algorithm: at most `O(pattern × text)`
//! steps, never exponential, whatever the input.

use crate::ConditionValues;

/// One element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A character that must be there as is.
    Lit(char),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters, the empty one included.
    Many,
    /// `${key}`: the (first) value of the request's condition key `key` (lowercased).
    Var(String),
}

/// How a policy string is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (otherwise literal characters).
    pub wildcards: bool,
    /// `${key}` is a policy variable and `${*}`, `${?}`, `${$}` are escapes (policy
    /// version 2012-10-17 only; otherwise they are literal text).
    pub variables: bool,
}

/// A parsed policy string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pub toks: Vec<Tok>,
}

impl Pattern {
    pub fn parse(s: &str, syntax: Syntax) -> Pattern {
        let chars: Vec<char> = s.chars().collect();
        let mut toks = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if syntax.variables && c == '$' && chars.get(i + 1) == Some(&'{') {
                if let Some(len) = chars[i + 2..].iter().position(|&c| c == '}') {
                    let inner: String = chars[i + 2..i + 2 + len].iter().collect();
                    match inner.as_str() {
                        "*" => toks.push(Tok::Lit('*')),
                        "?" => toks.push(Tok::Lit('?')),
                        "$" => toks.push(Tok::Lit('$')),
                        "" => {
                            // `${}` names nothing: keep it as text.
                            toks.extend(['$', '{', '}'].map(Tok::Lit));
                        }
                        key => toks.push(Tok::Var(key.trim().to_lowercase())),
                    }
                    i += len + 3;
                    continue;
                }
            }
            toks.push(match c {
                '*' if syntax.wildcards => Tok::Many,
                '?' if syntax.wildcards => Tok::One,
                c => Tok::Lit(c),
            });
            i += 1;
        }
        Pattern { toks }
    }

    /// Whether the pattern holds any `*` or `?` wildcard.
    pub fn has_wildcard(&self) -> bool {
        self.toks.iter().any(|t| matches!(t, Tok::One | Tok::Many))
    }

    /// Whether the pattern holds any policy variable.
    pub fn has_variable(&self) -> bool {
        self.toks.iter().any(|t| matches!(t, Tok::Var(_)))
    }

    /// The keys of the variables the pattern uses.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.toks.iter().filter_map(|t| match t {
            Tok::Var(k) => Some(k.as_str()),
            _ => None,
        })
    }

    /// The pattern with its variables replaced by literal text from `vars`; `None` when
    /// a variable has no value. `lowercase` lowercases every literal (for
    /// case-insensitive comparisons).
    pub fn resolve(&self, vars: &ConditionValues, lowercase: bool) -> Option<Vec<Tok>> {
        let mut out = Vec::with_capacity(self.toks.len());
        let push_lit = |out: &mut Vec<Tok>, c: char| {
            if lowercase {
                out.extend(c.to_lowercase().map(Tok::Lit));
            } else {
                out.push(Tok::Lit(c));
            }
        };
        for t in &self.toks {
            match t {
                Tok::Lit(c) => push_lit(&mut out, *c),
                Tok::Var(k) => {
                    let v = vars.get(k)?.first()?;
                    for c in v.chars() {
                        push_lit(&mut out, c);
                    }
                }
                other => out.push(other.clone()),
            }
        }
        Some(out)
    }

    /// Resolves the variables and matches `text` (case-sensitively, or comparing
    /// lowercased forms when `ignore_case`). `false` when a variable has no value.
    pub fn matches(&self, text: &str, vars: &ConditionValues, ignore_case: bool) -> bool {
        let Some(toks) = self.resolve(vars, ignore_case) else {
            return false;
        };
        if ignore_case {
            let lower: Vec<char> = text.to_lowercase().chars().collect();
            glob(&toks, &lower)
        } else {
            let chars: Vec<char> = text.chars().collect();
            glob(&toks, &chars)
        }
    }

    /// The pattern as literal text when it holds no wildcard (variables resolved).
    #[cfg(test)]
    pub fn literal(&self, vars: &ConditionValues) -> Option<String> {
        let toks = self.resolve(vars, false)?;
        toks.iter()
            .map(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    }
}

/// Matches `text` against resolved tokens (no [`Tok::Var`] left; one would match
/// nothing). `*` may match the empty run; `?` exactly one character.
pub(crate) fn glob(toks: &[Tok], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where the last `*` was, and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::One) => {
                p += 1;
                t += 1;
            }
            Some(Tok::Lit(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Tok::Many) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    // Let the last `*` swallow one more character and retry.
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Many)
}

/// Whether some string equal to `prefix`, or starting with `prefix` followed by
/// `sep`, matches `toks` (with variables read as `*`). Used to check that a bucket
/// policy's resource can address its bucket: `prefix` is the bucket name and `sep` is
/// `/`.
pub(crate) fn can_match_prefix(toks: &[Tok], prefix: &str, sep: char) -> bool {
    let n = toks.len();
    let is_many = |i: usize| matches!(toks.get(i), Some(Tok::Many | Tok::Var(_)));
    // The set of pattern positions reachable after the characters read so far.
    let close = |set: &mut Vec<bool>| {
        for i in 0..n {
            if set[i] && is_many(i) {
                set[i + 1] = true;
            }
        }
    };
    let mut set = vec![false; n + 1];
    set[0] = true;
    close(&mut set);
    let step = |set: &[bool], c: char| {
        let mut next = vec![false; n + 1];
        for i in 0..n {
            if !set[i] {
                continue;
            }
            match &toks[i] {
                Tok::Lit(l) if *l == c => next[i + 1] = true,
                Tok::Lit(_) => {}
                Tok::One => next[i + 1] = true,
                Tok::Many | Tok::Var(_) => next[i] = true,
            }
        }
        next
    };
    for c in prefix.chars() {
        set = step(&set, c);
        close(&mut set);
        if !set.iter().any(|&b| b) {
            return false;
        }
    }
    if set[n] {
        return true;
    }
    // After the separator any rest can follow: every pattern matches some string.
    let after = step(&set, sep);
    after.iter().any(|&b| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WILD: Syntax = Syntax {
        wildcards: true,
        variables: true,
    };

    fn m(p: &str, t: &str) -> bool {
        Pattern::parse(p, WILD).matches(t, &ConditionValues::new(), false)
    }

    #[test]
    fn glob_basics() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at/all"));
        assert!(m("a*c", "abc"));
        assert!(m("a*c", "ac"));
        assert!(m("a*c", "abxbc"));
        assert!(!m("a*c", "abcd"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("*.txt", "dir/file.txt"));
        assert!(!m("abc", "ABC"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("**?", "x"));
        assert!(!m("**?", ""));
    }

    #[test]
    fn glob_does_not_blow_up() {
        let p = "a*".repeat(200) + "b";
        let t = "a".repeat(5000);
        assert!(!m(&p, &t));
    }

    #[test]
    fn ignore_case() {
        let p = Pattern::parse("S3:Get*", WILD);
        assert!(p.matches("s3:getobject", &ConditionValues::new(), true));
        assert!(!p.matches("s3:getobject", &ConditionValues::new(), false));
    }

    #[test]
    fn variables_and_escapes() {
        let mut vars = ConditionValues::new();
        vars.insert("aws:username", "a*b");
        let p = Pattern::parse("home/${aws:UserName}/*", WILD);
        assert!(p.has_variable());
        assert_eq!(p.variables().collect::<Vec<_>>(), ["aws:username"]);
        assert!(p.matches("home/a*b/x", &vars, false));
        // The substituted `*` is literal.
        assert!(!p.matches("home/aXb/x", &vars, false));
        // Unresolved: no match.
        assert!(!p.matches("home/a*b/x", &ConditionValues::new(), false));

        let e = Pattern::parse("${*}${?}${$}", WILD);
        assert_eq!(e.literal(&vars).as_deref(), Some("*?$"));
        assert!(!e.has_wildcard());
        let unterminated = Pattern::parse("a${b", WILD);
        assert_eq!(unterminated.literal(&vars).as_deref(), Some("a${b"));
        let empty = Pattern::parse("${}", WILD);
        assert_eq!(empty.literal(&vars).as_deref(), Some("${}"));
        let off = Pattern::parse(
            "${aws:username}*",
            Syntax {
                wildcards: false,
                variables: false,
            },
        );
        assert_eq!(off.literal(&vars).as_deref(), Some("${aws:username}*"));
    }

    #[test]
    fn prefix_reachability() {
        let can = |p: &str| can_match_prefix(&Pattern::parse(p, WILD).toks, "bucket", '/');
        assert!(can("bucket"));
        assert!(can("bucket/*"));
        assert!(can("bucket/key"));
        assert!(can("b*"));
        assert!(can("*"));
        assert!(can("buck?t/x"));
        assert!(can("*/photos/*"));
        assert!(can("${aws:username}/x"));
        assert!(!can("other/*"));
        assert!(!can("bucketx"));
        assert!(!can("bucket-*"));
        assert!(!can("bucke"));
        // `?` may be the `/` of an (empty) key.
        assert!(can("bucket?"));
        assert!(can("bucket??"));
        assert!(can("bucket?x"));
        assert!(!can("bucketx?"));
        assert!(!can("bucke/*"));
        assert!(can("bucket?*"));
        assert!(!can("bucketx/*"));
    }
}
