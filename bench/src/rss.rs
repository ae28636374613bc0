//! The process's resident memory, from `/proc/self/status`: the current
//! size (`VmRSS`) and the peak (`VmHWM`). Writing `5` to
//! `/proc/self/clear_refs` sets the peak back to the current size, so a
//! phase can measure its own peak; [`Peaks`] keeps the highest peak seen
//! across such resets.

/// Current and peak resident memory, in kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resident {
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

pub fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Reads `VmRSS` and `VmHWM`; `None` off Linux.
pub fn resident() -> Option<Resident> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(Resident {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// Sets the peak back to the current size. False when the kernel does not
/// allow it (the peak then stays the process's lifetime peak).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The highest peak seen since [`Peaks::start`], across the resets that
/// single measurements inside the phase make.
#[derive(Debug, Default)]
pub struct Peaks {
    highest_kb: u64,
}

impl Peaks {
    /// Starts a phase: the peak so far is the current size.
    pub fn start() -> Self {
        reset_peak();
        Self {
            highest_kb: resident().map_or(0, |r| r.hwm_kb),
        }
    }

    /// Folds the peak since the last reset into the phase's peak.
    pub fn fold(&mut self) {
        if let Some(now) = resident() {
            self.highest_kb = self.highest_kb.max(now.hwm_kb);
        }
    }

    /// The phase's peak so far, in kB.
    pub fn highest_kb(&mut self) -> u64 {
        self.fold();
        self.highest_kb
    }

    /// Runs `work` with the peak reset before it, and returns what it
    /// returned with how far the peak rose above the size before it, in
    /// kB (`None` when the peak cannot be reset). The phase's peak keeps
    /// what came before.
    pub async fn rise_during<T>(
        &mut self,
        work: impl std::future::Future<Output = T>,
    ) -> (T, Option<u64>) {
        self.fold();
        let reset = reset_peak();
        let before = resident().map_or(0, |r| r.rss_kb);
        let out = work.await;
        let after = resident().map_or(0, |r| r.hwm_kb);
        self.highest_kb = self.highest_kb.max(after);
        (out, reset.then(|| after.saturating_sub(before)))
    }
}
