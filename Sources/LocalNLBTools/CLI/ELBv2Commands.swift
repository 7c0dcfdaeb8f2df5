import Foundation
import LocalNLBControl
import LocalNLBDataPlane
import LocalNLBModel

/// The AWS CLI's `elbv2` commands that `ctl` serves: each a Query API action, with its options in
/// the AWS CLI's spelling (`--load-balancer-arn`) and their shapes (a list of words, shorthand
/// structures `Key=a,Value=b`, or JSON).
package enum ELBv2Commands {
    package enum Shape {
        case scalar
        /// `--names a b` → `Names.member.1=a&Names.member.2=b`
        case list
        /// `--targets Id=…,Port=… Id=…` (or a JSON list) → `Targets.member.1.Id=…`
        case structures([String])
        /// `--matcher HttpCode=200` (or a JSON object) → `Matcher.HttpCode=200`
        case structure([String])
        /// `--health-check-enabled` / `--no-health-check-enabled`
        case flag
        /// `--conditions '[{"Field":"path-pattern","PathPatternConfig":{"Values":["/api/*"]}}]'`: JSON of any
        /// depth, lists as `.member.N` → `Conditions.member.1.PathPatternConfig.Values.member.1=/api/*`
        case nested
    }

    package static let shapes: [String: Shape] = [
        "Names": .list, "LoadBalancerArns": .list, "TargetGroupArns": .list, "ListenerArns": .list,
        "ResourceArns": .list, "TagKeys": .list, "Subnets": .list, "SecurityGroups": .list,
        "Targets": .structures(["Id", "Port", "AvailabilityZone"]), "Attributes": .structures(["Key", "Value"]),
        "Tags": .structures(["Key", "Value"]), "DefaultActions": .structures(["Type", "TargetGroupArn", "Order"]),
        "SubnetMappings": .structures(["SubnetId", "AllocationId", "PrivateIPv4Address", "IPv6Address"]),
        "Matcher": .structure(["HttpCode", "GrpcCode"]), "HealthCheckEnabled": .flag,
        "MinimumLoadBalancerCapacity": .structure(["CapacityUnits"]), "ResetCapacityReservation": .flag,
        "Certificates": .structures(["CertificateArn"]), "AlpnPolicy": .list, "TrustStoreArns": .list,
        "RevocationIds": .list,
        "RevocationContents": .structures(["S3Bucket", "S3Key", "S3ObjectVersion", "RevocationType"]),
        "MutualAuthentication": .structure(["Mode", "TrustStoreArn", "IgnoreClientCertificateExpiry"]),
        "Conditions": .nested, "Actions": .nested, "RuleArns": .list,
        "RulePriorities": .structures(["RuleArn", "Priority"]),
    ]

    package static let healthCheck = [
        "HealthCheckProtocol", "HealthCheckPort", "HealthCheckPath", "HealthCheckEnabled", "HealthCheckIntervalSeconds",
        "HealthCheckTimeoutSeconds", "HealthyThresholdCount", "UnhealthyThresholdCount", "Matcher",
    ]
    static let paging = ["Marker", "PageSize"]

    /// Each command's parameters; a `*` marks a required one.
    package static let commands: [String: [String]] = [
        "create-load-balancer": [
            "Name*", "Subnets", "SubnetMappings", "SecurityGroups", "Scheme", "Tags", "Type", "IpAddressType",
        ],
        "describe-load-balancers": ["LoadBalancerArns", "Names"] + paging,
        "delete-load-balancer": ["LoadBalancerArn*"],
        "describe-load-balancer-attributes": ["LoadBalancerArn*"],
        "modify-load-balancer-attributes": ["LoadBalancerArn*", "Attributes*"],
        "create-target-group": ["Name*", "Protocol", "Port", "VpcId", "TargetType", "IpAddressType", "Tags"]
            + healthCheck,
        "describe-target-groups": ["LoadBalancerArn", "TargetGroupArns", "Names"] + paging,
        "modify-target-group": ["TargetGroupArn*"] + healthCheck,
        "delete-target-group": ["TargetGroupArn*"],
        "describe-target-group-attributes": ["TargetGroupArn*"],
        "modify-target-group-attributes": ["TargetGroupArn*", "Attributes*"],
        "create-listener": [
            "LoadBalancerArn*", "Protocol", "Port", "DefaultActions*", "Tags", "Certificates", "SslPolicy",
            "AlpnPolicy",
            "MutualAuthentication",
        ],
        "describe-listeners": ["LoadBalancerArn", "ListenerArns"] + paging,
        "modify-listener": [
            "ListenerArn*", "Port", "Protocol", "DefaultActions", "Certificates", "SslPolicy", "AlpnPolicy",
            "MutualAuthentication",
        ],
        "add-listener-certificates": ["ListenerArn*", "Certificates*"],
        "remove-listener-certificates": ["ListenerArn*", "Certificates*"],
        "describe-listener-certificates": ["ListenerArn*"] + paging,
        "create-trust-store": ["Name*", "CaCertificatesBundleS3Bucket*", "CaCertificatesBundleS3Key*", "Tags"],
        "describe-trust-stores": ["TrustStoreArns", "Names"] + paging,
        "delete-trust-store": ["TrustStoreArn*"],
        "add-trust-store-revocations": ["TrustStoreArn*", "RevocationContents"],
        "describe-trust-store-revocations": ["TrustStoreArn*", "RevocationIds"] + paging,
        "remove-trust-store-revocations": ["TrustStoreArn*", "RevocationIds*"],
        "delete-listener": ["ListenerArn*"],
        "create-rule": ["ListenerArn*", "Priority*", "Conditions*", "Actions*", "Tags"],
        "describe-rules": ["ListenerArn", "RuleArns"] + paging,
        "modify-rule": ["RuleArn*", "Conditions", "Actions"],
        "delete-rule": ["RuleArn*"],
        "set-rule-priorities": ["RulePriorities*"],
        "describe-listener-attributes": ["ListenerArn*"],
        "modify-listener-attributes": ["ListenerArn*", "Attributes*"],
        "register-targets": ["TargetGroupArn*", "Targets*"],
        "deregister-targets": ["TargetGroupArn*", "Targets*"],
        "describe-target-health": ["TargetGroupArn*", "Targets"],
        "add-tags": ["ResourceArns*", "Tags*"],
        "remove-tags": ["ResourceArns*", "TagKeys*"],
        "describe-tags": ["ResourceArns*"],
        "describe-account-limits": paging,
        "describe-ssl-policies": ["Names", "LoadBalancerType"] + paging,
        "set-security-groups": [
            "LoadBalancerArn*", "SecurityGroups*", "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic",
        ],
        "set-ip-address-type": ["LoadBalancerArn*", "IpAddressType*"],
        "set-subnets": ["LoadBalancerArn*", "Subnets", "SubnetMappings", "IpAddressType"],
        "describe-capacity-reservation": ["LoadBalancerArn*"],
        "modify-capacity-reservation": ["LoadBalancerArn*", "MinimumLoadBalancerCapacity", "ResetCapacityReservation"],
    ]

    /// The list a paginated command's pages add up (the AWS CLI joins the pages unless told not to).
    static let pagedResults = [
        "describe-load-balancers": "LoadBalancers", "describe-target-groups": "TargetGroups",
        "describe-listeners": "Listeners", "describe-account-limits": "Limits", "describe-ssl-policies": "SslPolicies",
        "describe-listener-certificates": "Certificates", "describe-trust-stores": "TrustStores",
        "describe-trust-store-revocations": "TrustStoreRevocations", "describe-rules": "Rules",
    ]

    /// `describe-target-groups` → `DescribeTargetGroups`
    package static func action(_ command: String) -> String {
        if command == "describe-ssl-policies" { return "DescribeSSLPolicies" }
        return command.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// `LoadBalancerArn` → `--load-balancer-arn` (`IpAddressType` → `--ip-address-type`).
    package static func option(_ parameter: String) -> String {
        var out = "-"
        for character in parameter {
            if character.isUppercase { out += "-" }
            out += character.lowercased()
        }
        return out
    }

    /// The form parameters of `command` from its options (each option with the words after it).
    package static func form(_ command: String, _ options: [String: [String]]) throws -> [(String, String)] {
        let parameters = commands[command]!.map { $0.hasSuffix("*") ? String($0.dropLast()) : $0 }
        var byOption: [String: String] = [:]
        for parameter in parameters {
            byOption[option(parameter)] = parameter
            if case .flag? = shapes[parameter] { byOption["--no-" + option(parameter).dropFirst(2)] = parameter }
        }
        for given in options.keys where byOption[given] == nil {
            let known = parameters.map(option).joined(separator: " ")
            throw ControlCommand.Failure(message: "ctl \(command): unknown option \(given) (options: \(known))")
        }
        for required in commands[command]! where required.hasSuffix("*") {
            let parameter = String(required.dropLast())
            if options[option(parameter)] == nil {
                throw ControlCommand.Failure(message: "ctl \(command): \(option(parameter)) is required")
            }
        }
        var form = [("Action", action(command)), ("Version", "2015-12-01")]
        for (given, words) in options.sorted(by: { $0.key < $1.key }) {
            let parameter = byOption[given]!
            switch shapes[parameter] ?? .scalar {
            case .scalar:
                guard words.count == 1 else {
                    throw ControlCommand.Failure(message: "ctl \(command): \(given) takes one value")
                }
                form.append((parameter, words[0]))
            case .flag:
                guard words.isEmpty else {
                    throw ControlCommand.Failure(message: "ctl \(command): \(given) takes no value")
                }
                form.append((parameter, given.hasPrefix("--no-") ? "false" : "true"))
            case .list:
                let items = try listWords(words, given)
                guard !items.isEmpty else {
                    throw ControlCommand.Failure(message: "ctl \(command): \(given) needs a value")
                }
                for (index, item) in items.enumerated() { form.append(("\(parameter).member.\(index + 1)", item)) }
            case .structures(let fields):
                let items = try structures(words, fields: fields, option: given)
                guard !items.isEmpty else {
                    throw ControlCommand.Failure(message: "ctl \(command): \(given) needs a value")
                }
                for (index, item) in items.enumerated() {
                    for (field, value) in item { form.append(("\(parameter).member.\(index + 1).\(field)", value)) }
                }
            case .nested:
                guard words.count == 1, let parsed = try? JSONSerialization.jsonObject(with: Data(words[0].utf8)) else {
                    throw ControlCommand.Failure(
                        message: "ctl \(command): \(given) takes JSON (as the AWS CLI's --cli-input-json parts do)")
                }
                flatten(parsed, parameter, into: &form)
            case .structure(let fields):
                let items = try structures(words, fields: fields, option: given)
                guard items.count == 1 else {
                    throw ControlCommand.Failure(message: "ctl \(command): \(given) takes one Key=Value,… structure")
                }
                for (field, value) in items[0] { form.append(("\(parameter).\(field)", value)) }
            }
        }
        return form
    }

    /// JSON as Query parameters: objects by key, lists as `.member.N`, leaves as text.
    static func flatten(_ value: Any, _ prefix: String, into form: inout [(String, String)]) {
        switch value {
        case let list as [Any]:
            for (index, item) in list.enumerated() { flatten(item, "\(prefix).member.\(index + 1)", into: &form) }
        case let object as [String: Any]:
            for key in object.keys.sorted() { flatten(object[key]!, "\(prefix).\(key)", into: &form) }
        case let number as NSNumber:
            // JSON's true and false come as NSNumbers of type char; 1 must stay 1.
            let boolean = String(cString: number.objCType) == "c"
            form.append((prefix, boolean ? String(number.boolValue) : number.stringValue))
        default:
            form.append((prefix, "\(value)"))
        }
    }

    /// Words as they are, or one JSON list of strings.
    static func listWords(_ words: [String], _ option: String) throws -> [String] {
        guard words.count == 1, words[0].hasPrefix("[") else { return words }
        guard let list = (try? JSONSerialization.jsonObject(with: Data(words[0].utf8))) as? [Any] else {
            throw ControlCommand.Failure(message: "ctl: \(option) \(words[0]) is not a JSON list")
        }
        return list.map { "\($0)" }
    }

    /// The AWS CLI's shorthand (`Id=127.0.0.1,Port=9003`, one structure per word) or JSON, as field
    /// and value pairs in the order given.
    package static func structures(_ words: [String], fields: [String], option: String) throws -> [[(String, String)]] {
        if words.count == 1, let first = words.first, first.hasPrefix("[") || first.hasPrefix("{") {
            let parsed = try? JSONSerialization.jsonObject(with: Data(first.utf8))
            guard let items = (parsed as? [[String: Any]]) ?? (parsed as? [String: Any]).map({ [$0] }) else {
                throw ControlCommand.Failure(message: "ctl: \(option) \(first) is not a JSON list of objects")
            }
            return try items.map { item in
                try item.keys.sorted().map { key in
                    guard fields.contains(key) else {
                        throw ControlCommand.Failure(
                            message: "ctl: \(option): \(key) is not one of \(fields.joined(separator: ", "))")
                    }
                    let value = item[key]!
                    if let flag = value as? Bool { return (key, String(flag)) }
                    return (key, "\(value)")
                }
            }
        }
        return try words.map { word in
            try word.split(separator: ",").map { pair in
                let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2, fields.contains(kv[0]) else {
                    throw ControlCommand.Failure(
                        message:
                            "ctl: '\(pair)' in '\(word)' is not one of \(fields.map { "\($0)=…" }.joined(separator: ","))"
                    )
                }
                return (kv[0], kv[1])
            }
        }
    }
}
