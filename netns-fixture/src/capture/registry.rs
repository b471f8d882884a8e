//! The captures a node started, kept for the failure report: when a test fails,
//! the packets its captures saw up to that moment — whether the capture is still
//! running, was dropped while the panic unwound, or was stopped and its
//! [`Captured`] then failed an assertion — are written as pcap files.
//!
//! A registered capture shares its packet store with the registry, so the packets
//! live until the lab is dropped (a registered [`Capture::stop`] hands out a copy).

use super::{Capture, Captured, LinkType, Shared, State};
use std::sync::{Arc, Mutex, PoisonError};

/// Where a registered capture stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Status {
    /// Still reading packets.
    #[default]
    Running,
    /// Stopped with [`Capture::stop`]: the test got its packets.
    Stopped,
    /// Dropped without `stop`, e.g. while a panic unwound the test body.
    Dropped,
}

impl Status {
    /// How a report names it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Status::Running => "running at the failure",
            Status::Stopped => "stopped by the test",
            Status::Dropped => "dropped while the test failed",
        }
    }
}

struct Entry {
    shared: Arc<Shared>,
    interface: String,
    filter: String,
    link: LinkType,
}

/// The captures of one node.
#[derive(Default)]
pub(crate) struct Registry {
    entries: Mutex<Vec<Entry>>,
}

/// What a registered capture saw so far.
pub(crate) struct Snapshot {
    pub captured: Captured,
    pub status: Status,
}

impl Registry {
    /// Keeps `capture`'s packets for a later [`Registry::snapshot`].
    pub(crate) fn register(&self, capture: &mut Capture) {
        capture.kept = true;
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Entry {
                shared: Arc::clone(&capture.shared),
                interface: capture.interface.clone(),
                filter: capture.filter.clone(),
                link: capture.link,
            });
    }

    /// Every registered capture's packets so far, in start order. Running captures
    /// go on running.
    pub(crate) fn snapshot(&self) -> Vec<Snapshot> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .map(|entry| {
                let state = entry.shared.lock();
                Snapshot {
                    captured: Captured {
                        packets: state.packets.clone(),
                        interface: entry.interface.clone(),
                        filter: entry.filter.clone(),
                        link: entry.link,
                        kernel_drops: 0,
                        rejected_by_predicates: state.rejected,
                        notes: state.notes.clone(),
                    },
                    status: state.status,
                }
            })
            .collect()
    }
}

/// The state a stopping capture hands to its [`Captured`]: taken, or copied when a
/// registry keeps it.
pub(super) fn finish(shared: &Shared, kept: bool) -> State {
    let mut state = shared.lock();
    state.status = Status::Stopped;
    if kept {
        State {
            packets: state.packets.clone(),
            rejected: state.rejected,
            notes: state.notes.clone(),
            status: Status::Stopped,
        }
    } else {
        std::mem::take(&mut *state)
    }
}

/// Marks a capture dropped without `stop`.
pub(super) fn dropped(shared: &Shared) {
    let mut state = shared.lock();
    if state.status == Status::Running {
        state.status = Status::Dropped;
    }
}
