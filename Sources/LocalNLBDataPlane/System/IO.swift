import CLocalNLB
import Glibc
import LocalNLBModel

/// What one non-blocking transfer did: moved bytes, met the end of the stream, would block, or failed.
/// EINTR never shows: the call is made again.
package enum Transfer: Equatable {
    case moved(Int)
    /// A read of 0 bytes: the peer sent FIN (or the pipe's writer is gone).
    case end
    case wouldBlock
    case failed(Errno)
}

/// The byte-moving calls of the data plane and the control plane, each wrapped once.
package enum IO {
    @inline(__always)
    private static func transfer(_ body: () -> Int) -> Transfer {
        while true {
            let n = body()
            if n > 0 { return .moved(n) }
            if n == 0 { return .end }
            switch Errno.current {
            case .interrupted: continue
            case .wouldBlock: return .wouldBlock
            case let code: return .failed(code)
            }
        }
    }

    /// recv(2) into `buffer`.
    @inline(__always)
    package static func receive(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int) -> Transfer {
        transfer { Glibc.recv(fd, buffer, count, 0) }
    }

    /// send(2) without SIGPIPE.
    @inline(__always)
    package static func send(_ fd: Int32, from buffer: UnsafeRawPointer, count: Int) -> Transfer {
        transfer { Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL)) }
    }

    /// sendmsg(2) of two buffers in one call, without SIGPIPE: a response head staged by the load balancer
    /// and the first of the body behind it, one system call where two sends would be.
    @inline(__always)
    package static func send(
        _ fd: Int32, _ first: UnsafeRawPointer, count firstCount: Int, then second: UnsafeRawPointer,
        count secondCount: Int
    ) -> Transfer {
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2) { vectors in
            vectors[0] = iovec(iov_base: UnsafeMutableRawPointer(mutating: first), iov_len: firstCount)
            vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: second), iov_len: secondCount)
            var message = msghdr()
            message.msg_iov = vectors.baseAddress
            message.msg_iovlen = 2
            return transfer { Glibc.sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
        }
    }

    /// What a datagram on a connected UDP socket did: an ICMP port unreachable from the peer shows as
    /// ECONNREFUSED on the socket's next call.
    package enum DatagramSend { case sent, dropped, refused }
    package enum DatagramReceive { case datagram(Int), none, refused }

    /// send(2) of one datagram on a connected UDP socket.
    @inline(__always)
    package static func sendDatagram(_ fd: Int32, _ buffer: UnsafeRawPointer, count: Int) -> DatagramSend {
        while true {
            if Glibc.send(fd, buffer, count, Int32(MSG_DONTWAIT)) >= 0 { return .sent }
            switch Errno.current {
            case .interrupted: continue
            case .connectionRefused: return .refused
            default: return .dropped  // a full buffer, or the peer gone: UDP may lose it
            }
        }
    }

    /// recv(2) of one datagram (of any length, 0 included) from a connected UDP socket.
    @inline(__always)
    package static func receiveDatagram(_ fd: Int32, into buffer: UnsafeMutableRawPointer, capacity: Int)
        -> DatagramReceive
    {
        while true {
            let n = Glibc.recv(fd, buffer, capacity, Int32(MSG_DONTWAIT))
            if n >= 0 { return .datagram(n) }
            switch Errno.current {
            case .interrupted: continue
            case .connectionRefused: return .refused
            default: return .none
            }
        }
    }

    /// write(2), for pipes and eventfds.
    @inline(__always)
    package static func write(_ fd: Int32, from buffer: UnsafeRawPointer, count: Int) -> Transfer {
        transfer { Glibc.write(fd, buffer, count) }
    }

    /// read(2), for the blocking sockets of the built-in target and the command-line clients.
    @inline(__always)
    package static func read(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int) -> Transfer {
        transfer { Glibc.read(fd, buffer, count) }
    }

    /// splice(2) of up to `count` bytes between a socket and a pipe, never blocking.
    @inline(__always)
    static func splice(from source: Int32, to destination: Int32, count: Int) -> Transfer {
        transfer { clnb_splice(source, destination, count) }
    }

    /// A non-blocking pipe that holds at least `minimum` bytes, grown to `preferred` when the kernel
    /// allows (`fs.pipe-user-pages-soft`); nil when none can be had (out of descriptors, or past it).
    package static func pipe(preferred: Int, minimum: Int) -> (read: Int32, write: Int32)? {
        var fds: (Int32, Int32) = (-1, -1)
        let made = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { clnb_pipe2($0) == 0 }
        }
        guard made else { return nil }
        DescriptorLedger.opened(fds.0)
        DescriptorLedger.opened(fds.1)
        let grown = preferred > minimum && clnb_pipe_set_size(fds.0, Int32(preferred)) >= 0
        if !grown && clnb_pipe_get_size(fds.0) < minimum && clnb_pipe_set_size(fds.0, Int32(minimum)) < 0 {
            closeDescriptor(fds.0)
            closeDescriptor(fds.1)
            return nil
        }
        return fds
    }
}

/// SIGTERM, SIGINT and SIGHUP as a descriptor the control plane's epoll waits on.
package enum SignalDescriptor {
    /// Blocks the three signals for the process's threads and returns a signalfd for them.
    package static func make() throws(SystemError) -> Int32 {
        let fd = try syscallNonBlocking("signalfd") { clnb_signalfd_daemon() }
        DescriptorLedger.opened(fd)
        return fd
    }

    /// The signal waiting, or -1.
    package static func read(_ fd: Int32) -> Int32 { clnb_signalfd_read(fd) }
}

/// A blocking eventfd for one wait: a thread sleeps in `wait` until another calls `ring`. Without a
/// descriptor to be had (the process is out of them), `wait` polls `ready` instead.
package final class OneShotSignal: Sendable {
    private let fd: Int32

    package init() {
        fd = clnb_eventfd_blocking()
        DescriptorLedger.opened(fd)
    }

    deinit { if fd >= 0 { closeDescriptor(fd) } }

    package func ring() {
        guard fd >= 0 else { return }
        var one: UInt64 = 1
        _ = IO.write(fd, from: &one, count: 8)
    }

    /// Returns once rung, or (without a descriptor) once `ready()` says so.
    package func wait(until ready: () -> Bool) {
        if fd >= 0 {
            var count: UInt64 = 0
            _ = Glibc.read(fd, &count, 8)
        }
        while !ready() { usleep(100) }
    }
}

/// Files written whole or not at all.
package enum Files {
    /// Writes `bytes` to `path` so that a crash never leaves a torn file: a temporary file beside it,
    /// fsync, then rename over the old one.
    package static func writeAtomically(_ bytes: [UInt8], to path: String) throws(SystemError) {
        let temporary = path + ".localnlb-\(getpid()).tmp"
        let fd = try syscallNonBlocking("open") {
            Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        DescriptorLedger.opened(fd)
        do throws(SystemError) {
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { IO.write(fd, from: $0.baseAddress!, count: $0.count) }
                guard case .moved(let n) = written else {
                    throw SystemError(call: "write", errno: .current)
                }
                offset += n
            }
            try syscallNonBlocking("fsync") { Glibc.fsync(fd) }
            closeDescriptor(fd)
            try syscallNonBlocking("rename") { Glibc.rename(temporary, path) }
        } catch {
            if DescriptorLedger.isOpen(fd) { closeDescriptor(fd) }
            _ = Glibc.unlink(temporary)
            throw error
        }
    }
}
