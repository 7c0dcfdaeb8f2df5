import LocalNLBDataPlane
import LocalNLBModel

/// Tags (AddTags, RemoveTags, DescribeTags) and the Modify actions of settings that are not target
/// lists: ModifyTargetGroup (health checks), ModifyLoadBalancerAttributes, ModifyListenerAttributes.
extension ControlPlane {
    /// The resource an ARN names, checked to be there.
    func taggable(_ arn: String) throws(APIError) -> TaggedResource {
        if arn.contains(":loadbalancer/") {
            return .loadBalancer(configuration.loadBalancers[try loadBalancer(arn)].name)
        }
        if arn.contains(":targetgroup/") { return .targetGroup(groups[try targetGroup(arn)].configuration.name) }
        if arn.contains(":listener/") {
            let listener = configuration.listeners[try listener(arn)]
            return .listener(loadBalancer: listener.loadBalancerName, port: listener.port)
        }
        throw .validation("'\(arn)' is not the ARN of a load balancer, target group or listener")
    }

    package func tags(of resource: TaggedResource) -> [(key: String, value: String)] {
        switch resource {
        case .loadBalancer(let name): return configuration.loadBalancers.first { $0.name == name }?.tags ?? []
        case .targetGroup(let name): return groups.first { $0.configuration.name == name }?.configuration.tags ?? []
        case .listener(let balancer, let port):
            return configuration.listeners.first { $0.loadBalancerName == balancer && $0.port == port }?.tags ?? []
        }
    }

    /// Tags change no flow: the model takes them with no snapshot to publish.
    package func addTags(_ form: QueryForm) throws(APIError) -> String {
        let resources = try form.list("ResourceArns").map { arn throws(APIError) in try taggable(arn) }
        try commit(.addTags(resources, tags: form.structures("Tags", fields: ["Key", "Value"])))
        return ""
    }

    package func removeTags(_ form: QueryForm) throws(APIError) -> String {
        let resources = try form.list("ResourceArns").map { arn throws(APIError) in try taggable(arn) }
        guard !resources.isEmpty else { throw .validation("ResourceArns is required") }
        let keys = Set(form.list("TagKeys"))
        guard !keys.isEmpty else { throw .validation("TagKeys is required") }
        try commit(.removeTags(resources, keys: keys))
        return ""
    }

    func describeTags(_ form: QueryForm) throws(APIError) -> String {
        let arns = form.list("ResourceArns")
        guard !arns.isEmpty else { throw .validation("ResourceArns is required") }
        let members = try arns.map { arn throws(APIError) -> String in
            let tags = tags(of: try taggable(arn)).map { XML.text("Key", $0.key) + XML.text("Value", $0.value) }
            return XML.text("ResourceArn", arn) + XML.list("Tags", tags)
        }
        return XML.list("TagDescriptions", members)
    }

    // MARK: Modify

    package func modifyTargetGroup(_ form: QueryForm) throws(APIError) -> String {
        let index = try targetGroup(form["TargetGroupArn"])
        let keys = [
            "HealthCheckEnabled", "HealthCheckProtocol", "HealthCheckPort", "HealthCheckPath",
            "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount",
            "UnhealthyThresholdCount",
        ]
        guard case .object(let object) = document(form, keys: keys) else { return "" }
        try commit(.modifyTargetGroup(name: groups[index].configuration.name, healthCheck: object))
        return XML.list("TargetGroups", [targetGroupMember(index)])
    }

    func attributeChanges(_ form: QueryForm) throws(APIError) -> Given {
        let given = form.structures("Attributes", fields: ["Key", "Value"])
        guard !given.isEmpty else { throw .validation("Attributes is required") }
        return Given("Attributes", .array(given.map { .object($0.mapValues { .string($0) }) }))
    }

    package func modifyLoadBalancerAttributes(_ form: QueryForm) throws(APIError) -> String {
        let index = try loadBalancer(form["LoadBalancerArn"])
        let name = configuration.loadBalancers[index].name
        try commit(.modifyLoadBalancerAttributes(name: name, attributes: try attributeChanges(form)))
        let balancer = configuration.loadBalancers[configuration.loadBalancerIndex(name)!]
        return attributeList(LoadBalancerAttributes.index(balancer.type).describe(balancer.attributes))
    }

    /// The listener's idle timeout applies to its new flows from now on (an edit, like a reload).
    package func modifyListenerAttributes(_ form: QueryForm) throws(APIError) -> String {
        let listener = configuration.listeners[try listener(form["ListenerArn"])]
        try commit(
            .modifyListenerAttributes(
                loadBalancer: listener.loadBalancerName, port: listener.port, attributes: try attributeChanges(form)))
        let modified = configuration.listeners.first {
            $0.loadBalancerName == listener.loadBalancerName && $0.port == listener.port
        }!
        return attributeList(ListenerConfiguration.index(modified.protocolName).describe(modified))
    }
}
