//! Glob patterns in remote paths, expanded by the client as `hdfs dfs`
//! does (the shell never sees remote names): `*` and `?` within one path
//! component, `[abc]`, `[a-z]`, `[!a]` / `[^a]`, `{a,b}` alternatives, and
//! `\` to take the next character literally.
//!
//! A pattern that matches nothing is an error for that pattern ("no match");
//! a path that names an existing entry literally (a name with `[` in it,
//! say) is taken as it is.

use super::{CliError, CliResult, Failures};
use crate::{Client, Error};

/// Longest brace expansion of one pattern, so `{a,b}{c,d}...` cannot
/// exhaust memory.
const MAX_ALTERNATIVES: usize = 4096;

/// Whether `text` has an unescaped glob character.
pub(crate) fn has_glob(text: &str) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '?' | '[' | '{' => return true,
            _ => {}
        }
    }
    false
}

/// The remote paths `args` name, patterns expanded in name order; a
/// pattern that matches nothing is recorded in `failures`.
pub(crate) async fn expand_all(
    client: &Client,
    args: &[String],
    failures: &mut Failures,
) -> CliResult<Vec<String>> {
    let mut out = Vec::new();
    for a in args {
        match expand(client, a).await {
            Ok(paths) => out.extend(paths),
            Err(e) => failures.note(Err(e))?,
        }
    }
    Ok(out)
}

/// The paths one argument names: itself if it has no glob characters or
/// names an existing entry, else every existing path it matches.
pub(crate) async fn expand(client: &Client, arg: &str) -> CliResult<Vec<String>> {
    if !arg.starts_with('/') {
        return Ok(vec![arg.to_string()]);
    }
    if !has_glob(arg) {
        // `\*` is a literal `*`, unless a name with the backslash exists.
        if arg.contains('\\') && client.status(arg).await.is_err() {
            return Ok(vec![unescape(arg)]);
        }
        return Ok(vec![arg.to_string()]);
    }
    if client.status(arg).await.is_ok() {
        return Ok(vec![arg.to_string()]);
    }
    let mut found = Vec::new();
    for pattern in braces(arg)? {
        let mut prefixes = vec![String::new()];
        let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
        let last_glob = comps.iter().rposition(|c| has_glob(c));
        for comp in &comps {
            let mut next = Vec::new();
            for prefix in &prefixes {
                if has_glob(comp) {
                    let dir = if prefix.is_empty() { "/" } else { prefix };
                    let entries = match client.list(dir).await {
                        Ok(e) => e,
                        Err(Error::NotFound { .. } | Error::NotADirectory { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    for e in entries {
                        // Listing a file gives the file itself: nothing
                        // is below it to match.
                        if e.path != dir && matches(comp, e.name()) {
                            next.push(e.path);
                        }
                    }
                } else {
                    next.push(format!("{prefix}/{}", unescape(comp)));
                }
            }
            prefixes = next;
        }
        // Literal components after the last glob (or no glob but braces):
        // only existing paths count.
        for p in &mut prefixes {
            if p.is_empty() {
                p.push('/');
            }
        }
        if last_glob.is_none_or(|g| g + 1 < comps.len()) {
            let mut existing = Vec::new();
            for p in prefixes {
                match client.status(&p).await {
                    Ok(_) => existing.push(p),
                    Err(Error::NotFound { .. } | Error::NotADirectory { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            prefixes = existing;
        }
        found.extend(prefixes);
    }
    if found.is_empty() {
        return Err(CliError::NoMatch(arg.to_string()));
    }
    // Overlapping alternatives ({a,a*}) name a path once.
    let mut seen = std::collections::HashSet::new();
    found.retain(|p| seen.insert(p.clone()));
    Ok(found)
}

/// The one path `arg` names, for commands that take one (`stat`, `head`,
/// `tail`, `get` to a file): a pattern matching several is an error.
pub(crate) async fn expand_one(client: &Client, arg: &str, command: &str) -> CliResult<String> {
    let mut paths = expand(client, arg).await?;
    match paths.len() {
        1 => Ok(paths.remove(0)),
        n => Err(CliError::Told(format!(
            "{arg}: matches {n} paths; {command} takes one"
        ))),
    }
}

/// The paths `arg` names for a command that creates what does not exist
/// (`touch`, `touchz`): its matches, or, when a pattern matches nothing,
/// the argument itself (as `hdfs dfs -touchz` creates it).
pub(crate) async fn expand_or_literal(client: &Client, arg: &str) -> CliResult<Vec<String>> {
    match expand(client, arg).await {
        Err(CliError::NoMatch(_)) => Ok(vec![arg.to_string()]),
        r => r,
    }
}

/// `\x` to `x`.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// The patterns `{a,b}` alternatives stand for, in order (nested braces
/// too); braces that do not close are an error.
fn braces(pattern: &str) -> CliResult<Vec<String>> {
    let bad = |why: &str| CliError::Usage(format!("invalid pattern '{pattern}': {why}"));
    // The first top-level `{`, and its alternatives.
    let chars: Vec<(usize, char)> = pattern.char_indices().collect();
    let mut escaped = false;
    let mut open = None;
    let mut depth = 0;
    let mut commas = Vec::new();
    let mut close = None;
    for &(at, c) in &chars {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' => {
                if depth == 0 {
                    open = Some(at);
                }
                depth += 1;
            }
            ',' if depth == 1 => commas.push(at),
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    close = Some(at);
                    break;
                }
            }
            _ => {}
        }
    }
    let (Some(open), Some(close)) = (open, close) else {
        if open.is_some() {
            return Err(bad("'{' without '}'"));
        }
        return Ok(vec![pattern.to_string()]);
    };
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut cuts = vec![open];
    cuts.extend(&commas);
    cuts.push(close);
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let alt = &pattern[w[0] + 1..w[1]];
        for rest in braces(&format!("{head}{alt}{tail}"))? {
            out.push(rest);
            if out.len() > MAX_ALTERNATIVES {
                return Err(bad(&format!("more than {MAX_ALTERNATIVES} alternatives")));
            }
        }
    }
    Ok(out)
}

/// Whether `name` matches the one-component pattern `pat`.
fn matches(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    // Iterative with one backtrack point for the last `*` (linear for
    // patterns without several stars, never exponential).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => class(p, pi, n[ni]),
            Some('\\') if pi + 1 < p.len() => (p[pi + 1] == n[ni]).then_some(pi + 2),
            Some(&c) => (c == n[ni]).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `p[at] == '['`; returns the
/// index after the class if it matches. An unclosed `[` is a literal.
fn class(p: &[char], at: usize, c: char) -> Option<usize> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = match p.get(i) {
            None => return (c == '[').then_some(at + 1),
            Some(']') if !first => break,
            Some('\\') => {
                i += 1;
                *p.get(i)?
            }
            Some(&x) => x,
        };
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = p[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
    (hit != negate).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_questions_match_within_a_name() {
        assert!(matches("*", "anything.txt"));
        assert!(matches("*.txt", "a.txt"));
        assert!(!matches("*.txt", "a.txt.gz"));
        assert!(matches("part-?????", "part-00001"));
        assert!(!matches("part-?????", "part-0001"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("**", ""));
        assert!(matches("*a", "aaaa"));
        // No exponential blow-up.
        assert!(!matches("a*a*a*a*a*a*a*a*b", &"a".repeat(64)));
    }

    #[test]
    fn classes_escapes_and_unclosed_brackets() {
        assert!(matches("[ab]x", "bx"));
        assert!(!matches("[ab]x", "cx"));
        assert!(matches("[a-c]", "b"));
        assert!(matches("[!a-c]", "d"));
        assert!(matches("[^a-c]", "d"));
        assert!(!matches("[!a-c]", "a"));
        assert!(matches("[]a]", "]"));
        assert!(matches("x[-]", "x-"));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "a"));
        assert!(matches("a[", "a["));
        assert!(matches("é?", "éü"));
    }

    #[test]
    fn braces_expand_in_order() {
        assert_eq!(braces("/a/{x,y}/z").unwrap(), ["/a/x/z", "/a/y/z"]);
        assert_eq!(braces("/{a,b{1,2}}c").unwrap(), ["/ac", "/b1c", "/b2c"]);
        assert_eq!(braces("/plain").unwrap(), ["/plain"]);
        assert_eq!(braces("/\\{a,b}").unwrap(), ["/\\{a,b}"]);
        assert!(braces("/{a,b").is_err());
        assert!(braces(&"/{a,b,c,d}".repeat(7)).is_err());
    }

    #[test]
    fn only_unescaped_glob_characters_count() {
        assert!(has_glob("/a/*"));
        assert!(has_glob("/a/{b,c}"));
        assert!(!has_glob("/a/b"));
        assert!(!has_glob("/a/\\*"));
        assert_eq!(unescape("a\\*b"), "a*b");
    }
}
