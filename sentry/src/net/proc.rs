//! /proc/net's files from the stack's state, in Linux's formats
//! (`tcp4_seq_show`, `udp4_format_sock`, `dev_seq_printf_stats`,
//! `fib_route_seq_show`, `if6_seq_show`, `ipv6_route_native_seq_show`,
//! `snmp_seq_show`, `netstat_seq_show`).

use std::fmt::Write;
use std::net::{IpAddr, Ipv6Addr};

use super::rtnetlink::{addr_scope, fib, IFA_F_PERMANENT, RTN_LOCAL, RT_TABLE_MAIN};
use super::{NetStack, Proto, SocketInfo};

/// An IPv4 address as /proc/net prints it: the network-order word as a
/// native integer.
fn hex4(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v) => format!("{:08X}", u32::from_ne_bytes(v.octets())),
        IpAddr::V6(v) => match v.to_ipv4_mapped() {
            Some(v4) => hex4(IpAddr::V4(v4)),
            None => "00000000".into(),
        },
    }
}

/// An IPv6 address as tcp6 and udp6 print it: four native words.
fn hex6_words(a: IpAddr) -> String {
    let v = match a {
        IpAddr::V6(v) => v,
        IpAddr::V4(v) => v.to_ipv6_mapped(),
    };
    let o = v.octets();
    (0..4)
        .map(|i| {
            format!(
                "{:08X}",
                u32::from_ne_bytes(o[i * 4..i * 4 + 4].try_into().unwrap())
            )
        })
        .collect()
}

/// An IPv6 address as `%pi6` prints it: 32 hex digits.
fn pi6(a: Ipv6Addr) -> String {
    a.octets().iter().map(|b| format!("{b:02x}")).collect()
}

/// Pads a line to `width` and ends it (`seq_pad`).
fn pad(out: &mut String, line: &str, width: usize) {
    let _ = writeln!(out, "{line:<width$}");
}

const TCP_LISTEN: u8 = 10;
const TCP_TIME_WAIT: u8 = 6;

fn tcp_line(i: usize, s: &SocketInfo, v6: bool) -> String {
    let (loc, rem) = if v6 {
        (hex6_words(s.local.0), hex6_words(s.remote.0))
    } else {
        (hex4(s.local.0), hex4(s.remote.0))
    };
    if s.state == TCP_TIME_WAIT {
        return format!(
            "{i:4}: {loc}:{:04X} {rem}:{:04X} {:02X} {:08X}:{:08X} {:02X}:{:08X} {:08X} {:5} {:8} {} {} {:016x}",
            s.local.1, s.remote.1, s.state, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0
        );
    }
    let listen = s.state == TCP_LISTEN;
    format!(
        "{i:4}: {loc}:{:04X} {rem}:{:04X} {:02X} {:08X}:{:08X} {:02X}:{:08X} {:08X} {:5} {:8} {} {} {:016x} {} {} {} {} {}",
        s.local.1,
        s.remote.1,
        s.state,
        s.tx_queue,
        s.rx_queue,
        0,
        0,
        0,
        s.uid,
        0,
        s.inode,
        1,
        0,
        100,
        if listen { 0 } else { 4 },
        0,
        10,
        if listen { 0 } else { -1 },
    )
}

/// /proc/net/tcp.
pub fn tcp(stack: &NetStack) -> String {
    let mut out = String::new();
    pad(
        &mut out,
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        149,
    );
    let socks = stack.sockets(Proto::Tcp);
    for (i, s) in socks
        .iter()
        .filter(|s| s.family == libc::AF_INET)
        .enumerate()
    {
        pad(&mut out, &tcp_line(i, s, false), 149);
    }
    out
}

/// /proc/net/tcp6.
pub fn tcp6(stack: &NetStack) -> String {
    let mut out = String::from("  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
    let socks = stack.sockets(Proto::Tcp);
    for (i, s) in socks
        .iter()
        .filter(|s| s.family == libc::AF_INET6)
        .enumerate()
    {
        out.push_str(&tcp_line(i, s, true));
        out.push('\n');
    }
    out
}

fn udp_line(s: &SocketInfo, v6: bool) -> String {
    let (loc, rem) = if v6 {
        (hex6_words(s.local.0), hex6_words(s.remote.0))
    } else {
        (hex4(s.local.0), hex4(s.remote.0))
    };
    format!(
        "{:5}: {loc}:{:04X} {rem}:{:04X} {:02X} {:08X}:{:08X} {:02X}:{:08X} {:08X} {:5} {:8} {} {} {:016x} {}",
        s.local.1 as usize % 128,
        s.local.1,
        s.remote.1,
        s.state,
        s.tx_queue,
        s.rx_queue,
        0,
        0,
        0,
        s.uid,
        0,
        s.inode,
        2,
        0,
        0
    )
}

/// /proc/net/udp.
pub fn udp(stack: &NetStack) -> String {
    let mut out = String::new();
    pad(
        &mut out,
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops",
        127,
    );
    for s in stack
        .sockets(Proto::Udp)
        .iter()
        .filter(|s| s.family == libc::AF_INET)
    {
        pad(&mut out, &udp_line(s, false), 127);
    }
    out
}

/// /proc/net/udp6.
pub fn udp6(stack: &NetStack) -> String {
    let mut out = String::from("  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n");
    for s in stack
        .sockets(Proto::Udp)
        .iter()
        .filter(|s| s.family == libc::AF_INET6)
    {
        out.push_str(&udp_line(s, true));
        out.push('\n');
    }
    out
}

/// /proc/net/dev.
pub fn dev(stack: &NetStack) -> String {
    let mut out = String::from(
        "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for l in stack.links() {
        let s = l.stats;
        let _ = writeln!(
            out,
            "{:>6}: {:7} {:7} {:4} {:4} {:4} {:5} {:10} {:9} {:8} {:7} {:4} {:4} {:4} {:5} {:7} {:10}",
            l.name,
            s.rx_bytes,
            s.rx_packets,
            0,
            s.rx_dropped,
            0,
            0,
            0,
            0,
            s.tx_bytes,
            s.tx_packets,
            0,
            0,
            0,
            0,
            0,
            0
        );
    }
    out
}

/// /proc/net/route: IPv4's main table.
pub fn route(stack: &NetStack) -> String {
    let mut out = String::new();
    pad(
        &mut out,
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
        127,
    );
    let links = stack.links();
    for r in fib(stack) {
        if !r.dst.is_ipv4() || r.table != RT_TABLE_MAIN {
            continue;
        }
        let name = links
            .iter()
            .find(|l| l.index == r.oif)
            .map_or("*", |l| l.name.as_str());
        let mask = if r.dst_len == 0 {
            0u32
        } else {
            u32::MAX << (32 - r.dst_len as u32)
        };
        let flags = 0x1 | if r.gateway.is_some() { 0x2 } else { 0 };
        let line = format!(
            "{name}\t{}\t{}\t{flags:04X}\t0\t0\t{}\t{:08X}\t0\t0\t0",
            hex4(r.dst),
            r.gateway.map_or("00000000".into(), hex4),
            r.priority,
            u32::from_ne_bytes(mask.to_be_bytes())
        );
        pad(&mut out, &line, 127);
    }
    out
}

/// /proc/net/if_inet6.
pub fn if_inet6(stack: &NetStack) -> String {
    let links = stack.links();
    let mut out = String::new();
    for a in stack.addrs() {
        let IpAddr::V6(v) = a.addr else {
            continue;
        };
        let name = links
            .iter()
            .find(|l| l.index == a.index)
            .map_or("", |l| l.name.as_str());
        // ipv6_addr_scope's values: host 0x10, link 0x20, global 0.
        let scope = match addr_scope(a.addr) {
            254 => 0x10,
            253 => 0x20,
            _ => 0,
        };
        let _ = writeln!(
            out,
            "{} {:02x} {:02x} {:02x} {:02x} {name:>8}",
            pi6(v),
            a.index,
            a.prefix,
            scope,
            IFA_F_PERMANENT
        );
    }
    out
}

/// /proc/net/ipv6_route: every IPv6 route, main and local tables.
pub fn ipv6_route(stack: &NetStack) -> String {
    let links = stack.links();
    let mut out = String::new();
    let zero = pi6(Ipv6Addr::UNSPECIFIED);
    for r in fib(stack) {
        let IpAddr::V6(d) = r.dst else {
            continue;
        };
        let name = links
            .iter()
            .find(|l| l.index == r.oif)
            .map_or("", |l| l.name.as_str());
        // RTF_UP, RTF_GATEWAY; local routes RTF_LOCAL | RTF_NONEXTHOP.
        let mut flags: u32 = 0x1;
        if r.gateway.is_some() {
            flags |= 0x2;
        }
        if r.rtype == RTN_LOCAL {
            flags |= 0x8000_0000 | 0x0020_0000;
        }
        let gw = match r.gateway {
            Some(IpAddr::V6(g)) => pi6(g),
            _ => zero.clone(),
        };
        let _ = writeln!(
            out,
            "{} {:02x} {zero} 00 {gw} {:08x} {:08x} {:08x} {:08x} {name:>8}",
            pi6(d),
            r.dst_len,
            r.priority,
            1,
            0,
            flags
        );
    }
    out
}

/// Writes a table's two lines: the names, then the values.
fn table(out: &mut String, tag: &str, names: &str, values: &[i64]) {
    let _ = writeln!(out, "{tag}: {names}");
    let v: Vec<String> = values.iter().map(|x| x.to_string()).collect();
    let _ = writeln!(out, "{tag}: {}", v.join(" "));
}

fn zeros(names: &str) -> Vec<i64> {
    vec![0; names.split(' ').count()]
}

/// /proc/net/snmp. The stack keeps no per-protocol counters: those are
/// zero but for the settings (forwarding off, TTL 64, the RTO bounds) and
/// the established connections.
pub fn snmp(stack: &NetStack) -> String {
    let mut out = String::new();
    let ip = "Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits";
    let mut v = zeros(ip);
    v[0] = 2;
    v[1] = 64;
    table(&mut out, "Ip", ip, &v);
    let icmp = "InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps";
    table(&mut out, "Icmp", icmp, &zeros(icmp));
    // IcmpMsg lists only the message types counted: none.
    let tcp = "RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors";
    let mut v = zeros(tcp);
    v[0] = 1;
    v[1] = 200;
    v[2] = 120000;
    v[3] = -1;
    v[8] = stack
        .sockets(Proto::Tcp)
        .iter()
        .filter(|s| s.state == 1 || s.state == 8)
        .count() as i64;
    table(&mut out, "Tcp", tcp, &v);
    let udp = "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors";
    table(&mut out, "Udp", udp, &zeros(udp));
    table(&mut out, "UdpLite", udp, &zeros(udp));
    out
}

/// /proc/net/netstat: Linux's TcpExt and IpExt tables, all zero (the
/// stack keeps none of these counters).
pub fn netstat() -> String {
    let mut out = String::new();
    let tcpext = "SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled RcvPruned OfoPruned OutOfWindowIcmps LockDroppedIcmps ArpFilter TW TWRecycled TWKilled PAWSActive PAWSEstab BeyondWindow TSEcrRejected PAWSOldAck PAWSTimewait DelayedACKs DelayedACKLocked DelayedACKLost ListenOverflows ListenDrops TCPHPHits TCPPureAcks TCPHPAcks TCPRenoRecovery TCPSackRecovery TCPSACKReneging TCPSACKReorder TCPRenoReorder TCPTSReorder TCPFullUndo TCPPartialUndo TCPDSACKUndo TCPLossUndo TCPLostRetransmit TCPRenoFailures TCPSackFailures TCPLossFailures TCPFastRetrans TCPSlowStartRetrans TCPTimeouts TCPLossProbes TCPLossProbeRecovery TCPRenoRecoveryFail TCPSackRecoveryFail TCPRcvCollapsed TCPBacklogCoalesce TCPDSACKOldSent TCPDSACKOfoSent TCPDSACKRecv TCPDSACKOfoRecv TCPAbortOnData TCPAbortOnClose TCPAbortOnMemory TCPAbortOnTimeout TCPAbortOnLinger TCPAbortFailed TCPMemoryPressures TCPMemoryPressuresChrono TCPSACKDiscard TCPDSACKIgnoredOld TCPDSACKIgnoredNoUndo TCPSpuriousRTOs TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TCPSackShifted TCPSackMerged TCPSackShiftFallback TCPBacklogDrop PFMemallocDrop TCPMinTTLDrop TCPDeferAcceptDrop IPReversePathFilter TCPTimeWaitOverflow TCPReqQFullDoCookies TCPReqQFullDrop TCPRetransFail TCPRcvCoalesce TCPOFOQueue TCPOFODrop TCPOFOMerge TCPChallengeACK TCPSYNChallenge TCPFastOpenActive TCPFastOpenActiveFail TCPFastOpenPassive TCPFastOpenPassiveFail TCPFastOpenListenOverflow TCPFastOpenCookieReqd TCPFastOpenBlackhole TCPSpuriousRtxHostQueues BusyPollRxPackets TCPAutoCorking TCPFromZeroWindowAdv TCPToZeroWindowAdv TCPWantZeroWindowAdv TCPSynRetrans TCPOrigDataSent TCPHystartTrainDetect TCPHystartTrainCwnd TCPHystartDelayDetect TCPHystartDelayCwnd TCPACKSkippedSynRecv TCPACKSkippedPAWS TCPACKSkippedSeq TCPACKSkippedFinWait2 TCPACKSkippedTimeWait TCPACKSkippedChallenge TCPWinProbe TCPKeepAlive TCPMTUPFail TCPMTUPSuccess TCPDelivered TCPDeliveredCE TCPAckCompressed TCPZeroWindowDrop TCPRcvQDrop TCPWqueueTooBig TCPFastOpenPassiveAltKey TcpTimeoutRehash TcpDuplicateDataRehash TCPDSACKRecvSegs TCPDSACKIgnoredDubious TCPMigrateReqSuccess TCPMigrateReqFailure TCPPLBRehash TCPAORequired TCPAOBad TCPAOKeyNotFound TCPAOGood TCPAODroppedIcmps";
    table(&mut out, "TcpExt", tcpext, &zeros(tcpext));
    let ipext = "InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InCsumErrors InNoECTPkts InECT1Pkts InECT0Pkts InCEPkts ReasmOverlaps";
    table(&mut out, "IpExt", ipext, &zeros(ipext));
    out
}

/// How many of `socks` are of `family`, and of those how many are in
/// TIME-WAIT.
fn in_use(socks: &[SocketInfo], family: i32) -> (usize, usize) {
    let of: Vec<&SocketInfo> = socks.iter().filter(|s| s.family == family).collect();
    let tw = of.iter().filter(|s| s.state == TCP_TIME_WAIT).count();
    (of.len() - tw, tw)
}

/// /proc/net/sockstat: the stack's IPv4 sockets (`sockets: used` counts
/// the stack's TCP and UDP sockets of both families; Linux counts every
/// socket of the kernel). The stack keeps no orphan or memory counts.
pub fn sockstat(stack: &NetStack) -> String {
    let tcp = stack.sockets(Proto::Tcp);
    let udp = stack.sockets(Proto::Udp);
    let (tcp4, tw4) = in_use(&tcp, libc::AF_INET);
    let (tcp6, tw6) = in_use(&tcp, libc::AF_INET6);
    let (udp4, _) = in_use(&udp, libc::AF_INET);
    format!(
        "sockets: used {}\nTCP: inuse {tcp4} orphan 0 tw {} alloc {} mem 0\nUDP: inuse {udp4} mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n",
        tcp.len() - tw4 - tw6 + udp.len(),
        tw4 + tw6,
        tcp4 + tcp6,
    )
}

/// /proc/net/sockstat6.
pub fn sockstat6(stack: &NetStack) -> String {
    let (tcp6, _) = in_use(&stack.sockets(Proto::Tcp), libc::AF_INET6);
    let (udp6, _) = in_use(&stack.sockets(Proto::Udp), libc::AF_INET6);
    format!(
        "TCP6: inuse {tcp6}\nUDP6: inuse {udp6}\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n"
    )
}
