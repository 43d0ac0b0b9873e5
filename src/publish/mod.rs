//! Where the door's events go beyond the door itself: [`mqtt`] to a site broker (and Home
//! Assistant through its discovery). Each publisher is a `kiosk::EventSink` that only queues on
//! the frame loop's thread; the network is someone else's thread.

pub mod mqtt;

/// This machine's host name (the default door id), from the kernel.
pub fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}
