//! The MODE argument of `dfs chmod`: octal (`755`, `1777`) or symbolic
//! (`u+x`, `go-w`, `a=rX,o+t`), as `hdfs dfs -chmod` and chmod(1) take it.

/// A parsed MODE: applied to each path's current mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModeChange {
    /// `755`: the new mode whatever the old one.
    Absolute(u32),
    /// `u+x,go-w`: clauses applied in order.
    Symbolic(Vec<Clause>),
}

/// One `WHO OP PERMS` step of a symbolic mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clause {
    /// The permission bits the clause may touch (`u` = 0o700, ...).
    who: u32,
    /// `+`, `-` or `=`.
    op: char,
    /// rwx bits in all three classes (masked by `who`).
    bits: u32,
    /// `X`: execute only for directories and files already executable.
    cond_exec: bool,
    /// `t`: the sticky bit.
    sticky: bool,
}

/// Parses MODE; the error says what is wrong with it.
pub(crate) fn parse(text: &str) -> Result<ModeChange, String> {
    let bad = |why: &str| format!("invalid mode '{text}': {why}");
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        if text.bytes().any(|b| b > b'7') {
            return Err(bad("an octal mode has digits 0-7"));
        }
        let mode = u32::from_str_radix(text, 8).map_err(|_| bad("not octal"))?;
        if mode > 0o1777 {
            return Err(bad(
                "at most 1777: the sticky bit and rwx (setuid and setgid are not kept, as HDFS)",
            ));
        }
        return Ok(ModeChange::Absolute(mode));
    }
    let mut clauses = Vec::new();
    for part in text.split(',') {
        let who_len = part
            .find(|c: char| !matches!(c, 'u' | 'g' | 'o' | 'a'))
            .unwrap_or(part.len());
        let (who_text, mut rest) = part.split_at(who_len);
        let who = match who_text {
            "" => 0o7777,
            w => w.chars().fold(0, |acc, c| {
                acc | match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    _ => 0o7777,
                }
            }),
        };
        if rest.is_empty() {
            return Err(bad("expected +, - or = after who (u, g, o, a)"));
        }
        while let Some(op) = rest.chars().next().filter(|c| matches!(c, '+' | '-' | '=')) {
            rest = &rest[1..];
            let perm_len = rest.find(['+', '-', '=']).unwrap_or(rest.len());
            let (perms, tail) = rest.split_at(perm_len);
            rest = tail;
            let mut clause = Clause {
                who,
                op,
                bits: 0,
                cond_exec: false,
                sticky: false,
            };
            for p in perms.chars() {
                match p {
                    'r' => clause.bits |= 0o444,
                    'w' => clause.bits |= 0o222,
                    'x' => clause.bits |= 0o111,
                    'X' => clause.cond_exec = true,
                    't' => clause.sticky = true,
                    other => {
                        return Err(bad(&format!(
                            "'{other}' is not a permission (r, w, x, X, t)"
                        )))
                    }
                }
            }
            clauses.push(clause);
        }
        if !rest.is_empty() {
            return Err(bad(&format!("unexpected '{rest}'")));
        }
    }
    Ok(ModeChange::Symbolic(clauses))
}

impl ModeChange {
    /// The mode a path with `old` mode gets.
    pub(crate) fn apply(&self, old: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            ModeChange::Absolute(m) => return *m,
            ModeChange::Symbolic(c) => c,
        };
        let mut mode = old & 0o7777;
        for c in clauses {
            let mut bits = c.bits;
            if c.cond_exec && (is_dir || mode & 0o111 != 0) {
                bits |= 0o111;
            }
            bits &= c.who & 0o777;
            if c.sticky && c.who & 0o1000 != 0 {
                bits |= 0o1000;
            }
            match c.op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => mode = (mode & !c.who) | bits,
            }
        }
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(mode: &str, old: u32, is_dir: bool) -> u32 {
        parse(mode).unwrap().apply(old, is_dir)
    }

    #[test]
    fn octal_modes_replace_the_old_one() {
        assert_eq!(chmod("755", 0o600, false), 0o755);
        assert_eq!(chmod("1777", 0, true), 0o1777);
        assert_eq!(chmod("0", 0o777, false), 0);
        assert_eq!(chmod("0755", 0, false), 0o755);
        assert!(parse("8").is_err());
        assert!(parse("17777").is_err());
        assert!(parse("4755").is_err(), "no setuid");
        assert!(parse("2755").is_err(), "no setgid");
    }

    #[test]
    fn symbolic_modes_change_what_they_name() {
        assert_eq!(chmod("u+x", 0o644, false), 0o744);
        assert_eq!(chmod("go-w", 0o666, false), 0o644);
        assert_eq!(chmod("a=r", 0o777, false), 0o444);
        assert_eq!(chmod("=rw", 0o1777, false), 0o666);
        assert_eq!(chmod("+x", 0o644, false), 0o755);
        assert_eq!(chmod("u=rwx,g=rx,o=", 0o000, false), 0o750);
        assert_eq!(chmod("o+t", 0o777, true), 0o1777);
        assert_eq!(
            chmod("u+t", 0o777, true),
            0o777,
            "t counts for o and a only"
        );
        assert_eq!(chmod("u-w+x", 0o644, false), 0o544);
        // `=` clears what it names, setuid and setgid included.
        assert_eq!(chmod("a=r", 0o6755, false), 0o444);
        assert_eq!(chmod("u=rw", 0o4755, false), 0o655);
    }

    #[test]
    fn capital_x_is_execute_for_directories_and_executables() {
        assert_eq!(chmod("a+X", 0o644, false), 0o644);
        assert_eq!(chmod("a+X", 0o744, false), 0o755);
        assert_eq!(chmod("a+X", 0o700, true), 0o711);
        assert_eq!(chmod("go=rX", 0o700, true), 0o755);
    }

    #[test]
    fn bad_modes_say_why() {
        for bad in ["", "u", "u+q", "x+r", "rw", "u+r,", "9"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("invalid mode"), "{bad}: {e}");
        }
    }
}
