//! ELF64 headers, parsed by hand with every field checked.

use platform::Prot;

pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;
pub const PHDR_SIZE: usize = 56;
const EM_X86_64: u16 = 62;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
/// Linux refuses more program headers than fit in 64 KiB.
const MAX_PHNUM: u16 = (65536 / PHDR_SIZE) as u16;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

#[derive(Clone, Copy, Debug)]
pub struct ElfHeader {
    pub kind: u16,
    pub entry: u64,
    pub phoff: u64,
    pub phnum: u16,
}

impl ElfHeader {
    pub fn parse(b: &[u8]) -> Result<ElfHeader, String> {
        if b.len() < 64 || &b[..4] != b"\x7fELF" {
            return Err("no ELF header".into());
        }
        if b[4] != 2 || b[5] != 1 || b[6] != 1 {
            return Err("not a 64-bit little-endian ELF file".into());
        }
        let kind = u16_at(b, 16);
        if kind != ET_EXEC && kind != ET_DYN {
            return Err(format!("ELF type {kind} is not an executable"));
        }
        if u16_at(b, 18) != EM_X86_64 {
            return Err("not an x86-64 executable".into());
        }
        let phentsize = u16_at(b, 54);
        let phnum = u16_at(b, 56);
        if phentsize as usize != PHDR_SIZE {
            return Err("bad program header size".into());
        }
        if phnum == 0 || phnum > MAX_PHNUM {
            return Err("bad program header count".into());
        }
        let phoff = u64_at(b, 32);
        if phoff.checked_add(phnum as u64 * PHDR_SIZE as u64).is_none() {
            return Err("program headers overflow".into());
        }
        Ok(ElfHeader {
            kind,
            entry: u64_at(b, 24),
            phoff,
            phnum,
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ProgramHeader {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

impl ProgramHeader {
    pub fn parse_all(b: &[u8], n: u16) -> Vec<ProgramHeader> {
        (0..n as usize)
            .map(|i| {
                let p = &b[i * PHDR_SIZE..(i + 1) * PHDR_SIZE];
                ProgramHeader {
                    kind: u32_at(p, 0),
                    flags: u32_at(p, 4),
                    offset: u64_at(p, 8),
                    vaddr: u64_at(p, 16),
                    filesz: u64_at(p, 32),
                    memsz: u64_at(p, 40),
                }
            })
            .collect()
    }

    pub fn prot(&self) -> Prot {
        Prot {
            read: self.flags & PF_R != 0,
            write: self.flags & PF_W != 0,
            exec: self.flags & PF_X != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        assert!(ElfHeader::parse(b"").is_err());
        assert!(ElfHeader::parse(&[0u8; 64]).is_err());
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[6] = 1;
        h[16] = 2;
        h[18] = 62;
        h[54] = 56;
        h[56] = 0;
        assert!(ElfHeader::parse(&h).is_err(), "zero program headers");
        h[56] = 1;
        assert!(ElfHeader::parse(&h).is_ok());
        h[18] = 3;
        assert!(ElfHeader::parse(&h).is_err(), "wrong machine");
    }
}
