import Foundation
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol
import Synchronization

/// `localnlb target --udp`: beside the TCP server on the same port, answers each datagram with one
/// JSON line of what it saw: the datagram's source (the client, when its address was kept), the
/// local address, the byte count. What a UDP group's health check (TCP) and a UDP client both need.
public final class UDPTargetServer: Sendable {
    public let name: String
    public let endpoint: IPEndpoint
    private let fd: Int32
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let printsReports: Bool

    public init(on endpoint: IPEndpoint, name: String, printsReports: Bool = false) throws {
        do {
            fd = try Socket.datagram(on: endpoint)
        } catch {
            throw ListenerError(description: "target UDP \(endpoint): \(error)")
        }
        self.endpoint = Socket.localEndpoint(fd) ?? endpoint
        self.name = name
        self.printsReports = printsReports
    }

    /// The report sent back for a datagram of `count` bytes from `peer`.
    package static func report(name: String, peer: IPEndpoint, local: IPEndpoint, count: Int) -> String {
        JSONText.object([
            ("target", .string(name)), ("protocol", .string("UDP")), ("peer", .string(peer.description)),
            ("local", .string(local.description)), ("clientAddress", .string(peer.description)),
            ("bytes", .integer(Int64(count))),
        ]).rendered
    }

    public func start() {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !stopping.load(ordering: .acquiring) {
                guard Socket.waitReadable(fd, milliseconds: 100) else { continue }
                while let (count, peer) = Socket.receiveDatagram(fd, into: &buffer) {
                    let line = Self.report(name: name, peer: peer, local: endpoint, count: count)
                    Socket.sendDatagram(fd, Array(line.utf8), to: peer)
                    if printsReports { print(line) }
                }
            }
            done.signal()
        }
    }

    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        done.wait()
        closeDescriptor(fd)
    }
}
