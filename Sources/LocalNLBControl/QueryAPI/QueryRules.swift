import LocalNLBDataPlane
import LocalNLBModel

/// CreateRule, DescribeRules, ModifyRule, DeleteRule and SetRulePriorities (docs/alb.md §20): the form's
/// `Conditions` and `Actions` become the file's shape for the one change function; rules are answered in
/// AWS's Rule shape, the listener's default action as its `default` rule.
extension ControlPlane {
    /// The listener (its index) and the rule's id of a rule ARN.
    func rule(_ arn: String?) throws(APIError) -> (listener: Int, id: String) {
        guard let arn else { throw .validation("RuleArn is required") }
        for (index, listener) in configuration.listeners.enumerated() where inRequestRegion(listener.loadBalancerName) {
            for rule in listener.rules
            where names.rule(loadBalancer: listener.loadBalancerName, port: listener.port, id: rule.id) == arn {
                return (index, rule.id)
            }
            if defaultRuleARN(listener) == arn { return (index, "default") }
        }
        throw Configuration.ruleNotFound
    }

    func defaultRuleARN(_ listener: ListenerConfiguration) -> String {
        names.rule(
            loadBalancer: listener.loadBalancerName, port: listener.port,
            id: ResourceNames.id("default-rule/\(listener.loadBalancerName)/\(listener.port)"))
    }

    func createRule(_ form: QueryForm) throws(APIError) -> String {
        let listener = configuration.listeners[try self.listener(form["ListenerArn"])]
        var document: [String: JSONValue] = [:]
        if let priority = form["Priority"] { document["Priority"] = .string(priority) }
        document["Conditions"] = form.tree("Conditions")
        document["Actions"] = form.tree("Actions")
        if let tags = form.tree("Tags") { document["Tags"] = tags }
        let before = Set(listener.rules.map(\.id))
        try commit(
            .createRule(
                loadBalancer: listener.loadBalancerName, port: listener.port,
                Given("CreateRule", .object(document.compactMapValues { $0 }))))
        let now = configuration.listeners.first {
            $0.loadBalancerName == listener.loadBalancerName && $0.port == listener.port
        }!
        let created = now.rules.first { !before.contains($0.id) }!
        return XML.list("Rules", [ruleMember(now, created)])
    }

    func describeRules(_ form: QueryForm) throws(APIError) -> String {
        var members: [String] = []
        let arns = form.list("RuleArns")
        if !arns.isEmpty {
            for arn in arns {
                let (index, id) = try rule(arn)
                let listener = configuration.listeners[index]
                members.append(
                    id == "default"
                        ? defaultRuleMember(listener) : ruleMember(listener, listener.rules.first { $0.id == id }!))
            }
        } else if form["ListenerArn"] != nil {
            let listener = configuration.listeners[try self.listener(form["ListenerArn"])]
            members = listener.rules.map { ruleMember(listener, $0) } + [defaultRuleMember(listener)]
        } else {
            throw .validation("You must specify either listener rule ARNs or a listener ARN")
        }
        let (page, next) = try page(members, form)
        return XML.list("Rules", page) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    func modifyRule(_ form: QueryForm) throws(APIError) -> String {
        let (index, id) = try rule(form["RuleArn"])
        let listener = configuration.listeners[index]
        guard id != "default" else {
            throw APIError(
                code: "OperationNotPermitted", message: "The default rule is the listener's: ModifyListener changes it")
        }
        try commit(
            .modifyRule(
                loadBalancer: listener.loadBalancerName, port: listener.port, id: id,
                conditions: form.tree("Conditions").map { Given("ModifyRule.Conditions", $0) },
                actions: form.tree("Actions").map { Given("ModifyRule.Actions", $0) }))
        let now = configuration.listeners[index]
        return XML.list("Rules", [ruleMember(now, now.rules.first { $0.id == id }!)])
    }

    func deleteRule(_ form: QueryForm) throws(APIError) -> String {
        let (index, id) = try rule(form["RuleArn"])
        let listener = configuration.listeners[index]
        guard id != "default" else {
            throw APIError(code: "OperationNotPermitted", message: "The default rule cannot be deleted")
        }
        try commit(.deleteRule(loadBalancer: listener.loadBalancerName, port: listener.port, id: id))
        return ""
    }

    func setRulePriorities(_ form: QueryForm) throws(APIError) -> String {
        var changes: [(loadBalancer: String, port: UInt16, id: String, priority: Int)] = []
        for item in form.structures("RulePriorities", fields: ["RuleArn", "Priority"]) {
            let (index, id) = try rule(item["RuleArn"])
            guard id != "default" else {
                throw APIError(code: "OperationNotPermitted", message: "The default rule has no priority to set")
            }
            guard let priority = item["Priority"].flatMap({ Int($0) }) else {
                throw .validation("RulePriorities.member.N.Priority is required: a whole number from 1 to 50000")
            }
            let listener = configuration.listeners[index]
            changes.append((listener.loadBalancerName, listener.port, id, priority))
        }
        try commit(.setRulePriorities(changes))
        let members = changes.map { change in
            let listener = configuration.listeners.first {
                $0.loadBalancerName == change.loadBalancer && $0.port == change.port
            }!
            return ruleMember(listener, listener.rules.first { $0.id == change.id }!)
        }
        return XML.list("Rules", members)
    }

    // MARK: AWS's Rule shape

    func ruleMember(_ listener: ListenerConfiguration, _ rule: ListenerRule) -> String {
        XML.text("RuleArn", names.rule(loadBalancer: listener.loadBalancerName, port: listener.port, id: rule.id))
            + XML.text("Priority", String(rule.priority))
            + XML.list("Conditions", rule.conditions.map(conditionMember))
            + XML.list("Actions", [actionMember(rule.action)]) + XML.text("IsDefault", "false")
    }

    func defaultRuleMember(_ listener: ListenerConfiguration) -> String {
        XML.text("RuleArn", defaultRuleARN(listener)) + XML.text("Priority", "default") + XML.list("Conditions", [])
            + XML.list(
                "Actions", [actionMember(listener.defaultAction ?? .forward(targetGroupName: listener.targetGroupName))]
            )
            + XML.text("IsDefault", "true")
    }

    /// Members in the order of AWS's RuleCondition shape: Field, Values (host and path only), the config.
    func conditionMember(_ condition: RuleCondition) -> String {
        let values = XML.list("Values", condition.values.map(XML.escape))
        var fields = XML.text("Field", condition.field.rawValue)
        if condition.field == .hostHeader || condition.field == .pathPattern { fields += values }
        switch condition.field {
        case .queryString:
            let pairs = condition.queryPairs.map { pair in
                (pair.key.map { XML.text("Key", $0) } ?? "") + XML.text("Value", pair.value)
            }
            fields += XML.element("QueryStringConfig", [XML.list("Values", pairs)])
        case .httpHeader:
            fields += XML.element(
                "HttpHeaderConfig", [XML.text("HttpHeaderName", condition.headerName ?? ""), values])
        default:
            fields += XML.element(condition.configKey, [values])
        }
        return fields
    }

    /// Members in the order of AWS's Action shape: Type, TargetGroupArn, Order, then the config.
    func actionMember(_ action: RuleAction) -> String {
        switch action {
        case .forward(let name):
            let group = names.targetGroup(name)
            return XML.text("Type", "forward") + XML.text("TargetGroupArn", group) + XML.text("Order", "1")
                + XML.element(
                    "ForwardConfig",
                    [
                        XML.list("TargetGroups", [XML.text("TargetGroupArn", group) + XML.text("Weight", "1")]),
                        XML.element("TargetGroupStickinessConfig", [XML.text("Enabled", "false")]),
                    ])
        case .weightedForward(let weighted, let stickySeconds):
            let stickiness =
                stickySeconds > 0
                ? [XML.text("Enabled", "true"), XML.text("DurationSeconds", String(stickySeconds))]
                : [XML.text("Enabled", "false")]
            return XML.text("Type", "forward") + XML.text("Order", "1")
                + XML.element(
                    "ForwardConfig",
                    [
                        XML.list(
                            "TargetGroups",
                            weighted.map {
                                XML.text("TargetGroupArn", names.targetGroup($0.name))
                                    + XML.text("Weight", String($0.weight))
                            }),
                        XML.element("TargetGroupStickinessConfig", stickiness),
                    ])
        case .redirect(let settings):
            return XML.text("Type", "redirect") + XML.text("Order", "1")
                + XML.element(
                    "RedirectConfig",
                    [
                        XML.text("Protocol", settings.protocolName), XML.text("Port", settings.port),
                        XML.text("Host", settings.host), XML.text("Path", settings.path),
                        XML.text("Query", settings.query), XML.text("StatusCode", settings.statusCode),
                    ])
        case .fixedResponse(let status, let contentType, let body):
            var config: [String] = []
            if let body { config.append(XML.text("MessageBody", body)) }
            config.append(XML.text("StatusCode", String(status)))
            if let contentType { config.append(XML.text("ContentType", contentType)) }
            return XML.text("Type", "fixed-response") + XML.text("Order", "1")
                + XML.element("FixedResponseConfig", config)
        }
    }
}
