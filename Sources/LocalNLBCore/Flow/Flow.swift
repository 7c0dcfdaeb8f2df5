import ProxyProtocol

/// Why a flow ended, as the flow log says it.
public enum CloseReason: String, Sendable {
    case clientFIN = "client FIN"
    case targetFIN = "target FIN"
    case clientRST = "client RST"
    case targetRST = "target RST"
    case idleTimeout = "idle timeout"
    case connectRefused = "connect refused"
    case connectTimeout = "connect timeout"
    /// The connect failed otherwise (unreachable, no route): the errno is in the log.
    case connectFailed = "connect failed"
    /// No local port was free towards the target (EADDRNOTAVAIL): AWS's PortAllocationErrorCount.
    case portAllocationError = "port allocation error"
    /// The source address could not be bound (client IP preservation without privileges).
    case sourceBindFailed = "source bind failed"
    /// No registered target takes new flows.
    case noTarget = "no target"
    /// The target failed its health checks and `target_health_state.unhealthy.connection_termination.enabled`.
    case targetUnhealthy = "target unhealthy"
    /// The deregistration delay ended with `deregistration_delay.connection_termination.enabled`.
    case targetDeregistered = "target deregistered"
    case shutdown = "shutdown"
    /// DeleteListener closed the listener the flow came in through.
    case listenerDeleted = "listener deleted"
    /// No descriptor for the target connection: the process is out of file descriptors. (A flow that
    /// is already open never ends this way: without a pipe it goes on through the loop's buffer.)
    case outOfDescriptors = "out of descriptors"
}

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
struct Direction {
    var pipeRead: Int32 = -1
    var pipeWrite: Int32 = -1
    /// Bytes in the pipe, not yet written to the destination.
    var buffered = 0
    /// The source sent FIN (splice read 0).
    var sourceEOF = false
    /// FIN passed on to the destination, after everything before it.
    var finSent = false
    /// The PROXY header is in the pipe, waiting for the client's first payload (`on_first_ack_with_payload`).
    var holdUntilPayload = false
    /// Payload bytes read from the source.
    var bytes: UInt64 = 0
    /// Bulk: bytes go socket → pipe → socket with splice(2). Otherwise (small messages) one recv(2) and
    /// one send(2) through the loop's buffer: a short recv shows the socket is empty, so no read ends
    /// in EAGAIN.
    var splicing = false
    /// Bytes read but not yet sent when no pipe could be had (out of descriptors): the pipeless path
    /// keeps them on the heap, so the flow goes on instead of being reset.
    var overflow: [UInt8] = []
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
enum NoDelay {
    /// Set (or inherited: a client socket has its listener's).
    case set
    case beforeSecondWrite
    case beforeNextWrite
}

enum FlowState {
    case free
    case connecting
    case established
    /// Forgotten after the idle timeout: whichever side speaks next gets a RST (docs/flows.md §5).
    case expired
}

/// A client connection and its target connection. Flows live in a slab and are reused.
final class Flow {
    /// The flow's place in the slab, for epoll tokens and the free list.
    let index: Int
    var generation: UInt32 = 0
    var state = FlowState.free
    var id: UInt64 = 0
    var listenerIndex = 0
    var groupIndex = 0
    var targetIndex = -1
    /// The chosen target's flow count, shared by every loop; taken away from when the flow ends.
    var targetFlows: SharedCounter?
    var client = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
    var node = IPEndpoint(ip: .v4(IPv4Address(0, 0, 0, 0)), port: 0)
    var source: IPEndpoint?
    var clientFD: Int32 = -1
    var targetFD: Int32 = -1
    var clientToTarget = Direction()
    var targetToClient = Direction()
    /// The PROXY header this flow sends, as its group was set when the flow began.
    var proxyMode = ProxyProtocolMode.off
    /// The header's bytes, made again for the flow log and the control API (the loop writes them
    /// straight into the pipe and keeps no copy).
    var header: [UInt8]? { TargetGroup.proxyHeader(proxyMode, client: client, node: node) }
    var firstFIN: CloseReason?
    /// The client's FIN (or RST) came while the target connection was still being made.
    var clientClosing = false
    var started: UInt64 = 0
    var lastActivity: UInt64 = 0
    var deadline: UInt64 = 0
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

    init(index: Int) { self.index = index }

    func reset() {
        state = .free
        targetIndex = -1
        targetFlows = nil
        source = nil
        clientFD = -1
        targetFD = -1
        clientToTarget = Direction()
        targetToClient = Direction()
        proxyMode = .off
        firstFIN = nil
        clientClosing = false
        countedBytes = 0
    }
}
