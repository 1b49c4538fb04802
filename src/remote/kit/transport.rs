//! The HTTP agent every HTTP-based remote uses: ureq with TLS (rustls) and an HTTP CONNECT
//! proxy where configured, over TCP sockets that acknowledge responses at once.
//!
//! Why the last part: servers that leave Nagle's algorithm on (s3s-based servers among
//! them) write a response in pieces, headers then body. Nagle holds the body back until
//! the headers are acknowledged, and a client on a kept-alive connection delays that ACK
//! (Linux's "ping-pong" mode, up to 40 ms) hoping to piggyback it on its next request,
//! which waits for the body: every small GET stalls about 40 ms. Leaving ping-pong mode
//! (`TCP_QUICKACK`) before each read makes the kernel acknowledge as soon as the data is
//! read. It costs one setsockopt per read and an ACK packet per response, nothing else.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, RustlsConnector,
    ShutdownHandle, Transport,
};

/// An agent for `config` whose TCP connections acknowledge responses without delay.
pub(crate) fn agent(config: ureq::config::Config) -> ureq::Agent {
    let connector =
        ().chain(ConnectProxyConnector::default()).chain(QuickAckConnector).chain(RustlsConnector::default());
    ureq::Agent::with_parts(config, connector, ureq::unversioned::resolver::DefaultResolver::default())
}

/// Opens plain TCP connections (unless a proxy connector already did) as [`QuickAck`]s.
#[derive(Debug)]
struct QuickAckConnector;

impl<In: Transport> Connector<In> for QuickAckConnector {
    type Out = Either<In, QuickAck>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(chained) = chained {
            return Ok(Some(Either::A(chained)));
        }
        let deadline = details.timeout.not_zero().map(|budget| Instant::now() + *budget);
        let mut last: Option<ureq::Error> = None;
        let mut connected = None;
        // Each address in turn, all within the one connect budget.
        for addr in &details.addrs {
            let attempt = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => TcpStream::connect_timeout(addr, left),
                    _ => break,
                },
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                    last = Some(ureq::Error::Timeout(ureq::Timeout::Connect))
                }
                Err(e) => last = Some(ureq::Error::Io(e)),
            }
        }
        let Some(stream) = connected else {
            return Err(last.unwrap_or(ureq::Error::Timeout(ureq::Timeout::Connect)));
        };
        let config = details.config;
        if config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let stream = Arc::new(stream);
        // Agent::shutdown() shuts the socket down to wake blocked I/O; it holds a Weak only.
        (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>)?;
        let buffers = LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size());
        Ok(Some(Either::B(QuickAck { stream, buffers, read_timeout: None, write_timeout: None })))
    }
}

/// A TCP transport that leaves delayed-ACK ping-pong mode before every read.
pub(crate) struct QuickAck {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// The socket timeouts last set, so that unchanged ones cost no syscall.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl std::fmt::Debug for QuickAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickAck").field("peer", &self.stream.peer_addr().ok()).finish()
    }
}

/// The timeout of one I/O step: an error if the budget is spent, else what to set on the
/// socket (`None`: no timeout).
fn step_timeout(timeout: NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if timeout.after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|d| *d))
}

fn io_error(e: io::Error, reason: ureq::Timeout) -> ureq::Error {
    match e.kind() {
        // SO_RCVTIMEO/SO_SNDTIMEO expiry reads as EAGAIN on Linux.
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ureq::Error::Timeout(reason),
        _ => ureq::Error::Io(e),
    }
}

impl QuickAck {
    fn quick_ack(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let on: libc::c_int = 1;
            // SAFETY: a valid socket descriptor and a c_int option value of the right size.
            // A failure only means ACKs stay delayed, so it is ignored.
            unsafe {
                libc::setsockopt(
                    self.stream.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

impl Transport for QuickAck {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let limit = step_timeout(timeout)?;
        if limit != self.write_timeout {
            self.stream.set_write_timeout(limit)?;
            self.write_timeout = limit;
        }
        let output = &self.buffers.output()[..amount];
        (&*self.stream).write_all(output).map_err(|e| io_error(e, timeout.reason))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let limit = step_timeout(timeout)?;
        if limit != self.read_timeout {
            self.stream.set_read_timeout(limit)?;
            self.read_timeout = limit;
        }
        self.quick_ack();
        let started = Instant::now();
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match (&*self.stream).read(input) {
                Ok(n) => break n,
                // Linux does not restart socket reads that have a timeout after a signal:
                // retry within what is left of it.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let Some(limit) = limit else { return Err(ureq::Error::Io(e)) };
                    let left = limit.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                    self.stream.set_read_timeout(Some(left))?;
                    self.read_timeout = Some(left);
                }
                Err(e) => return Err(io_error(e, timeout.reason)),
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // A pooled connection is reusable if a non-blocking read finds nothing waiting:
        // data would be garbage the server sent unasked, EOF or an error a closed socket.
        let probe = || -> io::Result<bool> {
            self.stream.set_nonblocking(true)?;
            let open = matches!((&*self.stream).read(&mut [0u8]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
            self.stream.set_nonblocking(false)?;
            Ok(open)
        };
        probe().unwrap_or(false)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// A keep-alive HTTP server with Nagle on that writes each response as headers, then
    /// body, in two writes: the shape that stalls on a delayed ACK.
    fn nagle_server(requests: usize) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            conn.set_nodelay(false).unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut conn = conn;
            let body = vec![b'x'; 3000];
            for _ in 0..requests {
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap() == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                conn.write_all(head.as_bytes()).unwrap();
                conn.write_all(&body).unwrap();
            }
            let _ = reader.read(&mut [0u8; 1]);
        });
        (addr, handle)
    }

    #[test]
    fn kept_alive_gets_through_the_quick_ack_transport() {
        // Functional only: the server accepts one connection, so every GET after the first
        // must reuse it. What quick ACKs save is measured by scripts/bench (scenario d),
        // never by a timed test.
        const N: usize = 30;
        let (addr, server) = nagle_server(N);
        let config = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(60))).build();
        let agent = agent(config);
        for _ in 0..N {
            let mut res = agent.get(&format!("http://{addr}/")).call().unwrap();
            assert_eq!(res.body_mut().read_to_vec().unwrap(), vec![b'x'; 3000]);
        }
        drop(agent);
        server.join().unwrap();
    }

    #[test]
    fn a_refused_connection_is_an_io_error() {
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let agent = agent(ureq::Agent::config_builder().build());
        match agent.get(&format!("http://{addr}/")).call() {
            Err(ureq::Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
            other => panic!("expected a refused connection, got {other:?}"),
        }
    }
}
