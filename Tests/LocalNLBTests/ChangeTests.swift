import Foundation
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBModel

/// The change function on a model, without a socket: each change is refused the way AWS refuses it,
/// naming the parameter and leaving the model as it was, or gives the new model and its effects.
@Suite struct ChangeFunction {
    let model = try! load(document()).configuration

    func refusal(_ change: Change) -> APIError? {
        do {
            _ = try model.applying(change)
            return nil
        } catch {
            return error
        }
    }

    func object(_ fields: [String: String]) -> JSONValue { .object(fields.mapValues { .string($0) }) }

    func attributes(_ key: String, _ value: String) -> Given {
        Given("Attributes", .array([object(["Key": key, "Value": value])]))
    }

    @Test func registerTargetsChecksEachTargetAndAddsTheNewOnes() throws {
        let bad = refusal(
            .registerTargets(
                group: "web", targets: [Given("Targets.member.1", object(["Id": "127.0.0.1", "Port": "0"]))]))
        #expect(bad?.code == "ValidationError" && bad?.message.contains("Targets.member.1.Port") == true)
        #expect(refusal(.registerTargets(group: "nope", targets: []))?.code == "TargetGroupNotFound")
        let applied = try model.applying(
            .registerTargets(
                group: "web",
                targets: [
                    Given("Targets[0]", object(["Id": "127.0.0.1", "Port": "9001"])),
                    Given("Targets[1]", object(["Id": "127.0.0.2"])),
                ]))
        // 127.0.0.1:9001 was registered already: registering it again changes nothing (AWS).
        #expect(
            applied.model.targetGroups[0].targets.map(\.endpoint.description) == [
                "127.0.0.1:9001", "127.0.0.1:80", "127.0.0.2:80",
            ])
        #expect(applied.effects == [.publish, .persist])
    }

    @Test func deregisteringATargetThatIsNotRegisteredSucceedsAsAWSDocuments() throws {
        // AWS: "If the specified target does not exist, the action returns successfully."
        let mixed = try model.applying(
            .deregisterTargets(
                group: "web",
                targets: [
                    Given("Targets[0]", object(["Id": "127.0.0.1", "Port": "9001"])),
                    Given("Targets[1]", object(["Id": "127.0.0.9"])),
                ]))
        #expect(mixed.model.targetGroups[0].targets.map(\.endpoint.description) == ["127.0.0.1:80"])
        #expect(mixed.effects == [.publish, .persist])
        let none = try model.applying(
            .deregisterTargets(group: "web", targets: [Given("Targets[0]", object(["Id": "127.0.0.9"]))]))
        #expect(none.effects.isEmpty && none.model.targetGroups[0].targets.count == 2)
        // A malformed target is still refused, naming it.
        let bad = refusal(
            .deregisterTargets(group: "web", targets: [Given("Targets[0]", object(["Id": "127.0.0.1", "Port": "x"]))]))
        #expect(bad?.code == "ValidationError" && bad?.message.contains("Targets[0].Port") == true)
    }

    @Test func modifyTargetGroupAttributesRefusesWhatAWSRefuses() throws {
        // The file only warns about 5000 (outside AWS's 0-3600); a request is refused for it.
        let outside = refusal(
            .modifyTargetGroupAttributes(
                name: "web", attributes: attributes("deregistration_delay.timeout_seconds", "5000")))
        #expect(outside?.code == "ValidationError")
        #expect(
            outside?.message.contains(
                #"Attributes["deregistration_delay.timeout_seconds"]: "5000" is outside AWS's range 0-3600"#) == true)
        #expect(
            refusal(.modifyTargetGroupAttributes(name: "web", attributes: attributes("no.such.key", "1")))?.message
                .contains("no.such.key") == true)
        let applied = try model.applying(
            .modifyTargetGroupAttributes(
                name: "web", attributes: attributes("deregistration_delay.timeout_seconds", "7")))
        #expect(applied.model.targetGroups[0].deregistrationDelaySeconds == 7)
        #expect(
            applied.effects == [
                .log("target group web: deregistration_delay.timeout_seconds 300 → 7 (ModifyTargetGroupAttributes)"),
                .publish, .persist,
            ])
    }

    @Test func anApplicationLoadBalancersStickinessIsAWSsInvalidConfigurationRequest() throws {
        #expect(
            throws: APIError(
                code: "InvalidConfigurationRequest",
                message: "Stickiness type 'lb_cookie' is not supported for target groups with the TCP protocol")
        ) {
            try model.applying(
                .modifyTargetGroupAttributes(name: "web", attributes: attributes("stickiness.type", "lb_cookie")))
        }
        // A value that is no stickiness type at all stays a ValidationError naming the key.
        let other = refusal(
            .modifyTargetGroupAttributes(name: "web", attributes: attributes("stickiness.type", "nope")))
        #expect(other?.code == "ValidationError" && other?.message.contains("stickiness.type") == true)
        let kept = try model.applying(
            .modifyTargetGroupAttributes(name: "web", attributes: attributes("stickiness.type", "source_ip")))
        #expect(kept.model.targetGroups[0].stickinessType == "source_ip")
    }

    @Test func secondaryIPsPerSubnetIsAKnownLoadBalancerAttribute() throws {
        let set = try model.applying(
            .modifyLoadBalancerAttributes(
                name: "demo-nlb", attributes: attributes("secondary_ips.auto_assigned.per_subnet", "3")))
        #expect(set.model.loadBalancers[0].attributes.secondaryIPsPerSubnet == 3)
        #expect(
            LoadBalancerAttributes.attributeIndex.describe(set.model.loadBalancers[0].attributes)
                .contains { $0.key == "secondary_ips.auto_assigned.per_subnet" && $0.value == "3" })
        let eight = refusal(
            .modifyLoadBalancerAttributes(
                name: "demo-nlb", attributes: attributes("secondary_ips.auto_assigned.per_subnet", "8")))
        #expect(
            eight?.code == "ValidationError"
                && eight?.message.contains("secondary_ips.auto_assigned.per_subnet") == true)
        // The file reads it too, and refuses 8 alike.
        let file = document().replacingOccurrences(
            of: #""SubnetMappings""#,
            with:
                #""LoadBalancerAttributes": [ { "Key": "secondary_ips.auto_assigned.per_subnet", "Value": "8" } ], "SubnetMappings""#
        )
        #expect(problems(file).contains { $0.contains("secondary_ips.auto_assigned.per_subnet") })
    }

    @Test func modifyTargetGroupChecksHealthCheckRanges() throws {
        let longer = refusal(
            .modifyTargetGroup(
                name: "web",
                healthCheck: ["HealthCheckIntervalSeconds": .string("10"), "HealthCheckTimeoutSeconds": .string("20")]))
        #expect(longer?.message.contains("ModifyTargetGroup.HealthCheckTimeoutSeconds: 20 is longer than") == true)
        // In the file the same pair is a warning naming it (an error under --strict).
        let file = try load(document(group: #", "HealthCheckIntervalSeconds": 10, "HealthCheckTimeoutSeconds": 20"#))
        #expect(file.warnings.contains { $0.contains("HealthCheckTimeoutSeconds: 20 is longer than") })
        let fast = refusal(.modifyTargetGroup(name: "web", healthCheck: ["HealthCheckIntervalSeconds": .string("1")]))
        #expect(fast?.code == "ValidationError" && fast?.message.contains("HealthCheckIntervalSeconds") == true)
        let applied = try model.applying(
            .modifyTargetGroup(name: "web", healthCheck: ["HealthyThresholdCount": .string("2")]))
        #expect(applied.model.targetGroups[0].healthCheck.healthyThreshold == 2)
    }

    @Test func createTargetGroupNamesTheParameterAndIsIdempotent() throws {
        func create(_ fields: [String: String]) -> Change {
            .createTargetGroup(Given("CreateTargetGroup", object(fields)))
        }
        let base = ["Protocol": "TCP", "Port": "80", "TargetType": "ip"]
        #expect(
            refusal(create(base.merging(["Name": "p", "Port": "70000"]) { $1 }))?.message.contains(
                "CreateTargetGroup.Port") == true)
        for name in ["bad-", "-bad", "a_b", String(repeating: "n", count: 33)] {
            #expect(
                refusal(create(base.merging(["Name": name]) { $1 }))?.message.contains("CreateTargetGroup.Name")
                    == true, "\(name)")
        }
        let made = try model.applying(create(base.merging(["Name": "api"]) { $1 }))
        #expect(made.model.targetGroups.map(\.name) == ["web", "api"])
        #expect(made.effects.contains(.log("target group api added (CreateTargetGroup)")))
        // The same settings again return the group; other settings under its name are refused.
        #expect(try made.model.applying(create(base.merging(["Name": "api"]) { $1 })).effects.isEmpty)
        #expect(
            throws: APIError(
                code: "DuplicateTargetGroupName", message: "A target group with the same name 'api' exists")
        ) {
            try made.model.applying(create(base.merging(["Name": "api", "Port": "81"]) { $1 }))
        }
    }

    @Test func aTargetGroupKeepsItsIpAddressTypeAndTheCallersVpcId() throws {
        let fields = [
            "Name": "v6", "Protocol": "TCP", "Port": "80", "TargetType": "ip", "IpAddressType": "ipv6",
            "VpcId": "vpc-0abc",
        ]
        let made = try model.applying(.createTargetGroup(Given("CreateTargetGroup", object(fields))))
        let group = try #require(made.model.targetGroups.last)
        #expect(group.ipAddressType == "ipv6" && group.vpcID == "vpc-0abc")
        // Written back and read again (a --persist restart) they stay.
        #expect(try load(made.model.document.rendered).configuration.targetGroups.last?.ipAddressType == "ipv6")
        let bad = refusal(
            .createTargetGroup(
                Given("CreateTargetGroup", object(fields.merging(["IpAddressType": "dualstack"]) { $1 }))))
        #expect(bad?.code == "ValidationError" && bad?.message.contains("CreateTargetGroup.IpAddressType") == true)
    }

    @Test func deleteTargetGroupRefusesAGroupInUse() throws {
        #expect(refusal(.deleteTargetGroup(name: "web"))?.code == "ResourceInUse")
        let unused = try model.applying(.deleteListener(loadBalancer: "demo-nlb", port: 8081)).model
        #expect(try unused.applying(.deleteTargetGroup(name: "web")).model.targetGroups.isEmpty)
    }

    @Test func createListenerRefusesWhatLocalNLBDoesNotServeAndAPortTaken() throws {
        func listener(_ port: String, _ proto: String, group: String = "web") -> Change {
            .createListener(
                loadBalancer: "demo-nlb",
                Given(
                    "CreateListener",
                    .object([
                        "Port": .string(port), "Protocol": .string(proto),
                        "DefaultActions": .array([object(["Type": "forward", "TargetGroupName": group])]),
                    ])))
        }
        // A TLS listener needs its certificate.
        let tls = refusal(listener("8443", "TLS"))
        #expect(tls?.code == "ValidationError" && tls?.message.contains("CreateListener.Certificates: missing") == true)
        #expect(refusal(listener("8081", "UDP"))?.code == "DuplicateListener")
        #expect(refusal(listener("8082", "UDP"))?.code == "IncompatibleProtocols")
        #expect(refusal(listener("8082", "TCP", group: "nope"))?.message.contains("nope") == true)
        #expect(try model.applying(listener("8081", "TCP")).effects.isEmpty)  // the same listener again
        let made = try model.applying(listener("8082", "TCP"))
        #expect(made.model.listeners.map(\.port) == [8081, 8082])
    }

    @Test func modifyListenerKeepsWhatItIsNotGiven() throws {
        let tls = refusal(
            .modifyListener(
                loadBalancer: "demo-nlb", port: 8081,
                Given(
                    "ModifyListener",
                    .object([
                        "Port": .string("8081"), "Protocol": .string("TLS"),
                        "DefaultActions": .array([object(["Type": "forward", "TargetGroupName": "web"])]),
                    ]))))
        #expect(tls?.message.contains("ModifyListener.Certificates: missing") == true)
        #expect(
            refusal(.modifyListener(loadBalancer: "demo-nlb", port: 1, Given("ModifyListener", .object([:]))))?.code
                == "ListenerNotFound")
    }

    @Test func listenerAttributesUnderAWSRanges() throws {
        let short = refusal(
            .modifyListenerAttributes(
                loadBalancer: "demo-nlb", port: 8081, attributes: attributes("tcp.idle_timeout.seconds", "5")))
        #expect(short?.message.contains("outside AWS's range 60-6000") == true)
        let applied = try model.applying(
            .modifyListenerAttributes(
                loadBalancer: "demo-nlb", port: 8081, attributes: attributes("tcp.idle_timeout.seconds", "120")))
        #expect(applied.model.listeners[0].idleTimeoutSeconds == 120)
        #expect(
            applied.effects == [
                .log("listener demo-nlb:8081: tcp.idle_timeout.seconds 350 → 120 (ModifyListenerAttributes)"), .publish,
                .persist,
            ])
    }

    @Test func deleteListenerResetsItsFlows() throws {
        let applied = try model.applying(.deleteListener(loadBalancer: "demo-nlb", port: 8081))
        #expect(applied.model.listeners.isEmpty)
        #expect(applied.effects == [.resetFlowsOfClosedListeners, .publish, .persist])
        #expect(refusal(.deleteListener(loadBalancer: "demo-nlb", port: 8081 + 1))?.code == "ListenerNotFound")
    }

    @Test func loadBalancersAreMadeOnFreeAddressesAndProtectedFromDeletion() throws {
        var request = LoadBalancerRequest()
        request.name = "second"
        request.type = "gateway"
        #expect(
            refusal(.createLoadBalancer(request))?.message.contains("a gateway load balancer is not emulated") == true)
        request.type = "network"
        #expect(refusal(.createLoadBalancer(request))?.message.contains("At least one subnet") == true)
        request.subnets = ["subnet-a"]
        request.name = "internal-x"
        #expect(refusal(.createLoadBalancer(request))?.message.contains("internal-") == true)
        request.name = "second"
        request.securityGroups = ["sg-0123456789abcdef0"]
        let made = try model.applying(.createLoadBalancer(request))
        // Security groups are kept as given (and described), not enforced yet.
        #expect(made.model.loadBalancers[1].securityGroups == ["sg-0123456789abcdef0"])
        // 127.0.0.1 is the first load balancer's node: the next free loopback address is the new one's.
        #expect(made.model.loadBalancers[1].nodes.first?.ipv4 == .v4(IPv4Address(127, 0, 0, 2)))
        #expect(made.effects.contains(.loadBalancerCreated("second")))
        var protected = made.model
        protected.loadBalancers[1].attributes.deletionProtection = true
        #expect(throws: APIError.self) { try protected.applying(.deleteLoadBalancer(name: "second")) }
        #expect(try made.model.applying(.deleteLoadBalancer(name: "second")).model.loadBalancers.count == 1)
        // A load balancer that is not there: AWS's delete is idempotent.
        #expect(try model.applying(.deleteLoadBalancer(name: "gone")).effects.isEmpty)
    }

    @Test func loadBalancerAttributesUnderAWSRules() throws {
        let bad = refusal(
            .modifyLoadBalancerAttributes(
                name: "demo-nlb", attributes: attributes("load_balancing.cross_zone.enabled", "maybe")))
        #expect(bad?.code == "ValidationError" && bad?.message.contains("load_balancing.cross_zone.enabled") == true)
        let applied = try model.applying(
            .modifyLoadBalancerAttributes(
                name: "demo-nlb", attributes: attributes("deletion_protection.enabled", "true")))
        #expect(applied.model.loadBalancers[0].attributes.deletionProtection)
    }

    @Test func tagsAreCheckedOnEveryResourceBeforeAnyChanges() throws {
        let resources: [TaggedResource] = [.targetGroup("web"), .listener(loadBalancer: "demo-nlb", port: 8081)]
        #expect(refusal(.addTags(resources, tags: [["Key": "a"], ["Key": "a"]]))?.code == "DuplicateTagKeys")
        #expect(refusal(.addTags([.targetGroup("nope")], tags: [["Key": "a"]]))?.code == "TargetGroupNotFound")
        let tagged = try model.applying(.addTags(resources, tags: [["Key": "team", "Value": "edge"]]))
        #expect(tagged.model.targetGroups[0].tags.map(\.key) == ["team"])
        // Tags change no flow: persisted, nothing published.
        #expect(tagged.effects == [.persist])
        let untagged = try tagged.model.applying(.removeTags(resources, keys: ["team"]))
        #expect(untagged.model.listeners[0].tags.isEmpty)
    }

    @Test func aReplacedModelSaysWhatChangedAndIsNotPersisted() throws {
        var new = model
        new.targetGroups[0].deregistrationDelaySeconds = 9
        let applied = try model.applying(.replace(new))
        #expect(
            applied.effects == [
                .log("target group web: deregistration_delay.timeout_seconds 300 → 9 (SIGHUP)"), .publish,
            ])
    }
}

/// ARC's zonal shifts as changes: started, refused as ARC refuses them, changed, cancelled, expired.
@Suite struct ZonalShiftChanges {
    var model: Configuration {
        var model = try! load(document()).configuration
        model.loadBalancers[0].attributes.zonalShift = true
        return model
    }
    var arn: String { model.names.loadBalancer("demo-nlb") }
    var zone: String { model.zones(of: model.loadBalancers[0]).sorted()[0] }

    func start(_ zone: String, _ expires: String = "1h", id: String = "s1", at now: UInt64 = 0) -> Change {
        .startZonalShift(
            ZonalShiftRequest(
                resourceIdentifier: arn, awayFrom: zone, expiresIn: expires, comment: "", id: id, wallClock: 1000,
                now: now, timeScale: 1))
    }

    @Test func aShiftIsRefusedAsARCRefusesIt() throws {
        #expect(
            throws: APIError(
                code: "ValidationException",
                message: "expiresIn 4d: a number of minutes or hours (30m, 2h), at most 3 days",
                reason: "InvalidExpiresIn")
        ) {
            try model.applying(start(zone, "4d"))
        }
        #expect(throws: APIError.self) { try model.applying(start("nowhere-1z")) }
        var off = model
        off.loadBalancers[0].attributes.zonalShift = false
        #expect(throws: APIError.self) { try off.applying(start(zone)) }
        let started = try model.applying(start(zone)).model
        do {
            _ = try started.applying(start(zone, id: "s2"))
            Issue.record("a second shift was started")
        } catch {
            #expect(error.code == "ConflictException" && error.status == 409 && error.zonalShiftId == "s1")
        }
    }

    @Test func aShiftEndsByCancelOrByItsTimeAndAReloadKeepsIt() throws {
        let started = try model.applying(start(zone, "30m"))
        #expect(
            started.effects == [.log("zonal shift s1: load balancer demo-nlb away from \(zone) for 30m"), .publish])
        let shifts = started.model.zonalShifts
        #expect(shifts.count == 1 && shifts[0].expiryTime == 1000 + 1800 && shifts[0].deadline == 1800 * 1_000_000_000)
        // A reload of the file keeps the running shifts.
        #expect(try started.model.applying(.replace(model)).model.zonalShifts.count == 1)
        // Before its deadline nothing expires; at it, the shift does, once.
        #expect(try started.model.applying(.expireZonalShifts(now: 1_799_000_000_000)).effects.isEmpty)
        let expired = try started.model.applying(.expireZonalShifts(now: 1800 * 1_000_000_000))
        #expect(expired.model.zonalShifts[0].status == "EXPIRED")
        #expect(expired.effects == [.log("zonal shift s1: expired"), .publish])
        #expect(throws: APIError.self) { try expired.model.applying(.cancelZonalShift(id: "s1")) }
        let cancelled = try started.model.applying(.cancelZonalShift(id: "s1"))
        #expect(cancelled.model.zonalShifts[0].status == "CANCELED")
        #expect(throws: APIError.self) { try cancelled.model.applying(.cancelZonalShift(id: "nope")) }
    }
}

/// What a new user mistypes gets an answer that names the fix.
@Suite struct Typos {
    @Test func aMistypedAttributeKeyOffersTheNearestKnownOne() throws {
        let file = problems(document(attributes: #"{ "Key": "deregistration_delay.timeout_second", "Value": "5" }"#))
        #expect(file.contains { $0.hasSuffix(#"did you mean "deregistration_delay.timeout_seconds"?"#) }, "\(file)")
        let model = try load(document()).configuration
        do {
            _ = try model.applying(
                .modifyLoadBalancerAttributes(
                    name: "demo-nlb",
                    attributes: Given(
                        "Attributes",
                        .array([.object(["Key": .string("deletion_protection.enable"), "Value": .string("true")])]))))
            Issue.record("a mistyped key was taken")
        } catch {
            #expect(error.message.contains(#"did you mean "deletion_protection.enabled"?"#), "\(error.message)")
        }
        // A key nothing resembles gets no guess.
        let far = problems(document(attributes: #"{ "Key": "completely.different", "Value": "5" }"#))
        #expect(!far.joined().contains("did you mean"))
    }

    @Test func theProtocolErrorListsOnlyWhatIsServed() {
        let found = problems(document().replacingOccurrences(of: #""Protocol": "TCP","#, with: #""Protocol": "SCTP","#))
        #expect(
            found.contains {
                $0.contains(
                    #""SCTP" is not a protocol localnlb serves (TCP, UDP, TCP_UDP, TLS for network load balancers; "#
                        + "HTTP, HTTPS for application ones)")
            }, "\(found)")
    }

    @Test func aTargetGroupNameTooLongGetsAWSsText() {
        let name = String(repeating: "n", count: 33)
        let found = problems(document().replacingOccurrences(of: #""Name": "web""#, with: #""Name": "\#(name)""#))
        #expect(
            found.contains { $0.contains("Target group name '\(name)' cannot be longer than '32' characters") },
            "\(found)")
    }

    @Test func aDirectoryGivenAsTheFileSaysSo() throws {
        let directory = NSTemporaryDirectory() + "localnlb-dir-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: ConfigurationError.self) { try ConfigLoader.load(path: directory) }
        do {
            _ = try ConfigLoader.load(path: directory)
        } catch {
            #expect("\(error)" == "\(directory): a directory, not a file: give the configuration file in it")
        }
    }
}

/// One file's listener, control API and DNS responder on one address and port: refused at once, naming
/// both, before anything would fail to open.
@Suite struct AddressClashes {
    func file(admin: String?, dns: String?, listener: Int = 8081) -> String {
        var text = document().replacingOccurrences(of: "\"Port\": 8081", with: "\"Port\": \(listener)")
        var extra: [String] = []
        if let admin { extra.append(#""Admin": { "Address": "\#(admin)" }"#) }
        if let dns { extra.append(#""Dns": { "Address": "\#(dns)" }"#) }
        if !extra.isEmpty {
            text = text.replacingOccurrences(
                of: "{\n  \"LoadBalancer\"", with: "{ " + extra.joined(separator: ", ") + ",\n  \"LoadBalancer\"")
        }
        return text
    }

    @Test func aListenerOnTheControlAPIsAddressIsNamed() {
        let found = problems(file(admin: "127.0.0.1:8081", dns: nil))
        #expect(
            found.contains {
                $0.hasPrefix("Listeners[0].Port: 127.0.0.1:8081 is also where Admin.Address 127.0.0.1:8081 listens")
            }, "\(found)")
        // A wildcard address overlaps every address of its family.
        #expect(!problems(file(admin: "0.0.0.0:8081", dns: nil)).isEmpty)
        #expect(problems(file(admin: "127.0.0.1:8082", dns: nil)).isEmpty)
    }

    @Test func theDNSResponderClashesWithAListenerAndWithTheControlAPI() {
        #expect(
            problems(file(admin: nil, dns: "127.0.0.1:8081")).contains { $0.contains("Dns.Address 127.0.0.1:8081") })
        let both = problems(file(admin: "127.0.0.1:9999", dns: "127.0.0.1:9999"))
        #expect(both.contains { $0.hasPrefix("Dns.Address: 127.0.0.1:9999 is also where the control API") }, "\(both)")
    }

    @Test func addressesTheFileDoesNotGiveAreLeftToTheFlags() {
        // A template's daemon: no Admin in the file, a listener on the default control port. serve's
        // --admin-address moves the control API; the file alone is not refused for it.
        #expect(problems(file(admin: nil, dns: nil, listener: 8404)).isEmpty)
    }
}

/// The changes to a load balancer after it is made (SetSubnets, SetIpAddressType, SetSecurityGroups,
/// ModifyCapacityReservation) and AWS's quotas, on a model with two zones.
@Suite struct LoadBalancerChanges {
    let model = try! load(
        """
        { "Subnets": [
            { "SubnetId": "subnet-a", "AvailabilityZone": "us-east-1a", "CidrBlock": "127.0.1.0/24" },
            { "SubnetId": "subnet-b", "AvailabilityZone": "us-east-1b", "CidrBlock": "127.0.2.0/24" },
            { "SubnetId": "subnet-b2", "AvailabilityZone": "us-east-1b", "CidrBlock": "127.0.3.0/24" } ],
          "LoadBalancer": { "Name": "z", "SecurityGroups": ["sg-1"],
            "SubnetMappings": [ { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.1.1" } ] },
          "Listeners": [ { "Port": 80, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
          "TargetGroups": [ { "Name": "web", "Port": 80, "TargetType": "ip", "Targets": [ { "Id": "127.0.1.10" } ] } ] }
        """
    ).configuration

    func refusal(_ change: Change) -> APIError? {
        do {
            _ = try model.applying(change)
            return nil
        } catch {
            return error
        }
    }

    @Test func subnetsAddAndRemoveNodes() throws {
        let added = try model.applying(
            .setSubnets(name: "z", subnets: ["subnet-a", "subnet-b"], mappings: [], ipAddressType: nil))
        let nodes = added.model.loadBalancers[0].nodes
        // The kept node keeps its address; the new one takes its subnet's first free address, in its zone.
        #expect(nodes.map { $0.ipv4?.description } == ["127.0.1.1", "127.0.2.1"])
        #expect(Set(nodes.map(added.model.zone(of:))) == ["us-east-1a", "us-east-1b"])
        #expect(added.effects.contains(.log("load balancer z: node in subnet-b (us-east-1b) on 127.0.2.1")))
        let removed = try added.model.applying(
            .setSubnets(name: "z", subnets: ["subnet-b"], mappings: [], ipAddressType: nil))
        #expect(removed.model.loadBalancers[0].nodes.map(\.subnetID) == ["subnet-b"])
        #expect(removed.effects.contains(.resetFlowsOfClosedListeners))
        // One subnet per zone, as AWS has it; a subnet there is none of is SubnetNotFound.
        let twice = refusal(
            .setSubnets(name: "z", subnets: ["subnet-b", "subnet-b2"], mappings: [], ipAddressType: nil))
        #expect(twice?.code == "InvalidConfigurationRequest" && twice?.message.contains("one subnet per") == true)
        #expect(
            refusal(.setSubnets(name: "z", subnets: ["subnet-x"], mappings: [], ipAddressType: nil))?.code
                == "SubnetNotFound")
        #expect(
            refusal(.setSubnets(name: "z", subnets: [], mappings: [], ipAddressType: nil))?.code == "ValidationError")
        #expect(
            refusal(.setSubnets(name: "gone", subnets: ["subnet-a"], mappings: [], ipAddressType: nil))?.code
                == "LoadBalancerNotFound")
    }

    @Test func ipAddressTypeAndSecurityGroups() throws {
        #expect(refusal(.setIpAddressType(name: "z", type: "dualstack"))?.code == "InvalidConfigurationRequest")
        #expect(refusal(.setIpAddressType(name: "z", type: nil))?.code == "ValidationError")
        var six = model
        six.loadBalancers[0].nodes[0].ipv6 = IPAddress("fd00::1")
        #expect(
            try six.applying(.setIpAddressType(name: "z", type: "dualstack")).model.loadBalancers[0].ipAddressType
                == "dualstack")
        let set = try model.applying(.setSecurityGroups(name: "z", groups: ["sg-2"], enforcePrivateLink: "off"))
        #expect(set.model.loadBalancers[0].securityGroups == ["sg-2"])
        #expect(set.model.loadBalancers[0].enforceInboundRulesOnPrivateLink == "off")
        #expect(
            refusal(.setSecurityGroups(name: "z", groups: ["sg-2"], enforcePrivateLink: "maybe"))?.code
                == "ValidationError")
        #expect(
            refusal(.setSecurityGroups(name: "z", groups: ["sg-2", "sg-2"], enforcePrivateLink: nil))?.code
                == "ValidationError")
        var without = model
        without.loadBalancers[0].madeWithSecurityGroups = false
        #expect(throws: APIError.self) {
            try without.applying(.setSecurityGroups(name: "z", groups: ["sg-2"], enforcePrivateLink: nil))
        }
    }

    @Test func capacityReservationsKeepAWSRules() throws {
        func reserve(_ model: Configuration, _ units: String?, reset: Bool = false, at now: UInt64) throws(APIError)
            -> Configuration
        {
            try model.applying(
                .modifyCapacityReservation(
                    name: "z", capacityUnits: units, reset: reset, wallClock: 1000, now: now, timeScale: 1)
            ).model
        }
        let first = try reserve(model, "3000", at: 0)
        #expect(first.loadBalancers[0].capacityReservation?.readyAt == 500_000_000)
        #expect(
            throws: APIError(
                code: "CapacityReservationPending",
                message: "There is a pending capacity reservation: wait until it is provisioned")
        ) {
            try reserve(first, "4000", at: 100)
        }
        #expect(
            refusal(
                .modifyCapacityReservation(
                    name: "z", capacityUnits: nil, reset: false, wallClock: 0, now: 0, timeScale: 1))?.code
                == "ValidationError")
        #expect(
            refusal(
                .modifyCapacityReservation(
                    name: "z", capacityUnits: "0", reset: false, wallClock: 0, now: 0, timeScale: 1))?.code
                == "ValidationError")
        #expect(
            refusal(
                .modifyCapacityReservation(
                    name: "z", capacityUnits: "45001", reset: false, wallClock: 0, now: 0, timeScale: 1))?.code
                == "CapacityUnitsLimitExceeded")
        let second = try reserve(first, "2000", at: 1_000_000_000)
        let third = try reserve(second, nil, reset: true, at: 2_000_000_000)
        #expect(third.loadBalancers[0].capacityReservation?.capacityUnits == 0)
        // Two decreases a day (a reset is one): the day's count outlives the reset.
        let again = try reserve(third, "5000", at: 3_000_000_000)
        #expect(throws: APIError.self) { try reserve(again, "100", at: 4_000_000_000) }
    }

    /// The file (and a template) may give the reservation and the PrivateLink setting, checked alike.
    @Test func theFileGivesCapacityAndPrivateLinkEnforcement() throws {
        func with(_ extra: String) -> String {
            document().replacingOccurrences(of: #""Name": "demo-nlb","#, with: #""Name": "demo-nlb", "# + extra + ",")
        }
        let loaded = try load(
            with(
                #""SecurityGroups": ["sg-1"], "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic": "off", "#
                    + #""MinimumLoadBalancerCapacity": { "CapacityUnits": 3000 }"#)
        ).configuration.loadBalancers[0]
        #expect(loaded.capacityReservation?.capacityUnits == 3000 && loaded.enforceInboundRulesOnPrivateLink == "off")
        #expect(
            problems(with(#""MinimumLoadBalancerCapacity": { "CapacityUnits": 0 }"#)) == [
                "LoadBalancer.MinimumLoadBalancerCapacity.CapacityUnits: 0 is out of range (1-45000)"
            ])
        #expect(
            problems(with(#""EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic": "maybe""#)) == [
                "LoadBalancer.EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic: \"maybe\" is not one of on, off"
            ])
    }

    /// `Admin.AccountLimits` raises a quota as AWS's quota increase does; an unknown name is named.
    @Test func quotasAreRaisedByName() throws {
        func with(_ limits: String) -> String {
            document().replacingOccurrences(
                of: #""LoadBalancer":"#, with: #""Admin": { "AccountLimits": "# + limits + #" }, "LoadBalancer":"#)
        }
        let raised = try load(with(#"{ "listeners-per-network-load-balancer": 80 }"#)).configuration
        #expect(raised.accountLimit("listeners-per-network-load-balancer") == 80)
        #expect(raised.accountLimit("network-load-balancers") == 50)
        #expect(
            problems(with(#"{ "listeners-per-network-loadbalancer": 80 }"#)) == [
                "Admin.AccountLimits.listeners-per-network-loadbalancer: not a limit DescribeAccountLimits names; "
                    + "did you mean \"listeners-per-network-load-balancer\"?"
            ])
        #expect(problems(with(#"{ "target-groups": 0 }"#)).first?.contains("Admin.AccountLimits.target-groups") == true)
        #expect(problems(with("[]")) == ["Admin.AccountLimits: a list is not an object of limit names and maximums"])
    }

    /// An API writer is held to AWS's quotas; a file past them loads with a warning.
    @Test func quotasHoldForAPIWriters() throws {
        var full = model
        for port in 1...49 {
            var listener = full.listeners[0]
            listener.port = UInt16(1000 + port)
            full.listeners.append(listener)
        }
        let given = Given(
            "Listener",
            .object([
                "Port": .number(2000), "Protocol": .string("TCP"),
                "DefaultActions": .array([.object(["Type": .string("forward"), "TargetGroupName": .string("web")])]),
            ]))
        let over = try? full.applying(.createListener(loadBalancer: "z", given))
        #expect(over == nil)
        do {
            _ = try full.applying(.createListener(loadBalancer: "z", given))
        } catch {
            #expect(error.code == "TooManyListeners" && error.message.contains("listeners on z: 50"))
        }
        // Changes that do not add to a quota pass even when a file put the model past it.
        var past = full
        past.listeners.append(full.listeners[0])
        past.listeners[50].port = 3000
        #expect(throws: Never.self) {
            try past.applying(.setSecurityGroups(name: "z", groups: ["sg-9"], enforcePrivateLink: nil))
        }
    }
}

/// Instance targets by instance id: the address behind an id is what the file, the JSON API or a
/// template declares; an id nobody declared is AWS's InvalidTarget.
@Suite struct InstanceTargets {
    let model = try! load(
        """
        { "Instances": [ { "InstanceId": "i-0123456789abcdef0", "PrivateIpAddress": "127.0.0.5" } ],
          "LoadBalancer": { "Name": "i", "SubnetMappings": [ { "SubnetId": "s", "PrivateIPv4Address": "127.0.0.1" } ] },
          "Listeners": [ { "Port": 80, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
          "TargetGroups": [ { "Name": "web", "Port": 80, "TargetType": "instance",
            "Targets": [ { "Id": "i-0123456789abcdef0" } ] } ] }
        """
    ).configuration

    func target(_ id: String, port: String? = nil) -> Given {
        var fields: [String: JSONValue] = ["Id": .string(id)]
        if let port { fields["Port"] = .string(port) }
        return Given("Targets.member.1", .object(fields))
    }

    @Test func anIdStandsForItsDeclaredAddress() throws {
        #expect(model.targetGroups[0].targets.map(\.endpoint.description) == ["127.0.0.5:80"])
        let unknown = #expect(throws: APIError.self) {
            try model.applying(.registerTargets(group: "web", targets: [target("i-0fedcba9876543210")]))
        }
        #expect(unknown?.code == "InvalidTarget" && unknown?.message.contains("i-0fedcba9876543210") == true)
        let malformed = #expect(throws: APIError.self) {
            try model.applying(.registerTargets(group: "web", targets: [target("i-0abc")]))
        }
        #expect(malformed?.code == "ValidationError" && malformed?.message.contains("not an instance id") == true)
        // Declared through the API, then registered by id alone.
        let declared = try model.applying(
            .putInstance(
                Given(
                    "",
                    .object(["InstanceId": .string("i-0fedcba9876543210"), "PrivateIpAddress": .string("127.0.0.6")]))))
        let registered = try declared.model.applying(
            .registerTargets(group: "web", targets: [target("i-0fedcba9876543210", port: "81")]))
        #expect(
            registered.model.targetGroups[0].targets.map(\.endpoint.description) == ["127.0.0.5:80", "127.0.0.6:81"])
        // Its address cannot move, nor the declaration go, while it is registered.
        #expect(throws: APIError.self) {
            try registered.model.applying(
                .putInstance(
                    Given(
                        "",
                        .object([
                            "InstanceId": .string("i-0fedcba9876543210"), "PrivateIpAddress": .string("127.0.0.7"),
                        ]))))
        }
        #expect(throws: APIError.self) { try registered.model.applying(.deleteInstance(id: "i-0fedcba9876543210")) }
        let gone = try registered.model.applying(
            .deregisterTargets(group: "web", targets: [target("i-0fedcba9876543210", port: "81")]))
        #expect(gone.model.targetGroups[0].targets.count == 1)
        #expect(try gone.model.applying(.deleteInstance(id: "i-0fedcba9876543210")).model.instances.count == 1)
        // Deregistering an instance nobody declared succeeds and changes nothing, as AWS documents.
        #expect(
            try model.applying(.deregisterTargets(group: "web", targets: [target("i-0fedcba9876543299")])).effects
                .isEmpty)
        // A malformed id is refused where it is declared too.
        #expect(throws: APIError.self) {
            try model.applying(
                .putInstance(
                    Given("", .object(["InstanceId": .string("i-1"), "PrivateIpAddress": .string("127.0.0.6")]))))
        }
    }

    @Test func theFileAndTemplatesDeclareInstances() throws {
        #expect(
            problems(
                """
                { "Instances": [ { "InstanceId": "i-12345678" } ],
                  "TargetGroups": [ { "Name": "web", "Port": 80, "TargetType": "instance", "Targets": [ { "Id": "i-87654321" } ] } ] }
                """) == [
                    "Instances[0].PrivateIpAddress: missing: the address instance i-12345678 is reached on",
                    "TargetGroups[0].Targets[0].Id: instance i-87654321 is not known: declare it in Instances (InstanceId, "
                        + "PrivateIpAddress), with PUT /instances/i-87654321, or give the target a PrivateIpAddress",
                ])
        let template = """
            { "Resources": {
                "Web": { "Type": "AWS::EC2::Instance", "Properties": { "PrivateIpAddress": "127.0.0.9", "ImageId": "ami-1" } },
                "Bare": { "Type": "AWS::EC2::Instance", "Properties": { "ImageId": "ami-1" } },
                "Tg": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": { "Port": 80, "Protocol": "TCP",
                    "TargetType": "instance", "Targets": [ { "Id": { "Ref": "Web" } } ] } } } }
            """
        let loaded = try load(template)
        let instance = try #require(loaded.configuration.instances.first)
        #expect(InstanceConfiguration.isInstanceID(instance.instanceID))
        #expect(loaded.configuration.targetGroups[0].targets.map(\.id) == [instance.instanceID])
        #expect(loaded.configuration.targetGroups[0].targets.map(\.address.description) == ["127.0.0.9"])
        #expect(loaded.notes.contains { $0.hasPrefix("template: Bare give no PrivateIpAddress") })
        // The same id on every load.
        #expect(try load(template).configuration.instances == loaded.configuration.instances)
    }
}
