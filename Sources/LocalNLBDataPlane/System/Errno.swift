import Glibc
import LocalNLBModel

/// A typed errno, with Swift names for the codes this code handles.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static var current: Errno { Errno(errno) }

    public static let interrupted = Errno(EINTR)
    public static let wouldBlock = Errno(EAGAIN)
    public static let inProgress = Errno(EINPROGRESS)
    public static let connectionRefused = Errno(ECONNREFUSED)
    public static let connectionReset = Errno(ECONNRESET)
    public static let brokenPipe = Errno(EPIPE)
    public static let timedOut = Errno(ETIMEDOUT)
    public static let addressInUse = Errno(EADDRINUSE)
    public static let addressNotAvailable = Errno(EADDRNOTAVAIL)
    public static let notPermitted = Errno(EPERM)
    public static let accessDenied = Errno(EACCES)
    public static let tooManyOpenFiles = Errno(EMFILE)
    public static let fileTableFull = Errno(ENFILE)
    public static let notConnected = Errno(ENOTCONN)
    public static let badDescriptor = Errno(EBADF)
    public static let badAddress = Errno(EFAULT)

    public var description: String { String(cString: strerror(rawValue)) }
}

/// A failed system call: which call, and why.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var errno: Errno
    public init(call: String, errno: Errno) {
        self.call = call
        self.errno = errno
    }
    public var description: String { "\(call): \(errno)" }
}

/// A non-blocking call's outcome: done, or "try again when the descriptor is ready".
public enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

/// Runs a system call: retries on EINTR, returns EAGAIN as `.wouldBlock`, throws anything else with
/// the call's name. Programming errors (EBADF, EFAULT) trap.
@inline(__always)
public func syscall<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws(SystemError) -> IOResult<T> {
    while true {
        let result = body()
        if result >= 0 { return .done(result) }
        let code = Errno.current
        switch code {
        case .interrupted: continue
        case .wouldBlock: return .wouldBlock
        case .badDescriptor, .badAddress: preconditionFailure("\(name): \(code) is a programming error")
        default: throw SystemError(call: "\(name)", errno: code)
        }
    }
}

/// Like `syscall` for calls that never block (socket, bind, setsockopt…): `.wouldBlock` is an error too.
@inline(__always)
@discardableResult
public func syscallNonBlocking<T: FixedWidthInteger>(_ name: StaticString, _ body: () -> T) throws(SystemError) -> T {
    switch try syscall(name, body) {
    case .done(let value): return value
    case .wouldBlock: throw SystemError(call: "\(name)", errno: .wouldBlock)
    }
}

/// A call whose failure only costs a tuning (TCP_NODELAY, a read timeout, IP_BIND_ADDRESS_NO_PORT,
/// SO_LINGER before a reset): nothing to tell a user, so the result is dropped here and only here.
/// A bad descriptor or address is a programming error, and traps with the call's name.
@inline(__always)
public func bestEffort(_ name: StaticString, _ body: () -> Int32) {
    guard body() != 0 else { return }
    let code = errno
    if code == EBADF || code == EFAULT { preconditionFailure("\(name): \(Errno(code))") }
}

/// Closes a descriptor. EINTR is not retried: on Linux the descriptor is already released when close
/// returns EINTR, and a retry could close a descriptor another thread just opened.
public func closeDescriptor(_ fd: Int32) {
    precondition(fd >= 0, "close of an invalid descriptor")
    DescriptorLedger.closing(fd)
    if Glibc.close(fd) != 0 && errno == EBADF { preconditionFailure("close(\(fd)): EBADF") }
}
