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
