//! Runtime and sentry logs: text or JSON (as containerd's shim reads it),
//! to standard error, `--log` or `--debug-log`.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::{Cli, LogFormat};

pub struct Guard;

static TO_FILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the log goes to a file (so errors are also worth printing on
/// standard error).
pub fn to_file() -> bool {
    TO_FILE.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn init(cli: &Cli) -> std::io::Result<Guard> {
    let path = cli.debug_log.as_ref().or(cli.log.as_ref());
    let level = if cli.debug {
        "debug"
    } else if ((cli.strace || cli.strace_syscalls.is_some()) && cli.strace_log.is_none())
        || path.is_some()
    {
        "info"
    } else {
        "warn"
    };
    TO_FILE.store(path.is_some(), std::sync::atomic::Ordering::Relaxed);
    let filter = EnvFilter::try_from_env("RUNSC_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // SAFETY: isatty only inspects fd 2.
    let ansi = path.is_none() && unsafe { libc::isatty(2) } == 1;
    let writer: Box<dyn std::io::Write + Send> = match path {
        Some(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?),
        None => Box::new(std::io::stderr()),
    };
    let writer = Mutex::new(writer);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    match cli.log_format {
        LogFormat::Json => builder.event_format(LogrusJson).init(),
        LogFormat::Text => builder.without_time().init(),
    }
    Ok(Guard)
}

/// One JSON object a line, as runc writes with `--log-format json`:
/// `{"level":"error","msg":"...","time":"..."}`. containerd's shim shows
/// the `msg` of the last `"level":"error"` line when a runtime fails.
struct LogrusJson;

#[derive(Default)]
struct Fields {
    msg: String,
    extra: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.extra
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S, N> FormatEvent<S, N> for LogrusJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        let mut obj = serde_json::Map::new();
        obj.insert("level".into(), level.into());
        obj.insert("msg".into(), fields.msg.into());
        obj.insert("time".into(), rfc3339_now().into());
        for (k, v) in fields.extra {
            obj.insert(k, v.into());
        }
        writeln!(writer, "{}", serde_json::Value::Object(obj))
    }
}

/// The current UTC time as RFC 3339 with nanoseconds.
pub fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}
