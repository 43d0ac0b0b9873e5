//! One file per subcommand; [`settings`] turns flags into the one `Config` they all use.

pub mod image;
pub mod run;
pub mod selftest;
pub mod serve;
pub mod settings;
pub mod video;

use std::fmt;
use std::io::IsTerminal;
use std::path::Path;

use tracing::{Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// An `--out` that would lose data: a bad command line (exit 2), refused before any work.
pub fn refuse_out(message: String) -> anyhow::Error {
    maskgate::error::InvalidSetting::new("--out", message).into()
}

/// `e` and its causes, each said once: the library's errors put their cause in their own
/// message (a log line shows only that) and also return it as `source()`, so `{:#}` said
/// it twice ("Is a directory (os error 21): Is a directory (os error 21)").
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if out.contains(&c) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c);
    }
    out
}

/// Whether `a` and `b` are one file (the same inode, through any links or spellings); a path
/// that does not exist is no other file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Log lines on stderr for every subcommand, filtered by `MASKGATE_LOG` (default "info").
/// Under systemd (`JOURNAL_STREAM` set: stderr is a journald stream) each line starts with its
/// syslog priority, `<3>` error to `<7>` debug, which journald takes as the entry's priority
/// (`journalctl -p warning` shows warnings and errors); journald stamps the time itself.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MASKGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        let format = tracing_subscriber::fmt::format()
            .without_time()
            .with_ansi(false);
        b.with_ansi(false)
            .event_format(JournalPriority(format))
            .init();
    } else {
        // colours only on a terminal
        b.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Prefixes each line with the `<N>` syslog priority journald reads from a stream.
struct JournalPriority<F>(F);

/// syslog priority of a tracing level (sd-daemon(3): 3 err, 4 warning, 6 info, 7 debug).
pub fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N, F> FormatEvent<S, N> for JournalPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::other("Is a directory");
        let lib = maskgate::config::ConfigError::Read {
            path: "/tmp".into(),
            source: io,
        };
        let e = anyhow::Error::new(lib);
        assert_eq!(error_chain(&e), "cannot read config /tmp: Is a directory");
        // context that does not repeat its cause keeps it
        let e = Err::<(), _>(std::io::Error::other("Broken pipe"))
            .context("encoder stopped")
            .unwrap_err();
        assert_eq!(error_chain(&e), "encoder stopped: Broken pipe");
    }
}
