import LocalNLBModel
import ProxyProtocol

/// One ended flow, as written to the flow log.
public struct FlowRecord: Sendable {
    public var id: UInt64
    public var listener: IPEndpoint
    public var client: IPEndpoint
    public var node: IPEndpoint
    public var target: IPEndpoint?
    /// The local address of the target connection: the client's (preserved) or the node's.
    public var source: IPEndpoint?
    public var proxyHeader: [UInt8]?
    public var bytesFromClient: UInt64
    public var bytesFromTarget: UInt64
    public var durationSeconds: Double
    public var closeReason: CloseReason
    public var detail: String?
    /// `TCP`, or `UDP` for a UDP flow (whose "bytes" are its datagrams' payloads).
    public var transport: TransportProtocol = .tcp
}

/// One direction of a flow: source socket → pipe → destination socket.
package struct Direction {
    var pipeRead: Int32 = -1
    var pipeWrite: Int32 = -1
    /// Bytes in the pipe, not yet written to the destination.
    package var buffered = 0
    /// The source sent FIN (splice read 0).
    var sourceEOF = false
    /// FIN passed on to the destination, after everything before it.
    package var finSent = false
    /// The PROXY header is in the pipe, waiting for the client's first payload (`on_first_ack_with_payload`).
    var holdUntilPayload = false
    /// Payload bytes read from the source.
    package var bytes: UInt64 = 0
    /// Bulk: bytes go socket → pipe → socket with splice(2). Otherwise (small messages) one recv(2) and
    /// one send(2) through the loop's buffer: a short recv shows the socket is empty, so no read ends
    /// in EAGAIN.
    var splicing = false
    /// Bytes read but not yet sent when no pipe could be had (out of descriptors): the pipeless path
    /// keeps them on the heap, so the flow goes on instead of being reset.
    package var overflow: [UInt8] = []
    /// TCP_NODELAY on the destination, asked for only where it can change something.
    var noDelay = NoDelay.set

    var hasPipe: Bool { pipeRead >= 0 }

    /// Called before each write to the destination.
    mutating func willWrite(to destination: Int32) {
        switch noDelay {
        case .set: return
        case .beforeSecondWrite: noDelay = .beforeNextWrite
        case .beforeNextWrite:
            Socket.setNoDelay(destination)
            noDelay = .set
        }
    }

    /// Bytes wait for the destination to take them: in the pipe (unless the PROXY header is held for
    /// the first payload), or on the heap.
    var hasWaitingBytes: Bool { buffered > 0 && !holdUntilPayload || !overflow.isEmpty }
}

/// Whether a destination still needs TCP_NODELAY. Nagle's algorithm holds a short segment back only
/// while an earlier short one is unacknowledged, so a connection's first write always leaves at once:
/// the option is set before the second, and a flow that writes its target once (a request per
/// connection) never pays the call.
package enum NoDelay {
    /// Set (or inherited: a client socket has its listener's).
    case set
    case beforeSecondWrite
    case beforeNextWrite
}

package enum FlowState {
    case free
    case connecting
    case established
    /// Forgotten after the idle timeout: whichever side speaks next gets a RST (docs/flows.md §5).
    case expired
}

/// A client connection and its target connection. Flows live in a slab and are reused.
package final class Flow {
    /// The flow's place in the slab, for epoll tokens and the free list.
    package let index: Int
    package var generation: UInt32 = 0
    package var state = FlowState.free
    package var id: UInt64 = 0
    package var listenerIndex = 0
    package var groupIndex = 0
    package var targetIndex = -1
    /// The chosen target's flow count, shared by every loop; taken away from when the flow ends.
    var targetFlows: SharedCounter?
    package var client = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
    package var node = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
    package var source: IPEndpoint?
    var clientFD: Int32 = -1
    var targetFD: Int32 = -1
    var clientToTarget = Direction()
    var targetToClient = Direction()
    /// The PROXY header this flow sends, as its group was set when the flow began.
    package var proxyMode = ProxyProtocolMode.off
    /// The header's bytes, made again for the flow log and the control API (the loop writes them
    /// straight into the pipe and keeps no copy).
    package var header: [UInt8]? { RoutingGroup.proxyHeader(proxyMode, client: client, node: node) }
    var firstFIN: CloseReason?
    /// Towards a TLS target group the header goes before the TLS handshake, sent by the flow's bridge.
    var headerBeforeTLS = false
    /// The client's FIN (or RST) came while the target connection was still being made.
    var clientClosing = false
    package var started: UInt64 = 0
    var lastActivity: UInt64 = 0
    /// Segments both sockets had received once the flow had been quiet a while, and the
    /// `lastActivity` that quiet began at: more segments by the idle timeout are keepalives.
    var quietSegments: UInt32 = 0
    var quietSince: UInt64 = .max
    /// The bytes (both ways) already added to the group's `processedBytes`: the counter takes each
    /// byte once, while the flow lives and when it ends, and never goes back.
    var countedBytes: UInt64 = 0

    /// Both directions' bytes not yet in the group's counter; they count as of now.
    func takeUncountedBytes() -> UInt64 {
        let total = clientToTarget.bytes &+ targetToClient.bytes
        defer { countedBytes = total }
        return total &- countedBytes
    }

    package init(index: Int) { self.index = index }

    package func reset() {
        state = .free
        targetIndex = -1
        targetFlows = nil
        source = nil
        clientFD = -1
        targetFD = -1
        clientToTarget = Direction()
        targetToClient = Direction()
        proxyMode = .off
        headerBeforeTLS = false
        firstFIN = nil
        clientClosing = false
        countedBytes = 0
    }
}
