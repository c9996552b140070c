//! The one error type of pushpool: what failed, why, and how to fix it.
//!
//! Every failure a user sees names the thing (`what`), the cause reported by the cloud or the
//! input (`cause`) and, where there is one, the fix (`fix`). [`ErrorKind`] decides the exit code.

use std::fmt;

/// How an error maps to an exit code; see [`Error::exit_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input or an unusable environment, found before any write.
    Usage,
    /// A cloud or Prefect call failed.
    Remote,
    /// The user declined, or a non-interactive run lacked `--yes`.
    NotConfirmed,
    /// Stdout's reader went away (`pushpool plan | head -1`): the run ends quietly, with
    /// status 0 (see [`crate::ui::stdout_closed`]).
    StdoutClosed,
}

/// A failure with the thing it concerns, its cause and the fix.
#[derive(Debug, Clone)]
pub struct Error {
    /// The resource, file or input concerned, e.g. "IAM user prefect-ecs-user".
    pub what: String,
    /// What went wrong, in the words of the cloud where it spoke.
    pub cause: String,
    /// What to do about it, when something can be done.
    pub fix: Option<String>,
    /// Which exit code the failure maps to.
    pub kind: ErrorKind,
}

/// The result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure of input or environment, found before any write.
    pub fn usage(what: impl Into<String>, cause: impl Into<String>) -> Self {
        Self { what: what.into(), cause: cause.into(), fix: None, kind: ErrorKind::Usage }
    }

    /// A failed call to a cloud or to Prefect.
    pub fn remote(what: impl Into<String>, cause: impl Into<String>) -> Self {
        Self { what: what.into(), cause: cause.into(), fix: None, kind: ErrorKind::Remote }
    }

    /// A file `what` that cannot be read, with what to do about it: the path is in `what`,
    /// the system's reason in the cause.
    pub fn unreadable(what: impl Into<String>, error: &std::io::Error) -> Self {
        let fix = match error.kind() {
            std::io::ErrorKind::NotFound => "check the path (a relative path is from the current directory)",
            std::io::ErrorKind::PermissionDenied => "make the file readable by this user",
            std::io::ErrorKind::IsADirectory => "pass the file, not its directory",
            _ => "check the file and its path",
        };
        Self::usage(what, error.to_string()).fix(fix)
    }

    /// Adds the fix to show the user.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Sets which exit code the failure maps to.
    pub fn kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The process exit code: 1 for every failure (Terraform's convention keeps 2 for
    /// "changes pending" in plans), 3 for a run that was not confirmed, 0 for a run whose
    /// output's reader went away.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Usage | ErrorKind::Remote => 1,
            ErrorKind::NotConfirmed => 3,
            ErrorKind::StdoutClosed => 0,
        }
    }

    /// Whether the error is worth a message: not for a reader that went away.
    pub fn is_reported(&self) -> bool {
        self.kind != ErrorKind::StdoutClosed
    }
}

/// Where byte `offset` of `text` is, for people: ", line L, column C", both from 1, as
/// editors count them. Parsers report byte spans; a message names the line.
pub fn position(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!(", line {line}, column {column}")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.cause)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
