//! Terminals: the line discipline of a pseudo-terminal pair (Linux's
//! n_tty), its settings and window size, and job control (controlling
//! terminals, foreground process groups, SIGTTIN and SIGTTOU).
//!
//! A [`Terminal`] is what both ends of a pair share. What the master
//! writes is the replica's input: it waits in `pending` (Linux's flip
//! buffer, 8 KiB) until the line discipline processes it into `input` (the
//! read buffer, 4 KiB), applying the input flags, the signal characters,
//! canonical editing and echo. What the replica writes goes through output
//! processing (`OPOST`) into `output`, which the master reads; echo goes
//! there too. Both ends wait on one queue, notified on every change (as
//! pipes do). The master's own settings are Linux's fixed raw ones: every
//! settings ioctl on either end acts on the replica's.
//!
//! Job control follows Linux's tty_jobctrl.c. A process's controlling
//! terminal is its thread group's `tty` (fork copies it, setsid clears
//! it); a terminal knows the session it controls and that session's
//! foreground process group. A session leader without one acquires a
//! terminal by `TIOCSCTTY` or by opening a replica without `O_NOCTTY`;
//! when the leader exits, the foreground group gets SIGHUP and the session
//! loses the terminal. When the master closes, the replica hangs up: its
//! files read 0 and fail writes with EIO, and the session leader gets
//! SIGHUP and SIGCONT.
//!
//! Lock order: the task set, then a terminal's `job`; a terminal's line
//! discipline lock is never held while taking the task set (signals the
//! input raises are sent once it is released).

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::process::TaskSet;
use super::signal::{self, SigInfo};
use super::task::{Task, ThreadGroup};
use super::timer::{Expire, TimerHandle};
use super::waiter::WaitQueue;
use super::Kernel;
use crate::errno::Errno;

/// The major number of pty replicas (Linux's UNIX98_PTY_SLAVE_MAJOR).
pub const REPLICA_MAJOR: u32 = 136;
/// `NCCS` of the kernel's `struct termios`.
pub const NCCS: usize = 19;
/// The line discipline's read buffer (Linux's N_TTY_BUF_SIZE).
pub const N_TTY_BUF_SIZE: usize = 4096;
/// Bytes the master may write ahead of the line discipline (the flip
/// buffer's limit of a pty).
const PENDING_MAX: usize = 8192;
/// What the master's read buffer holds; output past it is in the master's
/// flip buffer, which an output flush discards.
const MASTER_BUF: usize = 4096;
/// Output the replica may write before the master reads.
const OUTPUT_MAX: usize = MASTER_BUF + 8192;
/// Echo may go this far past [`OUTPUT_MAX`]; beyond, it is dropped.
const ECHO_SLACK: usize = 4096;

/// The speeds of the `Bnnn` codes, by index (Linux's baud_table).
const BAUD_TABLE: [u32; 31] = [
    0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600,
    115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000,
    3000000, 3500000, 4000000,
];
const CBAUD: u32 = 0o010017;
const CBAUDEX: u32 = 0o010000;
const BOTHER: u32 = 0o010000;
const IBSHIFT: u32 = 16;

/// Linux's INIT_C_CC: ^C ^\ ^? ^U ^D, VTIME 0, VMIN 1, ^Q ^S ^Z, ^R ^O ^W ^V.
const INIT_C_CC: [u8; NCCS] = [
    3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0,
];

/// The speed `Bnnn` code `code` stands for (`other` for BOTHER).
fn baud_of(code: u32, other: u32) -> u32 {
    if code == BOTHER {
        return other;
    }
    let mut i = code;
    if i & CBAUDEX != 0 {
        i &= !CBAUDEX;
        i += 15;
    }
    BAUD_TABLE.get(i as usize).copied().unwrap_or(0)
}

/// A terminal's settings: the kernel's `struct termios2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
    pub ispeed: u32,
    pub ospeed: u32,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le16(b: &[u8], at: usize) -> u32 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as u32
}

impl Settings {
    /// A new replica's settings (Linux's pts driver: tty_std_termios with
    /// `B38400 | CS8 | CREAD`).
    pub fn replica_default() -> Settings {
        Settings {
            iflag: libc::ICRNL | libc::IXON,
            oflag: libc::OPOST | libc::ONLCR,
            cflag: libc::B38400 | libc::CS8 | libc::CREAD,
            lflag: libc::ISIG
                | libc::ICANON
                | libc::ECHO
                | libc::ECHOE
                | libc::ECHOK
                | libc::ECHOCTL
                | libc::ECHOKE
                | libc::IEXTEN,
            line: 0,
            cc: INIT_C_CC,
            ispeed: 38400,
            ospeed: 38400,
        }
    }

    /// The kernel's `struct termios` (36 bytes: TCGETS).
    pub fn to_termios(&self) -> [u8; 36] {
        let mut b = [0u8; 36];
        b[0..4].copy_from_slice(&self.iflag.to_le_bytes());
        b[4..8].copy_from_slice(&self.oflag.to_le_bytes());
        b[8..12].copy_from_slice(&self.cflag.to_le_bytes());
        b[12..16].copy_from_slice(&self.lflag.to_le_bytes());
        b[16] = self.line;
        b[17..36].copy_from_slice(&self.cc);
        b
    }

    /// `struct termios2` (44 bytes: TCGETS2), with the speeds.
    pub fn to_termios2(&self) -> [u8; 44] {
        let mut b = [0u8; 44];
        b[..36].copy_from_slice(&self.to_termios());
        b[36..40].copy_from_slice(&self.ispeed.to_le_bytes());
        b[40..44].copy_from_slice(&self.ospeed.to_le_bytes());
        b
    }

    /// The old `struct termio` (18 bytes: TCGETA): the flags' low halves
    /// and the first 8 control characters.
    pub fn to_termio(&self) -> [u8; 18] {
        let mut b = [0u8; 18];
        for (i, f) in [self.iflag, self.oflag, self.cflag, self.lflag]
            .iter()
            .enumerate()
        {
            b[i * 2..i * 2 + 2].copy_from_slice(&(*f as u16).to_le_bytes());
        }
        b[8] = self.line;
        b[9..17].copy_from_slice(&self.cc[..8]);
        b
    }

    /// Settings from a `struct termios` (TCSETS*); the speeds are the
    /// `Bnnn` codes' (Linux's set_termios).
    pub fn from_termios(b: &[u8]) -> Settings {
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&b[17..36]);
        let mut s = Settings {
            iflag: le32(b, 0),
            oflag: le32(b, 4),
            cflag: le32(b, 8),
            lflag: le32(b, 12),
            line: b[16],
            cc,
            ispeed: 0,
            ospeed: 0,
        };
        s.compute_speeds();
        s
    }

    /// Settings from a `struct termios2` (TCSETS*2): BOTHER takes the
    /// speeds given.
    pub fn from_termios2(b: &[u8]) -> Settings {
        let mut s = Settings::from_termios(&b[..36]);
        s.ispeed = le32(b, 36);
        s.ospeed = le32(b, 40);
        s.compute_speeds();
        s
    }

    /// `self` changed by a `struct termio` (TCSETA*): the flags' low
    /// halves and the first 8 control characters.
    pub fn with_termio(&self, b: &[u8]) -> Settings {
        let mut s = *self;
        let merge = |old: u32, new: u32| (old & 0xffff_0000) | new;
        s.iflag = merge(s.iflag, le16(b, 0));
        s.oflag = merge(s.oflag, le16(b, 2));
        s.cflag = merge(s.cflag, le16(b, 4));
        s.lflag = merge(s.lflag, le16(b, 6));
        s.line = b[8];
        s.cc[..8].copy_from_slice(&b[9..17]);
        s.compute_speeds();
        s
    }

    /// Linux's tty_termios_baud_rate and tty_termios_input_baud_rate.
    fn compute_speeds(&mut self) {
        let out = baud_of(self.cflag & CBAUD, self.ospeed);
        let icode = (self.cflag >> IBSHIFT) & CBAUD;
        self.ispeed = if icode == 0 {
            out
        } else {
            baud_of(icode, self.ispeed)
        };
        self.ospeed = out;
    }
}

/// `struct winsize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WinSize {
    pub row: u16,
    pub col: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

impl WinSize {
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        for (i, v) in [self.row, self.col, self.xpixel, self.ypixel]
            .iter()
            .enumerate()
        {
            b[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    pub fn from_bytes(b: &[u8; 8]) -> WinSize {
        let h = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        WinSize {
            row: h(0),
            col: h(2),
            xpixel: h(4),
            ypixel: h(6),
        }
    }
}

// The kernel's ctype for bytes (lib/ctype.c: Latin-1 above 127).
fn is_cntrl(c: u8) -> bool {
    c < 32 || c == 127 || (128..160).contains(&c)
}

fn is_upper(c: u8) -> bool {
    c.is_ascii_uppercase() || ((192..=222).contains(&c) && c != 215)
}

fn is_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || (c >= 223 && c != 247)
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_digit() || is_upper(c) || is_lower(c)
}

fn to_lower(c: u8) -> u8 {
    if is_upper(c) {
        c + 32
    } else {
        c
    }
}

fn to_upper(c: u8) -> u8 {
    if is_lower(c) && c != 223 && c != 255 {
        c - 32
    } else {
        c
    }
}

/// Which end of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Master,
    Replica,
}

/// The result of an attempt to read the replica.
pub enum ReadAttempt {
    /// Bytes read (0: end of file, hangup, or a VMIN/VTIME timeout).
    Done(usize),
    /// Nothing yet: wait for a change (at `generation`), at most until the
    /// deadline.
    Wait(Option<Instant>, u64),
}

/// The line discipline and the pair's state, under one lock.
struct Ldisc {
    s: Settings,
    winsize: WinSize,
    /// Processed input: each byte, and whether it ends a line (Linux's
    /// read_flags).
    input: VecDeque<(u8, bool)>,
    /// Input bytes (from the front) in complete lines: Linux's canon_head.
    canon_len: usize,
    /// What the master wrote that is not processed yet.
    pending: VecDeque<u8>,
    /// The next character is taken literally (VLNEXT).
    lnext: bool,
    /// Inside an ECHOPRT erase (`\`...`/`).
    erasing: bool,
    column: usize,
    canon_column: usize,
    /// When input last arrived (VTIME between bytes).
    last_input: Instant,
    /// What the master reads.
    output: VecDeque<u8>,
    /// Echo made while output was stopped, sent when it starts again.
    held_echo: Vec<u8>,
    /// Output stopped by the STOP character, and by TCOOFF.
    stopped: bool,
    tco_stopped: bool,
    /// The replica cannot be opened until unlocked (TIOCSPTLCK).
    locked: bool,
    /// TIOCEXCL: only CAP_SYS_ADMIN may open the replica again.
    exclusive: bool,
    master_open: bool,
    /// Open replica files (and /dev/tty files of it).
    replicas: usize,
    /// Every replica file was closed since one was opened: the master
    /// reads EIO and polls POLLHUP (Linux's TTY_OTHER_CLOSED).
    other_closed: bool,
    /// Bumped on every change anyone may wait for.
    generation: u64,
}

/// What processing input asks for once the lock is released.
#[derive(Default)]
struct Effects {
    signals: Vec<i32>,
}

impl Ldisc {
    fn new() -> Ldisc {
        Ldisc {
            s: Settings::replica_default(),
            winsize: WinSize::default(),
            input: VecDeque::new(),
            canon_len: 0,
            pending: VecDeque::new(),
            lnext: false,
            erasing: false,
            column: 0,
            canon_column: 0,
            last_input: Instant::now(),
            output: VecDeque::new(),
            held_echo: Vec::new(),
            stopped: false,
            tco_stopped: false,
            locked: true,
            exclusive: false,
            master_open: true,
            replicas: 0,
            other_closed: false,
            generation: 0,
        }
    }

    fn i(&self, f: u32) -> bool {
        self.s.iflag & f != 0
    }
    fn o(&self, f: u32) -> bool {
        self.s.oflag & f != 0
    }
    fn l(&self, f: u32) -> bool {
        self.s.lflag & f != 0
    }
    fn icanon(&self) -> bool {
        self.l(libc::ICANON)
    }
    /// Whether `c` is control character `which` (a zero one is disabled).
    fn is_cc(&self, c: u8, which: usize) -> bool {
        let v = self.s.cc[which];
        v != 0 && c == v
    }
    fn is_continuation(&self, c: u8) -> bool {
        self.i(libc::IUTF8) && c & 0xc0 == 0x80
    }

    // ----- Output -----

    /// Where output goes: the master's buffer; echo first to Linux's echo
    /// buffer, which [`Ldisc::flush_echo`] empties.
    fn emit(&mut self, c: u8, echo: bool) {
        if echo {
            if self.held_echo.len() < ECHO_SLACK {
                self.held_echo.push(c);
            }
        } else {
            self.output.push_back(c);
        }
    }

    /// Sends the echo made so far, unless output is stopped (Linux's
    /// process_echoes: at the end of each input batch, when output starts
    /// again by VSTART, and before the replica's writes). Beyond the
    /// slack past a full buffer, echo is dropped.
    fn flush_echo(&mut self) {
        if self.stopped || self.held_echo.is_empty() {
            return;
        }
        let room = (OUTPUT_MAX + ECHO_SLACK).saturating_sub(self.output.len());
        let n = room.min(self.held_echo.len());
        self.output.extend(self.held_echo.drain(..).take(n));
    }

    /// Room the next output character needs, or None when it needs none.
    fn output_room(&self, c: u8) -> usize {
        if !self.o(libc::OPOST) {
            return 1;
        }
        match c {
            b'\n' if self.o(libc::ONLCR) => 2,
            b'\t' if self.s.oflag & libc::TABDLY == libc::XTABS => 8 - (self.column & 7),
            _ => 1,
        }
    }

    /// Linux's do_output_char: one character through OPOST processing.
    fn output_char(&mut self, mut c: u8, echo: bool) {
        match c {
            b'\n' => {
                if self.o(libc::ONLRET) {
                    self.column = 0;
                }
                if self.o(libc::ONLCR) {
                    self.column = 0;
                    self.canon_column = 0;
                    self.emit(b'\r', echo);
                    self.emit(b'\n', echo);
                    return;
                }
                self.canon_column = self.column;
            }
            b'\r' => {
                if self.o(libc::ONOCR) && self.column == 0 {
                    return;
                }
                if self.o(libc::OCRNL) {
                    c = b'\n';
                    if self.o(libc::ONLRET) {
                        self.column = 0;
                        self.canon_column = 0;
                    }
                } else {
                    self.column = 0;
                    self.canon_column = 0;
                }
            }
            b'\t' => {
                let spaces = 8 - (self.column & 7);
                self.column += spaces;
                if self.s.oflag & libc::TABDLY == libc::XTABS {
                    for _ in 0..spaces {
                        self.emit(b' ', echo);
                    }
                    return;
                }
            }
            8 => {
                self.column = self.column.saturating_sub(1);
            }
            _ => {
                if !is_cntrl(c) {
                    if self.o(libc::OLCUC) {
                        c = to_upper(c);
                    }
                    if !self.is_continuation(c) {
                        self.column += 1;
                    }
                }
            }
        }
        self.emit(c, echo);
    }

    /// The replica writes `src`: what fits in the master's buffer goes
    /// through output processing. The bytes taken.
    fn write_output(&mut self, src: &[u8]) -> usize {
        self.flush_echo();
        if self.stopped {
            return 0;
        }
        let opost = self.o(libc::OPOST);
        let mut n = 0;
        for &c in src {
            let space = OUTPUT_MAX.saturating_sub(self.output.len());
            if space == 0 || space < self.output_room(c) {
                break;
            }
            if opost {
                self.output_char(c, false);
            } else {
                self.output.push_back(c);
            }
            n += 1;
        }
        n
    }

    // ----- Echo (Linux's echo buffer, written at once) -----

    /// A character echoed as itself, through output processing.
    fn echo_raw(&mut self, c: u8) {
        if self.o(libc::OPOST) {
            self.output_char(c, true);
        } else {
            self.emit(c, true);
        }
    }

    /// A character echoed, control characters as `^X` with ECHOCTL.
    fn echo_char(&mut self, c: u8) {
        if self.l(libc::ECHOCTL) && is_cntrl(c) && c != b'\t' {
            self.emit(b'^', true);
            self.emit(c ^ 0o100, true);
            self.column += 2;
        } else {
            self.echo_raw(c);
        }
    }

    fn finish_erasing(&mut self) {
        if self.erasing {
            self.echo_raw(b'/');
            self.erasing = false;
        }
    }

    /// Backspaces over a tab: `num_chars` columns of other characters
    /// since the line's start (or since an earlier tab, `after_tab`).
    fn echo_erase_tab(&mut self, num_chars: usize, after_tab: bool) {
        let mut n = num_chars & 7;
        if !after_tab {
            n += self.canon_column;
        }
        for _ in 0..8 - (n & 7) {
            self.emit(8, true);
            self.column = self.column.saturating_sub(1);
        }
    }

    /// Whether no character of the current line is buffered.
    fn at_line_start(&self) -> bool {
        self.input.len() == self.canon_len
    }

    // ----- Input -----

    fn put(&mut self, c: u8) {
        self.input.push_back((c, false));
        self.last_input = Instant::now();
    }

    /// Ends a line with `c` (0 for VEOF, which read does not return).
    fn newline(&mut self, c: u8) {
        self.input.push_back((c, true));
        self.canon_len = self.input.len();
        self.last_input = Instant::now();
    }

    /// Processes pending input while the read buffer has room. In
    /// canonical mode a full buffer without a complete line gives up its
    /// last character for each new one (Linux's overflow), so the line can
    /// still be ended or edited.
    fn process(&mut self, fx: &mut Effects) {
        let mut received = false;
        while let Some(&c) = self.pending.front() {
            if self.input.len() >= N_TTY_BUF_SIZE - 1 {
                let overflow = self.icanon() && self.canon_len == 0;
                if !overflow {
                    break;
                }
                if self.input.len() >= N_TTY_BUF_SIZE {
                    self.input.pop_back();
                }
            }
            self.pending.pop_front();
            self.receive(c, fx);
            received = true;
        }
        if received && (self.l(libc::ECHO) || self.l(libc::ECHONL)) {
            self.flush_echo();
        }
    }

    /// Linux's n_tty_receive_buf_standard, one character.
    fn receive(&mut self, c: u8, fx: &mut Effects) {
        let mut c = c;
        if self.i(libc::ISTRIP) {
            c &= 0x7f;
        }
        if self.i(libc::IUCLC) && self.l(libc::IEXTEN) {
            c = to_lower(c);
        }
        if self.lnext {
            self.lnext = false;
            self.receive_normal(c);
        } else if self.is_special(c) {
            self.receive_special(c, fx);
        } else {
            self.receive_normal(c);
        }
    }

    /// Linux's char_map: the characters the settings make special.
    fn is_special(&self, c: u8) -> bool {
        use libc::*;
        if c == 0 {
            return false;
        }
        if c == b'\r' && (self.i(IGNCR) || self.i(ICRNL)) {
            return true;
        }
        if c == b'\n' && self.i(INLCR) {
            return true;
        }
        if self.icanon() {
            if c == b'\n'
                || [VERASE, VKILL, VEOF, VEOL]
                    .iter()
                    .any(|&w| self.is_cc(c, w))
            {
                return true;
            }
            if self.l(IEXTEN) {
                if [VWERASE, VLNEXT, VEOL2].iter().any(|&w| self.is_cc(c, w)) {
                    return true;
                }
                if self.l(ECHO) && self.is_cc(c, VREPRINT) {
                    return true;
                }
            }
        }
        if self.i(IXON) && (self.is_cc(c, VSTART) || self.is_cc(c, VSTOP)) {
            return true;
        }
        self.l(ISIG) && [VINTR, VQUIT, VSUSP].iter().any(|&w| self.is_cc(c, w))
    }

    /// Linux's __start_tty: output stopped by VSTOP goes on (TCOOFF's
    /// stays until TCOON). Held echo waits for its next flush.
    fn start_output(&mut self) {
        if self.stopped && !self.tco_stopped {
            self.stopped = false;
        }
    }

    fn maybe_ixany(&mut self) {
        if self.stopped && !self.tco_stopped && self.i(libc::IXON) && self.i(libc::IXANY) {
            self.start_output();
            self.flush_echo();
        }
    }

    /// Linux's n_tty_receive_char: an ordinary character.
    fn receive_normal(&mut self, c: u8) {
        self.maybe_ixany();
        if self.l(libc::ECHO) {
            self.finish_erasing();
            if self.at_line_start() {
                self.canon_column = self.column;
            }
            self.echo_char(c);
        }
        if c == 0o377 && self.i(libc::PARMRK) {
            self.put(c);
        }
        self.put(c);
    }

    /// Linux's n_tty_receive_char_special.
    fn receive_special(&mut self, c: u8, fx: &mut Effects) {
        use libc::*;
        let mut c = c;
        if self.i(IXON) && (self.is_cc(c, VSTART) || self.is_cc(c, VSTOP)) {
            if self.is_cc(c, VSTART) {
                self.start_output();
                self.flush_echo();
            } else {
                self.stopped = true;
            }
            return;
        }
        if self.l(ISIG) {
            for (w, sig) in [(VINTR, SIGINT), (VQUIT, SIGQUIT), (VSUSP, SIGTSTP)] {
                if self.is_cc(c, w) {
                    self.signal_char(sig, c, fx);
                    return;
                }
            }
        }
        self.maybe_ixany();
        if c == b'\r' {
            if self.i(IGNCR) {
                return;
            }
            if self.i(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && self.i(INLCR) {
            c = b'\r';
        }
        if self.icanon() {
            if self.is_cc(c, VERASE)
                || self.is_cc(c, VKILL)
                || (self.is_cc(c, VWERASE) && self.l(IEXTEN))
            {
                self.eraser(c);
                return;
            }
            if self.is_cc(c, VLNEXT) && self.l(IEXTEN) {
                self.lnext = true;
                if self.l(ECHO) {
                    self.finish_erasing();
                    if self.l(ECHOCTL) {
                        self.echo_raw(b'^');
                        self.echo_raw(8);
                    }
                }
                return;
            }
            if self.is_cc(c, VREPRINT) && self.l(ECHO) && self.l(IEXTEN) {
                self.finish_erasing();
                self.echo_char(c);
                self.echo_raw(b'\n');
                let line: Vec<u8> = self.input.range(self.canon_len..).map(|e| e.0).collect();
                for b in line {
                    self.echo_char(b);
                }
                return;
            }
            if c == b'\n' {
                if self.l(ECHO) || self.l(ECHONL) {
                    self.echo_raw(b'\n');
                }
                self.newline(c);
                return;
            }
            if self.is_cc(c, VEOF) {
                self.newline(0);
                return;
            }
            if self.is_cc(c, VEOL) || (self.is_cc(c, VEOL2) && self.l(IEXTEN)) {
                if self.l(ECHO) {
                    if self.at_line_start() {
                        self.canon_column = self.column;
                    }
                    self.echo_char(c);
                }
                if c == 0o377 && self.i(PARMRK) {
                    self.put(c);
                }
                self.newline(c);
                return;
            }
        }
        if self.l(ECHO) {
            self.finish_erasing();
            if c == b'\n' {
                self.echo_raw(b'\n');
            } else {
                if self.at_line_start() {
                    self.canon_column = self.column;
                }
                self.echo_char(c);
            }
        }
        if c == 0o377 && self.i(PARMRK) {
            self.put(c);
        }
        self.put(c);
    }

    /// A signal character: the signal (sent by the caller), input and
    /// the master's unread output flushed unless NOFLSH, then the echo.
    fn signal_char(&mut self, sig: i32, c: u8, fx: &mut Effects) {
        fx.signals.push(sig);
        if !self.l(libc::NOFLSH) {
            self.held_echo.clear();
            self.flush_input();
            self.flush_output_driver();
        }
        if self.i(libc::IXON) {
            self.start_output();
        }
        if self.l(libc::ECHO) {
            self.echo_char(c);
        }
    }

    /// Linux's eraser: VERASE, VWERASE and VKILL with their echoes.
    fn eraser(&mut self, c: u8) {
        use libc::*;
        #[derive(PartialEq)]
        enum Kind {
            Erase,
            Werase,
            Kill,
        }
        if self.at_line_start() {
            return;
        }
        let kind = if self.is_cc(c, VERASE) {
            Kind::Erase
        } else if self.is_cc(c, VWERASE) {
            Kind::Werase
        } else {
            if !self.l(ECHO) {
                self.input.truncate(self.canon_len);
                return;
            }
            if !self.l(ECHOK) || !self.l(ECHOKE) || !self.l(ECHOE) {
                self.input.truncate(self.canon_len);
                self.finish_erasing();
                self.echo_char(self.s.cc[VKILL]);
                if self.l(ECHOK) {
                    self.echo_raw(b'\n');
                }
                return;
            }
            Kind::Kill
        };
        let mut seen_alnums = 0;
        while self.input.len() > self.canon_len {
            // One character, all its bytes for UTF-8.
            let mut head = self.input.len();
            let mut ch;
            loop {
                head -= 1;
                ch = self.input[head].0;
                if !(self.is_continuation(ch) && head > self.canon_len) {
                    break;
                }
            }
            if self.is_continuation(ch) {
                break;
            }
            if kind == Kind::Werase {
                if is_alnum(ch) || ch == b'_' {
                    seen_alnums += 1;
                } else if seen_alnums > 0 {
                    break;
                }
            }
            let erased: Vec<u8> = self.input.range(head..).map(|e| e.0).collect();
            self.input.truncate(head);
            if self.l(ECHO) {
                if self.l(ECHOPRT) {
                    if !self.erasing {
                        self.echo_raw(b'\\');
                        self.erasing = true;
                    }
                    self.echo_char(ch);
                    for &b in &erased[1..] {
                        self.echo_raw(b);
                        self.column = self.column.saturating_sub(1);
                    }
                } else if kind == Kind::Erase && !self.l(ECHOE) {
                    self.echo_char(self.s.cc[VERASE]);
                } else if ch == b'\t' {
                    let mut num_chars = 0;
                    let mut after_tab = false;
                    for i in (self.canon_len..self.input.len()).rev() {
                        let c2 = self.input[i].0;
                        if c2 == b'\t' {
                            after_tab = true;
                            break;
                        } else if is_cntrl(c2) {
                            if self.l(ECHOCTL) {
                                num_chars += 2;
                            }
                        } else if !self.is_continuation(c2) {
                            num_chars += 1;
                        }
                    }
                    self.echo_erase_tab(num_chars, after_tab);
                } else {
                    if is_cntrl(ch) && self.l(ECHOCTL) {
                        self.echo_raw(8);
                        self.echo_raw(b' ');
                        self.echo_raw(8);
                    }
                    if !is_cntrl(ch) || self.l(ECHOCTL) {
                        self.echo_raw(8);
                        self.echo_raw(b' ');
                        self.echo_raw(8);
                    }
                }
            }
            if kind == Kind::Erase {
                break;
            }
        }
        if self.at_line_start() && self.l(ECHO) {
            self.finish_erasing();
        }
    }

    /// The line discipline's input and its flip buffer go (TCIFLUSH,
    /// TCSETSF, a signal character).
    fn flush_input(&mut self) {
        self.input.clear();
        self.canon_len = 0;
        self.erasing = false;
    }

    /// The output the master has not taken into its read buffer goes (a
    /// pty's flush_buffer: the master's flip buffer).
    fn flush_output_driver(&mut self) {
        self.output.truncate(MASTER_BUF);
    }

    /// Whether the replica has input to read: a complete line in
    /// canonical mode, else `amt` bytes.
    fn input_available(&self, poll: bool) -> bool {
        if self.icanon() {
            return self.canon_len > 0;
        }
        let min = self.s.cc[libc::VMIN] as usize;
        let amt = if poll && self.s.cc[libc::VTIME] == 0 && min > 0 {
            min
        } else {
            1
        };
        self.input.len() >= amt
    }

    /// Copies a canonical line (or what fits) into `dst`: Linux's
    /// canon_copy_from_read_buf. A VEOF terminator is consumed, not copied.
    fn read_canon(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.canon_len);
        let eol = (0..n).find(|&i| self.input[i].1);
        let (copy, consume) = match eol {
            Some(i) if self.input[i].0 == 0 => (i, i + 1),
            Some(i) => (i + 1, i + 1),
            None => (n, n),
        };
        for (d, s) in dst.iter_mut().zip(self.input.drain(..consume)).take(copy) {
            *d = s.0;
        }
        self.canon_len -= consume;
        copy
    }

    fn read_raw(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.input.len());
        for (d, s) in dst.iter_mut().zip(self.input.drain(..n)) {
            *d = s.0;
        }
        self.canon_len = self.canon_len.saturating_sub(n);
        n
    }

    /// Applies new settings (Linux's set_termios, pty_set_termios and
    /// n_tty_set_termios).
    fn set(&mut self, mut new: Settings) {
        let old = self.s;
        // A pty always has 8 data bits, no parity, and the receiver on.
        new.cflag = (new.cflag & !(libc::CSIZE | libc::PARENB)) | libc::CS8 | libc::CREAD;
        self.s = new;
        if (old.lflag ^ new.lflag) & (libc::ICANON | libc::EXTPROC) != 0 {
            for e in self.input.iter_mut() {
                e.1 = false;
            }
            if !self.icanon() || self.input.is_empty() {
                self.canon_len = 0;
            } else {
                // What was typed raw becomes one line.
                if let Some(last) = self.input.back_mut() {
                    last.1 = true;
                }
                self.canon_len = self.input.len();
            }
            self.erasing = false;
            self.lnext = false;
        }
        if !self.i(libc::IXON) && old.iflag & libc::IXON != 0 && !self.tco_stopped {
            self.start_output();
        }
    }
}

/// The session a terminal controls, and its foreground process group.
#[derive(Default)]
struct Job {
    session: Option<i32>,
    pgrp: Option<i32>,
}

/// Work a terminal leaves to the timer thread, which holds no lock: what
/// a file's release must not do itself (take the task set).
#[derive(Default)]
struct Deferred {
    /// The master closed: hang up the session.
    hangup: bool,
    /// The last replica file closed: the session's processes lose it as
    /// their controlling terminal.
    clear_session: bool,
}

/// What a pair's owner does when the pair is gone: free its number.
pub type Release = Box<dyn FnOnce(u32) + Send>;

/// A pseudo-terminal pair.
pub struct Terminal {
    /// Its number in its devpts instance (`/dev/pts/N`).
    pub index: u32,
    kernel: Weak<Kernel>,
    ld: Mutex<Ldisc>,
    /// Notified on every change: input, output, room, settings, ends.
    queue: Arc<WaitQueue>,
    job: Mutex<Job>,
    deferred: Mutex<Deferred>,
    timer_key: u64,
    /// Called with the index when the pair is gone (devpts frees it).
    on_release: Mutex<Option<Release>>,
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(f) = self.on_release.get_mut().take() {
            f(self.index);
        }
    }
}

impl Expire for Terminal {
    fn expire(&self, _queue: &TimerHandle, _now: Instant) {
        let d = std::mem::take(&mut *self.deferred.lock());
        let Some(kernel) = self.kernel.upgrade() else {
            return;
        };
        if d.hangup {
            self.hangup_session(&kernel);
        } else if d.clear_session {
            let ts = kernel.tasks.lock();
            if let Some(sid) = self.job.lock().session {
                clear_session_locked(&ts, sid, Some(self));
            }
        }
    }
}

impl Terminal {
    /// A new pair, locked (its replica opens once TIOCSPTLCK unlocks it).
    pub fn new(index: u32, kernel: &Arc<Kernel>, on_release: Release) -> Arc<Terminal> {
        Arc::new(Terminal {
            index,
            kernel: Arc::downgrade(kernel),
            ld: Mutex::new(Ldisc::new()),
            queue: Arc::new(WaitQueue::default()),
            job: Mutex::new(Job::default()),
            deferred: Mutex::new(Deferred::default()),
            timer_key: super::timer::new_key(),
            on_release: Mutex::new(Some(on_release)),
        })
    }

    pub fn queue(&self) -> Arc<WaitQueue> {
        self.queue.clone()
    }

    /// The count of changes so far (a waiter's starting point).
    pub fn generation(&self) -> u64 {
        self.ld.lock().generation
    }

    fn changed(&self, ld: &mut Ldisc) {
        ld.generation += 1;
    }

    fn notify(&self) {
        self.queue.notify_all();
    }

    /// Runs `f` on the line discipline; everyone waiting hears of it, and
    /// the signals it raised go to the foreground group.
    fn with_ld<T>(&self, f: impl FnOnce(&mut Ldisc, &mut Effects) -> T) -> T {
        let mut fx = Effects::default();
        let r = {
            let mut ld = self.ld.lock();
            let r = f(&mut ld, &mut fx);
            self.changed(&mut ld);
            r
        };
        self.notify();
        for sig in fx.signals {
            self.signal_foreground(sig);
        }
        r
    }

    /// Sends `sig` to the foreground process group, if there is one.
    pub fn signal_foreground(&self, sig: i32) {
        let Some(kernel) = self.kernel.upgrade() else {
            return;
        };
        let ts = kernel.tasks.lock();
        let pgrp = self.job.lock().pgrp;
        if let Some(pg) = pgrp {
            kill_pgrp_locked(&kernel, &ts, pg, sig);
        }
    }

    // ----- The master -----

    /// Reads what the replica wrote: EAGAIN when there is nothing, EIO
    /// when every replica file is closed too.
    pub fn master_read(&self, dst: &mut [u8]) -> Result<usize, Errno> {
        if dst.is_empty() {
            return Ok(0);
        }
        let mut ld = self.ld.lock();
        if ld.output.is_empty() {
            return Err(if ld.other_closed {
                Errno::EIO
            } else {
                Errno::EAGAIN
            });
        }
        let n = dst.len().min(ld.output.len());
        for (d, s) in dst.iter_mut().zip(ld.output.drain(..n)) {
            *d = s;
        }
        self.changed(&mut ld);
        drop(ld);
        self.notify();
        Ok(n)
    }

    /// Writes the replica's input: what fits in the flip buffer, processed
    /// as far as the read buffer allows. EAGAIN when nothing fits.
    pub fn master_write(&self, src: &[u8]) -> Result<usize, Errno> {
        if src.is_empty() {
            return Ok(0);
        }
        let n = self.with_ld(|ld, fx| {
            let n = src.len().min(PENDING_MAX.saturating_sub(ld.pending.len()));
            ld.pending.extend(&src[..n]);
            ld.process(fx);
            n
        });
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(n)
    }

    pub fn master_readiness(&self) -> i16 {
        let ld = self.ld.lock();
        let mut r = 0;
        if !ld.output.is_empty() {
            r |= libc::POLLIN | libc::POLLRDNORM;
        }
        if ld.other_closed {
            r |= libc::POLLHUP;
        }
        if ld.pending.len() < PENDING_MAX {
            r |= libc::POLLOUT | libc::POLLWRNORM;
        }
        r
    }

    /// The master's file is gone: the replica hangs up, its node goes
    /// (the caller's), and the session hears of it from the timer thread.
    pub fn master_closed(self: &Arc<Self>) {
        {
            let mut ld = self.ld.lock();
            ld.master_open = false;
            self.changed(&mut ld);
        }
        self.notify();
        if self.job.lock().session.is_some() {
            self.deferred.lock().hangup = true;
            self.defer();
        }
    }

    fn defer(self: &Arc<Self>) {
        let Some(kernel) = self.kernel.upgrade() else {
            return;
        };
        let target: Weak<dyn Expire> = Arc::downgrade(self) as Weak<Terminal>;
        kernel.timers.arm(self.timer_key, Instant::now(), target);
    }

    /// Linux's __tty_hangup for the session: every process of it loses
    /// the terminal, and its leader gets SIGHUP and SIGCONT.
    fn hangup_session(&self, kernel: &Arc<Kernel>) {
        let ts = kernel.tasks.lock();
        let sid = {
            let mut job = self.job.lock();
            job.pgrp = None;
            job.session.take()
        };
        let Some(sid) = sid else {
            return;
        };
        clear_session_locked(&ts, sid, Some(self));
        if let Some(leader) = ts.live(sid).filter(|p| p.sid == sid) {
            let tg = leader.tg.clone();
            for sig in [libc::SIGHUP, libc::SIGCONT] {
                send_kernel_signal_locked(kernel, &ts, &tg, sig);
            }
        }
    }

    // ----- The replica -----

    /// A replica file opens: EIO while locked or once the master closed;
    /// EBUSY when exclusive (unless `privileged`).
    pub fn replica_opened(&self, privileged: bool) -> Result<(), Errno> {
        let mut ld = self.ld.lock();
        if !ld.master_open || ld.locked {
            return Err(Errno::EIO);
        }
        if ld.exclusive && ld.replicas > 0 && !privileged {
            return Err(Errno::EBUSY);
        }
        ld.replicas += 1;
        ld.other_closed = false;
        self.changed(&mut ld);
        drop(ld);
        self.notify();
        Ok(())
    }

    /// A replica file is gone. The last one makes the master read EIO, and
    /// the session loses its controlling terminal (Linux's tty_release).
    pub fn replica_closed(self: &Arc<Self>) {
        let last = {
            let mut ld = self.ld.lock();
            ld.replicas = ld.replicas.saturating_sub(1);
            let last = ld.replicas == 0;
            if last {
                ld.other_closed = true;
            }
            self.changed(&mut ld);
            last
        };
        self.notify();
        if last && self.job.lock().session.is_some() {
            self.deferred.lock().clear_session = true;
            self.defer();
        }
    }

    /// Whether the master closed: the replica's files are hung up.
    pub fn hung_up(&self) -> bool {
        !self.ld.lock().master_open
    }

    /// One attempt to read the replica, with Linux's rules: a line in
    /// canonical mode; else VMIN bytes (or fewer, up to `dst`'s size), with
    /// VTIME as the whole wait (VMIN 0) or as the time allowed between
    /// bytes; 0 once hung up. `started` is when the read began;
    /// `nonblocking` reads get EAGAIN rather than a wait.
    pub fn replica_read(
        &self,
        dst: &mut [u8],
        started: Instant,
        nonblocking: bool,
    ) -> Result<ReadAttempt, Errno> {
        let mut ld = self.ld.lock();
        if !ld.master_open {
            return Ok(ReadAttempt::Done(0));
        }
        let r = self.read_locked(&mut ld, dst, started, nonblocking)?;
        if let ReadAttempt::Done(_) = r {
            // Room for what the master wrote ahead.
            let mut fx = Effects::default();
            ld.process(&mut fx);
            self.changed(&mut ld);
            drop(ld);
            self.notify();
            for sig in fx.signals {
                self.signal_foreground(sig);
            }
        }
        Ok(r)
    }

    fn read_locked(
        &self,
        ld: &mut Ldisc,
        dst: &mut [u8],
        started: Instant,
        nonblocking: bool,
    ) -> Result<ReadAttempt, Errno> {
        let gen = ld.generation;
        if dst.is_empty() {
            return Ok(ReadAttempt::Done(0));
        }
        if ld.icanon() {
            if ld.canon_len > 0 {
                return Ok(ReadAttempt::Done(ld.read_canon(dst)));
            }
            if nonblocking {
                return Err(Errno::EAGAIN);
            }
            return Ok(ReadAttempt::Wait(None, gen));
        }
        let min = ld.s.cc[libc::VMIN] as usize;
        let time = Duration::from_millis(ld.s.cc[libc::VTIME] as u64 * 100);
        let avail = ld.input.len();
        let now = Instant::now();
        if min == 0 {
            if avail > 0 {
                return Ok(ReadAttempt::Done(ld.read_raw(dst)));
            }
            if time.is_zero() {
                return Ok(ReadAttempt::Done(0));
            }
            if nonblocking {
                return Err(Errno::EAGAIN);
            }
            let deadline = started + time;
            if now >= deadline {
                return Ok(ReadAttempt::Done(0));
            }
            return Ok(ReadAttempt::Wait(Some(deadline), gen));
        }
        if avail >= min.min(dst.len()) {
            return Ok(ReadAttempt::Done(ld.read_raw(dst)));
        }
        if nonblocking {
            if avail > 0 {
                return Ok(ReadAttempt::Done(ld.read_raw(dst)));
            }
            return Err(Errno::EAGAIN);
        }
        if avail > 0 && !time.is_zero() {
            let deadline = ld.last_input.max(started) + time;
            if now >= deadline {
                return Ok(ReadAttempt::Done(ld.read_raw(dst)));
            }
            return Ok(ReadAttempt::Wait(Some(deadline), gen));
        }
        Ok(ReadAttempt::Wait(None, gen))
    }

    /// Writes replica output: what fits goes through output processing.
    /// EAGAIN when nothing fits (or output is stopped), EIO once hung up.
    pub fn replica_write(&self, src: &[u8]) -> Result<usize, Errno> {
        if src.is_empty() {
            return Ok(0);
        }
        let mut ld = self.ld.lock();
        if !ld.master_open {
            return Err(Errno::EIO);
        }
        let n = ld.write_output(src);
        if n == 0 {
            return Err(Errno::EAGAIN);
        }
        self.changed(&mut ld);
        drop(ld);
        self.notify();
        Ok(n)
    }

    pub fn replica_readiness(&self) -> i16 {
        let ld = self.ld.lock();
        if !ld.master_open {
            return libc::POLLIN
                | libc::POLLOUT
                | libc::POLLERR
                | libc::POLLHUP
                | libc::POLLRDNORM
                | libc::POLLWRNORM;
        }
        let mut r = 0;
        if ld.input_available(true) {
            r |= libc::POLLIN | libc::POLLRDNORM;
        }
        if !ld.stopped && ld.output.len() < OUTPUT_MAX {
            r |= libc::POLLOUT | libc::POLLWRNORM;
        }
        r
    }

    // ----- Settings, size, queues, flow -----

    pub fn settings(&self) -> Settings {
        self.ld.lock().s
    }

    /// Sets the settings; `flush` first discards input (TCSETSF).
    pub fn set_settings(&self, s: Settings, flush: bool) {
        self.with_ld(|ld, fx| {
            if flush {
                ld.flush_input();
                ld.pending.clear();
            }
            ld.set(s);
            // Raw mode may make buffered input readable, and room may let
            // pending input in.
            ld.process(fx);
        });
    }

    pub fn winsize(&self) -> WinSize {
        self.ld.lock().winsize
    }

    /// Sets the window size; a change sends SIGWINCH to the foreground
    /// group (Linux's tty_do_resize).
    pub fn set_winsize(&self, ws: WinSize) {
        let changed = {
            let mut ld = self.ld.lock();
            let changed = ld.winsize != ws;
            ld.winsize = ws;
            changed
        };
        if changed {
            self.signal_foreground(libc::SIGWINCH);
        }
    }

    /// FIONREAD: what a read of this end could return.
    pub fn readable_bytes(&self, side: Side) -> usize {
        let ld = self.ld.lock();
        match side {
            Side::Master => ld.output.len().min(MASTER_BUF),
            Side::Replica if ld.icanon() => {
                // Linux's inq_canon: complete lines, VEOF marks left out.
                (0..ld.canon_len)
                    .filter(|&i| !(ld.input[i].1 && ld.input[i].0 == 0))
                    .count()
            }
            Side::Replica => ld.input.len(),
        }
    }

    /// TCFLSH from `side`: TCIFLUSH (0), TCOFLUSH (1), TCIOFLUSH (2).
    pub fn flush(&self, side: Side, which: i32) -> Result<(), Errno> {
        if !(0..=2).contains(&which) {
            return Err(Errno::EINVAL);
        }
        let input = which != libc::TCOFLUSH;
        let output = which != libc::TCIFLUSH;
        self.with_ld(|ld, fx| {
            match side {
                Side::Replica => {
                    if input {
                        ld.flush_input();
                        ld.pending.clear();
                    }
                    if output {
                        ld.flush_output_driver();
                    }
                }
                Side::Master => {
                    if input {
                        ld.output.clear();
                    }
                    if output {
                        ld.pending.clear();
                    }
                }
            }
            ld.process(fx);
        });
        Ok(())
    }

    /// TCXONC from `side`: TCOOFF, TCOON, TCIOFF, TCION.
    pub fn flow(&self, side: Side, action: i32) -> Result<(), Errno> {
        match action {
            libc::TCOOFF | libc::TCOON if side == Side::Replica => {
                self.with_ld(|ld, _| {
                    if action == libc::TCOOFF {
                        if !ld.tco_stopped {
                            ld.tco_stopped = true;
                            ld.stopped = true;
                        }
                    } else if ld.tco_stopped {
                        ld.tco_stopped = false;
                        ld.start_output();
                    }
                });
                Ok(())
            }
            // The master's own output is never stopped.
            libc::TCOOFF | libc::TCOON => Ok(()),
            libc::TCIOFF | libc::TCION => {
                let which = if action == libc::TCIOFF {
                    libc::VSTOP
                } else {
                    libc::VSTART
                };
                let c = self.settings().cc[which];
                if c == 0 {
                    return Ok(());
                }
                // The character goes to the other end, as the driver's
                // write would send it.
                match side {
                    Side::Replica => self.with_ld(|ld, _| ld.output.push_back(c)),
                    Side::Master => {
                        self.master_write(&[c])?;
                    }
                }
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn locked(&self) -> bool {
        self.ld.lock().locked
    }

    pub fn set_locked(&self, locked: bool) {
        self.with_ld(|ld, _| ld.locked = locked);
    }

    pub fn exclusive(&self) -> bool {
        self.ld.lock().exclusive
    }

    pub fn set_exclusive(&self, on: bool) {
        self.ld.lock().exclusive = on;
    }

    /// The replica's device number as Linux's new_encode_dev packs it
    /// (TIOCGDEV, procfs's tty_nr).
    pub fn encoded_device(&self) -> u32 {
        let (major, minor) = (REPLICA_MAJOR, self.index);
        (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
    }

    /// The foreground process group (0: none), for TIOCGPGRP and procfs.
    pub fn foreground(&self) -> i32 {
        self.job.lock().pgrp.unwrap_or(0)
    }

    /// The session it controls.
    pub fn session(&self) -> Option<i32> {
        self.job.lock().session
    }

    /// Output waiting for the master (for the console bridge's last
    /// drain): taken whole.
    pub fn take_output(&self) -> Vec<u8> {
        let out: Vec<u8> = {
            let mut ld = self.ld.lock();
            let out = ld.output.drain(..).collect();
            self.changed(&mut ld);
            out
        };
        self.notify();
        out
    }
}

// ----- Job control -----

/// The controlling terminal of a process.
pub fn controlling(tg: &ThreadGroup) -> Option<Arc<Terminal>> {
    tg.tty.lock().clone()
}

/// `[pid]/stat`'s tty_nr and tpgid: the controlling terminal's device
/// number and foreground group (0, -1 without one).
pub fn stat_fields(tg: &ThreadGroup) -> (u32, i32) {
    match controlling(tg) {
        Some(t) => (t.encoded_device(), t.foreground()),
        None => (0, -1),
    }
}

fn is_controlling(tg: &ThreadGroup, term: &Terminal) -> bool {
    tg.tty
        .lock()
        .as_ref()
        .is_some_and(|t| std::ptr::eq(Arc::as_ptr(t), term))
}

/// Sends `sig` from the kernel to process `tg`, with the init rule: pid 1
/// gets only the signals it has a handler for (or blocks), as Linux's
/// pid-namespace init ignores kernel-sent ones left at their default.
fn send_kernel_signal_locked(kernel: &Kernel, ts: &TaskSet, tg: &Arc<ThreadGroup>, sig: i32) {
    if tg.tgid == 1 && tg.action(sig).handler == signal::SIG_DFL {
        let blocked = ts.threads_of(1).iter().any(|t| t.blocks(sig));
        if !blocked {
            return;
        }
    }
    kernel.send_group_signal_locked(ts, tg, SigInfo::new(sig, signal::SI_KERNEL));
}

/// Sends `sig` to every live process of group `pgid` (Linux's kill_pgrp
/// with a kernel sender).
pub fn kill_pgrp_locked(kernel: &Kernel, ts: &TaskSet, pgid: i32, sig: i32) {
    let members: Vec<Arc<ThreadGroup>> = ts
        .procs
        .values()
        .filter(|p| p.pgid == pgid && p.zombie.is_none())
        .map(|p| p.tg.clone())
        .collect();
    for tg in members {
        send_kernel_signal_locked(kernel, ts, &tg, sig);
    }
}

/// Every process of session `sid` that has `term` (any terminal when
/// None) as its controlling terminal loses it (Linux's session_clear_tty).
fn clear_session_locked(ts: &TaskSet, sid: i32, term: Option<&Terminal>) {
    for p in ts.procs.values().filter(|p| p.sid == sid) {
        let mut tty = p.tg.tty.lock();
        let ours = match (tty.as_ref(), term) {
            (Some(t), Some(term)) => std::ptr::eq(Arc::as_ptr(t), term),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if ours {
            *tty = None;
        }
    }
}

/// Whether the calling thread blocks or ignores `sig`.
fn blocked_or_ignored(t: &Task, sig: i32) -> bool {
    t.signal_mask() & signal::sig_bit(sig) != 0 || t.tg.action(sig).handler == signal::SIG_IGN
}

/// Linux's __tty_check_change: a process in a background group of its
/// controlling terminal that reads (`SIGTTIN`) or changes it (`SIGTTOU`)
/// has its group sent the signal and the call restarted; EIO when the
/// group is orphaned, or when it ignores SIGTTIN. Calls on other
/// terminals, and SIGTTOU blocked or ignored, go ahead.
pub fn check_change(t: &Task, term: &Terminal, sig: i32) -> Result<(), Errno> {
    if !is_controlling(&t.tg, term) {
        return Ok(());
    }
    let ts = t.kernel.tasks.lock();
    let Some(pgid) = ts.procs.get(&t.tg.tgid).map(|p| p.pgid) else {
        return Ok(());
    };
    let fg = term.job.lock().pgrp;
    match fg {
        Some(fg) if fg != pgid => {
            if blocked_or_ignored(t, sig) {
                if sig == libc::SIGTTIN {
                    return Err(Errno::EIO);
                }
                return Ok(());
            }
            if ts.group_orphaned(pgid) {
                return Err(Errno::EIO);
            }
            kill_pgrp_locked(&t.kernel, &ts, pgid, sig);
            Err(Errno::ERESTARTSYS)
        }
        _ => Ok(()),
    }
}

/// Makes `term` the caller's controlling terminal, its group the
/// foreground one (Linux's __proc_set_tty).
fn set_controlling_locked(ts: &TaskSet, tg: &ThreadGroup, term: &Arc<Terminal>) {
    let (sid, pgid) = ts
        .procs
        .get(&tg.tgid)
        .map(|p| (p.sid, p.pgid))
        .unwrap_or((tg.tgid, tg.tgid));
    {
        let mut job = term.job.lock();
        job.session = Some(sid);
        job.pgrp = Some(pgid);
    }
    *tg.tty.lock() = Some(term.clone());
}

/// TIOCSCTTY: a session leader without a controlling terminal takes
/// `term`; one controlling another session only with `steal` (1) and
/// CAP_SYS_ADMIN; a file not open for reading only with CAP_SYS_ADMIN.
pub fn tiocsctty(t: &Task, term: &Arc<Terminal>, steal: i32, readable: bool) -> Result<(), Errno> {
    let admin = t.creds.has_cap(crate::vfs::perm::CAP_SYS_ADMIN);
    let ts = t.kernel.tasks.lock();
    let p = ts.procs.get(&t.tg.tgid).ok_or(Errno::ESRCH)?;
    let leader = p.sid == t.tg.tgid;
    let current = term.job.lock().session;
    if leader && current == Some(p.sid) {
        return Ok(());
    }
    if !leader || t.tg.tty.lock().is_some() {
        return Err(Errno::EPERM);
    }
    if let Some(other) = current {
        if steal == 1 && admin {
            clear_session_locked(&ts, other, None);
        } else {
            return Err(Errno::EPERM);
        }
    }
    if !readable && !admin {
        return Err(Errno::EPERM);
    }
    set_controlling_locked(&ts, &t.tg, term);
    Ok(())
}

/// An open of `term`'s replica without O_NOCTTY, for reading, by a
/// session leader without a controlling terminal, of a terminal no
/// session has: it becomes the leader's (Linux's tty_open_proc_set_tty).
pub fn acquire_on_open(t: &Task, term: &Arc<Terminal>, readable: bool) {
    if !readable {
        return;
    }
    let ts = t.kernel.tasks.lock();
    let Some(p) = ts.procs.get(&t.tg.tgid) else {
        return;
    };
    if p.sid != t.tg.tgid || t.tg.tty.lock().is_some() || term.job.lock().session.is_some() {
        return;
    }
    set_controlling_locked(&ts, &t.tg, term);
}

/// Makes `term` the controlling terminal of process `pid`, which must
/// lead its session and have none, with its group in the foreground: for
/// the sandbox's first process and for processes given a console.
pub fn set_controlling_terminal(
    kernel: &Kernel,
    pid: i32,
    term: &Arc<Terminal>,
) -> Result<(), Errno> {
    let ts = kernel.tasks.lock();
    let p = ts.live(pid).ok_or(Errno::ESRCH)?;
    if p.sid != pid || p.tg.tty.lock().is_some() || term.job.lock().session.is_some() {
        return Err(Errno::EPERM);
    }
    let tg = p.tg.clone();
    set_controlling_locked(&ts, &tg, term);
    Ok(())
}

/// Linux's disassociate_ctty for a session leader: the foreground group
/// gets SIGHUP (and SIGCONT, unless the leader is exiting), and the
/// session loses the terminal.
fn disassociate_locked(kernel: &Kernel, ts: &TaskSet, tg: &ThreadGroup, on_exit: bool) {
    let Some(term) = tg.tty.lock().clone() else {
        return;
    };
    let (pgrp, session) = {
        let mut job = term.job.lock();
        (job.pgrp.take(), job.session.take())
    };
    if let Some(pg) = pgrp {
        kill_pgrp_locked(kernel, ts, pg, libc::SIGHUP);
        if !on_exit {
            kill_pgrp_locked(kernel, ts, pg, libc::SIGCONT);
        }
    }
    let sid = session.unwrap_or(tg.tgid);
    clear_session_locked(ts, sid, None);
    *tg.tty.lock() = None;
}

/// TIOCNOTTY: the caller gives up its controlling terminal `term`; a
/// session leader takes it from the whole session.
pub fn tiocnotty(t: &Task, term: &Terminal) -> Result<(), Errno> {
    if !is_controlling(&t.tg, term) {
        return Err(Errno::ENOTTY);
    }
    let ts = t.kernel.tasks.lock();
    let leader = ts.procs.get(&t.tg.tgid).is_some_and(|p| p.sid == t.tg.tgid);
    if leader {
        disassociate_locked(&t.kernel, &ts, &t.tg, false);
    }
    *t.tg.tty.lock() = None;
    Ok(())
}

/// A process exits (called with the task set locked): a session leader
/// takes its controlling terminal from its session, with SIGHUP to the
/// foreground group.
pub fn process_exiting_locked(kernel: &Kernel, ts: &TaskSet, pid: i32) {
    let Some(p) = ts.procs.get(&pid) else {
        return;
    };
    if p.sid == pid {
        let tg = p.tg.clone();
        disassociate_locked(kernel, ts, &tg, true);
    }
}

/// TIOCGPGRP (`via_master`: on the master, which needs no controlling
/// terminal).
pub fn tiocgpgrp(t: &Task, term: &Terminal, via_master: bool) -> Result<i32, Errno> {
    if !via_master && !is_controlling(&t.tg, term) {
        return Err(Errno::ENOTTY);
    }
    Ok(term.foreground())
}

/// TIOCGSID.
pub fn tiocgsid(t: &Task, term: &Terminal, via_master: bool) -> Result<i32, Errno> {
    if !via_master && !is_controlling(&t.tg, term) {
        return Err(Errno::ENOTTY);
    }
    term.session().ok_or(Errno::ENOTTY)
}

/// TIOCSPGRP, once [`check_change`] let the caller go on: the caller's
/// controlling terminal gets `pgrp` (of the caller's session) as its
/// foreground group.
pub fn tiocspgrp(t: &Task, term: &Terminal, pgrp: i32) -> Result<(), Errno> {
    if pgrp < 0 {
        return Err(Errno::EINVAL);
    }
    let ts = t.kernel.tasks.lock();
    let my_sid = ts
        .procs
        .get(&t.tg.tgid)
        .map(|p| p.sid)
        .ok_or(Errno::ESRCH)?;
    if !is_controlling(&t.tg, term) || term.job.lock().session != Some(my_sid) {
        return Err(Errno::ENOTTY);
    }
    // Linux's session_of_pgrp: the group's session, or the session of the
    // process with that number.
    let sid = ts
        .procs
        .values()
        .find(|p| p.pgid == pgrp && p.zombie.is_none())
        .or_else(|| ts.live(pgrp))
        .map(|p| p.sid)
        .ok_or(Errno::ESRCH)?;
    if sid != my_sid {
        return Err(Errno::EPERM);
    }
    term.job.lock().pgrp = Some(pgrp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(ld: &mut Ldisc, s: &[u8]) -> Vec<i32> {
        let mut fx = Effects::default();
        ld.pending.extend(s);
        ld.process(&mut fx);
        fx.signals
    }

    fn out(ld: &mut Ldisc) -> String {
        String::from_utf8_lossy(&ld.output.drain(..).collect::<Vec<u8>>()).into_owned()
    }

    #[test]
    fn canonical_lines_erase_and_echo() {
        let mut ld = Ldisc::new();
        feed(&mut ld, b"ab\x7fc\r");
        assert_eq!(out(&mut ld), "ab\x08 \x08c\r\n");
        let mut buf = [0u8; 16];
        let n = ld.read_canon(&mut buf);
        assert_eq!(&buf[..n], b"ac\n");
        feed(&mut ld, b"one two\x17\x04");
        assert_eq!(out(&mut ld), "one two\x08 \x08\x08 \x08\x08 \x08");
        let n = ld.read_canon(&mut buf);
        assert_eq!(&buf[..n], b"one ");
        feed(&mut ld, b"\x04");
        assert_eq!(ld.read_canon(&mut buf), 0);
    }

    #[test]
    fn signal_characters_flush_and_echo() {
        let mut ld = Ldisc::new();
        assert_eq!(feed(&mut ld, b"xy\x03z"), vec![libc::SIGINT]);
        assert_eq!(out(&mut ld), "^Cz", "echo not yet sent goes with the flush");
        assert_eq!(ld.input.len(), 1);
    }

    #[test]
    fn output_processing() {
        let mut ld = Ldisc::new();
        assert_eq!(ld.write_output(b"a\nb"), 3);
        assert_eq!(out(&mut ld), "a\r\nb");
        ld.s.oflag |= libc::XTABS;
        ld.write_output(b"\tx");
        assert_eq!(out(&mut ld), "       x");
    }

    #[test]
    fn speeds_follow_the_codes() {
        let mut s = Settings::replica_default();
        s.cflag = (s.cflag & !CBAUD) | libc::B115200;
        let s = Settings::from_termios(&s.to_termios());
        assert_eq!((s.ispeed, s.ospeed), (115200, 115200));
        let mut b = s.to_termios2();
        b[8..12].copy_from_slice(&((s.cflag & !CBAUD) | BOTHER).to_le_bytes());
        b[40..44].copy_from_slice(&12345u32.to_le_bytes());
        let s = Settings::from_termios2(&b);
        assert_eq!(s.ospeed, 12345);
    }
}
