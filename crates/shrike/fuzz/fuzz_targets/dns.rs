//! Fuzzes the DNS message parser, which reads what the network sensor copied off the wire
//! (any process, any peer, can put any bytes in a UDP datagram to or from port 53): every input
//! parses or is an error, never a panic or a loop, and names come out as text.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run dns` (from crates/shrike); seeds in corpus/dns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shrike::pipeline::net::dns;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = dns::parse(data) {
        if let Some((_, qtype)) = &message.question {
            let _ = dns::qtype_name(*qtype);
        }
        let _ = dns::rcode_name(message.rcode);
    }
    for off in [0usize, 12] {
        let _ = dns::read_name(data, off);
    }
});
