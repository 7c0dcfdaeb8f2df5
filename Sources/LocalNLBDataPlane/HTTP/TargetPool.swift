import ProxyProtocol

/// Idle connections to an application load balancer's targets, per loop: a client connection that
/// ends gives its target connection back here, and the next client's request to that target takes it
/// instead of connecting (docs/alb.md §16). Keyed by target and the node address it leaves from.
struct HTTPTargetPool {
    struct Key: Hashable {
        var target: IPEndpoint
        var source: IPAddress
    }

    private var idle: [Key: [(fd: Int32, since: UInt64)]] = [:]
    private(set) var count = 0

    /// At most this many idle connections per target and node in one loop (nginx's `keepalive 64`).
    static let perTarget = 64
    /// An idle connection older than this is closed: the target may have forgotten it.
    static let idleNanoseconds: UInt64 = 60_000_000_000

    /// The most recently used idle connection to `key`, if any, and since when it has waited.
    mutating func take(_ key: Key) -> (fd: Int32, since: UInt64)? {
        guard let last = idle[key]?.popLast() else { return nil }
        count -= 1
        return last
    }

    /// Keeps `fd`; false when the pool for `key` is full (the caller closes it).
    mutating func put(_ key: Key, _ fd: Int32, now: UInt64) -> Bool {
        if idle[key] == nil { idle[key] = [] }
        guard idle[key]!.count < Self.perTarget else { return false }
        idle[key]!.append((fd, now))
        count += 1
        return true
    }

    /// Closes (through `close`) every connection idle longer than `idleNanoseconds`.
    mutating func expire(now: UInt64, close: (Int32) -> Void) {
        guard count > 0 else { return }
        for key in idle.keys {
            idle[key]!.removeAll { entry in
                guard now &- entry.since >= Self.idleNanoseconds else { return false }
                close(entry.fd)
                count -= 1
                return true
            }
        }
    }

    mutating func closeAll(_ close: (Int32) -> Void) {
        for entries in idle.values { entries.forEach { close($0.fd) } }
        idle.removeAll()
        count = 0
    }
}
