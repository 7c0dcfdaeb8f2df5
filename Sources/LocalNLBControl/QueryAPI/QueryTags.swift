import LocalNLBDataPlane
import LocalNLBModel

/// Tags (AddTags, RemoveTags, DescribeTags) and the Modify actions of settings that are not target
/// lists: ModifyTargetGroup (health checks), ModifyLoadBalancerAttributes, ModifyListenerAttributes.
extension ControlPlane {
    package enum Taggable {
        case loadBalancer(Int)
        case targetGroup(Int)
        case listener(Int)
    }

    package func taggable(_ arn: String) throws(QueryError) -> Taggable {
        if arn.contains(":loadbalancer/") {
            return .loadBalancer(try loadBalancer(arn))
        }
        if arn.contains(":targetgroup/") { return .targetGroup(try targetGroup(arn)) }
        if arn.contains(":listener/") { return .listener(try listener(arn)) }
        throw .validation("'\(arn)' is not the ARN of a load balancer, target group or listener")
    }

    package func tags(of resource: Taggable) -> [(key: String, value: String)] {
        switch resource {
        case .loadBalancer(let index): return configuration.loadBalancers[index].tags
        case .targetGroup(let index): return groups[index].configuration.tags
        case .listener(let index): return configuration.listeners[index].tags
        }
    }

    /// Tags change no flow: they are set in place, with no snapshot to publish.
    package func setTags(_ tags: [(key: String, value: String)], of resource: Taggable) {
        switch resource {
        case .loadBalancer(let index): configuration.loadBalancers[index].tags = tags
        case .targetGroup(let index): groups[index].lifecycle.configuration.tags = tags
        case .listener(let index): configuration.listeners[index].tags = tags
        }
    }

    package func addTags(_ form: QueryForm) throws(QueryError) -> String {
        let resources = try form.list("ResourceArns").map { arn throws(QueryError) in try taggable(arn) }
        guard !resources.isEmpty else { throw .validation("ResourceArns is required") }
        let given = form.structures("Tags", fields: ["Key", "Value"])
        guard !given.isEmpty else { throw .validation("Tags is required") }
        var keys = Set<String>()
        for tag in given {
            guard let key = tag["Key"], (1...128).contains(key.count), (tag["Value"] ?? "").count <= 256 else {
                throw .validation("a tag key has 1-128 characters and a value at most 256")
            }
            guard keys.insert(key).inserted else {
                throw QueryError(code: "DuplicateTagKeys", message: "Tag key '\(key)' is given more than once")
            }
        }
        // Every resource is checked before any changes.
        var updates: [[(key: String, value: String)]] = []
        for resource in resources {
            var tags = tags(of: resource)
            for tag in given {
                let key = tag["Key"]!
                if let position = tags.firstIndex(where: { $0.key == key }) {
                    tags[position].value = tag["Value"] ?? ""
                } else {
                    tags.append((key, tag["Value"] ?? ""))
                }
            }
            guard tags.count <= 50 else {
                throw QueryError(code: "TooManyTags", message: "A resource can have at most 50 tags")
            }
            updates.append(tags)
        }
        for (resource, tags) in zip(resources, updates) { setTags(tags, of: resource) }
        return ""
    }

    package func removeTags(_ form: QueryForm) throws(QueryError) -> String {
        let resources = try form.list("ResourceArns").map { arn throws(QueryError) in try taggable(arn) }
        guard !resources.isEmpty else { throw .validation("ResourceArns is required") }
        let keys = Set(form.list("TagKeys"))
        guard !keys.isEmpty else { throw .validation("TagKeys is required") }
        for resource in resources { setTags(tags(of: resource).filter { !keys.contains($0.key) }, of: resource) }
        return ""
    }

    package func describeTags(_ form: QueryForm) throws(QueryError) -> String {
        let arns = form.list("ResourceArns")
        guard !arns.isEmpty else { throw .validation("ResourceArns is required") }
        let members = try arns.map { arn throws(QueryError) -> String in
            let tags = tags(of: try taggable(arn)).map { XML.text("Key", $0.key) + XML.text("Value", $0.value) }
            return XML.text("ResourceArn", arn) + XML.list("Tags", tags)
        }
        return XML.list("TagDescriptions", members)
    }

    // MARK: Modify

    package func modifyTargetGroup(_ form: QueryForm) throws(QueryError) -> String {
        let index = try targetGroup(form["TargetGroupArn"])
        let keys = [
            "HealthCheckEnabled", "HealthCheckProtocol", "HealthCheckPort", "HealthCheckPath",
            "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount",
            "UnhealthyThresholdCount",
        ]
        guard case .object(let object) = document(form, keys: keys) else { return "" }
        var reader = ConfigReader()
        var updated = groups[index].configuration
        updated.healthCheck = reader.healthCheck(object, "ModifyTargetGroup", base: updated.healthCheck)
        _ = try validated(reader, updated)
        applyGroupConfiguration(index, updated, by: "ModifyTargetGroup")
        publish(wait: true)
        return XML.list("TargetGroups", [targetGroupMember(index)])
    }

    package func attributeChanges(_ form: QueryForm) throws(QueryError) -> JSONValue {
        let given = form.structures("Attributes", fields: ["Key", "Value"])
        guard !given.isEmpty else { throw .validation("Attributes is required") }
        return .array(given.map { .object($0.mapValues { .string($0) }) })
    }

    package func modifyLoadBalancerAttributes(_ form: QueryForm) throws(QueryError) -> String {
        let index = try loadBalancer(form["LoadBalancerArn"])
        var reader = ConfigReader()
        var attributes = configuration.loadBalancers[index].attributes
        reader.attributes(
            try attributeChanges(form), "Attributes", index: LoadBalancerAttributes.attributeIndex, into: &attributes,
            kind: "Network Load Balancer")
        configuration.loadBalancers[index].attributes = try validated(reader, attributes)
        // Cross-zone load balancing moves where new flows go: the loops take it now.
        publish(wait: true)
        return attributeList(
            LoadBalancerAttributes.attributeIndex.describe(configuration.loadBalancers[index].attributes))
    }

    /// The listener's idle timeout applies to its new flows from now on (an edit, like a reload).
    package func modifyListenerAttributes(_ form: QueryForm) throws(QueryError) -> String {
        let index = try listener(form["ListenerArn"])
        var reader = ConfigReader()
        var modified = configuration.listeners[index]
        reader.attributes(
            try attributeChanges(form), "Attributes", index: ListenerConfiguration.attributeIndex, into: &modified,
            kind: "TCP listener")
        let listener = try validated(reader, modified)
        try edit(by: "ModifyListenerAttributes") { model in
            if let position = model.listeners.firstIndex(where: {
                $0.loadBalancerName == listener.loadBalancerName && $0.port == listener.port
            }) {
                model.listeners[position] = listener
            }
        }
        return attributeList(ListenerConfiguration.attributeIndex.describe(configuration.listeners[index]))
    }
}
