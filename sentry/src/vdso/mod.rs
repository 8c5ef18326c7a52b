//! The guest vDSO: a small shared object (`sentry/vdso/vdso.c`, built by
//! `build.rs`) that answers `clock_gettime`, `gettimeofday`, `time`,
//! `getcpu` and `clock_getres` in the guest, without a trap, and the
//! parameter page (`[vvar]`) it reads, which the sentry keeps current.
//!
//! One copy of both lives in the memory file; every address space maps
//! them at exec, as private file mappings: `[vvar]` read-only (it cannot
//! be made writable or executable, as on Linux), `[vdso]` read-execute
//! (made writable, it gives the address space its own copy of the pages
//! it writes, as Linux's does). The vDSO finds its parameter page just
//! below its own ELF header.

mod clock;

use std::sync::Arc;

use platform::{Prot, PAGE_SIZE};

use crate::errno::Errno;
use crate::mm::{
    FileMap, MappableFile, MemoryFile, MemoryManager, MmLimits, MmapOpts, Placement, VmaKind,
};

pub use clock::Timekeeper;

/// The vDSO image.
pub static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// Bytes of the parameter page area, just below the image (`VVAR_SIZE` in
/// vdso.c).
pub const VVAR_SIZE: u64 = PAGE_SIZE;

/// Pages of the memory file that every address space maps the same.
struct SharedPages {
    /// Memory-file offset of the first page.
    off: u64,
    /// Bytes (page-aligned).
    len: u64,
    name: &'static str,
}

impl MappableFile for SharedPages {
    fn id(&self) -> usize {
        self as *const SharedPages as usize
    }

    fn add_mapper(&self, _mm: &Arc<MemoryManager>) {}

    fn size(&self) -> u64 {
        self.len
    }

    fn page(&self, index: u64) -> Result<u64, Errno> {
        if index >= self.len / PAGE_SIZE {
            return Err(Errno::EFAULT);
        }
        Ok(self.off + index * PAGE_SIZE)
    }

    fn identity(&self) -> (u64, u64, String) {
        (0, 0, self.name.to_string())
    }
}

/// The vDSO and its parameters, for one memory file.
pub struct Vdso {
    vvar: Arc<SharedPages>,
    image: Arc<SharedPages>,
    clock: Arc<Timekeeper>,
}

impl Vdso {
    /// Puts the image and a parameter page into `mf` and starts keeping
    /// the parameters.
    pub fn new(mf: &MemoryFile) -> Result<Arc<Vdso>, Errno> {
        let image_len = crate::mm::page_up(IMAGE.len() as u64).unwrap();
        let off = mf.allocate(VVAR_SIZE + image_len)?;
        mf.write(off + VVAR_SIZE, IMAGE);
        let window = mf.window(off, VVAR_SIZE)?;
        Ok(Arc::new(Vdso {
            vvar: Arc::new(SharedPages {
                off,
                len: VVAR_SIZE,
                name: "[vvar]",
            }),
            image: Arc::new(SharedPages {
                off: off + VVAR_SIZE,
                len: image_len,
                name: "[vdso]",
            }),
            clock: Timekeeper::start(window),
        }))
    }

    /// The clocks the vDSO reads, which the sentry's own answers to the
    /// same calls must use too.
    pub fn clock(&self) -> &Timekeeper {
        &self.clock
    }

    /// Maps `[vvar]` and, right above it, `[vdso]` into `mm` where mmap
    /// would place them; returns the vDSO's address (AT_SYSINFO_EHDR).
    pub fn map_into(&self, mm: &MemoryManager) -> Result<u64, Errno> {
        let opts = |placement, len, prot, kind, file: &Arc<SharedPages>| MmapOpts {
            placement,
            len,
            prot,
            shared: false,
            growsdown: false,
            populate: false,
            below_2g: false,
            kind,
            file: Some(FileMap {
                file: file.clone(),
                shared: false,
            }),
            offset: 0,
        };
        // One range for both, so that they are adjacent, then each in its
        // part of it.
        let addr = mm.mmap(
            &MmapOpts {
                file: None,
                ..opts(
                    Placement::Hint(0),
                    self.vvar.len + self.image.len,
                    Prot::NONE,
                    VmaKind::Anonymous,
                    &self.vvar,
                )
            },
            MmLimits::UNLIMITED,
        )?;
        mm.mmap(
            &opts(
                Placement::Fixed(addr),
                self.vvar.len,
                Prot::READ,
                VmaKind::Vvar,
                &self.vvar,
            ),
            MmLimits::UNLIMITED,
        )?;
        let base = addr + self.vvar.len;
        let rx = Prot {
            read: true,
            write: false,
            exec: true,
        };
        mm.mmap(
            &opts(
                Placement::Fixed(base),
                self.image.len,
                rx,
                VmaKind::Vdso,
                &self.image,
            ),
            MmLimits::UNLIMITED,
        )?;
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], o: usize) -> u16 {
        u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }

    /// What the sentry maps as it is must be laid out as it is loaded:
    /// a shared object with one PT_LOAD at address 0 holding the whole
    /// file, a read-only PT_DYNAMIC, and no relocations.
    #[test]
    fn image_is_loadable_as_it_is() {
        let b = IMAGE;
        assert_eq!(&b[..4], b"\x7fELF");
        assert_eq!(b[4], 2, "64-bit");
        assert_eq!(u16_at(b, 16), 3, "ET_DYN");
        let phoff = u64_at(b, 32) as usize;
        let phnum = u16_at(b, 56) as usize;
        let mut loads = 0;
        let mut dynamic = None;
        for i in 0..phnum {
            let h = &b[phoff + i * 56..phoff + (i + 1) * 56];
            match u32_at(h, 0) {
                1 => {
                    loads += 1;
                    assert_eq!(u64_at(h, 8), 0, "PT_LOAD at offset 0");
                    assert_eq!(u64_at(h, 16), 0, "PT_LOAD at address 0");
                    assert_eq!(u64_at(h, 32), u64_at(h, 40), "no bss");
                    assert_eq!(u32_at(h, 4), 5, "PF_R|PF_X");
                }
                2 => {
                    assert_eq!(u32_at(h, 4), 4, "PT_DYNAMIC is PF_R only");
                    dynamic = Some((u64_at(h, 8) as usize, u64_at(h, 32) as usize));
                }
                _ => {}
            }
        }
        assert_eq!(loads, 1);
        let (doff, dlen) = dynamic.expect("PT_DYNAMIC");
        let mut tags = Vec::new();
        for e in (doff..doff + dlen).step_by(16) {
            let tag = u64_at(b, e);
            if tag == 0 {
                break;
            }
            tags.push(tag);
        }
        for (tag, what) in [
            (4, "DT_HASH"),
            (0x6fff_fef5, "DT_GNU_HASH"),
            (5, "DT_STRTAB"),
            (6, "DT_SYMTAB"),
            (0x6fff_fff0, "DT_VERSYM"),
            (0x6fff_fffc, "DT_VERDEF"),
        ] {
            assert!(tags.contains(&tag), "{what} is missing");
        }
        for (tag, what) in [
            (7, "DT_RELA"),
            (17, "DT_REL"),
            (23, "DT_JMPREL"),
            (22, "DT_TEXTREL"),
        ] {
            assert!(
                !tags.contains(&tag),
                "{what} present: the image would need relocating"
            );
        }
        for name in [
            "__vdso_clock_gettime",
            "__vdso_gettimeofday",
            "__vdso_time",
            "__vdso_getcpu",
            "__vdso_clock_getres",
            "LINUX_2.6",
        ] {
            assert!(
                b.windows(name.len() + 1)
                    .any(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0),
                "{name} is not in the image"
            );
        }
    }
}
