//! The platform contract (`contract/mod.rs`) on the systrap platform,
//! and what only systrap reports: the kind of a faulting access.

mod contract;

contract_tests!(
    platform::systrap::SystrapPlatform,
    platform::systrap::Subprocess
);

#[test]
fn a_write_fault_says_it_was_a_write() {
    // mov [0x100000], al: the code page is mapped read+exec only.
    static CODE_BYTES: [u8; 7] = [0x88, 0x04, 0x25, 0x00, 0x00, 0x10, 0x00];
    let (ev, _) = run_code(&CODE_BYTES, |_| {});
    match ev.unwrap() {
        Event::Fault(info, access) => {
            assert_eq!(info.signo, libc::SIGSEGV);
            assert_eq!(info.addr, CODE);
            assert!(access.write && !access.read && !access.exec, "{access:?}");
        }
        other => panic!("expected a fault, got {other:?}"),
    }
}
