import ProxyProtocol

/// The one change function: every writer's change applied to the model (this configuration, with each
/// target group's live settings and registered targets) and checked by AWS's rules, with the file's
/// validator. It does no I/O: it returns the new model and the effects the control plane carries out
/// (`Effect`), or AWS's error, and then nothing has changed.
extension Configuration {
    package func applying(_ change: Change) throws(APIError) -> Applied {
        var model = self
        var effects: [Effect] = []
        switch change {
        case .replace(let new):
            model = new
            // Zonal shifts are the running balancer's, not the file's: a reload keeps them.
            model.zonalShifts = zonalShifts
        case .createLoadBalancer(let request):
            if try model.createLoadBalancer(request) != nil {
                // AWS's CreateLoadBalancer is idempotent: the same name and subnets return the load balancer.
                return Applied(model: self, effects: [])
            }
            let created = model.loadBalancers[model.loadBalancers.count - 1]
            effects += [
                .loadBalancerCreated(created.name),
                .log(
                    "load balancer \(created.name) created on "
                        + created.nodes.flatMap(\.addresses).map(\.description).joined(separator: ", ")),
            ]
        case .deleteLoadBalancer(let name):
            guard let index = model.loadBalancerIndex(name) else { return Applied(model: self, effects: []) }
            if model.loadBalancers[index].attributes.deletionProtection {
                throw APIError(
                    code: "OperationNotPermitted",
                    message: "Load balancer '\(names.loadBalancer(name))' cannot be deleted because deletion "
                        + "protection is enabled")
            }
            model.listeners.removeAll { $0.loadBalancerName == name }
            model.loadBalancers.remove(at: index)
            effects += [
                .resetFlowsOfClosedListeners, .loadBalancerDeleted(name), .log("load balancer \(name) deleted"),
            ]
        case .modifyLoadBalancerAttributes(let name, let given):
            guard let index = model.loadBalancerIndex(name) else { throw notFound(loadBalancer: name) }
            var reader = newReader()
            var attributes = model.loadBalancers[index].attributes
            reader.attributes(
                given.value, given.path, index: LoadBalancerAttributes.index(model.loadBalancers[index].type),
                into: &attributes,
                kind: model.loadBalancers[index].type == .application
                    ? "Application Load Balancer" : "Network Load Balancer")
            model.loadBalancers[index].attributes = try Self.validated(reader, attributes)
        case .createTrustStore(let given):
            var reader = newReader()
            let read = reader.trustStore(given.value, given.path)
            let store = try Self.validated(reader, read)
            guard !model.trustStores.contains(where: { $0.name == store.name }) else {
                throw APIError(
                    code: "DuplicateTrustStoreName", message: "A trust store with the name '\(store.name)' exists")
            }
            model.trustStores.append(store)
            return Applied(
                model: model, effects: [.log("trust store \(store.name) created from \(store.key)"), .persist])
        case .addTrustStoreRevocations(let name, let given):
            guard let index = model.trustStores.firstIndex(where: { $0.name == name }) else {
                throw APIError(code: "TrustStoreNotFound", message: "Trust store '\(names.trustStore(name))' not found")
            }
            guard !given.isEmpty else { throw .validation("RevocationContents is required") }
            var next = (model.trustStores[index].revocations.map(\.id).max() ?? 0) + 1
            for (bucket, key) in given {
                guard key.hasPrefix("/") else {
                    throw APIError(
                        code: "InvalidRevocationContent",
                        message:
                            "S3Key \(key): localnlb has no S3 and reads the key as a path on this machine; give an "
                            + "absolute path to a PEM CRL")
                }
                model.trustStores[index].revocations.append(.init(id: next, bucket: bucket, key: key))
                next += 1
            }
            return Applied(model: model, effects: [.publish, .persist])
        case .removeTrustStoreRevocations(let name, let ids):
            guard let index = model.trustStores.firstIndex(where: { $0.name == name }) else {
                throw APIError(code: "TrustStoreNotFound", message: "Trust store '\(names.trustStore(name))' not found")
            }
            let known = Set(model.trustStores[index].revocations.map(\.id))
            if let missing = ids.first(where: { !known.contains($0) }) {
                throw APIError(code: "RevocationIdNotFound", message: "Revocation ID \(missing) not found")
            }
            model.trustStores[index].revocations.removeAll { ids.contains($0.id) }
            return Applied(model: model, effects: [.publish, .persist])
        case .deleteTrustStore(let name):
            if let listener = model.listeners.first(where: { $0.mutualAuthentication?.trustStoreName == name }) {
                throw APIError(
                    code: "TrustStoreInUse",
                    message:
                        "Trust store '\(names.trustStore(name))' is in use by the listener on port \(listener.port)")
            }
            model.trustStores.removeAll { $0.name == name }
            return Applied(model: model, effects: [.persist])
        case .putInstance(let given):
            var reader = newReader()
            let read = reader.instance(given.value, given.path)
            let instance = try Self.validated(reader, read)
            if let index = model.instances.firstIndex(where: { $0.instanceID == instance.instanceID }) {
                if let group = model.targetGroups.first(where: { group in
                    group.targets.contains { $0.id == instance.instanceID }
                }), model.instances[index] != instance {
                    throw APIError(
                        code: "ResourceInUse",
                        message: "Instance \(instance.instanceID) is registered with target group \(group.name): "
                            + "deregister it before its address changes")
                }
                model.instances[index] = instance
            } else {
                model.instances.append(instance)
            }
            return Applied(model: model, effects: [.persist])
        case .deleteInstance(let id):
            if let group = model.targetGroups.first(where: { group in group.targets.contains { $0.id == id } }) {
                throw APIError(
                    code: "ResourceInUse",
                    message: "Instance \(id) is registered with target group \(group.name): deregister it first")
            }
            model.instances.removeAll { $0.instanceID == id }
            return Applied(model: model, effects: [.persist])
        case .setSecurityGroups(let name, let groups, let enforce):
            try model.setSecurityGroups(name, groups, enforcePrivateLink: enforce)
            return Applied(model: model, effects: [.persist])
        case .setIpAddressType(let name, let type):
            try model.setIpAddressType(name, type)
            return Applied(model: model, effects: [.persist])
        case .setSubnets(let name, let subnets, let mappings, let type):
            effects += try model.setSubnets(name, subnets: subnets, mappings: mappings, ipAddressType: type)
        case .modifyCapacityReservation(let name, let units, let reset, let wallClock, let now, let timeScale):
            let line = try model.modifyCapacityReservation(
                name, units: units, reset: reset, wallClock: wallClock, now: now, timeScale: timeScale)
            return Applied(model: model, effects: [.log(line), .persist])
        case .createTargetGroup(let given, let region):
            var reader = newReader()
            // Read before `validated` takes the reader, so it sees every problem the reading recorded.
            let read = reader.targetGroup(given.value, given.path)
            var created = try Self.validated(reader, read)
            created.name = names.qualified(created.name, region: region)
            if let existing = model.targetGroups.first(where: { $0.name == created.name }) {
                // AWS: the same name with the same settings returns the group; other settings are refused.
                guard existing.sameCreateSettings(as: created) else {
                    throw APIError(
                        code: "DuplicateTargetGroupName",
                        message: "A target group with the same name '\(created.name)' exists")
                }
                return Applied(model: self, effects: [])
            }
            if let problem = model.zoneProblem(created.targets) { throw .validation(problem) }
            model.targetGroups.append(created)
        case .deleteTargetGroup(let name):
            guard model.targetGroups.contains(where: { $0.name == name }) else {
                return Applied(model: self, effects: [])
            }
            if model.listeners.contains(where: {
                $0.targetGroupName == name || ($0.defaultAction?.targetGroupNames.contains(name) ?? false)
            }) {
                throw APIError(
                    code: "ResourceInUse",
                    message: "Target group '\(names.targetGroup(name))' is currently in use by a listener")
            }
            if model.listeners.contains(where: { $0.rules.contains { $0.action.targetGroupNames.contains(name) } }) {
                throw APIError(
                    code: "ResourceInUse",
                    message: "Target group '\(names.targetGroup(name))' is currently in use by a listener or a rule")
            }
            model.targetGroups.removeAll { $0.name == name }
        case .modifyTargetGroup(let name, let object):
            let index = try model.targetGroupIndex(name)
            var reader = newReader()
            var updated = model.targetGroups[index]
            updated.healthCheck = reader.healthCheck(object, "ModifyTargetGroup", base: updated.healthCheck)
            model.targetGroups[index] = try Self.validated(reader, updated)
        case .modifyTargetGroupAttributes(let name, let given):
            let index = try model.targetGroupIndex(name)
            try model.targetGroups[index].checkStickinessType(given.value)
            var reader = newReader()
            var updated = model.targetGroups[index]
            reader.attributes(given.value, given.path, into: &updated)
            model.targetGroups[index] = try Self.validated(reader, updated)
        case .registerTargets(let name, let given), .deregisterTargets(let name, let given):
            let index = try model.targetGroupIndex(name)
            guard !given.isEmpty else { throw .validation("Targets: give at least one target (Id, and Port)") }
            var reader = newReader()
            reader.instances = model.instances
            let group = model.targetGroups[index]
            var given = given
            var byID = Set<String>()
            if group.targetType == .instance {
                let unknown = given.compactMap { item -> String? in
                    guard case .object(let fields) = item.value, case .string(let id)? = fields["Id"],
                        InstanceConfiguration.isInstanceID(id), fields["PrivateIpAddress"] == nil,
                        !model.instances.contains(where: { $0.instanceID == id })
                    else { return nil }
                    return id
                }
                if case .registerTargets = change, !unknown.isEmpty {
                    throw APIError(
                        code: "InvalidTarget",
                        message: "The following targets are not valid: \(unknown.joined(separator: ", ")): "
                            + "localnlb knows an instance by the address declared for it (Instances in the file, "
                            + "PUT /instances/{id}, or a template's AWS::EC2::Instance PrivateIpAddress)")
                }
                // Deregistered by id and port: an instance registered with its own PrivateIpAddress, or
                // one whose declaration is gone, is still found.
                for item in given {
                    guard case .object(let fields) = item.value, case .string(let id)? = fields["Id"],
                        unknown.contains(id)
                    else { continue }
                    let port = fields["Port"]?.attributeString.flatMap { UInt16($0) } ?? group.port
                    byID.insert("\(id):\(port)")
                }
                given.removeAll { item in
                    guard case .object(let fields) = item.value, case .string(let id)? = fields["Id"] else {
                        return false
                    }
                    return unknown.contains(id)
                }
            }
            let targets = given.compactMap { reader.target($0.value, $0.path, group: group) }
            guard reader.errors.isEmpty else { throw .validation(reader.errors.joined(separator: "; ")) }
            if case .registerTargets = change {
                if let problem = model.zoneProblem(targets) { throw .validation(problem) }
                // AWS: registering a registered target again changes nothing.
                var known = Set(group.targets.map(\.endpoint))
                for target in targets where known.insert(target.endpoint).inserted {
                    model.targetGroups[index].targets.append(target)
                }
            } else {
                // AWS: "If the specified target does not exist, the action returns successfully."
                let gone = Set(targets.map(\.endpoint))
                func leaving(_ target: TargetConfiguration) -> Bool {
                    gone.contains(target.endpoint) || byID.contains("\(target.id):\(target.port)")
                }
                guard group.targets.contains(where: leaving) else { return Applied(model: self, effects: []) }
                model.targetGroups[index].targets.removeAll(where: leaving)
            }
        case .createListener(let balancer, let given):
            guard model.loadBalancerIndex(balancer) != nil else { throw notFound(loadBalancer: balancer) }
            var reader = newReader()
            let read = reader.listener(given.value, given.path, loadBalancers: [balancer])
            let created = try Self.validated(reader, read)
            if let existing = model.listeners.first(where: {
                $0.loadBalancerName == balancer && $0.port == created.port
            }) {
                // AWS's CreateListener is idempotent: the same settings return the same listener.
                guard existing.targetGroupName == created.targetGroupName,
                    existing.protocolName == created.protocolName
                else {
                    throw APIError(
                        code: "DuplicateListener", message: "A listener already exists on port \(created.port)")
                }
                return Applied(model: self, effects: [])
            }
            try model.checkAssociation(created)
            model.listeners.append(created)
        case .modifyListener(let balancer, let port, let given):
            let index = try model.listenerIndex(balancer, port)
            let old = model.listeners[index]
            var reader = newReader()
            let read = reader.listener(given.value, given.path, loadBalancers: [balancer])
            var modified = try Self.validated(reader, read)
            modified.idleTimeoutSeconds = old.idleTimeoutSeconds
            modified.connectTimeoutSeconds = old.connectTimeoutSeconds
            if modified.tags.isEmpty { modified.tags = old.tags }
            if modified.port != old.port,
                model.listeners.contains(where: { $0.loadBalancerName == balancer && $0.port == modified.port })
            {
                throw APIError(code: "DuplicateListener", message: "A listener already exists on port \(modified.port)")
            }
            try model.checkAssociation(modified)
            modified.rules = old.rules  // ModifyListener leaves the rules as they are
            model.listeners[index] = modified
        case .modifyListenerAttributes(let balancer, let port, let given):
            let index = try model.listenerIndex(balancer, port)
            var reader = newReader()
            var modified = model.listeners[index]
            reader.attributes(
                given.value, given.path, index: ListenerConfiguration.index(modified.protocolName), into: &modified,
                kind: "\(modified.protocolName.rawValue) listener")
            reader.checkTLSAttributes(given.value, given.path, modified)
            model.listeners[index] = try Self.validated(reader, modified)
        case .addListenerCertificates(let balancer, let port, let arns):
            let index = try model.listenerIndex(balancer, port)
            try model.checkTLSListener(index, arns: arns)
            for arn in arns where !model.listeners[index].certificateArns.contains(arn) {
                model.listeners[index].certificateArns.append(arn)
            }
            let total = model.listeners.filter { $0.loadBalancerName == balancer }.map(\.certificateArns.count).reduce(
                0, +)
            guard total <= 25 else {
                throw APIError(
                    code: "TooManyCertificates",
                    message: "A Network Load Balancer has at most 25 certificates (\(total) asked for)")
            }
            return Applied(model: model, effects: [.publish, .persist])
        case .removeListenerCertificates(let balancer, let port, let arns):
            let index = try model.listenerIndex(balancer, port)
            try model.checkTLSListener(index, arns: arns)
            if let first = model.listeners[index].certificateArns.first, arns.contains(first) {
                throw APIError(
                    code: "OperationNotPermitted",
                    message: "The default certificate \(first) cannot be removed: ModifyListener sets another default")
            }
            model.listeners[index].certificateArns.removeAll { arns.contains($0) }
            return Applied(model: model, effects: [.publish, .persist])
        case .createRule(let balancer, let port, let given):
            try model.createRule(balancer, port, given)
        case .modifyRule(let balancer, let port, let id, let conditions, let actions):
            try model.modifyRule(balancer, port, id, conditions: conditions, actions: actions)
        case .deleteRule(let balancer, let port, let id):
            let index = try model.listenerIndex(balancer, port)
            guard model.listeners[index].rules.contains(where: { $0.id == id }) else { throw Self.ruleNotFound }
            model.listeners[index].rules.removeAll { $0.id == id }
        case .setRulePriorities(let changes):
            try model.setRulePriorities(changes)
        case .deleteListener(let balancer, let port):
            let index = try model.listenerIndex(balancer, port)
            model.listeners.remove(at: index)
            effects.append(.resetFlowsOfClosedListeners)
        case .addTags(let resources, let given):
            try model.addTags(given, to: resources)
            return Applied(model: model, effects: [.persist])
        case .startZonalShift(let request):
            let line = try model.startZonalShift(request)
            return Applied(model: model, effects: [.log(line), .publish])
        case .updateZonalShift(let id, let comment, let expiresIn, let wallClock, let now, let timeScale):
            let index = try model.activeZonalShift(id)
            if let comment { model.zonalShifts[index].comment = comment }
            if let expiresIn {
                guard let seconds = Self.expiresIn(expiresIn) else { throw Self.invalidExpiresIn(expiresIn) }
                model.zonalShifts[index].expiryTime = wallClock + Double(seconds)
                model.zonalShifts[index].deadline = now + UInt64(Double(seconds) * timeScale * 1e9)
            }
            return Applied(model: model, effects: [.publish])
        case .cancelZonalShift(let id):
            model.zonalShifts[try model.activeZonalShift(id)].status = "CANCELED"
            return Applied(model: model, effects: [.log("zonal shift \(id): cancelled"), .publish])
        case .expireZonalShifts(let now):
            var lines: [String] = []
            for index in model.zonalShifts.indices
            where model.zonalShifts[index].status == "ACTIVE" && now >= model.zonalShifts[index].deadline {
                model.zonalShifts[index].status = "EXPIRED"
                lines.append("zonal shift \(model.zonalShifts[index].id): expired")
            }
            return Applied(model: model, effects: lines.isEmpty ? [] : lines.map(Effect.log) + [.publish])
        case .removeTags(let resources, let keys):
            for resource in resources {
                let kept = try model.tags(of: resource).filter { !keys.contains($0.key) }
                try model.setTags(kept, of: resource)
            }
            return Applied(model: model, effects: [.persist])
        }
        if let conflict = model.endpointConflict {
            throw APIError(code: "InvalidConfigurationRequest", message: "\(conflict.path): \(conflict.message)")
        }
        if case .replace = change {} else if let exceeded = model.quotaExceeded(since: self) { throw exceeded }
        effects += model.events(since: self, by: change.action).map(Effect.log)
        effects.append(.publish)
        if case .replace = change {} else { effects.append(.persist) }
        return Applied(model: model, effects: effects)
    }

    /// Validator problems (AWS's ranges included: what the file only warns about, a request is
    /// refused for) as one ValidationError naming each parameter.
    static func validated<T>(_ reader: ConfigReader, _ value: T?) throws(APIError) -> T {
        let problems = reader.errors + reader.warnings
        guard problems.isEmpty, let value else {
            throw .validation(problems.isEmpty ? "invalid request" : problems.joined(separator: "; "))
        }
        return value
    }

    /// AddListenerCertificates and RemoveListenerCertificates: a TLS listener, and certificate ARNs.
    func checkTLSListener(_ index: Int, arns: [String]) throws(APIError) {
        guard listeners[index].protocolName.terminatesTLS else {
            throw APIError(
                code: "InvalidConfigurationRequest",
                message:
                    "Listener \(names.listener(loadBalancer: listeners[index].loadBalancerName, port: listeners[index].port)) "
                    + "is not a TLS or HTTPS listener: certificates are for TLS and HTTPS listeners")
        }
        guard !arns.isEmpty else { throw .validation("Certificates is required") }
        if let bad = arns.first(where: { !($0.hasPrefix("arn:aws:acm:") || $0.hasPrefix("arn:aws:iam::")) }) {
            throw APIError(code: "CertificateNotFound", message: "Certificate '\(bad)' not found")
        }
    }

    /// A reader for a request's values: ARNs read by this model's region and account.
    func newReader() -> ConfigReader {
        var reader = ConfigReader()
        reader.resourceNames = names
        reader.instances = instances
        reader.trustStores = trustStores
        return reader
    }

    package var names: ResourceNames {
        var names = ResourceNames(region: admin?.region ?? "us-east-1", accountID: admin?.accountID ?? "000000000000")
        names.applications = Set(loadBalancers.lazy.filter { $0.type == .application }.map(\.name))
        return names
    }

    func notFound(loadBalancer name: String) -> APIError {
        APIError(code: "LoadBalancerNotFound", message: "Load balancer '\(names.loadBalancer(name))' not found")
    }

    func targetGroupIndex(_ name: String) throws(APIError) -> Int {
        guard let index = targetGroups.firstIndex(where: { $0.name == name }) else {
            throw APIError(code: "TargetGroupNotFound", message: "Target groups '\(names.targetGroup(name))' not found")
        }
        return index
    }

    func listenerIndex(_ balancer: String, _ port: UInt16) throws(APIError) -> Int {
        guard let index = listeners.firstIndex(where: { $0.loadBalancerName == balancer && $0.port == port }) else {
            throw APIError(
                code: "ListenerNotFound",
                message: "Listener '\(names.listener(loadBalancer: balancer, port: port))' not found")
        }
        return index
    }

    /// The load balancers whose listeners forward to the group (a network load balancer's group has
    /// at most one).
    package func loadBalancers(forwardingTo group: String) -> [String] {
        var result: [String] = []
        for listener in listeners
        where
            (listener.targetGroupName == group
            || listener.rules.contains { $0.action.targetGroupNames.contains(group) }
            || (listener.defaultAction?.targetGroupNames.contains(group) ?? false))
            && !result.contains(listener.loadBalancerName)
        {
            result.append(listener.loadBalancerName)
        }
        return result
    }

    /// AWS's pairing of listener and target group protocols, and a network load balancer's target group
    /// serving one load balancer only (TargetGroupAssociationLimit).
    func checkAssociation(_ listener: ListenerConfiguration) throws(APIError) {
        if let balancer = loadBalancers.first(where: { $0.name == listener.loadBalancerName }),
            listener.protocolName.isHTTP != (balancer.type == .application)
        {
            let allowed = balancer.type == .application ? "HTTPS, HTTP" : "TCP_UDP, UDP, TLS, TCP"
            throw .validation("Listener protocol '\(listener.protocolName.rawValue)' must be one of '\(allowed)'")
        }
        if let action = listener.defaultAction, !listener.protocolName.isHTTP {
            // A network load balancer's weighted forward: each group suits the listener, serves this
            // load balancer only, and exists (docs/target-groups.md §9).
            for name in action.targetGroupNames.dropFirst() {
                var single = listener
                single.targetGroupName = name
                single.defaultAction = nil
                try checkAssociation(single)
            }
        } else if let action = listener.defaultAction {
            // A redirect, a fixed response, or a weighted forward: each group of it must suit the listener.
            try checkRuleAction(action)
            if listener.targetGroupName.isEmpty { return }
        }
        guard let group = targetGroups.first(where: { $0.name == listener.targetGroupName }) else {
            throw APIError(
                code: "TargetGroupNotFound",
                message: "Target groups '\(names.targetGroup(listener.targetGroupName))' not found")
        }
        if let balancer = loadBalancers.first(where: { $0.name == listener.loadBalancerName }),
            listener.protocolName.isHTTP != (balancer.type == .application)
        {
            let allowed = balancer.type == .application ? "HTTPS, HTTP" : "TCP_UDP, UDP, TLS, TCP"
            throw .validation("Listener protocol '\(listener.protocolName.rawValue)' must be one of '\(allowed)'")
        }
        guard listener.protocolName.groupProtocols.contains(group.protocolName) else {
            throw APIError(
                code: "IncompatibleProtocols",
                message: "A \(listener.protocolName.rawValue) listener forwards to a "
                    + listener.protocolName.groupProtocols.map(\.rawValue).joined(separator: " or ")
                    + " target group; '\(listener.targetGroupName)' is \(group.protocolName.rawValue)")
        }
        let others = loadBalancers(forwardingTo: group.name).filter { $0 != listener.loadBalancerName }
        if let other = others.first {
            throw APIError(
                code: "TargetGroupAssociationLimit",
                message: "Target group '\(names.targetGroup(listener.targetGroupName))' is already associated with "
                    + "load balancer '\(names.loadBalancer(other))'; a network load balancer's target group can "
                    + "serve only one load balancer")
        }
    }

    /// A target registered through an API needs a zone when `Subnets` are given: a subnet holding its
    /// address, or an `AvailabilityZone` (`all` for an address outside them), as AWS requires.
    func zoneProblem(_ targets: [TargetConfiguration]) -> String? {
        guard !subnets.isEmpty else { return nil }
        let zones = Set(subnets.map(\.availabilityZone))
        for target in targets {
            if let zone = target.availabilityZone, zone != "all", !zones.contains(zone) {
                return "\(target.id): AvailabilityZone \(zone) is the zone of no subnet "
                    + "(\(zones.sorted().joined(separator: ", ")), or all)"
            }
            if zone(of: target) == nil {
                return "\(target.id) is in none of the subnets' CIDR blocks: give AvailabilityZone all, as for an "
                    + "address outside the VPC"
            }
        }
        return nil
    }

    /// The event log's lines for what changed between `old` and this model: target groups added and
    /// removed, and each attribute in force that moved, of target groups and listeners.
    package func events(since old: Configuration, by source: String) -> [String] {
        var lines: [String] = []
        let before = Dictionary(old.targetGroups.map { ($0.name, $0) }) { first, _ in first }
        let after = Set(targetGroups.map(\.name))
        for group in targetGroups {
            guard let previous = before[group.name] else {
                lines.append("target group \(group.name) added (\(source))")
                continue
            }
            let values = Dictionary(previous.effectiveAttributes.map { ($0.key, $0.value) }) { first, _ in first }
            for (key, value) in group.effectiveAttributes where values[key] != value {
                lines.append("target group \(group.name): \(key) \(values[key] ?? "-") → \(value) (\(source))")
            }
        }
        for group in old.targetGroups where !after.contains(group.name) {
            lines.append("target group \(group.name) removed (\(source))")
        }
        for listener in listeners {
            guard
                let previous = old.listeners.first(where: {
                    $0.loadBalancerName == listener.loadBalancerName && $0.port == listener.port
                })
            else { continue }
            let was = ListenerConfiguration.attributeIndex.describe(previous)
            let now = ListenerConfiguration.attributeIndex.describe(listener)
            for (old, new) in zip(was, now) where old.value != new.value {
                lines.append(
                    "listener \(listener.loadBalancerName):\(listener.port): \(new.key) \(old.value) → \(new.value) "
                        + "(\(source))")
            }
        }
        return lines
    }
}

extension TargetGroupConfiguration {
    /// An Application Load Balancer's stickiness type on a Network Load Balancer's group: AWS answers
    /// InvalidConfigurationRequest, naming the type and the group's protocol (docs/api.md §11).
    func checkStickinessType(_ attributes: JSONValue) throws(APIError) {
        guard case .array(let items) = attributes else { return }
        for case .object(let item) in items {
            guard case .string("stickiness.type")? = item["Key"], case .string(let type)? = item["Value"],
                ["lb_cookie", "app_cookie"].contains(type)
            else { continue }
            throw APIError(
                code: "InvalidConfigurationRequest",
                message: "Stickiness type '\(type)' is not supported for target groups with the "
                    + "\(protocolName.rawValue) protocol")
        }
    }

    /// The settings CreateTargetGroup gives: AWS returns the group again when a second call gives the
    /// same ones, and refuses other ones under the same name.
    func sameCreateSettings(as other: TargetGroupConfiguration) -> Bool {
        let (a, b) = (healthCheck, other.healthCheck)
        return protocolName == other.protocolName && port == other.port && targetType == other.targetType
            && a.protocolName == b.protocolName && a.port == b.port && a.enabled == b.enabled
            && a.intervalSeconds == b.intervalSeconds && a.timeoutSeconds == b.timeoutSeconds
            && a.healthyThreshold == b.healthyThreshold && a.unhealthyThreshold == b.unhealthyThreshold
            && (!a.protocolName.isHTTP || (a.path == b.path && a.matcher == b.matcher))
    }
}
