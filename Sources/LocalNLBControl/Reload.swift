import CLocalNLB
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

extension ControlPlane {
    /// SIGHUP: re-reads the configuration file. Targets added or removed are registered or deregistered
    /// (with draining), attributes change for new flows, listeners come and go without touching other
    /// flows. A file with errors, or a listener that cannot be opened, changes nothing.
    func reloadConfiguration() {
        guard let path = options.configPath else {
            return options.log("SIGHUP: nothing to reload: serve was started without --config")
        }
        guard !draining else { return options.log("SIGHUP: ignored while shutting down") }
        do {
            let loaded = try ConfigLoader.load(path: path, strict: options.strict)
            for warning in loaded.warnings { options.log("SIGHUP: warning: \(warning)") }
            try commit(.replace(loaded.configuration))
            options.log("SIGHUP: \(path) reloaded")
        } catch {
            options.log("SIGHUP: \(path) rejected, the running configuration stays:\n\(error)")
        }
    }

    /// The model as it runs: the file's, with each group's live settings and registered targets.
    var liveModel: Configuration {
        var model = configuration
        model.targetGroups = groups.filter { !$0.removed }.map { group in
            var settings = group.configuration
            settings.targets = group.targets.filter(\.isRegistered).map {
                TargetConfiguration(
                    id: $0.id, address: $0.endpoint.ip, port: $0.endpoint.port, availabilityZone: $0.availabilityZone)
            }
            return settings
        }
        return model
    }

    /// The one way a change reaches the running balancer, from every writer (the file on SIGHUP, the
    /// JSON API, the Query API): the change function makes the new model, or AWS's error and nothing
    /// changes; then its effects are carried out here, once each.
    @discardableResult
    package func commit(_ change: Change) throws(APIError) -> Applied {
        let applied = try liveModel.applying(change)
        try carryOut(applied)
        return applied
    }

    /// Carries out a change's effects in their order: the sockets and target groups follow the model
    /// (all of it, or, when a listener cannot be opened, none of it: InvalidConfigurationRequest with
    /// the port and the fix), the events are logged, one snapshot is published and waited for, the
    /// flows of deleted listeners are reset, and the model is persisted once.
    func carryOut(_ applied: Applied) throws(APIError) {
        guard !applied.effects.isEmpty else { return }
        let openBefore = Set(listeners.indices.filter { listeners[$0].isOpen })
        let retired: [Int32]
        do {
            retired = try follow(applied.model)
        } catch {
            throw APIError(code: "InvalidConfigurationRequest", message: "\(error)")
        }
        for effect in applied.effects {
            switch effect {
            case .log(let line): options.log(line)
            case .loadBalancerCreated(let name):
                loadBalancerCreatedTimes[name] = rfc3339Now()
                // AWS takes minutes to provision; here a moment, so waiters see the state change.
                loadBalancerActiveAt[name] =
                    now + Configuration.emulatedDelay(awsSeconds: 180, timeScale: options.timeScale)
            case .loadBalancerDeleted(let name):
                loadBalancerCreatedTimes[name] = nil
                loadBalancerActiveAt[name] = nil
            case .publish, .resetFlowsOfClosedListeners, .persist: break
            }
        }
        // Every loop takes the new listeners and stops waiting on the retired ones before they are closed.
        if applied.effects.contains(.publish) { publish(wait: true) }
        for fd in retired { closeDescriptor(fd) }
        if applied.effects.contains(.resetFlowsOfClosedListeners) {
            let closed = openBefore.filter { !listeners[$0].isOpen }
            for loop in loops { _ = loop.perform { $0.resetFlows(ofListeners: closed) } }
        }
        if applied.effects.contains(.persist) { persistIfAsked() }
    }

    /// Moves the running balancer's sockets and target groups to the model `new`: all of it, or (if a
    /// listener cannot be opened) none of it. Returns the retired listener sockets, to be closed once
    /// the loops have a snapshot without them.
    package func follow(_ new: Configuration) throws -> [Int32] {
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

        // The TLS listeners' certificates and policies first: one that cannot serve changes nothing.
        var contexts: [Int: TLSContext] = [:]
        var backends: [Int: TLSClientContext] = [:]
        for (configIndex, listener) in new.listeners.enumerated() where listener.protocolName.terminatesTLS {
            contexts[configIndex] = try tlsContext(listener, in: new)
            backends[configIndex] = try backendTLSContext(listener, in: new)
        }
        // Open the new listener sockets first: if one fails, nothing has changed yet.
        if let conflict = new.endpointConflict {
            throw ListenerError(description: "\(conflict.path): \(conflict.message)")
        }
        let wanted = new.listenerEndpoints
        var opened: [(Int, IPEndpoint, Bool, [Int32])] = []
        for (configIndex, endpoint, udp) in wanted
        where !listeners.contains(where: { $0.isOpen && $0.requested == endpoint && $0.isUDP == udp }) {
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
            groups[index].configuration = group
        }
        for index in groups.indices where groupIndex[groups[index].configuration.name] == nil {
            _ = groups[index].lifecycle.deregister(
                groups[index].targets.filter(\.isRegistered).map(\.endpoint), now: now)
            groups[index].removed = true
        }

        // Listeners: keep (with new settings), close the gone (their flows go on), add the new.
        func settings(_ configIndex: Int, udp: Bool) -> (
            group: Int, nodes: [LoadBalancerNode], idle: UInt64, connect: UInt64
        ) {
            let listener = new.listeners[configIndex]
            return (
                // A listener whose default action is a redirect or a fixed response has no group (-1).
                groupIndex[listener.targetGroupName] ?? -1, new.nodes(of: listener),
                Self.idleNanoseconds(listener, udp: udp, timeScale: options.timeScale),
                UInt64(listener.connectTimeoutSeconds * 1e9)
            )
        }
        var retired: [Int32] = []
        for index in listeners.indices where listeners[index].isOpen {
            if let match = wanted.first(where: {
                $0.endpoint == listeners[index].requested && $0.udp == listeners[index].isUDP
            }) {
                let s = settings(match.configIndex, udp: match.udp)
                listeners[index].configIndex = match.configIndex
                listeners[index].groupIndex = s.group
                listeners[index].nodes = s.nodes
                listeners[index].zone = new.zone(of: match.endpoint.ip, new.listeners[match.configIndex])
                listeners[index].idleNanoseconds = s.idle
                listeners[index].connectNanoseconds = s.connect
                listeners[index].tls = contexts[match.configIndex]
                listeners[index].backendTLS = backends[match.configIndex]
                listeners[index].http = httpSettings(new.listeners[match.configIndex], in: new) { groupIndex[$0] }
                applyWeights(&listeners[index], new.listeners[match.configIndex]) { groupIndex[$0] }
            } else {
                logListener(listeners[index], opened: false)
                retired += listeners[index].loopFDs
                listeners[index].loopFDs = []
            }
        }
        for (configIndex, endpoint, udp, fds) in opened {
            let s = settings(configIndex, udp: udp)
            let bound = endpoint.port == 0 ? (Socket.localEndpoint(fds[0]) ?? endpoint) : endpoint
            var listener = Listener(
                loopFDs: fds, endpoint: bound, requested: endpoint, configIndex: configIndex, groupIndex: s.group,
                nodes: s.nodes,
                zone: new.zone(of: endpoint.ip, new.listeners[configIndex]),
                idleNanoseconds: s.idle, connectNanoseconds: s.connect)
            listener.isUDP = udp
            listener.loadBalancerName = new.listeners[configIndex].loadBalancerName
            listener.tls = contexts[configIndex]
            listener.backendTLS = backends[configIndex]
            listener.http = httpSettings(new.listeners[configIndex], in: new) { groupIndex[$0] }
            applyWeights(&listener, new.listeners[configIndex]) { groupIndex[$0] }
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
        return retired
    }
}
