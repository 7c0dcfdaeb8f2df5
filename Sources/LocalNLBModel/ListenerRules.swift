import ProxyProtocol

/// An application load balancer listener's rule (CreateRule, `AWS::ElasticLoadBalancingV2::ListenerRule`):
/// when every condition matches a request, the action serves it instead of the listener's default
/// (docs/alb.md §20). Rules are tried by priority, lowest first.
public struct ListenerRule: Sendable {
    /// 1–50000, unique on its listener.
    public var priority: Int
    /// 16 hex digits, the last part of the rule's ARN: kept when the priority changes.
    public var id: String
    public var conditions: [RuleCondition]
    public var action: RuleAction
    public var tags: [(key: String, value: String)] = []

    public init(priority: Int, id: String, conditions: [RuleCondition], action: RuleAction) {
        self.priority = priority
        self.id = id
        self.conditions = conditions
        self.action = action
    }
}

public struct RuleCondition: Sendable, Equatable {
    public enum Field: String, Sendable, CaseIterable {
        case hostHeader = "host-header"
        case pathPattern = "path-pattern"
        case httpHeader = "http-header"
        case httpRequestMethod = "http-request-method"
        case queryString = "query-string"
        case sourceIP = "source-ip"
    }

    public struct QueryPair: Sendable, Equatable {
        public var key: String?
        public var value: String

        public init(key: String?, value: String) {
            self.key = key
            self.value = value
        }
    }

    public var field: Field
    /// `http-header`: the field's name.
    public var headerName: String?
    /// Patterns (`*` any run, `?` one character), methods, or CIDR blocks, by field.
    public var values: [String] = []
    /// `query-string`: key/value patterns (a missing key matches any key).
    public var queryPairs: [QueryPair] = []

    public init(field: Field) { self.field = field }

    /// Match evaluations AWS counts against its limit of 5 a rule: each value, each pair.
    public var evaluations: Int { field == .queryString ? queryPairs.count : values.count }
}

/// One group of a weighted forward (`ForwardConfig.TargetGroups[]`), its weight 0–999.
public struct WeightedTargetGroup: Sendable, Equatable {
    public var name: String
    public var weight: Int

    public init(name: String, weight: Int) {
        self.name = name
        self.weight = weight
    }
}

public enum RuleAction: Sendable, Equatable {
    case forward(targetGroupName: String)
    /// A forward to several groups, each request to one by weight (ALB's weighted target groups);
    /// `stickySeconds` above 0: target group stickiness, a client kept on its group that long by the
    /// `AWSALBTG` cookie (docs/alb.md §21).
    case weightedForward([WeightedTargetGroup], stickySeconds: Int = 0)
    case redirect(RedirectSettings)
    case fixedResponse(statusCode: Int, contentType: String?, body: String?)

    /// The target groups the action forwards to.
    public var targetGroupNames: [String] {
        switch self {
        case .forward(let name): [name]
        case .weightedForward(let groups, _): groups.map(\.name)
        default: []
        }
    }

    public var type: String {
        switch self {
        case .forward, .weightedForward: "forward"
        case .redirect: "redirect"
        case .fixedResponse: "fixed-response"
        }
    }
}

/// A redirect action's `RedirectConfig`: each part a literal or AWS's `#{protocol}`, `#{host}`, `#{port}`,
/// `#{path}`, `#{query}` (the request's own).
public struct RedirectSettings: Sendable, Equatable {
    public var protocolName = "#{protocol}"
    public var host = "#{host}"
    public var port = "#{port}"
    public var path = "/#{path}"
    public var query = "#{query}"
    /// `HTTP_301` or `HTTP_302`.
    public var statusCode = "HTTP_301"

    public init() {}
}

extension ConfigReader {
    /// A listener's `Rules` (the file's shape: each `{Priority, Conditions, Actions, Tags}` as CloudFormation's
    /// `ListenerRule` has them, plus `RuleId` as the file keeps it).
    mutating func rules(_ value: JSONValue, _ path: String, listener: String) -> [ListenerRule] {
        guard let items = array(value, path) else { return [] }
        var result: [ListenerRule] = []
        for (index, item) in items.enumerated() {
            let at = "\(path)[\(index)]"
            guard let rule = rule(item, at, listener: listener) else { continue }
            if result.contains(where: { $0.priority == rule.priority }) {
                error(
                    at + ".Priority",
                    "\(rule.priority) is the priority of another rule of this listener (PriorityInUse)")
                continue
            }
            result.append(rule)
        }
        return result.sorted { $0.priority < $1.priority }
    }

    package mutating func rule(_ value: JSONValue, _ path: String, listener: String) -> ListenerRule? {
        guard
            let object = readObject(
                value, path, keys: ["Priority", "Conditions", "Actions", "Tags", "RuleId", "ListenerArn"])
        else { return nil }
        let errorsBefore = errors.count
        guard let given = object["Priority"] else {
            error(path + ".Priority", "missing (1-50000)")
            return nil
        }
        guard let priority = integer(given, path + ".Priority", valid: 1...50000) else { return nil }
        var conditions: [RuleCondition] = []
        if let value = object["Conditions"], let items = array(value, path + ".Conditions") {
            for (index, item) in items.enumerated() {
                if let condition = condition(item, "\(path).Conditions[\(index)]") { conditions.append(condition) }
            }
        }
        if conditions.isEmpty && errors.count == errorsBefore {
            error(path + ".Conditions", "missing: a rule needs at least one condition")
        }
        let evaluations = conditions.map(\.evaluations).reduce(0, +)
        if evaluations > 5 {
            error(
                path + ".Conditions",
                "\(evaluations) values: AWS allows 5 match evaluations a rule (TooManyConditionValues)")
        }
        for field in RuleCondition.Field.allCases where field != .httpHeader && field != .queryString {
            if conditions.filter({ $0.field == field }).count > 1 {
                error(path + ".Conditions", "\(field.rawValue) is given twice: one condition of a field a rule")
            }
        }
        var action: RuleAction?
        if let value = object["Actions"], let items = array(value, path + ".Actions") {
            if items.count != 1 {
                error(
                    path + ".Actions",
                    "needs exactly one action (forward, redirect or fixed-response); found \(items.count)")
            } else {
                action = self.action(items[0], path + ".Actions[0]")
            }
        } else if object["Actions"] == nil {
            error(path + ".Actions", "missing: one forward, redirect or fixed-response action")
        }
        var id = ResourceNames.id("rule/\(listener)/\(priority)")
        if let value = object["RuleId"], let text = string(value, path + ".RuleId") {
            if text.count == 16 && text.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) {
                id = text
            } else {
                error(path + ".RuleId", "\"\(text)\" is not 16 lowercase hex digits")
            }
        }
        guard let action, errors.count == errorsBefore else { return nil }
        var rule = ListenerRule(priority: priority, id: id, conditions: conditions, action: action)
        if let value = object["Tags"] { rule.tags = tags(value, path + ".Tags") }
        return rule
    }

    mutating func condition(_ value: JSONValue, _ path: String) -> RuleCondition? {
        let configs = [
            "HostHeaderConfig", "PathPatternConfig", "HttpHeaderConfig", "HttpRequestMethodConfig",
            "QueryStringConfig", "SourceIpConfig",
        ]
        guard let object = readObject(value, path, keys: ["Field", "Values"] + configs) else { return nil }
        guard let given = object["Field"], let text = string(given, path + ".Field") else {
            error(path + ".Field", "missing (\(RuleCondition.Field.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        guard let field = RuleCondition.Field(rawValue: text) else {
            error(
                path + ".Field",
                "\"\(text)\" is not one of \(RuleCondition.Field.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        var condition = RuleCondition(field: field)
        let configKey = [
            RuleCondition.Field.hostHeader: "HostHeaderConfig", .pathPattern: "PathPatternConfig",
            .httpHeader: "HttpHeaderConfig", .httpRequestMethod: "HttpRequestMethodConfig",
            .queryString: "QueryStringConfig", .sourceIP: "SourceIpConfig",
        ][field]!
        for key in configs where key != configKey && object[key] != nil {
            error("\(path).\(key)", "does not go with Field \(field.rawValue) (\(configKey) does)")
        }
        let config = object[configKey].flatMap {
            readObject($0, "\(path).\(configKey)", keys: ["Values", "HttpHeaderName"])
        }
        func strings(_ value: JSONValue?, _ at: String) -> [String] {
            guard let value, let items = array(value, at) else { return [] }
            return items.enumerated().compactMap { string($1, "\(at)[\($0)]") }
        }
        switch field {
        case .queryString:
            if let value = config?["Values"], let items = array(value, "\(path).QueryStringConfig.Values") {
                for (index, item) in items.enumerated() {
                    let at = "\(path).QueryStringConfig.Values[\(index)]"
                    guard let pair = readObject(item, at, keys: ["Key", "Value"]) else { continue }
                    guard let value = pair["Value"].flatMap({ string($0, at + ".Value") }), !value.isEmpty else {
                        error(at + ".Value", "missing")
                        continue
                    }
                    condition.queryPairs.append(
                        .init(key: pair["Key"].flatMap { string($0, at + ".Key") }, value: value))
                }
            }
            if condition.queryPairs.isEmpty { error(path + ".QueryStringConfig.Values", "missing: at least one pair") }
            return condition
        case .httpHeader:
            guard
                let name = config?["HttpHeaderName"].flatMap({ string($0, "\(path).HttpHeaderConfig.HttpHeaderName") }),
                !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte)
            else {
                error("\(path).HttpHeaderConfig.HttpHeaderName", "missing, or not a header name")
                return nil
            }
            condition.headerName = name
            condition.values = strings(config?["Values"], "\(path).HttpHeaderConfig.Values")
        default:
            // host-header and path-pattern also take the older top-level Values.
            condition.values = strings(config?["Values"] ?? object["Values"], "\(path).\(configKey).Values")
        }
        if condition.values.isEmpty {
            error("\(path).\(configKey).Values", "missing: at least one value")
            return nil
        }
        for (index, value) in condition.values.enumerated() {
            let at = "\(path).\(configKey).Values[\(index)]"
            switch field {
            case .hostHeader, .httpHeader:
                if value.utf8.count > 128 { error(at, "longer than 128 characters") }
            case .pathPattern:
                if value.utf8.count > 128 { error(at, "longer than 128 characters") }
            case .httpRequestMethod:
                if value.isEmpty || value.utf8.count > 40
                    || !value.allSatisfy({ ($0.isLetter && $0.isUppercase) || $0 == "_" || $0 == "-" })
                {
                    error(at, "\"\(value)\" is not a method (A-Z, _ and -, up to 40; case-sensitive)")
                }
            case .sourceIP:
                if CIDR(value) == nil || !value.contains("/") { error(at, "\"\(value)\" is not a CIDR block") }
            case .queryString:
                break
            }
        }
        return condition
    }

    mutating func action(_ value: JSONValue, _ path: String) -> RuleAction? {
        guard
            let object = readObject(
                value, path,
                keys: [
                    "Type", "TargetGroupArn", "TargetGroupName", "ForwardConfig", "RedirectConfig",
                    "FixedResponseConfig",
                    "Order",
                ])
        else { return nil }
        let type = object["Type"].flatMap { string($0, path + ".Type") } ?? ""
        switch type {
        case "forward":
            if let value = object["TargetGroupName"] {
                return string(value, path + ".TargetGroupName").map { .forward(targetGroupName: $0) }
            }
            if let value = object["TargetGroupArn"], let arn = string(value, path + ".TargetGroupArn") {
                return .forward(targetGroupName: targetGroupName(arn))
            }
            if let value = object["ForwardConfig"],
                let config = readObject(
                    value, path + ".ForwardConfig", keys: ["TargetGroups", "TargetGroupStickinessConfig"]),
                let groups = config["TargetGroups"].flatMap({ array($0, path + ".ForwardConfig.TargetGroups") })
            {
                var stickySeconds = 0
                let stickyPath = path + ".ForwardConfig.TargetGroupStickinessConfig"
                if let stickiness = config["TargetGroupStickinessConfig"],
                    let settings = readObject(stickiness, stickyPath, keys: ["Enabled", "DurationSeconds"]),
                    settings["Enabled"].flatMap({ boolean($0, stickyPath + ".Enabled") }) == true
                {
                    // AWS: the duration must be given when group stickiness is on, 1 s to 7 days.
                    if let value = settings["DurationSeconds"] {
                        stickySeconds = integer(value, stickyPath + ".DurationSeconds", valid: 1...604800) ?? 0
                    } else {
                        error(
                            stickyPath + ".DurationSeconds",
                            "missing: with Enabled true, the seconds (1-604800) a client stays with its target group")
                    }
                }
                var weighted: [WeightedTargetGroup] = []
                for (index, item) in groups.enumerated() {
                    let at = "\(path).ForwardConfig.TargetGroups[\(index)]"
                    guard let group = readObject(item, at, keys: ["TargetGroupArn", "TargetGroupName", "Weight"])
                    else { continue }
                    guard
                        let arn = (group["TargetGroupArn"] ?? group["TargetGroupName"]).flatMap({
                            string($0, at + ".TargetGroupArn")
                        })
                    else {
                        error(at + ".TargetGroupArn", "missing")
                        continue
                    }
                    let weight = group["Weight"].flatMap { integer($0, at + ".Weight", valid: 0...999) } ?? 1
                    weighted.append(.init(name: targetGroupName(arn), weight: weight))
                }
                guard (1...5).contains(weighted.count) else {
                    error(path + ".ForwardConfig.TargetGroups", "1 to 5 target groups (AWS's limit a forward action)")
                    return nil
                }
                if Set(weighted.map(\.name)).count != weighted.count {
                    error(path + ".ForwardConfig.TargetGroups", "a target group is given twice")
                }
                if weighted.count > 1 && weighted.allSatisfy({ $0.weight == 0 }) {
                    error(
                        path + ".ForwardConfig.TargetGroups", "every weight is 0: at least one group must take requests"
                    )
                }
                if weighted.count == 1 && stickySeconds == 0 { return .forward(targetGroupName: weighted[0].name) }
                return .weightedForward(weighted, stickySeconds: stickySeconds)
            }
            error(path, "a forward action needs TargetGroupArn (or TargetGroupName)")
            return nil
        case "redirect":
            guard let value = object["RedirectConfig"],
                let config = readObject(
                    value, path + ".RedirectConfig", keys: ["Protocol", "Host", "Port", "Path", "Query", "StatusCode"])
            else {
                error(path + ".RedirectConfig", "missing: a redirect needs its RedirectConfig")
                return nil
            }
            var settings = RedirectSettings()
            let at = path + ".RedirectConfig"
            if let value = config["Protocol"].flatMap({ string($0, at + ".Protocol") }) {
                if ["HTTP", "HTTPS", "#{protocol}"].contains(value) {
                    settings.protocolName = value
                } else {
                    error(at + ".Protocol", "\"\(value)\" is not HTTP, HTTPS or #{protocol}")
                }
            }
            if let value = config["Host"].flatMap({ string($0, at + ".Host") }) { settings.host = value }
            if let value = config["Port"].flatMap({ $0.attributeString }) {
                if value == "#{port}" || (Int(value).map { (1...65535).contains($0) } ?? false) {
                    settings.port = value
                } else {
                    error(at + ".Port", "\"\(value)\" is not a port (1-65535) or #{port}")
                }
            }
            if let value = config["Path"].flatMap({ string($0, at + ".Path") }) {
                if value.hasPrefix("/") {
                    settings.path = value
                } else {
                    error(at + ".Path", "\"\(value)\" must start with /")
                }
            }
            if let value = config["Query"].flatMap({ string($0, at + ".Query") }) {
                if value.hasPrefix("?") {
                    error(at + ".Query", "\"\(value)\": without the leading ?")
                } else {
                    settings.query = value
                }
            }
            guard let status = config["StatusCode"].flatMap({ string($0, at + ".StatusCode") }),
                ["HTTP_301", "HTTP_302"].contains(status)
            else {
                error(at + ".StatusCode", "missing, or not HTTP_301 or HTTP_302")
                return nil
            }
            settings.statusCode = status
            return .redirect(settings)
        case "fixed-response":
            guard let value = object["FixedResponseConfig"],
                let config = readObject(
                    value, path + ".FixedResponseConfig", keys: ["StatusCode", "ContentType", "MessageBody"])
            else {
                error(path + ".FixedResponseConfig", "missing: a fixed response needs its FixedResponseConfig")
                return nil
            }
            let at = path + ".FixedResponseConfig"
            guard let text = config["StatusCode"]?.attributeString, let status = Int(text),
                (200...299).contains(status) || (400...599).contains(status)
            else {
                error(at + ".StatusCode", "missing, or not a 2XX, 4XX or 5XX code")
                return nil
            }
            let types = ["text/plain", "text/css", "text/html", "application/javascript", "application/json"]
            let contentType = config["ContentType"].flatMap { string($0, at + ".ContentType") }
            if let contentType, !types.contains(contentType) {
                error(at + ".ContentType", "\"\(contentType)\" is not one of \(types.joined(separator: ", "))")
            }
            let body = config["MessageBody"].flatMap { string($0, at + ".MessageBody") }
            if let body, body.utf8.count > 1024 { error(at + ".MessageBody", "longer than 1024 bytes") }
            return .fixedResponse(statusCode: status, contentType: contentType, body: body)
        default:
            error(
                path + ".Type",
                type.isEmpty
                    ? "missing (forward, redirect or fixed-response)"
                    : "\"\(type)\" is not forward, redirect or fixed-response (authenticate-* actions are not emulated)"
            )
            return nil
        }
    }

    /// A target group's name from its ARN (or a name given as is).
    func targetGroupName(_ given: String) -> String {
        if let name = resourceNames.name(in: given, kind: "targetgroup") { return name }
        let parts = given.split(separator: "/")
        return given.hasPrefix("arn:") && parts.count >= 2 ? String(parts[1]) : given
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }
}

extension ListenerRule {
    /// The rule as the file keeps it (CloudFormation's shape, and its id).
    package var document: JSONText {
        var fields: [(String, JSONText)] = [
            ("Priority", .integer(Int64(priority))), ("RuleId", .string(id)),
            ("Conditions", .array(conditions.map(\.document))), ("Actions", .array([action.document])),
        ]
        if !tags.isEmpty {
            fields.append(
                ("Tags", .array(tags.map { .object([("Key", .string($0.key)), ("Value", .string($0.value))]) })))
        }
        return .object(fields)
    }
}

extension RuleCondition {
    /// AWS's config object name for the field.
    public var configKey: String {
        switch field {
        case .hostHeader: "HostHeaderConfig"
        case .pathPattern: "PathPatternConfig"
        case .httpHeader: "HttpHeaderConfig"
        case .httpRequestMethod: "HttpRequestMethodConfig"
        case .queryString: "QueryStringConfig"
        case .sourceIP: "SourceIpConfig"
        }
    }

    package var document: JSONText {
        var config: [(String, JSONText)] = []
        if let headerName { config.append(("HttpHeaderName", .string(headerName))) }
        if field == .queryString {
            config.append(
                (
                    "Values",
                    .array(
                        queryPairs.map { pair in
                            .object(
                                (pair.key.map { [("Key", JSONText.string($0))] } ?? []) + [
                                    ("Value", .string(pair.value))
                                ])
                        })
                ))
        } else {
            config.append(("Values", .array(values.map { .string($0) })))
        }
        return .object([("Field", .string(field.rawValue)), (configKey, .object(config))])
    }
}

extension RuleAction {
    package var document: JSONText {
        switch self {
        case .forward(let name):
            return .object([("Type", .string("forward")), ("TargetGroupName", .string(name))])
        case .weightedForward(let groups, let stickySeconds):
            var config: [(String, JSONText)] = [
                (
                    "TargetGroups",
                    .array(
                        groups.map {
                            .object([("TargetGroupName", .string($0.name)), ("Weight", .integer(Int64($0.weight)))])
                        })
                )
            ]
            if stickySeconds > 0 {
                config.append(
                    (
                        "TargetGroupStickinessConfig",
                        .object([("Enabled", .bool(true)), ("DurationSeconds", .integer(Int64(stickySeconds)))])
                    ))
            }
            return .object([("Type", .string("forward")), ("ForwardConfig", .object(config))])
        case .redirect(let settings):
            return .object([
                ("Type", .string("redirect")),
                (
                    "RedirectConfig",
                    .object([
                        ("Protocol", .string(settings.protocolName)), ("Host", .string(settings.host)),
                        ("Port", .string(settings.port)), ("Path", .string(settings.path)),
                        ("Query", .string(settings.query)), ("StatusCode", .string(settings.statusCode)),
                    ])
                ),
            ])
        case .fixedResponse(let status, let contentType, let body):
            var config: [(String, JSONText)] = [("StatusCode", .string(String(status)))]
            if let contentType { config.append(("ContentType", .string(contentType))) }
            if let body { config.append(("MessageBody", .string(body))) }
            return .object([("Type", .string("fixed-response")), ("FixedResponseConfig", .object(config))])
        }
    }
}

/// The changes of listener rules (docs/alb.md §20), checked as AWS checks them.
extension Configuration {
    package static let ruleNotFound = APIError(code: "RuleNotFound", message: "One or more rules not found")

    /// At most this many rules on an application load balancer (AWS's default quota), the defaults aside.
    static let rulesPerLoadBalancer = 100

    mutating func createRule(_ balancer: String, _ port: UInt16, _ given: Given) throws(APIError) {
        let index = try listenerIndex(balancer, port)
        guard listeners[index].protocolName.isHTTP else {
            throw APIError(
                code: "InvalidConfigurationRequest",
                message: "Listener rules are for the HTTP and HTTPS listeners of application load balancers")
        }
        var reader = newReader()
        let read = reader.rule(given.value, given.path, listener: "\(balancer)/\(port)")
        var rule = try Self.validated(reader, read)
        if listeners[index].rules.contains(where: { $0.priority == rule.priority }) {
            throw APIError(code: "PriorityInUse", message: "Priority '\(rule.priority)' is currently in use")
        }
        try checkRuleAction(rule.action)
        let total = listeners.filter { $0.loadBalancerName == balancer }.map(\.rules.count).reduce(0, +)
        guard total < Self.rulesPerLoadBalancer else {
            throw APIError(
                code: "TooManyRules",
                message:
                    "You've reached the limit on the number of rules per load balancer (\(Self.rulesPerLoadBalancer))")
        }
        // A new id each time, even where a deleted or moved rule had this priority.
        var serial = 0
        let ids = Set(listeners[index].rules.map(\.id))
        while ids.contains(rule.id) {
            serial += 1
            rule.id = ResourceNames.id("rule/\(balancer)/\(port)/\(rule.priority)/\(serial)")
        }
        listeners[index].rules.append(rule)
        listeners[index].rules.sort { $0.priority < $1.priority }
    }

    mutating func modifyRule(
        _ balancer: String, _ port: UInt16, _ id: String, conditions: Given?, actions: Given?
    ) throws(APIError) {
        let index = try listenerIndex(balancer, port)
        guard let position = listeners[index].rules.firstIndex(where: { $0.id == id }) else { throw Self.ruleNotFound }
        let old = listeners[index].rules[position]
        var document: [String: JSONValue] = ["Priority": .number(Double(old.priority))]
        func value(_ text: JSONText) -> JSONValue {
            // Text this code wrote parses back.
            (try? JSONParser.parse(Array(text.rendered.utf8)).value) ?? .null
        }
        document["Conditions"] = conditions?.value ?? .array(old.conditions.map { value($0.document) })
        document["Actions"] = actions?.value ?? .array([value(old.action.document)])
        var reader = newReader()
        let read = reader.rule(.object(document), "ModifyRule", listener: "\(balancer)/\(port)")
        var rule = try Self.validated(reader, read)
        try checkRuleAction(rule.action)
        rule.id = old.id
        rule.tags = old.tags
        listeners[index].rules[position] = rule
    }

    mutating func setRulePriorities(
        _ changes: [(loadBalancer: String, port: UInt16, id: String, priority: Int)]
    ) throws(APIError) {
        guard !changes.isEmpty else { throw .validation("RulePriorities is required") }
        for change in changes {
            let index = try listenerIndex(change.loadBalancer, change.port)
            guard (1...50000).contains(change.priority) else {
                throw .validation("Priority \(change.priority) is out of range (1-50000)")
            }
            guard let position = listeners[index].rules.firstIndex(where: { $0.id == change.id }) else {
                throw Self.ruleNotFound
            }
            listeners[index].rules[position].priority = change.priority
        }
        for listener in listeners {
            let priorities = listener.rules.map(\.priority)
            if let taken = priorities.first(where: { p in priorities.filter { $0 == p }.count > 1 }) {
                throw APIError(code: "PriorityInUse", message: "Priority '\(taken)' is currently in use")
            }
        }
        for index in listeners.indices { listeners[index].rules.sort { $0.priority < $1.priority } }
    }

    /// A forward goes to an HTTP target group that exists.
    func checkRuleAction(_ action: RuleAction) throws(APIError) {
        for name in action.targetGroupNames { try checkRuleGroup(name) }
        // AWS: a forward to several groups, one of them sticky, needs target group stickiness as well
        // (docs/alb.md §21), or a client's target would change with every draw of its group.
        if case .weightedForward(let weighted, 0) = action, weighted.count > 1,
            let sticky = weighted.first(where: { entry in
                targetGroups.first { $0.name == entry.name }?.stickinessEnabled == true
            })
        {
            throw APIError(
                code: "InvalidConfigurationRequest",
                message: "Target group '\(names.targetGroup(sticky.name))' has stickiness enabled: a forward to "
                    + "several target groups with a sticky one needs TargetGroupStickinessConfig Enabled true "
                    + "(and its DurationSeconds)")
        }
    }

    func checkRuleGroup(_ name: String) throws(APIError) {
        guard let group = targetGroups.first(where: { $0.name == name }) else {
            throw APIError(code: "TargetGroupNotFound", message: "Target groups '\(names.targetGroup(name))' not found")
        }
        guard group.protocolName.isHTTP else {
            throw APIError(
                code: "IncompatibleProtocols",
                message:
                    "A rule of an HTTP listener forwards to an HTTP target group; '\(name)' is \(group.protocolName.rawValue)"
            )
        }
    }
}
