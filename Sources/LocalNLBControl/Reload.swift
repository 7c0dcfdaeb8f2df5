import CLocalNLB
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

extension ControlPlane {
    /// SIGHUP: re-reads the configuration file. Targets added or removed are registered or deregistered
    /// (with draining), attributes change for new flows, listeners come and go without touching other
    /// flows. A file with errors, or a listener that cannot be opened, changes nothing.
    package func reloadConfiguration() {
        guard let path = options.configPath else { return }
        guard !draining else { return options.log("SIGHUP: ignored while shutting down") }
        do {
            let loaded = try ConfigLoader.load(path: path, strict: options.strict)
            for warning in loaded.warnings { options.log("SIGHUP: warning: \(warning)") }
            try apply(loaded.configuration)
            options.log("SIGHUP: \(path) reloaded")
        } catch {
            options.log("SIGHUP: \(path) rejected, the running configuration stays:\n\(error)")
        }
    }

    /// Moves the running balancer to `new`: all of it, or (if a listener cannot be opened) none of it.
    /// `source` names what asked for it in the event log (SIGHUP, or an API action).
    package func apply(_ new: Configuration, by source: String = "SIGHUP") throws {
        // Where each group of the new configuration will live: its current slot, or a new one.
        var groupIndex: [String: Int] = [:]
        var appended = 0
        for group in new.targetGroups {
            if let index = groups.firstIndex(where: { $0.configuration.name == group.name }) {
                groupIndex[group.name] = index
            } else {
                groupIndex[group.name] = groups.count + appended
                appended += 1
            }
        }

        // Open the new listener sockets first: if one fails, nothing has changed yet.
        if let conflict = new.endpointConflict {
            throw ListenerError(description: "\(conflict.path): \(conflict.message)")
        }
        let wanted = new.listenerEndpoints
        var opened: [(Int, IPEndpoint, Bool, [Int32])] = []
        for (configIndex, endpoint, udp) in wanted
        where !listeners.contains(where: { $0.isOpen && $0.endpoint == endpoint && $0.isUDP == udp }) {
            do {
                let fds =
                    udp
                    ? try Socket.datagramGroup(on: endpoint, count: loops.count)
                    : try Socket.listenGroup(on: endpoint, count: loops.count)
                opened.append((configIndex, endpoint, udp, fds))
            } catch {
                for (_, _, _, fds) in opened { fds.forEach(closeDescriptor) }
                throw ListenerError(description: "listener \(udp ? "UDP " : "")\(endpoint): \(Self.explain(error))")
            }
        }

        // Target groups: update the kept, add the new, retire the gone.
        for group in new.targetGroups {
            let index = groupIndex[group.name]!
            if index >= groups.count {
                groups.append(TargetGroup(group, timeScale: options.timeScale, now: now))
                options.log("target group \(group.name) added (\(source))")
                continue
            }
            groups[index].removed = false
            let kept = groups[index].targets.filter { $0.isRegistered }.map(\.endpoint)
            let (keptSet, wanted) = (Set(kept), Set(group.targets.map(\.endpoint)))
            _ = groups[index].lifecycle.register(
                group.targets.filter { !keptSet.contains($0.endpoint) }.map {
                    ($0.id, $0.endpoint, $0.availabilityZone)
                },
                now: now)
            _ = groups[index].lifecycle.deregister(kept.filter { !wanted.contains($0) }, now: now)
            applyGroupConfiguration(index, group, by: source)
        }
        for index in groups.indices where groupIndex[groups[index].configuration.name] == nil {
            _ = groups[index].lifecycle.deregister(
                groups[index].targets.filter(\.isRegistered).map(\.endpoint), now: now)
            if !groups[index].removed {
                options.log("target group \(groups[index].configuration.name) removed (\(source))")
            }
            groups[index].removed = true
        }

        // Listeners: keep (with new settings), close the gone (their flows go on), add the new.
        func settings(_ configIndex: Int, udp: Bool) -> (
            group: Int, nodes: [LoadBalancerNode], idle: UInt64, connect: UInt64
        ) {
            let listener = new.listeners[configIndex]
            return (
                groupIndex[listener.targetGroupName]!, new.nodes(of: listener),
                Self.idleNanoseconds(listener, udp: udp, timeScale: options.timeScale),
                UInt64(listener.connectTimeoutSeconds * 1e9)
            )
        }
        var retired: [Int32] = []
        for index in listeners.indices where listeners[index].isOpen {
            if let match = wanted.first(where: {
                $0.endpoint == listeners[index].endpoint && $0.udp == listeners[index].isUDP
            }) {
                let s = settings(match.configIndex, udp: match.udp)
                let before = ListenerConfiguration.attributeIndex.describe(
                    configuration.listeners[listeners[index].configIndex])
                let after = ListenerConfiguration.attributeIndex.describe(new.listeners[match.configIndex])
                for (old, new) in zip(before, after) where old.value != new.value {
                    options.log(
                        "listener \(listeners[index].endpoint): \(new.key) \(old.value) → \(new.value) (\(source))")
                }
                listeners[index].configIndex = match.configIndex
                listeners[index].groupIndex = s.group
                listeners[index].nodes = s.nodes
                listeners[index].zone = new.zone(of: match.endpoint.ip, new.listeners[match.configIndex])
                listeners[index].idleNanoseconds = s.idle
                listeners[index].connectNanoseconds = s.connect
            } else {
                logListener(listeners[index], opened: false)
                retired += listeners[index].loopFDs
                listeners[index].loopFDs = []
            }
        }
        for (configIndex, endpoint, udp, fds) in opened {
            let s = settings(configIndex, udp: udp)
            var listener = Listener(
                loopFDs: fds, endpoint: endpoint, configIndex: configIndex, groupIndex: s.group, nodes: s.nodes,
                zone: new.zone(of: endpoint.ip, new.listeners[configIndex]),
                idleNanoseconds: s.idle, connectNanoseconds: s.connect)
            listener.isUDP = udp
            listeners.append(listener)
            logListener(listeners[listeners.count - 1], opened: true)
        }
        if new.admin != configuration.admin {
            options.log("the control API's address and token change only with a restart")
        }
        let admin = configuration.admin
        configuration = new
        configuration.admin = admin
        tickNanoseconds = Self.tickInterval(new, timeScale: options.timeScale)
        // Every loop takes the new listeners and stops waiting on the retired ones before they are closed.
        publish(wait: true)
        for fd in retired { closeDescriptor(fd) }
    }
}
