import Foundation
import Glibc
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol
import Synchronization

/// A load balancer: the control plane (`ControlPlane`) and its event loops (`EventLoop`). Made on one
/// thread, run on any (`run()` blocks until stopped and drained), stopped from any (`stop()`).
public final class LoadBalancer: Sendable {
    /// The address each listener socket is bound to, in the order of `configuration.listeners` × nodes
    /// (a port 0 in the configuration shows here as the port the kernel chose).
    public let listenerEndpoints: [(listener: Int, endpoint: IPEndpoint)]
    /// The same for the UDP sockets of `UDP` and `TCP_UDP` listeners.
    public let udpListenerEndpoints: [(listener: Int, endpoint: IPEndpoint)]
    /// Where the control API listens (the kernel's port when the configuration said port 0).
    public let adminEndpoint: IPEndpoint?
    /// Where the DNS responder answers, UDP and TCP (nil: none).
    public let dnsEndpoint: IPEndpoint?
    private let bell: ControlBell
    /// The control plane until `run()` takes it; it lives on the thread that runs it.
    private let control: Mutex<ControlPlane?>

    /// Binds every listener on every node address. Fails with one clear line (port in use, address
    /// not on this machine) and leaves nothing open.
    public init(configuration: Configuration, options: LoadBalancerOptions = LoadBalancerOptions()) throws {
        ignoreSIGPIPE()
        raiseOpenFileLimit()
        let bell = try ControlBell()
        let plane = try ControlPlane(configuration: configuration, options: options, bell: bell)
        listenerEndpoints = plane.listenerEndpoints
        udpListenerEndpoints = plane.udpListenerEndpoints
        adminEndpoint = plane.adminEndpoint
        dnsEndpoint = plane.dnsEndpoint
        self.bell = bell
        control = Mutex(plane)
    }

    /// Runs until stopped (signal or `stop()`) and drained, the event loops on threads of their own.
    /// Closes everything before it returns. A second call returns at once.
    public func run() throws {
        try control.withLock { plane in
            defer { plane = nil }
            try plane?.run()
        }
    }

    /// Asks a running balancer, from any thread, to stop accepting and drain. Safe to call more than
    /// once, and before `run()` (which then drains at once).
    public func stop() {
        bell.stopRequested.store(true, ordering: .releasing)
        bell.wake.ring()
    }
}
