//! The platform contract (`contract/mod.rs`) on the ptrace platform.

mod contract;

contract_tests!(
    platform::ptrace::PtracePlatform,
    platform::ptrace::Subprocess
);
