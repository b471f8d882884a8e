//! Splitting a command line into words the way a POSIX shell does for simple
//! commands: blanks separate words, single quotes keep everything, double quotes
//! keep everything but `\"`, `\\`, `\$` and `` \` ``, a backslash outside quotes
//! escapes the next character. No expansion of any kind.

/// The words of `line`, or why it cannot be split (an unterminated quote).
///
/// `iptables -A INPUT -m comment --comment "ssh from admin" -j ACCEPT` gives
/// `["iptables", "-A", "INPUT", "-m", "comment", "--comment", "ssh from admin",
/// "-j", "ACCEPT"]`.
pub(crate) fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `words` as a shell would need them typed: plain words as they are, others in
/// single quotes.
pub(crate) fn join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:,=+@%[]!".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split(r#"iptables -A INPUT -m comment --comment "ssh from admin" -j ACCEPT"#).unwrap(),
            [
                "iptables",
                "-A",
                "INPUT",
                "-m",
                "comment",
                "--comment",
                "ssh from admin",
                "-j",
                "ACCEPT"
            ]
        );
        assert_eq!(
            split(r#"a 'b  c' "d \"e\"" f\ g"#).unwrap(),
            ["a", "b  c", r#"d "e""#, "f g"]
        );
        assert_eq!(split("  x\t\ty  ").unwrap(), ["x", "y"]);
        assert_eq!(split(r#"--comment """#).unwrap(), ["--comment", ""]);
        assert_eq!(
            split(r#"a "b"#).unwrap_err(),
            "a double quote is not closed"
        );
        assert_eq!(split("a 'b").unwrap_err(), "a single quote is not closed");
    }

    #[test]
    fn joins_for_a_shell() {
        let words: Vec<String> = [
            "iptables",
            "-A",
            "INPUT",
            "--comment",
            "ssh from admin",
            "it's",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let line = join(&words);
        assert_eq!(
            line,
            r#"iptables -A INPUT --comment 'ssh from admin' 'it'\''s'"#
        );
        assert_eq!(split(&line).unwrap(), words);
    }
}
