//! The Dockerfile, as the classic builder reads it: parser directives (`# escape=`), comments,
//! line continuations, instructions with their `--flags`, JSON (exec) or shell forms, and
//! `$VAR` / `${VAR:-default}` / `${VAR:+alt}` substitution. Errors name the line.

/// One instruction, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Instruction {
    pub line: usize,
    /// Upper-cased (`RUN`).
    pub keyword: String,
    /// `--name=value` flags before the arguments (`COPY --from=build`).
    pub flags: Vec<(String, String)>,
    /// The arguments as written (continuations joined).
    pub rest: String,
    /// The instruction as Docker prints it in `Step N/M : ...`.
    pub original: String,
}

/// Why a Dockerfile cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("Dockerfile parse error line {line}: unknown instruction: {word}")]
    Unknown { line: usize, word: String },
    #[error("Dockerfile parse error line {line}: {reason}")]
    Invalid { line: usize, reason: String },
    #[error("the Dockerfile cannot be empty")]
    Empty,
    #[error(
        "no build stage in current context: a Dockerfile starts with FROM (ARG may come before it)"
    )]
    NoFrom,
}

/// The most instructions a Dockerfile may hold: each makes an image whose config repeats the
/// history of all before it.
pub(super) const MAX_INSTRUCTIONS: usize = 1000;

/// The longest an instruction may grow once its variables are substituted.
pub(super) const MAX_SUBSTITUTED: usize = 1 << 20;

/// The instructions of the classic builder.
const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Instructions that take `--flags`, and which.
fn allowed_flags(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "FROM" => &["platform"],
        "COPY" => &["from", "chown", "chmod"],
        "ADD" => &["chown", "chmod"],
        _ => &[],
    }
}

/// Parses `text` into instructions.
pub(super) fn parse(text: &str) -> Result<Vec<Instruction>, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    // Parser directives: `# key=value` lines at the very top, before any other line.
    let mut first = 0;
    for l in &lines {
        let Some(d) = l.trim().strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = d.split_once('=') else {
            break;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "escape" => match v.trim() {
                "`" => escape = '`',
                "\\" => escape = '\\',
                other => {
                    return Err(ParseError::Invalid {
                        line: first + 1,
                        reason: format!("invalid escape token {other:?}: use \\ or `"),
                    });
                }
            },
            "syntax" => {}
            _ => break,
        }
        first += 1;
    }
    let mut out = Vec::new();
    let mut i = first;
    while i < lines.len() {
        let start = i;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Joined while the line ends with the escape character; comment and empty lines
        // inside a continuation are dropped, as Docker does.
        let mut joined = String::new();
        let mut cur = line.trim_end().to_owned();
        loop {
            match cur.strip_suffix(escape) {
                Some(head) => {
                    joined.push_str(head);
                    let mut next = None;
                    while i < lines.len() {
                        let l = lines[i];
                        i += 1;
                        let t = l.trim_start();
                        if t.is_empty() || t.starts_with('#') {
                            continue;
                        }
                        // Kept as written (Docker keeps a continuation's indent).
                        next = Some(l.trim_end().to_owned());
                        break;
                    }
                    match next {
                        Some(n) => cur = n,
                        None => break,
                    }
                }
                None => {
                    joined.push_str(&cur);
                    break;
                }
            }
        }
        out.push(instruction(start + 1, &joined)?);
    }
    if out.is_empty() {
        return Err(ParseError::Empty);
    }
    if out.len() > MAX_INSTRUCTIONS {
        return Err(ParseError::Invalid {
            line: out[MAX_INSTRUCTIONS].line,
            reason: format!(
                "a Dockerfile may hold {MAX_INSTRUCTIONS} instructions on this VCH (each makes an image)"
            ),
        });
    }
    match out.iter().find(|i| i.keyword != "ARG") {
        Some(i) if i.keyword == "FROM" => Ok(out),
        _ => Err(ParseError::NoFrom),
    }
}

/// One joined line as an instruction.
pub(super) fn instruction(line: usize, text: &str) -> Result<Instruction, ParseError> {
    let text = text.trim();
    let (word, mut rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(w, r)| (w, r.trim_start()));
    let keyword = word.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(ParseError::Unknown {
            line,
            word: word.to_owned(),
        });
    }
    let mut flags = Vec::new();
    while let Some(flag) = rest.strip_prefix("--") {
        if keyword == "HEALTHCHECK" {
            break; // Its options are its own (read with its arguments).
        }
        let (f, tail) = flag
            .split_once(char::is_whitespace)
            .map_or((flag, ""), |(f, t)| (f, t.trim_start()));
        let (name, value) = f.split_once('=').unwrap_or((f, ""));
        if !allowed_flags(&keyword).contains(&name) {
            return Err(ParseError::Invalid {
                line,
                reason: format!(
                    "unknown flag: --{name} ({keyword} takes {})",
                    match allowed_flags(&keyword) {
                        [] => "no flags".to_owned(),
                        f => f
                            .iter()
                            .map(|f| format!("--{f}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                ),
            });
        }
        flags.push((name.to_owned(), value.to_owned()));
        rest = tail;
    }
    let needs_args = !matches!(keyword.as_str(), "CMD" | "ENTRYPOINT");
    if needs_args && rest.is_empty() {
        return Err(ParseError::Invalid {
            line,
            reason: format!("{keyword} requires at least one argument"),
        });
    }
    Ok(Instruction {
        line,
        original: format!("{keyword} {}", text[word.len()..].trim())
            .trim()
            .to_owned(),
        keyword,
        flags,
        rest: rest.to_owned(),
    })
}

impl Instruction {
    pub(super) fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The exec form (a JSON array of strings), if the arguments are one.
    pub(super) fn json(&self) -> Option<Vec<String>> {
        if !self.rest.starts_with('[') {
            return None;
        }
        serde_json::from_str(&self.rest).ok()
    }
}

/// Replaces `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alt}` from `lookup`; `\$` is a
/// literal `$`. Unset names become empty, as in Docker. `None` when the result would pass
/// [`MAX_SUBSTITUTED`] bytes (variables that repeat each other can grow without end).
pub(super) fn substitute(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let out = substitute_unbounded(s, &|n| {
        lookup(n).map(|v| {
            if v.len() > MAX_SUBSTITUTED {
                String::new()
            } else {
                v
            }
        })
    });
    (out.len() <= MAX_SUBSTITUTED).then_some(out)
}

fn substitute_unbounded(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if out.len() > MAX_SUBSTITUTED {
            break;
        }
        let c = chars[i];
        if c == '\\' && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'{') {
            let Some(end) = chars[i + 2..].iter().position(|&c| c == '}') else {
                // No `}` on the rest of the line: no name follows any `$` from here either
                // (searching again from each one would take length × length steps).
                out.extend(&chars[i..]);
                break;
            };
            let inner: String = chars[i + 2..i + 2 + end].iter().collect();
            let value = match inner.split_once(":-") {
                Some((n, d)) => lookup(n)
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| d.into()),
                None => match inner.split_once(":+") {
                    Some((n, alt)) => {
                        if lookup(n).is_some_and(|v| !v.is_empty()) {
                            alt.into()
                        } else {
                            String::new()
                        }
                    }
                    None => lookup(&inner).unwrap_or_default(),
                },
            };
            out.push_str(&value);
            i += end + 3;
            continue;
        }
        let name: String = chars[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .collect();
        if name.is_empty() {
            out.push('$');
            i += 1;
        } else {
            out.push_str(&lookup(&name).unwrap_or_default());
            i += 1 + name.chars().count();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_continuations_and_comments() {
        let df = "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS first\n\n# a comment\nRUN echo a \\\n  # inside\n  && echo b\nCOPY --from=first --chown=1:2 /a /b\ncmd [\"sh\"]\n";
        let p = parse(df).unwrap();
        let k: Vec<&str> = p.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(k, ["ARG", "FROM", "RUN", "COPY", "CMD"]);
        assert_eq!(p[2].rest, "echo a   && echo b");
        assert_eq!(p[2].line, 6);
        assert_eq!(p[3].flag("from"), Some("first"));
        assert_eq!(p[3].flag("chown"), Some("1:2"));
        assert_eq!(p[4].json(), Some(vec!["sh".to_owned()]));
        assert_eq!(p[4].original, "CMD [\"sh\"]");
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("FROM x\nRUNN y\n").unwrap_err(),
            ParseError::Unknown {
                line: 2,
                word: "RUNN".into()
            }
        );
        assert!(matches!(
            parse("FROM x\nCOPY --mount=x a b\n"),
            Err(ParseError::Invalid { line: 2, .. })
        ));
        assert_eq!(parse("RUN x\n").unwrap_err(), ParseError::NoFrom);
        assert_eq!(parse("\n# only\n").unwrap_err(), ParseError::Empty);
        assert!(matches!(
            parse("FROM x\nRUN\n"),
            Err(ParseError::Invalid { line: 2, .. })
        ));
    }

    #[test]
    fn escape_directive() {
        let p = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n").unwrap();
        assert_eq!(p[1].rest, "dir c:\\   && echo");
    }

    #[test]
    fn substitution() {
        let env = |n: &str| match n {
            "A" => Some("1".to_owned()),
            "E" => Some(String::new()),
            _ => None,
        };
        let sub = |s: &str| substitute(s, &env).unwrap();
        assert_eq!(sub("$A-${A}-$B-x"), "1-1--x");
        assert_eq!(sub("${B:-d} ${E:-d} ${A:+y} ${B:+y}"), "d d y ");
        assert_eq!(sub("\\$A $"), "$A $");
        // Growth is bounded: a value repeated past the limit is refused, not built.
        let big = |n: &str| (n == "A").then(|| "x".repeat(1 << 19));
        assert_eq!(substitute("$A$A", &big).map(|s| s.len()), Some(1 << 20));
        assert_eq!(substitute("$A$A$A", &big), None);
    }
}
