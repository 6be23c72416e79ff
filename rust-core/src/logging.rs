//! Routes the core's `log` records to a host-registered C callback; without one, nothing is printed.

use std::ffi::c_void;
use std::sync::{OnceLock, RwLock};

/// The host's log sink: `(user_data, level 1=error..5=trace, message, message_len)`.
pub type LogCallback = unsafe extern "C" fn(user_data: *mut c_void, level: i32, message: *const u8, message_len: usize);

#[derive(Clone, Copy)]
struct Sink {
    callback: LogCallback,
    user_data: usize,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
/// Whether our logger won `log::set_logger` (a host may have installed its own first).
static OURS: OnceLock<bool> = OnceLock::new();

struct CallbackLogger;

impl log::Log for CallbackLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let sink = *SINK.read().unwrap_or_else(|p| p.into_inner());
        if let Some(sink) = sink {
            let message = record.args().to_string();
            // SAFETY: the host promised, when registering, that the callback is callable from any thread.
            unsafe {
                (sink.callback)(sink.user_data as *mut c_void, record.level() as i32, message.as_ptr(), message.len())
            };
        }
    }

    fn flush(&self) {}
}

/// Installs (or with `None` removes) the sink; `max_level` 0 silences, 5 passes everything.
/// Returns false if another `log` logger was installed by the host process first.
pub fn set_callback(callback: Option<LogCallback>, user_data: *mut c_void, max_level: i32) -> bool {
    let installed = *OURS.get_or_init(|| log::set_logger(&CallbackLogger).is_ok());
    *SINK.write().unwrap_or_else(|p| p.into_inner()) =
        callback.map(|callback| Sink { callback, user_data: user_data as usize });
    log::set_max_level(match (callback.is_some(), max_level) {
        (false, _) | (_, i32::MIN..=0) => log::LevelFilter::Off,
        (_, 1) => log::LevelFilter::Error,
        (_, 2) => log::LevelFilter::Warn,
        (_, 3) => log::LevelFilter::Info,
        (_, 4) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    });
    installed
}
