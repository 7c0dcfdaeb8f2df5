import Foundation
import LocalNLBModel
import Synchronization

/// How a `LoadBalancer` runs, beyond its configuration.
public struct LoadBalancerOptions: Sendable {
    public var flowLog: FlowLog = .standardError
    /// On SIGTERM/SIGINT or `stop()`: how long flows may finish before they are reset.
    public var drainSeconds: Double = 10
    /// How many UDP flows one event loop keeps at most (each holds a socket towards its target).
    public var udpFlowLimit = 8192
    /// Handle SIGTERM and SIGINT (the daemon). Off when embedded (tests, demo).
    public var handlesSignals = false
    /// Where the event log goes: one line per event (listeners, targets and their states, attributes,
    /// reloads), each starting with its RFC 3339 time.
    public var log: @Sendable (String) -> Void = LoadBalancerOptions.textLog

    /// The event log as text: every line starts with its time, the continuation lines of a message
    /// (a refused reload's problems) too. One write per message: lines of several threads never
    /// interleave.
    public static let textLog: @Sendable (String) -> Void = { message in
        let time = rfc3339Now()
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map { index, line in
            time + (index == 0 ? " localnlb: " : " localnlb:   ") + line + "\n"
        }
        FileHandle.standardError.write(Data(lines.joined().utf8))
    }

    /// The event log as JSON lines (`serve --log-format json`), for log shippers: one object per
    /// message, `{"time":…,"message":…}`, the message whole.
    public static let jsonLog: @Sendable (String) -> Void = { message in
        let line = JSONText.object([("time", .string(rfc3339Now())), ("message", .string(message))]).rendered
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
    /// Called for every ended flow, on the thread of the loop that carried it: with several loops,
    /// from several threads at once.
    public var onFlowEnd: (@Sendable (FlowRecord) -> Void)?
    /// Multiplies every AWS timer: health-check interval and timeout, deregistration delay, unhealthy
    /// draining interval, idle timeout. `0.01` turns 300 s of draining into 3 s.
    public var timeScale: Double = 1
    /// The configuration file, re-read on SIGHUP (the daemon only).
    public var configPath: String?
    /// Whether a re-read configuration is checked with `--strict`.
    public var strict = false
    /// `serve --persist`: after every change made through an API, the running model is written back to
    /// `configPath` (atomically), so a restart replays it.
    public var persists = false
    /// How many epoll loops, each on its own thread, accept and move flows. The control plane (health
    /// checks, the control API, signals, reloads) runs apart from them. The daemon uses one per core.
    public var eventLoops = 1
    /// Each event loop stays on one CPU: loop i on the i-th CPU this process may run on (wrapping
    /// around when there are more loops than CPUs). Its flows' data stays in that core's caches and the
    /// scheduler never moves a busy loop (`--cpu-affinity auto`). Off by default: it pays for
    /// request/response traffic and costs bulk transfers (README, Performance).
    public var pinsLoops = false
    /// Where localnlb keeps its certificate authority (`ca.pem`, `ca-key.pem`, mode 0600): nil for
    /// `LOCALNLB_CA_DIR`, else `$XDG_DATA_HOME/localnlb`, else `~/.local/share/localnlb`.
    public var certificateDirectory: String?

    /// The certificate authority's directory these options name.
    package var resolvedCertificateDirectory: String {
        if let certificateDirectory { return certificateDirectory }
        let environment = ProcessInfo.processInfo.environment
        if let given = environment["LOCALNLB_CA_DIR"], !given.isEmpty { return given }
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/localnlb" }
        return (environment["HOME"] ?? "/root") + "/.local/share/localnlb"
    }

    public init() {}
}

/// What `LoadBalancer.init` can fail with: the listener and the fix, in one line.
public struct ListenerError: Error, CustomStringConvertible {
    public var description: String

    package init(description: String) {
        self.description = description
    }
}
