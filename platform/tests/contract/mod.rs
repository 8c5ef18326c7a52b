//! The platform contract, without the sentry, for every platform: a page
//! of guest code in a memory file, mapped into a fresh stub, run until it
//! makes a syscall, faults, or is interrupted. Each platform's test file
//! expands `contract_tests!` with its platform and stub types.

#[macro_export]
macro_rules! contract_tests {
    ($platform:ty, $subprocess:ty) => {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::sync::mpsc;
        use std::time::Duration;

        use platform::{Event, Platform, PlatformError, Prot, PAGE_SIZE};

        const CODE: u64 = 0x10_0000;

        /// A memory file holding `code` at offset 0.
        fn memory_file(code: &[u8]) -> OwnedFd {
            // SAFETY: memfd_create with a valid name.
            let fd = unsafe { libc::memfd_create(c"test".as_ptr(), libc::MFD_CLOEXEC) };
            assert!(fd >= 0);
            // SAFETY: fd is ours.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut page = vec![0xccu8; PAGE_SIZE as usize];
            page[..code.len()].copy_from_slice(code);
            // SAFETY: writes one page from our buffer.
            let n = unsafe { libc::pwrite(fd.as_raw_fd(), page.as_ptr().cast(), page.len(), 0) };
            assert_eq!(n, PAGE_SIZE as isize);
            fd
        }

        /// Runs `code` (mapped read+exec at CODE) on a new thread (on ptrace
        /// that thread is the stub's tracer) and returns the first event with
        /// the registers.
        fn run_code(
            code: &'static [u8],
            setup: impl FnOnce(&platform::Interrupter) + Send + 'static,
        ) -> (Result<Event, PlatformError>, platform::Registers) {
            std::thread::spawn(move || {
                let mf = memory_file(code);
                let p = <$platform>::new(mf.as_raw_fd()).unwrap();
                let aspace = p.new_address_space().unwrap();
                aspace
                    .map_file(
                        CODE,
                        PAGE_SIZE,
                        0,
                        Prot {
                            read: true,
                            write: false,
                            exec: true,
                        },
                    )
                    .unwrap();
                let mut ctx = p.new_context();
                let mut regs = p.initial_registers();
                regs.rip = CODE;
                setup(&ctx.interrupter());
                let ev = ctx.switch(&aspace, &mut regs);
                (ev, regs)
            })
            .join()
            .unwrap()
        }

        #[test]
        fn a_guest_syscall_comes_back_unexecuted() {
            // mov eax, 39 (getpid); syscall
            static CODE_BYTES: [u8; 7] = [0xb8, 39, 0, 0, 0, 0x0f, 0x05];
            let (ev, regs) = run_code(&CODE_BYTES, |_| {});
            assert_eq!(ev.unwrap(), Event::Syscall);
            assert_eq!(regs.orig_rax, 39);
            assert_eq!(regs.rip, CODE + 7, "rip points after the syscall");
        }

        #[test]
        fn a_fault_comes_back_with_its_address() {
            // mov rax, [0x200000]: nothing is mapped there.
            static CODE_BYTES: [u8; 8] = [0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00];
            let (ev, _) = run_code(&CODE_BYTES, |_| {});
            match ev.unwrap() {
                Event::Fault(info, _) => {
                    assert_eq!(info.signo, libc::SIGSEGV);
                    assert_eq!(info.addr, 0x20_0000);
                }
                other => panic!("expected a fault, got {other:?}"),
            }
        }

        #[test]
        fn another_thread_can_interrupt_a_running_guest() {
            // jmp . (spin forever)
            static CODE_BYTES: [u8; 2] = [0xeb, 0xfe];
            let (ev, regs) = run_code(&CODE_BYTES, |int| {
                let int = int.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    int.interrupt();
                });
            });
            assert_eq!(ev.unwrap(), Event::Interrupted);
            assert_eq!(regs.rip, CODE, "the guest was stopped inside its loop");
        }

        #[test]
        fn an_interrupt_before_the_switch_is_not_lost() {
            static CODE_BYTES: [u8; 2] = [0xeb, 0xfe];
            let (ev, _) = run_code(&CODE_BYTES, |int| int.interrupt());
            assert_eq!(ev.unwrap(), Event::Interrupted);
        }

        #[test]
        fn a_killed_stub_is_an_error_not_a_panic() {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mf = memory_file(&[0xeb, 0xfe]);
                let p = <$platform>::new(mf.as_raw_fd()).unwrap();
                let aspace = p.new_address_space().unwrap();
                aspace.map_file(CODE, PAGE_SIZE, 0, Prot::READ).unwrap();
                // Kill the stub process.
                let sp = aspace.as_any().downcast_ref::<$subprocess>().unwrap();
                // SAFETY: kills our own stub.
                unsafe { libc::kill(sp.pid(), libc::SIGKILL) };
                let mut ctx = p.new_context();
                let mut regs = p.initial_registers();
                regs.rip = CODE;
                tx.send(ctx.switch(&aspace, &mut regs).is_err()).unwrap();
            });
            assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
        }
    };
}
