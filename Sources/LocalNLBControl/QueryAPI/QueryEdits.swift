import LocalNLBDataPlane
import LocalNLBModel

/// The Query API actions that create, change and delete listeners and target groups. Each is an edit
/// of the model as it runs now, checked by the file's validator and applied the way a reload is: all
/// of it, or (a port that cannot be opened) none of it.
extension ControlPlane {
    /// The model as it runs: the file's, with each group's live settings and registered targets.
    package var liveModel: Configuration {
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

    /// Applies `change` to the live model; a listener that cannot be opened is
    /// InvalidConfigurationRequest with the port and the fix, and nothing changes.
    package func edit(by action: String, _ change: (inout Configuration) throws(QueryError) -> Void) throws(QueryError)
    {
        var model = liveModel
        try change(&model)
        do {
            try apply(model, by: action)
        } catch {
            throw QueryError(code: "InvalidConfigurationRequest", message: "\(error)")
        }
    }

    /// Form parameters as the JSON the file has, so one validator reads both (AWS's names are the
    /// file's keys): `Matcher.HttpCode` nests, `Tags.member.N.Key` is a list.
    package func document(_ form: QueryForm, keys: [String]) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for key in keys {
            if let value = form[key] { object[key] = .string(value) }
        }
        if let code = form["Matcher.HttpCode"] { object["Matcher"] = .object(["HttpCode": .string(code)]) }
        let tags = form.structures("Tags", fields: ["Key", "Value"])
        if !tags.isEmpty { object["Tags"] = .array(tags.map { .object($0.mapValues { .string($0) }) }) }
        return .object(object)
    }

    /// Validator problems (AWS's ranges included) as one ValidationError.
    package func validated<T>(_ reader: ConfigReader, _ value: T?) throws(QueryError) -> T {
        let problems = reader.errors + reader.warnings
        guard problems.isEmpty, let value else {
            throw .validation(problems.isEmpty ? "invalid request" : problems.joined(separator: "; "))
        }
        return value
    }

    // MARK: Target groups

    package func createTargetGroup(_ form: QueryForm) throws(QueryError) -> String {
        let keys = [
            "Name", "Protocol", "Port", "VpcId", "TargetType", "IpAddressType", "HealthCheckEnabled",
            "HealthCheckProtocol", "HealthCheckPort", "HealthCheckPath", "HealthCheckIntervalSeconds",
            "HealthCheckTimeoutSeconds", "HealthyThresholdCount", "UnhealthyThresholdCount",
        ]
        guard form["Name"] != nil else { throw .validation("Name is required") }
        var reader = ConfigReader()
        // Read before `validated` copies the reader, so it sees every problem the reading recorded.
        let read = reader.targetGroup(document(form, keys: keys), "CreateTargetGroup")
        let created = try validated(reader, read)
        if let existing = groups.firstIndex(where: { $0.configuration.name == created.name && !$0.removed }) {
            // AWS: the same name with the same settings returns the group; other settings are refused.
            guard targetGroupMember(existing) == targetGroupMember(created, loadBalancers: loadBalancers(of: existing))
            else {
                throw QueryError(
                    code: "DuplicateTargetGroupName",
                    message: "A target group with the same name '\(created.name)' exists")
            }
            return XML.list("TargetGroups", [targetGroupMember(existing)])
        }
        try edit(by: "CreateTargetGroup") { model throws(QueryError) in model.targetGroups.append(created) }
        let index = groups.firstIndex { $0.configuration.name == created.name && !$0.removed }!
        return XML.list("TargetGroups", [targetGroupMember(index)])
    }

    package func deleteTargetGroup(_ form: QueryForm) throws(QueryError) -> String {
        let index = try targetGroup(form["TargetGroupArn"])
        let name = groups[index].configuration.name
        if isInUse(index) {
            throw QueryError(
                code: "ResourceInUse",
                message: "Target group '\(form["TargetGroupArn"]!)' is currently in use by a listener")
        }
        try edit(by: "DeleteTargetGroup") { model in model.targetGroups.removeAll { $0.name == name } }
        return ""
    }

    // MARK: Listeners

    /// The listener a form describes (CreateListener, or ModifyListener over `base`).
    package func listener(from form: QueryForm, base: ListenerConfiguration?, loadBalancer: String) throws(QueryError)
        -> ListenerConfiguration
    {
        var object: [String: JSONValue] = [:]
        if let port = form["Port"] ?? base.map({ String($0.port) }) { object["Port"] = .string(port) }
        if let value = form["Protocol"] { object["Protocol"] = .string(value) }
        let tags = form.structures("Tags", fields: ["Key", "Value"])
        if !tags.isEmpty { object["Tags"] = .array(tags.map { .object($0.mapValues { .string($0) }) }) }
        let actions = form.structures("DefaultActions", fields: ["Type", "TargetGroupArn", "Order"])
        if !actions.isEmpty {
            for action in actions {
                if let arn = action["TargetGroupArn"] { _ = try targetGroup(arn) }
            }
            object["DefaultActions"] = .array(actions.map { .object($0.mapValues { .string($0) }) })
        } else if let base {
            object["DefaultActions"] = .array([
                .object(["Type": .string("forward"), "TargetGroupName": .string(base.targetGroupName)])
            ])
        }
        var reader = ConfigReader()
        let action = base == nil ? "CreateListener" : "ModifyListener"
        let read = reader.listener(.object(object), action, loadBalancers: [loadBalancer])
        var listener = try validated(reader, read)
        if let base {
            listener.idleTimeoutSeconds = base.idleTimeoutSeconds
            listener.connectTimeoutSeconds = base.connectTimeoutSeconds
            if tags.isEmpty { listener.tags = base.tags }
        }
        return listener
    }

    package func listenerMember(_ index: Int) -> String {
        describeListenerMembers([index])[0]
    }

    /// A network load balancer's target group serves one load balancer: forwarding to it from another
    /// is TargetGroupAssociationLimit, as on AWS.
    package func checkAssociation(_ listener: ListenerConfiguration) throws(QueryError) {
        guard let group = groups.firstIndex(where: { $0.configuration.name == listener.targetGroupName && !$0.removed })
        else { return }
        // AWS's pairing of listener and target group protocols.
        let groupProtocol = groups[group].configuration.protocolName
        guard listener.protocolName.groupProtocols.contains(groupProtocol) else {
            throw QueryError(
                code: "IncompatibleProtocols",
                message: "A \(listener.protocolName.rawValue) listener forwards to a "
                    + listener.protocolName.groupProtocols.map(\.rawValue).joined(separator: " or ")
                    + " target group; '\(listener.targetGroupName)' is \(groupProtocol.rawValue)")
        }
        let others = loadBalancers(of: group).filter { $0 != listener.loadBalancerName }
        if let other = others.first {
            throw QueryError(
                code: "TargetGroupAssociationLimit",
                message: "Target group '\(names.targetGroup(listener.targetGroupName))' is already associated with "
                    + "load balancer '\(names.loadBalancer(other))'; a network load balancer's target group can "
                    + "serve only one load balancer")
        }
    }

    package func createListener(_ form: QueryForm) throws(QueryError) -> String {
        let lb = configuration.loadBalancers[try loadBalancer(form["LoadBalancerArn"])].name
        let created = try listener(from: form, base: nil, loadBalancer: lb)
        if let existing = configuration.listeners.firstIndex(where: {
            $0.loadBalancerName == lb && $0.port == created.port
        }) {
            // AWS's CreateListener is idempotent: the same settings return the same listener.
            guard configuration.listeners[existing].targetGroupName == created.targetGroupName,
                configuration.listeners[existing].protocolName == created.protocolName
            else {
                throw QueryError(
                    code: "DuplicateListener", message: "A listener already exists on port \(created.port)")
            }
            return XML.list("Listeners", [listenerMember(existing)])
        }
        try checkAssociation(created)
        try edit(by: "CreateListener") { model in model.listeners.append(created) }
        return XML.list("Listeners", [listenerMember(configuration.listeners.count - 1)])
    }

    package func modifyListener(_ form: QueryForm) throws(QueryError) -> String {
        let index = try listener(form["ListenerArn"])
        let old = configuration.listeners[index]
        let modified = try listener(from: form, base: old, loadBalancer: old.loadBalancerName)
        let sameBalancer = configuration.listeners.filter { $0.loadBalancerName == old.loadBalancerName }
        if modified.port != old.port, sameBalancer.contains(where: { $0.port == modified.port }) {
            throw QueryError(code: "DuplicateListener", message: "A listener already exists on port \(modified.port)")
        }
        try checkAssociation(modified)
        try edit(by: "ModifyListener") { model in
            if let position = model.listeners.firstIndex(where: {
                $0.loadBalancerName == old.loadBalancerName && $0.port == old.port
            }) {
                model.listeners[position] = modified
            }
        }
        let position = configuration.listeners.firstIndex {
            $0.loadBalancerName == old.loadBalancerName && $0.port == modified.port
        }!
        return XML.list("Listeners", [listenerMember(position)])
    }

    /// Closes the port on every node; the flows it carried are reset, as when AWS deletes a listener.
    package func deleteListener(_ form: QueryForm) throws(QueryError) -> String {
        let gone = configuration.listeners[try listener(form["ListenerArn"])]
        try removeListeners(by: "DeleteListener") {
            $0.loadBalancerName == gone.loadBalancerName && $0.port == gone.port
        }
        return ""
    }

    /// Removes the listeners that match; their flows are reset, as AWS resets a deleted listener's.
    package func removeListeners(by action: String, where matches: (ListenerConfiguration) -> Bool) throws(QueryError) {
        let before = Set(listeners.indices.filter { listeners[$0].isOpen })
        try edit(by: action) { model in model.listeners.removeAll(where: matches) }
        let closed = before.filter { !listeners[$0].isOpen }
        for loop in loops { _ = loop.perform { $0.resetFlows(ofListeners: closed) } }
    }
}
