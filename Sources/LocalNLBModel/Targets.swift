import ProxyProtocol
import Synchronization

/// A target's health state, with AWS's names (docs/health.md §4).
public enum TargetHealthState: String, Sendable {
    case initial
    case healthy
    case unhealthy
    case unhealthyDraining = "unhealthy.draining"
    case draining
    case unavailable
    case unused
}

/// The reason code that goes with a state (docs/health.md §4).
public enum TargetHealthReason: String, Sendable {
    case registrationInProgress = "Elb.RegistrationInProgress"
    case initialHealthChecking = "Elb.InitialHealthChecking"
    case failedHealthChecks = "Target.FailedHealthChecks"
    case deregistrationInProgress = "Target.DeregistrationInProgress"
    case internalError = "Elb.InternalError"
    case notRegistered = "Target.NotRegistered"
    case notInUse = "Target.NotInUse"
    case healthCheckDisabled = "Target.HealthCheckDisabled"
}

/// A registered target as the balancer tracks it.
public struct Target: Sendable {
    public var id: String
    public var endpoint: IPEndpoint
    public var state: TargetHealthState
    public var reason: TargetHealthReason?
    /// Flows connecting or established to this target (AWS counts SYN_SENT and ESTABLISHED alike), on
    /// every event loop. The counter is shared by the copies of this target each loop holds.
    public let flowCount = SharedCounter()
    public var activeFlows: Int {
        get { flowCount.current }
        nonmutating set { flowCount.value.store(newValue, ordering: .relaxed) }
    }
    /// Whether new flows may go to this target now. Its group sets it from the state, fail-open and
    /// the zones its load balancer is in.
    public var takesNewFlows: Bool
    /// `AvailabilityZone` as registered (nil: from the subnets), and the zone it resolves to (`all`:
    /// every zone's nodes reach it); the control plane sets `zone`.
    public var availabilityZone: String?
    public var zone = ""
    /// Its zone (or group, with cross-zone on) is failing open: read per flow, set by the lifecycle.
    public var inFailingOpenZone = false
    /// Unique per registration, so a late probe result or timer never lands on a re-used slot.
    public var registration: UInt64 = 0
    /// Why the last health check failed (connection refused, a timeout, an HTTP status): said in the
    /// event log when the target turns unhealthy. AWS's reason codes stay as they are.
    public var lastCheckFailure: String?
    public var consecutiveSuccesses = 0
    public var consecutiveFailures = 0
    /// When `draining` or `unhealthy.draining` ends (nanoseconds on the loop's clock).
    public var drainingUntil: UInt64 = 0
    /// The health state to return to if a draining target is registered again.
    public var stateBeforeDeregistration: (TargetHealthState, TargetHealthReason?) = (.initial, nil)
    /// When the next health check starts, and whether one is running.
    public var nextCheck: UInt64 = 0
    public var checking = false
    /// How many checks have started: the next comes from node `probeRound` (mod the nodes).
    public var probeRound = 0
    /// An application load balancer's slow start (`slow_start.duration_seconds`, docs/alb.md §23): from
    /// `slowStartSince` to `slowStartUntil` (the loop's clock) the target's share of requests grows
    /// linearly to a full one. 0: not in slow start.
    public var slowStartSince: UInt64 = 0
    public var slowStartUntil: UInt64 = 0

    public init(id: String, endpoint: IPEndpoint, state: TargetHealthState = .healthy) {
        self.id = id
        self.endpoint = endpoint
        self.state = state
        self.takesNewFlows = state == .healthy
    }

    /// Registered and not on its way out: counts towards the group's size and takes flows when failing open.
    public var isRegistered: Bool { state != .draining && state != .unused }
}

/// A number every event loop reads and changes without a lock: a target's active flows (each loop adds
/// its new flows and takes away its ended ones), a selector's cursor.
public final class SharedCounter: Sendable {
    package let value = Atomic<Int>(0)

    package init() {}

    package var current: Int { value.load(ordering: .relaxed) }

    package func add(_ delta: Int) { value.wrappingAdd(delta, ordering: .relaxed) }
}
