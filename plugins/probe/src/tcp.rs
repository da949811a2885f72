//! `kind = "tcp"`: a connection to `host:port` within the timeout.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;

use crate::config::TcpProbe;
use crate::outcome::Outcome;

pub(crate) fn run(p: &TcpProbe) -> Outcome {
    let start = Instant::now();
    let timeout = p.timeout.get();
    let addrs = match p.address.to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            return Outcome::down(Some(start.elapsed()), format!("resolve {}: {e}", p.address));
        }
    };
    let mut last = format!("{} resolves to no address", p.address);
    for addr in addrs {
        let Some(left) = timeout
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
        else {
            last = format!("connect to {}: no answer within {timeout:?}", p.address);
            break;
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(_) => return Outcome::up(start.elapsed()),
            Err(e) => last = format!("connect to {} ({addr}): {e}", p.address),
        }
    }
    Outcome::down(Some(start.elapsed()), last)
}
