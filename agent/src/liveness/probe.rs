//! Liveness probes, sent from the gateway to every node address it peers with.
//!
//! * ICMP echo over raw sockets (IPv4 and IPv6; the agent runs as root on the gateway). One round
//!   sends one echo request to every target with the round's sequence number and collects the
//!   replies until the round ends; a reply that arrives later belongs to no round and is dropped.
//! * TCP connect to a port: a SYN-ACK and a RST both prove the node's kernel is alive (Cilium's
//!   BGP speaker does not listen, so port 179 answers with a RST). Sockets close with linger 0, so
//!   probing leaves no TIME_WAIT behind.
//!
//! Cilium VIPs do not answer ping, but node addresses do: these probes never target a VIP.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bgplb_site::LivenessMethod;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::error::Error;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// Sends probe rounds with one method.
pub struct Prober {
    method: LivenessMethod,
    port: u16,
    icmp4: Option<UdpSocket>,
    icmp6: Option<UdpSocket>,
    ident: u16,
    seq: u16,
}

/// A raw ICMP socket as a tokio datagram socket: raw sockets speak recvfrom/sendto like UDP.
fn raw_icmp(domain: Domain, protocol: Protocol) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(domain, Type::RAW, Some(protocol))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(std::net::UdpSocket::from(socket))
}

impl Prober {
    /// Opens the sockets the method needs (ICMP: raw sockets, which need CAP_NET_RAW).
    pub fn new(method: LivenessMethod, port: u16) -> Result<Prober, Error> {
        let (icmp4, icmp6) = match method {
            LivenessMethod::Icmp => {
                let v4 = raw_icmp(Domain::IPV4, Protocol::ICMPV4);
                let v6 = raw_icmp(Domain::IPV6, Protocol::ICMPV6);
                if let (Err(e), Err(_)) = (&v4, &v6) {
                    return Err(Error::Probe(format!(
                        "cannot open a raw ICMP socket ({e}): the agent needs root (CAP_NET_RAW) for ICMP probes, or set liveness.method = \"tcp\""
                    )));
                }
                (v4.ok(), v6.ok())
            }
            LivenessMethod::Tcp => (None, None),
        };
        Ok(Prober {
            method,
            port,
            icmp4,
            icmp6,
            ident: fastrand::u16(..),
            seq: fastrand::u16(..),
        })
    }

    /// One round: a probe to every target, answers collected for `wait`. Returns the round-trip
    /// time of every target that answered.
    pub async fn round(
        &mut self,
        targets: &[IpAddr],
        wait: Duration,
    ) -> BTreeMap<IpAddr, Duration> {
        match self.method {
            LivenessMethod::Icmp => self.icmp_round(targets, wait).await,
            LivenessMethod::Tcp => tcp_round(targets, self.port, wait).await,
        }
    }

    async fn icmp_round(
        &mut self,
        targets: &[IpAddr],
        wait: Duration,
    ) -> BTreeMap<IpAddr, Duration> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + wait;
        let mut answers = BTreeMap::new();
        for target in targets {
            let socket = match target {
                IpAddr::V4(_) => self.icmp4.as_ref(),
                IpAddr::V6(_) => self.icmp6.as_ref(),
            };
            let Some(socket) = socket else { continue };
            let packet = echo_request(target.is_ipv6(), self.ident, seq);
            if let Err(e) = socket.send_to(&packet, SocketAddr::new(*target, 0)).await {
                tracing::trace!(%target, error = %e, "probe not sent");
            }
        }
        let mut b4 = [0u8; 1500];
        let mut b6 = [0u8; 1500];
        while answers.len() < targets.len() {
            let got = tokio::time::timeout_at(deadline, async {
                tokio::select! {
                    r = recv_on(self.icmp4.as_ref(), &mut b4) => r.map(|(n, from)| {
                        // Raw IPv4 sockets deliver the IP header too.
                        let ihl = usize::from(b4[0] & 0x0f) * 4;
                        (parse_echo_reply(&b4[..n], ihl, ECHO_REPLY_V4), from)
                    }),
                    r = recv_on(self.icmp6.as_ref(), &mut b6) => r.map(|(n, from)| {
                        (parse_echo_reply(&b6[..n], 0, ECHO_REPLY_V6), from)
                    }),
                }
            })
            .await;
            let (reply, from) = match got {
                Err(_) => break,
                Ok(Err(_)) => continue,
                Ok(Ok(r)) => r,
            };
            if reply == Some((self.ident, seq)) && targets.contains(&from.ip()) {
                answers
                    .entry(from.ip())
                    .or_insert_with(|| started.elapsed());
            }
        }
        // Keep each round as long as the interval, answered or not.
        tokio::time::sleep_until(deadline).await;
        answers
    }
}

/// Waits for a datagram on `socket` (forever when there is no socket).
async fn recv_on(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// An echo request: type, code, checksum, identifier, sequence, 8 bytes of payload. The kernel
/// computes ICMPv6 checksums itself; IPv4's is computed here.
fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    p[0] = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"bgplb-lv");
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// (identifier, sequence) of an echo reply starting at `offset`, or `None` for anything else.
fn parse_echo_reply(packet: &[u8], offset: usize, reply_type: u8) -> Option<(u16, u16)> {
    let icmp = packet.get(offset..)?;
    if icmp.len() < 8 || icmp[0] != reply_type || icmp[1] != 0 {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

async fn tcp_round(targets: &[IpAddr], port: u16, wait: Duration) -> BTreeMap<IpAddr, Duration> {
    let deadline = tokio::time::Instant::now() + wait;
    let probes = targets.iter().map(|target| async move {
        let started = Instant::now();
        let addr = SocketAddr::new(*target, port);
        let socket = match target {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let Ok(socket) = socket else { return None };
        // Closing with linger 0 sends a RST: no TIME_WAIT per probe.
        let _ = socket.set_zero_linger();
        let alive = match tokio::time::timeout_at(deadline, socket.connect(addr)).await {
            Ok(Ok(_stream)) => true,
            Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
            Err(_) => false,
        };
        alive.then(|| (*target, started.elapsed()))
    });
    let answers = futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect();
    tokio::time::sleep_until(deadline).await;
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(echo_request(true, 1, 2)[0], ECHO_REQUEST_V6);
    }

    #[test]
    fn replies_are_matched_by_type_identifier_and_sequence() {
        let mut reply = echo_request(false, 0xbeef, 9);
        reply[0] = ECHO_REPLY_V4;
        let mut ip = vec![0x45u8; 20];
        ip.extend_from_slice(&reply);
        assert_eq!(parse_echo_reply(&ip, 20, ECHO_REPLY_V4), Some((0xbeef, 9)));
        assert_eq!(parse_echo_reply(&ip, 20, ECHO_REPLY_V6), None);
        assert_eq!(parse_echo_reply(&ip[..24], 20, ECHO_REPLY_V4), None);
        let request = echo_request(false, 0xbeef, 9);
        assert_eq!(parse_echo_reply(&request, 0, ECHO_REPLY_V4), None);
    }
}
