//! Whether output is coloured: decided once at start-up from `--color`, the `NO_COLOR`
//! convention (<https://no-color.org>) and whether each stream is a terminal, then handed to
//! the `console` crate's switches, which the progress bars (indicatif) and the confirmation
//! (dialoguer) read too, so that every output follows one decision.

use std::ffi::OsStr;

use console::{Style, Term};

/// `--color`: when to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour a terminal, unless NO_COLOR is set to a non-empty value.
    #[default]
    Auto,
    /// Always colour, even a pipe or a file, and whatever NO_COLOR says.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether a stream is coloured: `capable` says it is a terminal that shows colour,
    /// `no_color` is the value of NO_COLOR, if set. Only a non-empty NO_COLOR counts, and
    /// `--color always` overrides it.
    pub fn enabled(self, capable: bool, no_color: Option<&OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => capable && no_color.is_none_or(OsStr::is_empty),
        }
    }

    /// Decides for stdout and stderr and sets the `console` crate's switches, which every
    /// output reads from then on.
    pub fn apply(self) {
        let no_color = std::env::var_os("NO_COLOR");
        // console's probe: a terminal, not TERM=dumb, and on Windows a console that takes ANSI
        // escapes (it switches them on). It reads even an empty NO_COLOR as "no colour", which
        // the convention does not ask for: stricter at a terminal, never more colourful.
        let capable = |term: Term| term.features().colors_supported();
        console::set_colors_enabled(self.enabled(capable(Term::stdout()), no_color.as_deref()));
        console::set_colors_enabled_stderr(self.enabled(capable(Term::stderr()), no_color.as_deref()));
    }
}

/// The colour of a word in the given role, shown only when `enabled`: renderers take the
/// decision as a value rather than reading the global switch, so that tests can render both.
pub fn paint(text: &str, style: Style, enabled: bool) -> String {
    style.force_styling(enabled).apply_to(text).to_string()
}

/// The prefix of an error line on stderr: `error:`, red and bold when stderr is coloured.
pub fn error_prefix() -> String {
    paint("error:", Style::new().red().bold(), console::colors_enabled_stderr())
}

/// The prefix of a note on stderr: `note:`, cyan and bold when stderr is coloured.
pub fn note_prefix() -> String {
    paint("note:", Style::new().cyan().bold(), console::colors_enabled_stderr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_empty_no_color_turns_auto_off() {
        assert!(!ColorChoice::Auto.enabled(true, Some(OsStr::new("1"))));
        assert!(ColorChoice::Auto.enabled(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(ColorChoice::Auto.enabled(true, None));
        assert!(!ColorChoice::Auto.enabled(false, None), "a pipe is not coloured");
    }

    #[test]
    fn always_beats_no_color_and_never_beats_a_terminal() {
        assert!(ColorChoice::Always.enabled(false, Some(OsStr::new("1"))));
        assert!(!ColorChoice::Never.enabled(true, None));
    }

    #[test]
    fn paint_adds_escapes_only_when_enabled() {
        assert_eq!(paint("note:", Style::new().cyan(), false), "note:");
        let painted = paint("note:", Style::new().cyan(), true);
        assert!(painted.starts_with("\u{1b}[") && painted.contains("note:") && painted.ends_with("\u{1b}[0m"), "{painted:?}");
    }
}
