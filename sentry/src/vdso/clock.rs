//! Keeping the vDSO's clock parameters: CLOCK_MONOTONIC and
//! CLOCK_REALTIME as a linear function of the TSC, recalibrated against
//! the host's clocks every [`PERIOD`].
//!
//! For a TSC value `t` the clocks are
//! `mono(t) = mono_base + ((t - tsc_base) * mult >> SHIFT)` (with
//! `t - tsc_base` taken as 0 when negative) and `real(t) = real_base + the
//! same`. The vDSO (vdso.c) and [`Timekeeper::now_ns`], which answers the
//! sentry's own clock system calls, compute exactly this from the same
//! parameters, so the guest sees one clock whichever way it asks.
//!
//! Monotonic across updates. The writer, holding `state`, makes the
//! sequence count odd, waits for that store to be visible, and only then
//! reads the TSC value `tb` the new parameters start at; their base is
//! the old clock's value at `tb` (or, when that is far behind the host,
//! the host's, which is later still). A reader that finishes with the old
//! parameters read the TSC before `tb` (vdso.c reads it between two reads
//! of the count, ordered after the first by an lfence and before the
//! second by making the second's address depend on it, and retries
//! through the sentry on a change),
//! so it got at most `old(tb)`; a reader of the new parameters reads a
//! TSC value after `tb` and gets at least `new(tb) >= old(tb)`. The
//! sentry's own readers hold `state`, which orders them the same way.
//! Drift from the host's clock is corrected by slewing (the next period
//! runs up to 500 ppm faster or slower), never by stepping back. Before
//! the first calibration (and on hosts without an invariant TSC) the
//! sentry answers from the host's clock and the vDSO asks the sentry; the
//! first parameters start no earlier than anything answered that way.

use crate::sync::LockExt;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::hostcall::{rdtsc_after_stores, rdtsc_ordered};
use crate::mm::memory_file::Window;

/// How often the parameters are recalibrated.
pub const PERIOD: Duration = Duration::from_millis(200);
/// How long the first calibration, at start, measures the TSC's rate.
const INITIAL_CALIBRATION_NS: u64 = 2_000_000;
/// When the thread first recalibrates.
const FIRST_REFRESH: Duration = Duration::from_millis(20);
/// How many samples the rate is measured over (some 13 s).
const HISTORY: usize = 64;
/// Behind the host by more than this, the clock steps forward instead of
/// slewing.
const STEP_NS: i64 = 1_000_000;
/// The fastest slew: 1/2000 (500 ppm).
const MAX_SLEW_DIV: i64 = 2000;
const SHIFT: u32 = 32;
const NSEC_PER_SEC: u64 = 1_000_000_000;

// The parameter page's words (`struct vvar` in vdso.c).
const SEQ: usize = 0;
const FLAGS: usize = 1;
const TSC_BASE: usize = 2;
const MULT: usize = 3;
const SHIFT_WORD: usize = 4;
const MONO_SEC: usize = 5;
const MONO_NSEC: usize = 6;
const REAL_SEC: usize = 7;
const REAL_NSEC: usize = 8;
const NCPUS: usize = 9;

// Its flags.
const VALID_TSC: u64 = 1;
const GETCPU_RDPID: u64 = 2;
const GETCPU_RDTSCP: u64 = 4;

/// One set of clock parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Params {
    tsc_base: u64,
    mult: u64,
    mono_base: u64,
    real_base: u64,
}

fn scale(ticks: u64, mult: u64) -> u64 {
    ((ticks as u128 * mult as u128) >> SHIFT) as u64
}

impl Params {
    fn elapsed(&self, tsc: u64) -> u64 {
        scale(tsc.saturating_sub(self.tsc_base), self.mult)
    }

    fn mono(&self, tsc: u64) -> u64 {
        self.mono_base + self.elapsed(tsc)
    }

    fn real(&self, tsc: u64) -> u64 {
        self.real_base + self.elapsed(tsc)
    }
}

/// The host's clocks at a TSC value.
#[derive(Clone, Copy, Debug)]
struct Sample {
    tsc: u64,
    mono: u64,
    real: u64,
}

fn host_ns(clock: i32) -> u64 {
    let ts = crate::hostcall::clock_gettime(clock).unwrap_or(libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    });
    ts.tv_sec as u64 * NSEC_PER_SEC + ts.tv_nsec as u64
}

/// The host's clocks, and the TSC in the middle of reading them: the
/// tightest of a few tries.
fn sample() -> Sample {
    let mut best: Option<(u64, Sample)> = None;
    for _ in 0..5 {
        let t1 = rdtsc_ordered();
        let mono = host_ns(libc::CLOCK_MONOTONIC);
        let real = host_ns(libc::CLOCK_REALTIME);
        let t2 = rdtsc_ordered();
        let width = t2.wrapping_sub(t1);
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((
                width,
                Sample {
                    tsc: t1 + width / 2,
                    mono,
                    real,
                },
            ));
        }
    }
    best.unwrap().1
}

/// Whether the TSC runs at a constant rate in every power state (CPUID
/// 0x80000007 EDX bit 8), so that it can stand for time.
fn invariant_tsc() -> bool {
    let (max_ext, ..) = crate::hostcall::cpuid(0x8000_0000, 0);
    max_ext >= 0x8000_0007 && crate::hostcall::cpuid(0x8000_0007, 0).3 & (1 << 8) != 0
}

/// How the vDSO can learn the CPU: RDPID (CPUID 7 ECX bit 22), else
/// RDTSCP (CPUID 0x80000001 EDX bit 27); Linux keeps the CPU number in
/// TSC_AUX for both.
fn getcpu_flags() -> u64 {
    let (max, ..) = crate::hostcall::cpuid(0, 0);
    if max >= 7 && crate::hostcall::cpuid(7, 0).2 & (1 << 22) != 0 {
        return GETCPU_RDPID;
    }
    let (max_ext, ..) = crate::hostcall::cpuid(0x8000_0000, 0);
    if max_ext >= 0x8000_0001 && crate::hostcall::cpuid(0x8000_0001, 0).3 & (1 << 27) != 0 {
        return GETCPU_RDTSCP;
    }
    0
}

struct State {
    /// The parameters in force; None until the first calibration, and for
    /// good without an invariant TSC.
    params: Option<Params>,
    /// The latest CLOCK_MONOTONIC answered from the host's clock while
    /// there were no parameters.
    floor: u64,
    /// Recent samples, oldest first: the TSC's rate is measured from the
    /// oldest, so that it follows the host clock's own corrections within
    /// [`HISTORY`] periods.
    history: VecDeque<Sample>,
}

/// The parameters, the page that shows them to guests, and the thread
/// that keeps them.
pub struct Timekeeper {
    vvar: Window,
    state: Mutex<State>,
}

impl Timekeeper {
    /// Sets up the parameter page in `vvar` (invalid until the first
    /// calibration) and starts the thread that keeps it, if the TSC can
    /// be used. The thread ends when the Timekeeper goes.
    pub fn start(vvar: Window) -> Arc<Timekeeper> {
        let w = vvar.words();
        let ncpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        w[NCPUS].store(ncpus as u64, Relaxed);
        w[SHIFT_WORD].store(SHIFT as u64, Relaxed);
        w[FLAGS].store(getcpu_flags(), Release);
        let tk = Arc::new(Timekeeper {
            vvar,
            state: Mutex::new(State {
                params: None,
                floor: 0,
                history: VecDeque::from([sample()]),
            }),
        });
        if invariant_tsc() {
            // A first, rough calibration now, so that the first program
            // already reads the clocks without trapping; the thread
            // refines it.
            let start = host_ns(libc::CLOCK_MONOTONIC);
            while host_ns(libc::CLOCK_MONOTONIC).saturating_sub(start) < INITIAL_CALIBRATION_NS {
                std::hint::spin_loop();
            }
            tk.refresh();
            let weak = Arc::downgrade(&tk);
            let spawned = std::thread::Builder::new()
                .name("timekeeper".into())
                .spawn(move || keep(weak));
            if let Err(e) = spawned {
                tracing::warn!("no timekeeper thread ({e}): guest clock reads trap");
            }
        } else {
            tracing::info!("no invariant TSC: guest clock reads trap");
        }
        tk
    }

    /// CLOCK_MONOTONIC or CLOCK_REALTIME (`clock`), in nanoseconds, as the
    /// vDSO computes it; None for other clocks.
    pub fn now_ns(&self, clock: i32) -> Option<u64> {
        if clock != libc::CLOCK_MONOTONIC && clock != libc::CLOCK_REALTIME {
            return None;
        }
        let mut st = self.state.locked();
        Some(match st.params {
            Some(p) => {
                let t = rdtsc_ordered();
                if clock == libc::CLOCK_MONOTONIC {
                    p.mono(t)
                } else {
                    p.real(t)
                }
            }
            None => {
                let v = host_ns(clock);
                if clock == libc::CLOCK_MONOTONIC {
                    st.floor = st.floor.max(v);
                }
                v
            }
        })
    }

    /// Recalibrates against the host's clocks and publishes new
    /// parameters.
    fn refresh(&self) {
        let s = sample();
        let mut st = self.state.locked();
        if st.history.len() > HISTORY {
            st.history.pop_front();
        }
        st.history.push_back(s);
        let Some(nominal) = frequency(&st.history[0], &s) else {
            return;
        };
        let w = self.vvar.words();
        let seq = w[SEQ].load(Relaxed);
        w[SEQ].store(seq | 1, Relaxed);
        // From here until the count is even again, vDSO readers retry
        // through the sentry, which waits for `state`.
        let tb = rdtsc_after_stores();
        let p = next_params(st.params, st.floor, &s, nominal, tb);
        let (ms, mn) = (p.mono_base / NSEC_PER_SEC, p.mono_base % NSEC_PER_SEC);
        let (rs, rn) = (p.real_base / NSEC_PER_SEC, p.real_base % NSEC_PER_SEC);
        w[TSC_BASE].store(p.tsc_base, Relaxed);
        w[MULT].store(p.mult, Relaxed);
        w[MONO_SEC].store(ms, Relaxed);
        w[MONO_NSEC].store(mn, Relaxed);
        w[REAL_SEC].store(rs, Relaxed);
        w[REAL_NSEC].store(rn, Relaxed);
        w[FLAGS].store(w[FLAGS].load(Relaxed) | VALID_TSC, Relaxed);
        w[SEQ].store((seq | 1) + 1, Release);
        st.params = Some(p);
    }
}

/// The timekeeper thread.
fn keep(tk: Weak<Timekeeper>) {
    let mut wait = FIRST_REFRESH;
    loop {
        std::thread::sleep(wait);
        wait = PERIOD;
        let Some(tk) = tk.upgrade() else {
            return;
        };
        tk.refresh();
    }
}

/// The TSC's rate as `mult` (nanoseconds per tick << SHIFT), measured from
/// `first` to `now` against CLOCK_MONOTONIC; None when the interval is too
/// short or the rate is not plausible (100 MHz to 20 GHz).
fn frequency(first: &Sample, now: &Sample) -> Option<u64> {
    let ns = now.mono.checked_sub(first.mono)?;
    let ticks = now.tsc.checked_sub(first.tsc)?;
    if ns < INITIAL_CALIBRATION_NS / 2 || ticks == 0 {
        return None;
    }
    let mult = ((ns as u128) << SHIFT) / ticks as u128;
    let lo = (1u128 << SHIFT) / 20;
    let hi = 10u128 << SHIFT;
    (lo..=hi).contains(&mult).then_some(mult as u64)
}

/// The parameters that follow `old` from the TSC value `tb` on, given the
/// host sample `s` and the TSC rate `nominal`: continuous with `old` at
/// `tb` (or with `floor`, what was answered before there were
/// parameters), never behind it, converging on the host's clock.
fn next_params(old: Option<Params>, floor: u64, s: &Sample, nominal: u64, tb: u64) -> Params {
    let since = scale(tb.saturating_sub(s.tsc), nominal);
    let host_mono = s.mono + since;
    let real_offset = s.real as i128 - s.mono as i128;
    let (mono_base, mult) = match old {
        None => (host_mono.max(floor), nominal),
        Some(p) => {
            let ours = p.mono(tb);
            let err = host_mono as i64 - ours as i64;
            if err > STEP_NS {
                (host_mono, nominal)
            } else {
                // Run the next period fast or slow by what makes up the
                // difference, within the slew limit.
                let period = PERIOD.as_nanos() as i64;
                let e = err.clamp(-period / MAX_SLEW_DIV, period / MAX_SLEW_DIV);
                let mult = nominal as i128 + nominal as i128 * e as i128 / period as i128;
                (ours, mult as u64)
            }
        }
    };
    Params {
        tsc_base: tb,
        mult,
        mono_base,
        real_base: (mono_base as i128 + real_offset).max(0) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GHZ3: u64 = (1u64 << SHIFT) / 3; // 3 ticks a nanosecond

    fn sample_at(tsc: u64, mono: u64) -> Sample {
        Sample {
            tsc,
            mono,
            real: mono + 1_700_000_000 * NSEC_PER_SEC,
        }
    }

    #[test]
    fn first_parameters_start_at_the_host_and_the_floor() {
        let s = sample_at(3_000, 1_000);
        let p = next_params(None, 0, &s, GHZ3, 3_300);
        assert_eq!(p.mono_base, 1_000 + scale(300, GHZ3));
        assert_eq!(p.real_base - p.mono_base, 1_700_000_000 * NSEC_PER_SEC);
        let p = next_params(None, 5_000, &s, GHZ3, 3_300);
        assert_eq!(p.mono_base, 5_000, "never behind what was answered");
    }

    #[test]
    fn updates_never_go_back_and_converge() {
        // The host runs 100 ppm slower than the first calibration said.
        let host_rate = GHZ3 - GHZ3 / 10_000;
        let first = sample_at(0, 0);
        let mut p = next_params(None, 0, &first, GHZ3, 0);
        let step = 3 * PERIOD.as_nanos() as u64; // ticks per period
        let mut last = 0;
        for i in 1..200u64 {
            let tb = i * step;
            // Readers just before and at the switch.
            let before = p.mono(tb - 1);
            assert!(before >= last);
            let s = sample_at(tb - 10, scale(tb - 10, host_rate));
            let nominal = frequency(&first, &s).unwrap();
            let n = next_params(Some(p), 0, &s, nominal, tb);
            assert!(n.mono(tb) >= p.mono(tb), "update {i} went back");
            assert!(n.mono(tb) >= before);
            last = n.mono(tb);
            p = n;
        }
        // Slewing has pulled the clock onto the host's.
        let tb = 200 * step;
        let err = p.mono(tb) as i64 - scale(tb, host_rate) as i64;
        assert!(err.abs() < 1_000, "still {err} ns off the host");
    }

    #[test]
    fn far_behind_steps_forward() {
        let p = next_params(None, 0, &sample_at(0, 0), GHZ3, 0);
        let tb = 3 * NSEC_PER_SEC;
        let s = sample_at(tb, NSEC_PER_SEC + 50_000_000);
        let n = next_params(Some(p), 0, &s, GHZ3, tb);
        assert_eq!(n.mono_base, NSEC_PER_SEC + 50_000_000);
    }

    #[test]
    fn negative_elapsed_counts_as_zero() {
        let p = Params {
            tsc_base: 1_000,
            mult: GHZ3,
            mono_base: 7,
            real_base: 9,
        };
        assert_eq!(p.mono(10), 7);
        assert_eq!(p.real(10), 9);
    }

    /// The real thing: a timekeeper on this machine stays close to the
    /// host's clock and never goes back, across its first updates.
    #[test]
    fn follows_the_host_clock() {
        if !invariant_tsc() {
            return;
        }
        let mf = crate::mm::MemoryFile::new().unwrap();
        let off = mf.allocate(crate::vdso::VVAR_SIZE).unwrap();
        let tk = Timekeeper::start(mf.window(off, crate::vdso::VVAR_SIZE).unwrap());
        let (mut last, mut worst) = (0u64, 0i64);
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(1500) {
            let before = host_ns(libc::CLOCK_MONOTONIC);
            let ours = tk.now_ns(libc::CLOCK_MONOTONIC).unwrap();
            let after = host_ns(libc::CLOCK_MONOTONIC);
            assert!(ours >= last, "went back by {} ns", last - ours);
            last = ours;
            // How far outside the host's readings before and after it.
            let off = if ours < before {
                ours as i64 - before as i64
            } else {
                ours.saturating_sub(after) as i64
            };
            if start.elapsed() > Duration::from_millis(500) && off.abs() > worst.abs() {
                worst = off;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        eprintln!("farthest outside the host's readings after 500 ms: {worst} ns");
        assert!(tk.state.locked().params.is_some());
        // Loose, for loaded machines; typically 0 (within tens of ns).
        assert!(worst.abs() < 100_000, "{worst} ns off the host");
    }

    #[test]
    fn frequency_is_measured_and_checked() {
        let a = sample_at(0, 0);
        let b = sample_at(30_000_000, 10_000_000);
        let m = frequency(&a, &b).unwrap();
        assert!((m as i64 - GHZ3 as i64).abs() <= 1);
        assert_eq!(frequency(&a, &sample_at(30, 10)), None, "too short");
        assert!(frequency(
            &a,
            &sample_at(3 * INITIAL_CALIBRATION_NS, INITIAL_CALIBRATION_NS)
        )
        .is_some());
        assert_eq!(
            frequency(&a, &sample_at(1, 10_000_000)),
            None,
            "implausible"
        );
    }
}
