//! The usage text the daemon prints after a command-line error (interfaces.md §7.1):
//! every option in byte order of its name with its current value and help, then the
//! debug names.

use super::table::{OptionSpec, SPECS};
use super::{Options, DEBUG_OPTIONS};

/// What follows `istatd built ` on the first usage line. The reference prints its
/// `__DATE__ __TIME__`; the port takes `ISTATD_BUILD_STAMP` from the build environment
/// when set, else the crate version and a fixed marker.
pub const BUILD_STAMP: &str = match option_env!("ISTATD_BUILD_STAMP") {
    Some(s) => s,
    None => concat!(env!("CARGO_PKG_VERSION"), " (rust port)"),
};

/// The usage text (§7.1), ending with a newline.
pub fn usage(opts: &Options) -> String {
    fn pad(out: &mut String, s: &str, width: usize) {
        out.push_str(s);
        for _ in s.len()..width {
            out.push(' ');
        }
    }
    let mut out = format!("istatd built {BUILD_STAMP}\n");
    let mut specs: Vec<&OptionSpec> = SPECS.iter().collect();
    specs.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for s in specs {
        out.push_str("--");
        pad(&mut out, s.name, 12);
        out.push_str(" (");
        pad(&mut out, &opts.value_text(s.name).unwrap_or_default(), 12);
        out.push_str(")   ");
        out.push_str(s.help);
        out.push('\n');
    }
    out.push_str("debug options:\n");
    out.push_str(&DEBUG_OPTIONS.join(", "));
    out.push('\n');
    out
}
