import ProxyProtocol

/// AWS's refusal of a change or a request: its error code, a message naming the parameter and the
/// value, and the HTTP status. The Query API answers it in XML, the JSON API in JSON.
package struct APIError: Error, Equatable, Sendable {
    package var code: String
    package var message: String
    package var status = 400
    /// ARC's `reason` (its errors carry one: `InvalidAz`, `ZonalShiftAlreadyExists`, …).
    package var reason: String?
    /// ARC's ConflictException names the shift already active.
    package var zonalShiftId: String?

    package init(
        code: String, message: String, status: Int = 400, reason: String? = nil, zonalShiftId: String? = nil
    ) {
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason
        self.zonalShiftId = zonalShiftId
    }

    package static func validation(_ message: String) -> APIError {
        APIError(code: "ValidationError", message: message)
    }
}

/// A value as a request gave it, and the parameter that names it in that request's own syntax
/// (`Targets.member.2` in a Query form, `Targets[1]` in a JSON body): the validator reads the value
/// and names the parameter in every problem it finds.
package struct Given: Sendable {
    package var path: String
    package var value: JSONValue

    package init(_ path: String, _ value: JSONValue) {
        self.path = path
        self.value = value
    }
}

/// A resource that carries tags, by name.
package enum TaggedResource: Equatable, Sendable {
    case loadBalancer(String)
    case targetGroup(String)
    case listener(loadBalancer: String, port: UInt16)
}

/// What `CreateLoadBalancer` asks for, as given (docs/api.md §12).
package struct LoadBalancerRequest: Sendable {
    package var name: String?
    package var type: String?
    /// One per SubnetMapping (SubnetId, PrivateIPv4Address, IPv6Address, AllocationId).
    package var subnetMappings: [[String: String]] = []
    package var subnets: [String] = []
    package var scheme: String?
    package var ipAddressType: String?
    package var securityGroups: [String] = []
    package var tags: [[String: String]] = []
    /// The request's region (its SigV4 scope), nil for the home region.
    package var region: String?
    /// Parameters AWS has that localnlb does not emulate, by name, when given.
    package var unsupported: [String] = []

    package init() {}
}

/// One change to the load balancer, whichever writer asks for it: the file at start or on SIGHUP, a
/// JSON API call, a Query API action. Values come as the request gave them; `Configuration.applying`
/// checks them with the file's validator under AWS's ranges, so every writer is refused alike.
package enum Change: Sendable {
    /// The whole model, as a file gives it (checked by `ConfigLoader`).
    case replace(Configuration)
    case createLoadBalancer(LoadBalancerRequest)
    case deleteLoadBalancer(name: String)
    case modifyLoadBalancerAttributes(name: String, attributes: Given)
    /// SetSecurityGroups: the groups, and `EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic`.
    case setSecurityGroups(name: String, groups: [String], enforcePrivateLink: String?)
    case setIpAddressType(name: String, type: String?)
    /// SetSubnets: `Subnets` or `SubnetMappings` (as CreateLoadBalancer takes them), and an IpAddressType.
    case setSubnets(name: String, subnets: [String], mappings: [[String: String]], ipAddressType: String?)
    /// ModifyCapacityReservation: `MinimumLoadBalancerCapacity.CapacityUnits`, or a reset; `now` on the
    /// control plane's clock, `wallClock` in seconds since the epoch.
    case modifyCapacityReservation(
        name: String, capacityUnits: String?, reset: Bool, wallClock: Double, now: UInt64, timeScale: Double)
    /// A target group in the file's shape (`TargetGroups[n]`).
    /// `region`: the request's (its SigV4 scope), nil for the home region.
    case createTargetGroup(Given, region: String? = nil)
    case deleteTargetGroup(name: String)
    /// Health-check settings in the file's shape (`HealthCheckIntervalSeconds`, …).
    case modifyTargetGroup(name: String, healthCheck: [String: JSONValue])
    case modifyTargetGroupAttributes(name: String, attributes: Given)
    case registerTargets(group: String, targets: [Given])
    /// CreateTrustStore (in the file's shape) and DeleteTrustStore.
    case createTrustStore(Given)
    case deleteTrustStore(name: String)
    /// AddTrustStoreRevocations (each a CRL's bucket and key) and RemoveTrustStoreRevocations (by id).
    case addTrustStoreRevocations(name: String, revocations: [(bucket: String, key: String)])
    case removeTrustStoreRevocations(name: String, ids: [Int])
    /// An instance's address declared (`{InstanceId, PrivateIpAddress, AvailabilityZone}`), or removed.
    case putInstance(Given)
    case deleteInstance(id: String)
    case deregisterTargets(group: String, targets: [Given])
    /// A listener in the file's shape (`Listeners[n]`), on `loadBalancer`.
    case createListener(loadBalancer: String, Given)
    case modifyListener(loadBalancer: String, port: UInt16, Given)
    case modifyListenerAttributes(loadBalancer: String, port: UInt16, attributes: Given)
    case deleteListener(loadBalancer: String, port: UInt16)
    /// Listener rules (CreateRule, ModifyRule, DeleteRule, SetRulePriorities), a rule by its id.
    case createRule(loadBalancer: String, port: UInt16, Given)
    case modifyRule(loadBalancer: String, port: UInt16, id: String, conditions: Given?, actions: Given?)
    case deleteRule(loadBalancer: String, port: UInt16, id: String)
    case setRulePriorities([(loadBalancer: String, port: UInt16, id: String, priority: Int)])
    /// A TLS listener's certificate list for SNI (the default stays first).
    case addListenerCertificates(loadBalancer: String, port: UInt16, arns: [String])
    case removeListenerCertificates(loadBalancer: String, port: UInt16, arns: [String])
    case addTags([TaggedResource], tags: [[String: String]])
    case removeTags([TaggedResource], keys: Set<String>)
    /// ARC's zonal shifts: started, changed (a new `expiresIn` from now, a comment), cancelled, and
    /// ended by their timer (`now` on the control plane's clock).
    case startZonalShift(ZonalShiftRequest)
    case updateZonalShift(
        id: String, comment: String?, expiresIn: String?, wallClock: Double, now: UInt64, timeScale: Double)
    case cancelZonalShift(id: String)
    case expireZonalShifts(now: UInt64)

    /// AWS's name of the action, as the event log names what made a change.
    package var action: String {
        switch self {
        case .replace: "SIGHUP"
        case .createLoadBalancer: "CreateLoadBalancer"
        case .deleteLoadBalancer: "DeleteLoadBalancer"
        case .modifyLoadBalancerAttributes: "ModifyLoadBalancerAttributes"
        case .setSecurityGroups: "SetSecurityGroups"
        case .setIpAddressType: "SetIpAddressType"
        case .setSubnets: "SetSubnets"
        case .modifyCapacityReservation: "ModifyCapacityReservation"
        case .createTargetGroup: "CreateTargetGroup"
        case .deleteTargetGroup: "DeleteTargetGroup"
        case .modifyTargetGroup: "ModifyTargetGroup"
        case .modifyTargetGroupAttributes: "ModifyTargetGroupAttributes"
        case .registerTargets: "RegisterTargets"
        case .createTrustStore: "CreateTrustStore"
        case .deleteTrustStore: "DeleteTrustStore"
        case .addTrustStoreRevocations: "AddTrustStoreRevocations"
        case .removeTrustStoreRevocations: "RemoveTrustStoreRevocations"
        case .putInstance: "PUT /instances"
        case .deleteInstance: "DELETE /instances"
        case .deregisterTargets: "DeregisterTargets"
        case .createListener: "CreateListener"
        case .modifyListener: "ModifyListener"
        case .modifyListenerAttributes: "ModifyListenerAttributes"
        case .deleteListener: "DeleteListener"
        case .createRule: "CreateRule"
        case .modifyRule: "ModifyRule"
        case .deleteRule: "DeleteRule"
        case .setRulePriorities: "SetRulePriorities"
        case .addListenerCertificates: "AddListenerCertificates"
        case .removeListenerCertificates: "RemoveListenerCertificates"
        case .addTags: "AddTags"
        case .removeTags: "RemoveTags"
        case .startZonalShift: "StartZonalShift"
        case .updateZonalShift: "UpdateZonalShift"
        case .cancelZonalShift: "CancelZonalShift"
        case .expireZonalShifts: "zonal shift expiry"
        }
    }
}

/// What carrying out a change does beyond the model itself. The control plane does them in one
/// place (`ControlPlane.commit`), in this order: the sockets follow the model (listeners opened and
/// closed to match it), the events are logged, one snapshot is published, flows are reset, and the
/// model is persisted once.
package enum Effect: Equatable, Sendable {
    /// A line for the event log.
    case log(String)
    /// The loops take the new model (their listener sockets and routing) before the change is answered.
    case publish
    /// The flows of listeners this change closed are reset, as AWS resets a deleted listener's.
    case resetFlowsOfClosedListeners
    /// `serve --persist`: the model is written back to the file.
    case persist
    /// The load balancer was made now (`CreatedTime`), or is gone.
    case loadBalancerCreated(String)
    case loadBalancerDeleted(String)
}

/// A change applied: the model it leads to and what carrying it out does.
package struct Applied: Sendable {
    package var model: Configuration
    package var effects: [Effect]

    package init(model: Configuration, effects: [Effect]) {
        self.model = model
        self.effects = effects
    }
}
