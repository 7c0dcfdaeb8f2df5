import Glibc
import ProxyProtocol

/// UDP sockets: the DNS responder's.
extension Socket {
    /// A non-blocking, close-on-exec UDP socket bound to `endpoint` (IPv6 sockets IPv6-only).
    static func datagram(on endpoint: IPEndpoint) throws(SystemError) -> Int32 {
        let family = endpoint.ip.isIPv6 ? AF_INET6 : AF_INET
        let fd = try syscallNonBlocking("socket") {
            Glibc.socket(
                family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        DescriptorLedger.opened(fd)
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if endpoint.ip.isIPv6 { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            try bind(fd, endpoint)
        } catch {
            closeDescriptor(fd)
            throw error
        }
        return fd
    }

    /// One datagram into `buffer`: its length and sender, or nil when none waits (or on an error,
    /// which for UDP concerns that datagram only).
    static func receiveDatagram(_ fd: Int32, into buffer: inout [UInt8]) -> (count: Int, from: IPEndpoint)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let count = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &storage) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, &length)
                    }
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

    /// Sends one datagram; a failure (a full buffer, an unreachable peer) drops it, as UDP may.
    static func sendDatagram(_ fd: Int32, _ bytes: [UInt8], to endpoint: IPEndpoint) {
        try? withSockAddr(endpoint) { address, length throws(SystemError) in
            _ = bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT), address, length) }
        }
    }
}

extension Socket {
    /// One datagram sent to `endpoint` and the first answer, waiting at most `timeoutSeconds` (a
    /// client's exchange: the zones demo asks the DNS responder this way).
    static func exchangeDatagram(_ bytes: [UInt8], with endpoint: IPEndpoint, timeoutSeconds: Int) -> [UInt8]? {
        guard
            let fd = try? datagram(
                on: IPEndpoint(
                    ip: endpoint.ip.isIPv6 ? .v6(IPv6Address("::1")!) : .v4(IPv4Address(127, 0, 0, 1)), port: 0))
        else { return nil }
        defer { closeDescriptor(fd) }
        sendDatagram(fd, bytes, to: endpoint)
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, Int32(timeoutSeconds * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        guard let (count, _) = receiveDatagram(fd, into: &buffer) else { return nil }
        return Array(buffer[0..<count])
    }
}
