//! The ELF loader: maps an x86-64 executable (static, static-PIE or
//! dynamically linked) into a fresh address space and builds the initial
//! stack (argv, envp, auxv).
//!
//! A dynamically linked program names its interpreter (`PT_INTERP`,
//! ld.so), which the caller opens from the sandbox's file system; the
//! interpreter is mapped where the first mmap would go, as Linux places
//! it, and the program starts at the interpreter's entry with AT_BASE
//! telling it where it is. Every new address space gets the vDSO
//! ([`crate::vdso`]), named by AT_SYSINFO_EHDR.

mod elf;

use crate::errno::Errno;
use platform::PAGE_SIZE;

use crate::kernel::creds::Credentials;
use crate::mm::{
    page_down, page_up, FileMap, MappableFile, MemoryManager, MmLimits, MmapOpts, Placement,
    VmaKind,
};
use std::sync::Arc;

pub use elf::{ElfHeader, ProgramHeader};

/// Somewhere the loader reads an executable from.
pub trait ExecutableFile {
    /// Reads up to `buf.len()` bytes at `offset`; short only at EOF.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
    /// The file's size in bytes.
    fn size(&self) -> std::io::Result<u64>;
}

impl ExecutableFile for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n =
                std::os::unix::fs::FileExt::read_at(self, &mut buf[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    fn size(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not an executable this kernel can run: {0}")]
    NotExecutable(String),
    #[error("its interpreter {0}: {1}")]
    Interpreter(String, Errno),
    #[error("reading the executable: {0}")]
    Io(#[from] std::io::Error),
    #[error("setting up memory: {0}")]
    Memory(Errno),
    #[error("argument list too long")]
    TooBig,
}

impl LoadError {
    /// The errno execve would give.
    pub fn errno(&self) -> Errno {
        match self {
            LoadError::NotExecutable(_) => Errno::ENOEXEC,
            LoadError::Interpreter(_, e) => *e,
            LoadError::Io(e) => Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            LoadError::Memory(e) => *e,
            LoadError::TooBig => Errno::E2BIG,
        }
    }
}

/// Where the new program starts.
#[derive(Clone, Copy, Debug)]
pub struct LoadedImage {
    pub entry: u64,
    pub stack_pointer: u64,
}

/// Where a static-PIE executable is placed (Linux's ELF_ET_DYN_BASE
/// without randomization).
const DYN_BASE: u64 = 0x5555_5555_4000;

/// The auxiliary vector's entry for the vDSO's address (the libc crate
/// does not name it for x86-64).
const AT_SYSINFO_EHDR: u64 = 33;

/// How much of a segment the loader reads at a time.
const LOAD_CHUNK: u64 = 1 << 20;

/// Initial size of the stack VMA, before it grows.
const INITIAL_STACK: u64 = 128 << 10;

/// Linux's limit on argv + envp: a quarter of the stack limit.
fn arg_limit(stack_limit: u64) -> u64 {
    (stack_limit / 4).max(32 * PAGE_SIZE)
}

/// An executable file and, where it has them, its pages as the memory
/// manager maps them (then segments are private file mappings, shared
/// with every other mapping of the file until written; without, the
/// loader copies them in).
pub struct Executable<'a> {
    pub file: &'a dyn ExecutableFile,
    pub pages: Option<Arc<dyn MappableFile>>,
}

/// Opens a program's interpreter by its path in the sandbox.
pub type OpenInterpreter<'a> = dyn FnMut(&[u8]) -> Result<(Arc<dyn ExecutableFile>, Option<Arc<dyn MappableFile>>), Errno>
    + 'a;

/// An ELF file's header and program headers.
struct Elf {
    hdr: ElfHeader,
    phdrs: Vec<ProgramHeader>,
}

fn read_elf(file: &dyn ExecutableFile) -> Result<Elf, LoadError> {
    let mut hdr_buf = [0u8; 64];
    let n = file.read_at(&mut hdr_buf, 0)?;
    let hdr = ElfHeader::parse(&hdr_buf[..n]).map_err(LoadError::NotExecutable)?;
    let ph_size = hdr.phnum as usize * elf::PHDR_SIZE;
    let mut ph_buf = vec![0u8; ph_size];
    if file.read_at(&mut ph_buf, hdr.phoff)? != ph_size {
        return Err(LoadError::NotExecutable(
            "program headers past the end of the file".into(),
        ));
    }
    let phdrs = ProgramHeader::parse_all(&ph_buf, hdr.phnum);
    Ok(Elf { hdr, phdrs })
}

/// The interpreter a program names, if any.
fn interpreter_path(file: &dyn ExecutableFile, elf: &Elf) -> Result<Option<Vec<u8>>, LoadError> {
    let Some(interp) = elf.phdrs.iter().find(|p| p.kind == elf::PT_INTERP) else {
        return Ok(None);
    };
    if interp.filesz < 2 || interp.filesz > 4096 {
        return Err(LoadError::NotExecutable("bad PT_INTERP".into()));
    }
    let mut name = vec![0u8; interp.filesz as usize];
    let got = file.read_at(&mut name, interp.offset)?;
    name.truncate(got);
    // Linux requires the name to end with its NUL.
    if name.last() != Some(&0) {
        return Err(LoadError::NotExecutable("PT_INTERP without its NUL".into()));
    }
    name.pop();
    if name.contains(&0) || name.is_empty() {
        return Err(LoadError::NotExecutable("bad PT_INTERP".into()));
    }
    Ok(Some(name))
}

/// Loads `exe` into `mm` and builds the stack; `open_interp` opens the
/// interpreter of a dynamically linked program (`None`: such programs
/// cannot run, ENOENT). AT_SECURE is 0: `load_secure` says otherwise.
#[allow(clippy::too_many_arguments)]
pub fn load(
    mm: &MemoryManager,
    exe: Executable<'_>,
    open_interp: Option<&mut OpenInterpreter<'_>>,
    execfn: &str,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    creds: &Credentials,
    limits: MmLimits,
) -> Result<LoadedImage, LoadError> {
    load_secure(
        mm,
        exe,
        open_interp,
        execfn,
        argv,
        envp,
        creds,
        false,
        limits,
    )
}

/// `load`, with `secure` as AT_SECURE (a privilege-raising exec, which
/// tells the C library to distrust its environment).
#[allow(clippy::too_many_arguments)]
pub fn load_secure(
    mm: &MemoryManager,
    exe: Executable<'_>,
    open_interp: Option<&mut OpenInterpreter<'_>>,
    execfn: &str,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    creds: &Credentials,
    secure: bool,
    limits: MmLimits,
) -> Result<LoadedImage, LoadError> {
    let file = exe.file;
    let elf = read_elf(file)?;
    let interp = match interpreter_path(file, &elf)? {
        None => None,
        Some(path) => {
            let name = String::from_utf8_lossy(&path).into_owned();
            let open = open_interp.ok_or(LoadError::Interpreter(name.clone(), Errno::ENOENT))?;
            let (ifile, ipages) =
                open(&path).map_err(|e| LoadError::Interpreter(name.clone(), e))?;
            let ielf = read_elf(&*ifile).map_err(|e| {
                LoadError::Interpreter(
                    name.clone(),
                    match e {
                        LoadError::NotExecutable(_) => Errno::ELIBBAD,
                        e => e.errno(),
                    },
                )
            })?;
            if ielf.hdr.kind != elf::ET_DYN && ielf.hdr.kind != elf::ET_EXEC {
                return Err(LoadError::Interpreter(name, Errno::ELIBBAD));
            }
            Some((name, ifile, ipages, ielf))
        }
    };
    let hdr = &elf.hdr;
    let phdrs = &elf.phdrs;
    let ph_size = hdr.phnum as usize * elf::PHDR_SIZE;
    let loads: Vec<&ProgramHeader> = phdrs.iter().filter(|p| p.kind == elf::PT_LOAD).collect();
    if loads.is_empty() {
        return Err(LoadError::NotExecutable("no loadable segments".into()));
    }
    let first = page_down(loads[0].vaddr);
    let bias = if hdr.kind == elf::ET_DYN {
        DYN_BASE.wrapping_sub(first)
    } else {
        0
    };
    let brk = map_segments(mm, file, exe.pages.as_ref(), &loads, bias, execfn)?;
    let max = mm.max_addr();
    let phdr_addr = match phdrs.iter().find(|p| p.kind == elf::PT_PHDR) {
        Some(p) => p.vaddr + bias,
        None => loads
            .iter()
            .find(|p| p.offset <= hdr.phoff && hdr.phoff + ph_size as u64 <= p.offset + p.filesz)
            .map(|p| p.vaddr + (hdr.phoff - p.offset) + bias)
            .unwrap_or(0),
    };
    let entry = hdr.entry.wrapping_add(bias);
    // The stack.
    let stack_top = max;
    let args_size: u64 = argv
        .iter()
        .chain(envp)
        .map(|s| s.len() as u64 + 1 + 8)
        .sum::<u64>()
        + execfn.len() as u64
        + 1;
    if args_size > arg_limit(limits.stack) {
        return Err(LoadError::TooBig);
    }
    let stack_size = page_up(args_size + INITIAL_STACK).unwrap();
    mm.mmap(
        &MmapOpts {
            placement: Placement::Fixed(stack_top - stack_size),
            len: stack_size,
            prot: platform::Prot::RW,
            shared: false,
            growsdown: true,
            populate: false,
            below_2g: false,
            kind: VmaKind::Stack,
            file: None,
            offset: 0,
        },
        MmLimits::UNLIMITED,
    )
    .map_err(LoadError::Memory)?;
    mm.set_layout(stack_top, limits.stack, brk);
    // The interpreter, where the first mmap would go.
    let (interp_base, start) = match &interp {
        None => (0, entry),
        Some((name, ifile, ipages, ielf)) => {
            let iloads: Vec<&ProgramHeader> = ielf
                .phdrs
                .iter()
                .filter(|p| p.kind == elf::PT_LOAD)
                .collect();
            let bad = |e: LoadError| {
                LoadError::Interpreter(
                    name.clone(),
                    match e {
                        LoadError::NotExecutable(_) => Errno::ELIBBAD,
                        e => e.errno(),
                    },
                )
            };
            let (Some(lo), Some(hi)) = (
                iloads.first().map(|p| page_down(p.vaddr)),
                iloads.iter().map(|p| p.vaddr.saturating_add(p.memsz)).max(),
            ) else {
                return Err(LoadError::Interpreter(name.clone(), Errno::ELIBBAD));
            };
            let span = page_up(hi.saturating_sub(lo))
                .filter(|&s| s > 0 && s < max)
                .ok_or(LoadError::Interpreter(name.clone(), Errno::ELIBBAD))?;
            let ibias = if ielf.hdr.kind == elf::ET_DYN {
                let base = mm
                    .mmap(
                        &MmapOpts {
                            placement: Placement::Hint(0),
                            len: span,
                            prot: platform::Prot::NONE,
                            shared: false,
                            growsdown: false,
                            populate: false,
                            below_2g: false,
                            kind: VmaKind::Anonymous,
                            file: None,
                            offset: 0,
                        },
                        MmLimits::UNLIMITED,
                    )
                    .map_err(LoadError::Memory)?;
                // Linux keeps only what the segments cover.
                mm.munmap(base, span).map_err(LoadError::Memory)?;
                base.wrapping_sub(lo)
            } else {
                0
            };
            map_segments(mm, &**ifile, ipages.as_ref(), &iloads, ibias, name).map_err(bad)?;
            (lo.wrapping_add(ibias), ielf.hdr.entry.wrapping_add(ibias))
        }
    };

    // The vDSO goes where the first mmap would, as on Linux.
    let vdso_base = mm
        .memory_file()
        .vdso()
        .and_then(|v| v.map_into(mm))
        .map_err(LoadError::Memory)?;

    let mut random = [0u8; 16];
    crate::hostcall::fill_random(&mut random).map_err(LoadError::Memory)?;
    // AT_HWCAP on x86-64 is CPUID leaf 1's EDX (the host's getauxval would
    // give glibc's own rewritten value).
    let hwcap = std::arch::x86_64::__cpuid(1).edx as u64;
    let hwcap2 = host_auxv(libc::AT_HWCAP2);
    let minsigstksz = host_auxv(51);

    let mut sb = StackBuilder::new(stack_top - 8);
    let execfn_addr = sb.push_bytes(execfn.as_bytes(), true);
    // As Linux lays them out: the argument strings in order, then the
    // environment strings, then the file name, from low to high addresses
    // (so that argv and envp are each one range, for /proc/[pid]/cmdline).
    let mut env_addrs: Vec<u64> = envp.iter().rev().map(|e| sb.push_bytes(e, true)).collect();
    env_addrs.reverse();
    let mut arg_addrs: Vec<u64> = argv.iter().rev().map(|a| sb.push_bytes(a, true)).collect();
    arg_addrs.reverse();
    let env_start = env_addrs.first().copied().unwrap_or(execfn_addr);
    let arg_start = arg_addrs.first().copied().unwrap_or(env_start);
    let platform_addr = sb.push_bytes(b"x86_64", true);
    let random_addr = sb.push_bytes(&random, false);
    // Linux's order: the architecture's entries (the vDSO and the signal
    // stack size) first.
    let mut auxv: Vec<(u64, u64)> = vec![(AT_SYSINFO_EHDR, vdso_base)];
    if minsigstksz != 0 {
        auxv.push((51, minsigstksz));
    }
    auxv.extend([
        (libc::AT_HWCAP, hwcap),
        (libc::AT_PAGESZ, PAGE_SIZE),
        (libc::AT_CLKTCK, 100),
        (libc::AT_PHDR, phdr_addr),
        (libc::AT_PHENT, elf::PHDR_SIZE as u64),
        (libc::AT_PHNUM, hdr.phnum as u64),
        (libc::AT_BASE, interp_base),
        (libc::AT_FLAGS, 0),
        (libc::AT_ENTRY, entry),
        (libc::AT_UID, creds.uid as u64),
        (libc::AT_EUID, creds.euid as u64),
        (libc::AT_GID, creds.gid as u64),
        (libc::AT_EGID, creds.egid as u64),
        (libc::AT_SECURE, secure as u64),
        (libc::AT_RANDOM, random_addr),
        (libc::AT_HWCAP2, hwcap2),
        (libc::AT_EXECFN, execfn_addr),
        (libc::AT_PLATFORM, platform_addr),
    ]);
    auxv.push((libc::AT_NULL, 0));
    let mut words: Vec<u64> = Vec::new();
    words.push(argv.len() as u64);
    words.extend(&arg_addrs);
    words.push(0);
    words.extend(&env_addrs);
    words.push(0);
    for (k, v) in &auxv {
        words.push(*k);
        words.push(*v);
    }
    let sp = (sb.pos - words.len() as u64 * 8) & !15;
    let mut bytes = Vec::with_capacity(words.len() * 8);
    for w in &words {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    // Strings first (they sit above), then the vectors.
    mm.copy_out_force(sb.pos, &sb.data())
        .map_err(LoadError::Memory)?;
    mm.copy_out_force(sp, &bytes).map_err(LoadError::Memory)?;
    mm.set_process_info(crate::mm::ProcessInfo {
        auxv,
        argv: (arg_start, env_start),
        envp: (env_start, execfn_addr),
        execfn: execfn.to_string(),
    });
    Ok(LoadedImage {
        entry: start,
        stack_pointer: sp,
    })
}

/// Maps the loadable segments `loads` of `file`, moved by `bias`;
/// returns the end of the highest (where the program break starts).
fn map_segments(
    mm: &MemoryManager,
    file: &dyn ExecutableFile,
    pages: Option<&Arc<dyn MappableFile>>,
    loads: &[&ProgramHeader],
    bias: u64,
    execfn: &str,
) -> Result<u64, LoadError> {
    let max = mm.max_addr();
    let file_size = file.size()?;
    let mut brk = 0u64;
    for ph in loads {
        if ph.filesz > ph.memsz {
            return Err(LoadError::NotExecutable(
                "segment file size exceeds memory size".into(),
            ));
        }
        // Linux maps the segment from the file; one that reaches past the
        // file's end cannot be loaded.
        if ph
            .offset
            .checked_add(ph.filesz)
            .is_none_or(|e| e > file_size)
        {
            return Err(LoadError::NotExecutable(
                "segment past the end of the file".into(),
            ));
        }
        if ph.vaddr % PAGE_SIZE != ph.offset % PAGE_SIZE {
            return Err(LoadError::NotExecutable("misaligned segment".into()));
        }
        let start = ph
            .vaddr
            .checked_add(bias)
            .ok_or_else(|| LoadError::NotExecutable("segment address overflows".into()))?;
        let end = start
            .checked_add(ph.memsz)
            .and_then(page_up)
            .filter(|&e| e <= max)
            .ok_or_else(|| LoadError::NotExecutable("segment outside the address space".into()))?;
        let map_start = page_down(start);
        if map_start < crate::mm::MMAP_MIN_ADDR {
            return Err(LoadError::NotExecutable(
                "segment below mmap_min_addr".into(),
            ));
        }
        brk = brk.max(end);
        if let (Some(pages), true) = (&pages, ph.filesz > 0) {
            map_segment(mm, pages, ph, start, end)?;
            continue;
        }
        mm.mmap(
            &MmapOpts {
                placement: Placement::Fixed(map_start),
                len: end - map_start,
                prot: ph.prot(),
                shared: false,
                growsdown: false,
                populate: false,
                below_2g: false,
                kind: VmaKind::File(execfn.to_string()),
                file: None,
                offset: 0,
            },
            MmLimits::UNLIMITED,
        )
        .map_err(LoadError::Memory)?;
        // As a file mapping would: the file's pages from the page holding
        // the segment's first byte up to its file size, zeroes after.
        // Copied a bounded chunk at a time.
        let file_start = page_down(ph.offset);
        let file_len = (ph.offset + ph.filesz) - file_start;
        let mut data = vec![0u8; file_len.min(LOAD_CHUNK) as usize];
        let mut done = 0u64;
        while done < file_len {
            let n = (file_len - done).min(LOAD_CHUNK) as usize;
            let got = file.read_at(&mut data[..n], file_start + done)?;
            if got < n {
                // The file shrank under us.
                return Err(LoadError::NotExecutable(
                    "segment past the end of the file".into(),
                ));
            }
            mm.copy_out_force(map_start + done, &data[..n])
                .map_err(LoadError::Memory)?;
            done += n as u64;
        }
    }
    Ok(brk)
}

/// Maps one segment as Linux does: the file's pages from the one holding
/// its first byte to the one holding its last file byte, private; the
/// rest of that page zeroed when the segment has more memory than file
/// (and is writable); anonymous memory for the rest (.bss).
fn map_segment(
    mm: &MemoryManager,
    pages: &Arc<dyn MappableFile>,
    ph: &ProgramHeader,
    start: u64,
    end: u64,
) -> Result<(), LoadError> {
    let map_start = page_down(start);
    let file_end = start + ph.filesz;
    let file_map_end = page_up(file_end).unwrap_or(end).min(end);
    let opts = |at: u64, len: u64, file: Option<FileMap>, offset: u64| MmapOpts {
        placement: Placement::Fixed(at),
        len,
        prot: ph.prot(),
        shared: false,
        growsdown: false,
        populate: false,
        below_2g: false,
        kind: VmaKind::Anonymous,
        file,
        offset,
    };
    let file_map = FileMap {
        file: pages.clone(),
        shared: false,
    };
    mm.mmap(
        &opts(
            map_start,
            file_map_end - map_start,
            Some(file_map),
            page_down(ph.offset),
        ),
        MmLimits::UNLIMITED,
    )
    .map_err(LoadError::Memory)?;
    if ph.memsz > ph.filesz && ph.prot().write && file_map_end > file_end {
        let zeroes = vec![0u8; (file_map_end - file_end) as usize];
        mm.copy_out_force(file_end, &zeroes)
            .map_err(LoadError::Memory)?;
    }
    if end > file_map_end {
        mm.mmap(
            &opts(file_map_end, end - file_map_end, None, 0),
            MmLimits::UNLIMITED,
        )
        .map_err(LoadError::Memory)?;
    }
    Ok(())
}

fn host_auxv(key: u64) -> u64 {
    crate::hostcall::getauxval(key)
}

/// Builds the string area of the initial stack downwards from `top`.
struct StackBuilder {
    top: u64,
    pos: u64,
    /// Bytes from `pos` to `top`, in reverse order of pushing.
    chunks: Vec<(u64, Vec<u8>)>,
}

impl StackBuilder {
    fn new(top: u64) -> StackBuilder {
        StackBuilder {
            top,
            pos: top,
            chunks: Vec::new(),
        }
    }

    fn push_bytes(&mut self, b: &[u8], nul: bool) -> u64 {
        let mut v = b.to_vec();
        if nul {
            v.push(0);
        }
        self.pos -= v.len() as u64;
        self.chunks.push((self.pos, v));
        self.pos
    }

    fn data(&self) -> Vec<u8> {
        let mut out = vec![0u8; (self.top - self.pos) as usize];
        for (addr, v) in &self.chunks {
            let o = (addr - self.pos) as usize;
            out[o..o + v.len()].copy_from_slice(v);
        }
        out
    }
}
