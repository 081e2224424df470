//! The counter-name pattern language (docs/interfaces.md §3.8) of `delete.pattern`, the
//! HTTP counter list and settings matches.

/// Anchored glob over the whole name: `*` matches any run of bytes (dots included, empty
/// included), `?` any run of bytes without `.` (empty included), every other byte itself
/// (case-sensitive).
///
/// **Port:** clean semantics. The reference's `str_pat_match` mis-steps after `*?x`
/// (it resumes the pattern at the `?`), so e.g. `*?b` does not match `ab` there.
/// Runs in O(|pattern| · |name|).
pub fn pattern_match(pattern: &str, name: &str) -> bool {
    let s = name.as_bytes();
    let n = s.len();
    // reach[j]: the pattern so far can match s[..j].
    let mut reach = vec![false; n + 1];
    let mut next = vec![false; n + 1];
    reach[0] = true;
    for &pc in pattern.as_bytes() {
        match pc {
            b'*' => {
                let first = reach.iter().position(|&r| r).unwrap_or(n + 1);
                for (j, x) in next.iter_mut().enumerate() {
                    *x = j >= first;
                }
            }
            b'?' => {
                let mut run = false;
                for j in 0..=n {
                    if j > 0 && s[j - 1] == b'.' {
                        run = false;
                    }
                    run |= reach[j];
                    next[j] = run;
                }
            }
            c => {
                next[0] = false;
                for j in 0..n {
                    next[j + 1] = reach[j] && s[j] == c;
                }
            }
        }
        std::mem::swap(&mut reach, &mut next);
        if !reach.contains(&true) {
            return false;
        }
    }
    reach[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- patterns

    #[test]
    fn patterns_reference_unit_tests() {
        // test/test_strfunc.cpp test_str_pat_match (arguments swapped: pattern first)
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "x", false),
            ("x", "", false),
            ("foo.bar.baz", "foo.bar.baz", true),
            ("foo.bar.baz", "foo.bar", false),
            ("foo.bar", "foo.bar.baz", false),
            ("*", "foo bar", true),
            ("foo bar", "*", false),
            ("foo*", "foo.bar", true),
            ("*bar", "foo.bar", true),
            ("f*a*bar", "foo.bar", false),
            ("foo.*", "foo.bar", true),
            ("f*oo*foo.bar", "foo.foo.bar", true),
            ("f*oo.bar", "foo.foo.bar", true),
            ("f***oo", "foo", true),
            ("?", "", true),
            ("", "?", false),
            ("?.bar", "foo.bar", true),
            ("foo.?", "foo.bar", true),
            ("f?o", "foooo", true),
            ("foo.?", "foo.bar.baz", false),
            ("?.baz", "foo.bar.baz", false),
            ("foo.?.baz", "foo.bar.baz", true),
            ("foo.b?.baz", "foo.bar.baz", true),
            ("foo.b?r?baz", "foo.bar.baz", false),
            ("foo.bar?.baz", "foo.bar.baz", true),
            ("foo.bar.baz?", "foo.bar.baz", true),
            ("?foo.bar.baz", "foo.bar.baz", true),
        ];
        for &(pat, name, want) in cases {
            assert_eq!(pattern_match(pat, name), want, "{pat:?} vs {name:?}");
        }
    }

    #[test]
    fn patterns_spec_and_ftest() {
        // §3.8 and ftest/test_list_matching.sh (`tep.%3F`)
        assert!(pattern_match("tep.?", "tep.tep_die"));
        assert!(pattern_match("tep.?", "tep.tep_live"));
        assert!(!pattern_match("tep.?", "tep.tep_live.and_let_die"));
        assert!(pattern_match("fmt.*", "fmt.a.b.c"));
        assert!(pattern_match("*.test", "fmt.test"));
        // ftest/test_delete_ctr.sh: `tep.asd*` takes the branch and everything below
        for n in [
            "tep.asd",
            "tep.asd.dds",
            "tep.asd.aaa",
            "tep.asd.dds.hrr.mrr",
        ] {
            assert!(pattern_match("tep.asd*", n), "{n}");
        }
        assert!(!pattern_match("tep.asd*", "tep.tep_die"));
        assert!(!pattern_match("tep.asd*", "tep.tep_live.and_let_die"));
        // case-sensitive
        assert!(!pattern_match("Tep.?", "tep.x"));
    }

    #[test]
    fn patterns_port_clean_semantics() {
        // The reference answers false for these (`*?x` mis-step); §3.8 Port.
        assert!(pattern_match("*?b", "ab"));
        assert!(pattern_match("a*?c.d", "axc.d"));
        assert!(pattern_match("*?", "a.b"));
        assert!(pattern_match("?*", "a.b"));
        assert!(pattern_match("??", "abc"));
        assert!(!pattern_match("??", "a.c"));
        assert!(pattern_match("?.?.?", "a.b.c"));
        assert!(pattern_match("?.?.?", ".."));
        assert!(!pattern_match("?.?", "a.b.c"));
        // no exponential blow-up
        let name = "a".repeat(3000);
        let pat = "*a".repeat(200) + "b";
        assert!(!pattern_match(&pat, &name));
    }
}
