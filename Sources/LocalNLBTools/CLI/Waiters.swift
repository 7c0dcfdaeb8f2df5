import Foundation
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel

/// `ctl wait …`: the ELBv2 waiters with AWS's acceptors (the same as boto3's and the AWS CLI's):
/// one call at once, then one every 15 s, 40 at most. The 15 s is multiplied by the daemon's
/// `--time-scale`, as its health checks and draining are.
package enum Waiters {
    package enum Acceptor {
        /// Every value at the path equals the expected (and there is at least one).
        case all([String], String, State)
        /// Some value at the path equals the expected.
        case any([String], String, State)
        case error(String, State)
        case succeeded
    }

    package enum State { case success, retry }

    package struct Waiter {
        package var name: String
        package var command: String
        var acceptors: [Acceptor]
    }

    package static let waiters: [String: Waiter] = [
        "load-balancer-exists": Waiter(
            name: "LoadBalancerExists", command: "describe-load-balancers",
            acceptors: [.succeeded, .error("LoadBalancerNotFound", .retry)]),
        "load-balancer-available": Waiter(
            name: "LoadBalancerAvailable", command: "describe-load-balancers",
            acceptors: [
                .all(["LoadBalancers", "State", "Code"], "active", .success),
                .any(["LoadBalancers", "State", "Code"], "provisioning", .retry),
                .error("LoadBalancerNotFound", .retry),
            ]),
        "load-balancers-deleted": Waiter(
            name: "LoadBalancersDeleted", command: "describe-load-balancers",
            acceptors: [
                .all(["LoadBalancers", "State", "Code"], "active", .retry), .error("LoadBalancerNotFound", .success),
            ]),
        "target-in-service": Waiter(
            name: "TargetInService", command: "describe-target-health",
            acceptors: [
                .all(["TargetHealthDescriptions", "TargetHealth", "State"], "healthy", .success),
                .error("InvalidInstance", .retry),
            ]),
        "target-deregistered": Waiter(
            name: "TargetDeregistered", command: "describe-target-health",
            acceptors: [
                .error("InvalidTarget", .success),
                .all(["TargetHealthDescriptions", "TargetHealth", "State"], "unused", .success),
            ]),
    ]

    /// Waits; nil when the waiter succeeded, else the AWS CLI's message.
    package static func wait(
        _ waiter: Waiter, _ options: [String: [String]], delaySeconds: Double,
        call: ([(String, String)]) throws ->
            QueryClient.Answer
    ) throws -> String? {
        let form = try ELBv2Commands.form(waiter.command, options)
        for attempt in 1...40 {
            if attempt > 1 { sleep(seconds: delaySeconds) }
            let answer = try call(form)
            var matched: State?
            for acceptor in waiter.acceptors where matched == nil {
                switch (acceptor, answer) {
                case (.succeeded, .result): matched = .success
                case (.error(let code, let state), .error(let given, _)) where code == given: matched = state
                case (.all(let path, let expected, let state), .result(let value)):
                    let values = strings(value, path)
                    if !values.isEmpty && values.allSatisfy({ $0 == expected }) { matched = state }
                case (.any(let path, let expected, let state), .result(let value)):
                    if strings(value, path).contains(expected) { matched = state }
                default: break
                }
            }
            switch matched {
            case .success?: return nil
            case .retry?: continue
            case nil:
                if case .error(let code, let message) = answer {
                    return "Waiter \(waiter.name) failed: An error occurred (\(code)): \(message)"
                }
            }
        }
        return "Waiter \(waiter.name) failed: Max attempts exceeded"
    }

    /// The strings at `path` (`LoadBalancers[].State.Code`), lists flattened.
    package static func strings(_ value: JSONText, _ path: [String]) -> [String] {
        switch value {
        case .array(let items): return items.flatMap { strings($0, path) }
        case .object(let fields):
            guard let key = path.first, let field = fields.first(where: { $0.0 == key })?.1 else { return [] }
            return strings(field, Array(path.dropFirst()))
        case .string(let text) where path.isEmpty: return [text]
        default: return []
        }
    }

    static func sleep(seconds: Double) { Thread.sleep(forTimeInterval: seconds) }
}
