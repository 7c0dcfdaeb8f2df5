import CLocalNLB
import Glibc
import LocalNLBModel
import ProxyProtocol

/// UDP sockets: the DNS responder's, and UDP listeners and flows.
extension Socket {
    /// A non-blocking, close-on-exec UDP socket of the address's family, not bound yet.
    package static func datagram(for ip: IPAddress) throws(SystemError) -> Int32 {
        let fd = try syscallNonBlocking("socket") {
            Glibc.socket(
                ip.isIPv6 ? AF_INET6 : AF_INET,
                Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        DescriptorLedger.opened(fd)
        return fd
    }

    /// A non-blocking, close-on-exec UDP socket bound to `endpoint` (IPv6 sockets IPv6-only;
    /// SO_REUSEPORT if asked; never SO_REUSEADDR: see `bindForListening`).
    package static func datagram(on endpoint: IPEndpoint, reusePort: Bool = false) throws(SystemError) -> Int32 {
        try bindForListening(try datagram(for: endpoint.ip), endpoint, reusePort: reusePort, reuseAddress: false)
    }

    /// `count` UDP sockets on one endpoint, one per event loop (SO_REUSEPORT: the kernel sends each
    /// flow's datagrams, by their addresses, to one of them). As with `listenGroup`, a port another
    /// program holds is "in use".
    package static func datagramGroup(on endpoint: IPEndpoint, count: Int) throws(SystemError) -> [Int32] {
        try reusePortGroup(on: endpoint, count: count, probe: { (e) throws(SystemError) in try datagram(on: e) }) {
            (e) throws(SystemError) in try datagram(on: e, reusePort: true)
        }
    }

    /// One datagram into `buffer`: its length and sender, or nil when none waits (an error concerns
    /// that datagram only). No allocation.
    package static func receiveDatagram(_ fd: Int32, into buffer: UnsafeMutableRawPointer, capacity: Int)
        -> (count: Int, from: IPEndpoint)?
    {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let count = withUnsafeMutablePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, buffer, capacity, 0, $0, &length)
                }
            }
            if count >= 0 {
                guard let from = endpoint(from: storage) else { return nil }
                return (count, from)
            }
            if errno == EINTR { continue }
            return nil
        }
    }

    package static func receiveDatagram(_ fd: Int32, into buffer: inout [UInt8]) -> (count: Int, from: IPEndpoint)? {
        buffer.withUnsafeMutableBytes { receiveDatagram(fd, into: $0.baseAddress!, capacity: $0.count) }
    }

    /// Sends one datagram to `endpoint`; false when it could not go (a full buffer drops it, as UDP may).
    @discardableResult
    package static func sendDatagram(_ fd: Int32, _ buffer: UnsafeRawPointer, count: Int, to endpoint: IPEndpoint)
        -> Bool
    {
        (try? withSockAddr(endpoint) { address, length throws(SystemError) in
            sendto(fd, buffer, count, Int32(MSG_DONTWAIT), address, length) == count
        }) ?? false
    }

    package static func sendDatagram(_ fd: Int32, _ bytes: [UInt8], to endpoint: IPEndpoint) {
        bytes.withUnsafeBytes { _ = sendDatagram(fd, $0.baseAddress!, count: $0.count, to: endpoint) }
    }

    /// One datagram sent to `endpoint` and the first answer, waiting at most `timeoutSeconds` (a
    /// client's exchange: the zones demo asks the DNS responder this way).
    package static func exchangeDatagram(_ bytes: [UInt8], with endpoint: IPEndpoint, timeoutSeconds: Int) -> [UInt8]? {
        let local: IPAddress = endpoint.ip.isIPv6 ? .v6(IPv6Address("::1")!) : .v4(IPv4Address(127, 0, 0, 1))
        guard let fd = try? datagram(on: IPEndpoint(ip: local, port: 0)) else { return nil }
        defer { closeDescriptor(fd) }
        sendDatagram(fd, bytes, to: endpoint)
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, Int32(timeoutSeconds * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        guard let (count, _) = receiveDatagram(fd, into: &buffer) else { return nil }
        return Array(buffer[0..<count])
    }
}

/// Datagrams received many at a time (recvmmsg): one call for up to `slots` of them, each in a slot
/// big enough for any UDP payload. Allocated once, by the loop that first needs it.
package final class DatagramBatch {
    static let slots = 16
    package static let slot = 65536
    let buffers = UnsafeMutableRawPointer.allocate(
        byteCount: DatagramBatch.slots * DatagramBatch.slot, alignment: 16)
    private let sources = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: DatagramBatch.slots)
    private let lengths = UnsafeMutablePointer<UInt32>.allocate(capacity: DatagramBatch.slots)
    private let truncated = UnsafeMutablePointer<UInt8>.allocate(capacity: DatagramBatch.slots)

    deinit {
        buffers.deallocate()
        sources.deallocate()
        lengths.deallocate()
        truncated.deallocate()
    }

    /// Receives what waits, up to `slots` datagrams: how many (0 when none, or on an error, which
    /// concerns those datagrams only).
    package func receive(_ fd: Int32) -> Int {
        let count = clnb_recv_batch(
            fd, buffers, DatagramBatch.slot, UInt32(DatagramBatch.slots), sources, lengths, truncated)
        return max(0, Int(count))
    }

    package func payload(_ index: Int) -> (UnsafeMutableRawPointer, Int) {
        (buffers + index * DatagramBatch.slot, Int(lengths[index]))
    }

    package func source(_ index: Int) -> IPEndpoint? { Socket.endpoint(from: sources[index]) }
}

extension Socket {
    /// Waits at most `milliseconds` for `fd` to be readable (the demo and the built-in UDP target,
    /// which block; the balancer's loops use epoll). EINTR counts as not yet.
    package static func waitReadable(_ fd: Int32, milliseconds: Int32) -> Bool {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&poll, 1, milliseconds) == 1
    }
}
