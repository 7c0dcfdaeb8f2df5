import CLocalNLB
import Foundation
import Glibc
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

extension TargetHealthReason {
    /// AWS's description for the reason code.
    package var description: String {
        switch self {
        case .registrationInProgress: return "Target registration is in progress"
        case .initialHealthChecking: return "Initial health checking in progress"
        case .failedHealthChecks: return "Health checks failed"
        case .deregistrationInProgress: return "Target deregistration is in progress"
        case .internalError: return "Health checks failed with these codes: internal error"
        case .notRegistered: return "Target is not registered to the target group"
        case .notInUse: return "Target group is not configured to receive traffic from the load balancer"
        case .healthCheckDisabled: return "Health checks are disabled for the target group"
        }
    }

    /// `Target.NotInUse`'s description for a target in a zone the load balancer has no node in.
    static let zoneNotEnabled = "Target is in an Availability Zone that is not enabled for the load balancer"
}

extension ControlPlane {
    // MARK: Connections

    func acceptAdmin() {
        guard adminFD >= 0 else { return }
        for _ in 0..<16 {
            guard let fd = acceptControlConnection(adminFD, kind: .adminListener, what: "control API") else { return }
            let connection = adminConnections.take(AdminConnection.init(index:))
            connection.fd = fd
            connection.input.removeAll(keepingCapacity: true)
            connection.output = []
            connection.written = 0
            connection.responding = false
            connection.finSent = false
            connection.deadline = now + 10_000_000_000
            let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
            do {
                try poller.add(
                    fd, events: interest, token: token(.adminConnection, connection.index, connection.generation))
            } catch {
                closeAdmin(connection)
                continue
            }
            adminEvent(index: connection.index, generation: connection.generation)
        }
    }

    func adminEvent(index: Int, generation: UInt32) {
        let connection = adminConnections[index]
        guard connection.fd >= 0, connection.generation & 0xFF_FFFF == generation else { return }
        var chunk = [UInt8](repeating: 0, count: 16384)
        var ended = false
        while true {
            let received = chunk.withUnsafeMutableBytes {
                IO.receive(connection.fd, into: $0.baseAddress!, count: $0.count)
            }
            if case .moved(let n) = received {
                // Once answering, what else arrives is read and dropped, so closing never cuts the answer off.
                if !connection.responding { connection.input += chunk[0..<n] }
                if connection.input.count > AdminRequest.maximumSize { break }
                continue
            }
            if received == .wouldBlock { break }
            ended = true
            break
        }
        if !connection.responding {
            switch AdminRequest.parse(connection.input) {
            case .incomplete:
                // EOF or an error before a whole request: nothing to answer.
                if ended { return closeAdmin(connection) }
                return
            case .invalid(let status, let message):
                respond(connection, httpError(status, message, input: connection.input))
            case .request(let request):
                respond(connection, handle(request))
            }
        }
        if ended && connection.written >= connection.output.count { return closeAdmin(connection) }
        flushAdmin(connection)
    }

    /// An error at the HTTP level (a broken head, a lying `Content-Length`, a slow or huge request), in
    /// the shape of the API its request line names: AWS's XML for `POST /`, so the AWS CLI and boto3 read
    /// the code and the message.
    func httpError(_ status: Int, _ message: String, input: [UInt8]) -> AdminResponse {
        let line = input.prefix(512).split(separator: 13, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        let words = String(decoding: line, as: UTF8.self).split(separator: " ")
        var frontEnd = FrontEnd.json
        if words.count >= 2 {
            let path = String(words[1].split(separator: "?", maxSplits: 1).first ?? "")
            frontEnd = Self.frontEnd(
                of: AdminRequest(method: String(words[0]), path: path, headers: [:], body: []))
        }
        let code =
            [408: "RequestTimeout", 413: "RequestEntityTooLarge", 431: "RequestHeaderFieldsTooLarge"][status]
            ?? (frontEnd == .zonalShift ? "ValidationException" : "ValidationError")
        return refusal(frontEnd, status, code, message)
    }

    func respond(_ connection: AdminConnection, _ response: AdminResponse) {
        connection.responding = true
        connection.output = response.bytes
        connection.written = 0
    }

    func flushAdmin(_ connection: AdminConnection) {
        switch Socket.sendPending(connection.fd, connection.output, from: &connection.written) {
        case .complete: break
        case .wouldBlock: return
        case .failed: return closeAdmin(connection)
        }
        // All sent: FIN, then wait for the client's close (or the deadline) before closing ourselves.
        if !connection.finSent {
            Socket.shutdownWrite(connection.fd)
            connection.finSent = true
        }
    }

    func closeAdmin(_ connection: AdminConnection) {
        guard connection.fd >= 0 else { return }
        closeDescriptor(connection.fd)
        connection.fd = -1
        connection.generation &+= 1
        connection.input = []
        connection.output = []
        adminConnections.release(connection.index)
    }

    /// Connections that did not send a whole request in time are dropped (a slow client cannot hold one).
    func expireAdminConnections() {
        for connection in adminConnections where connection.fd >= 0 && now >= connection.deadline {
            if connection.responding {
                closeAdmin(connection)
            } else {
                respond(connection, httpError(408, "no complete request within 10 s", input: connection.input))
                flushAdmin(connection)
            }
        }
    }

    // MARK: Routing

    /// Answers a request. A change (register, deregister, attributes) has reached every loop before
    /// the answer goes out, so the caller's next flow sees it whichever loop takes it.
    package func handle(_ request: AdminRequest) -> AdminResponse {
        // Every change goes through `commit`, which publishes and persists it once.
        route(request)
    }

    package func route(_ request: AdminRequest) -> AdminResponse {
        if let refusal = accessRefusal(request) { return refusal }
        switch Self.frontEnd(of: request) {
        case .query: return queryAPI(request)
        case .zonalShift: return zonalShiftAPI(request)
        case .acm: return acmAPI(request)
        case .json: break
        }
        let parts = request.path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
        switch (request.method, parts.count) {
        case ("GET", 1) where parts[0] == "target-groups":
            return .json(200, .object([("TargetGroups", .array(groups.indices.map(describeTargetGroup)))]))
        case ("GET", 1) where parts[0] == "status":
            // What a client times itself by: `ctl wait` polls every 15 s × TimeScale.
            return .json(
                200,
                .object([
                    ("Version", .string(LocalNLBVersion.current)), ("TimeScale", .number(options.timeScale)),
                    ("LoadBalancers", .integer(Int64(configuration.loadBalancers.count))),
                    ("Listeners", .integer(Int64(configuration.listeners.count))),
                    ("TargetGroups", .integer(Int64(groups.filter { !$0.removed }.count))),
                    // Where this daemon listens, as bound (port 0 in the file or a flag: the port taken).
                    ("AdminAddress", .optional(adminEndpoint?.description)),
                    ("DnsAddress", .optional(dnsEndpoint?.description)),
                ]))
        case ("GET", 1) where parts[0] == "config":
            // Secrets never leave: `Admin.Token` and `Admin.SecretAccessKey` read REDACTED, and a header says so.
            var response = AdminResponse(
                status: 200, body: JSONText.pretty(liveModel.document(redactingSecrets: true).rendered) + "\n")
            if configuration.admin?.demandsCredentials == true {
                response.headers = [("X-LocalNLB-Redacted", "Admin.Token, Admin.SecretAccessKey")]
            }
            return response
        case ("GET", 1) where parts[0] == "flows":
            return describeFlows(request.query)
        case ("GET", 1) where parts[0] == "instances":
            return .json(200, .object([("Instances", .array(configuration.instances.map(instanceJSON)))]))
        case ("PUT", 2) where parts[0] == "instances":
            return putInstance(String(parts[1]), request.body)
        case ("DELETE", 2) where parts[0] == "instances":
            let id = String(parts[1])
            return answer { () throws(APIError) -> JSONText in
                try commit(.deleteInstance(id: id))
                return .object([])
            }
        case (_, 2) where parts[0] == "instances":
            return .error(405, "MethodNotAllowed", "\(request.method) is not allowed on \(request.path) (PUT, DELETE)")
        case ("GET", 1) where parts[0] == "metrics":
            return AdminResponse(status: 200, body: prometheusMetrics(), contentType: "text/plain; version=0.0.4")
        case (_, 3) where parts[0] == "target-groups":
            guard let group = groups.firstIndex(where: { $0.configuration.name == parts[1] && !$0.removed }) else {
                return .error(404, "TargetGroupNotFound", "no target group named \(parts[1])")
            }
            switch (request.method, parts[2]) {
            case ("GET", "health"): return .json(200, describeTargetHealth(group))
            case ("POST", "register"): return changeTargets(group, request.body, register: true)
            case ("POST", "deregister"): return changeTargets(group, request.body, register: false)
            case ("GET", "attributes"): return .json(200, attributesResponse(group))
            case ("PUT", "attributes"): return modifyAttributes(group, request.body)
            case (_, "health"), (_, "register"), (_, "deregister"), (_, "attributes"):
                return .error(405, "MethodNotAllowed", "\(request.method) is not allowed on \(request.path)")
            default:
                return .error(404, "NotFound", "no such resource: \(request.path)")
            }
        case (_, 1) where ["target-groups", "flows", "metrics", "config", "instances"].contains(parts[0]):
            return .error(405, "MethodNotAllowed", "\(request.method) is not allowed on \(request.path)")
        default:
            return .error(
                404, "NotFound",
                "no such resource: \(request.path) (try /target-groups, /target-groups/NAME/health, /flows, /metrics)")
        }
    }

    // MARK: Endpoints

    func describeTargetGroup(_ index: Int) -> JSONText {
        let group = groups[index]
        let c = group.configuration
        let check = c.healthCheck
        let scale = group.lifecycle.timeScale
        let listenerPorts = listeners.filter { $0.groupIndex == index && $0.isOpen }.map { Int64($0.endpoint.port) }
        return .object([
            ("TargetGroupName", .string(c.name)),
            ("Protocol", .string(c.protocolName.rawValue)),
            ("Port", .integer(Int64(c.port))),
            ("TargetType", .string(c.targetType.rawValue)),
            ("HealthCheckEnabled", .bool(check.enabled)),
            ("HealthCheckProtocol", .string(check.protocolName.rawValue)),
            ("HealthCheckPort", .string(check.port.map(String.init) ?? "traffic-port")),
            ("HealthCheckPath", check.protocolName.isHTTP ? .string(check.path) : .null),
            ("HealthCheckIntervalSeconds", .integer(Int64(check.intervalSeconds))),
            ("HealthCheckTimeoutSeconds", .integer(Int64(check.timeoutSeconds))),
            ("HealthyThresholdCount", .integer(Int64(check.healthyThreshold))),
            ("UnhealthyThresholdCount", .integer(Int64(check.unhealthyThreshold))),
            (
                "Matcher",
                .object([
                    (
                        "HttpCode",
                        .string(
                            check.matcher.map {
                                $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)"
                            }
                            .joined(separator: ","))
                    )
                ])
            ),
            ("ListenerPorts", .array(listenerPorts.map { .integer($0) })),
            ("Attributes", attributeList(c.effectiveAttributes)),
            (
                "LocalNLB",
                .object([
                    ("TimeScale", .number(scale)),
                    ("ScaledHealthCheckIntervalSeconds", .number(Double(check.intervalSeconds) * scale)),
                    ("ScaledHealthCheckTimeoutSeconds", .number(Double(check.timeoutSeconds) * scale)),
                    ("ScaledDeregistrationDelaySeconds", .number(Double(c.deregistrationDelaySeconds) * scale)),
                    ("FailingOpen", .bool(group.lifecycle.failingOpen)),
                ])
            ),
        ])
    }

    package func attributeList(_ attributes: [(String, String)]) -> JSONText {
        .array(attributes.map { .object([("Key", .string($0.0)), ("Value", .string($0.1))]) })
    }

    func describeTargetHealth(_ index: Int) -> JSONText {
        let group = groups[index]
        let descriptions = group.targets.filter { $0.state != .unused }.map { target -> JSONText in
            var health: [(String, JSONText)] = [("State", .string(target.state.rawValue))]
            if isOutsideZones(index, target) {
                health = [
                    ("State", .string("unused")), ("Reason", .string(TargetHealthReason.notInUse.rawValue)),
                    ("Description", .string(TargetHealthReason.zoneNotEnabled)),
                ]
            } else if let reason = target.reason {
                health.append(("Reason", .string(reason.rawValue)))
                health.append(("Description", .string(reason.description)))
            }
            let port = group.configuration.healthCheck.port ?? target.endpoint.port
            var fields: [(String, JSONText)] = [
                ("Id", .string(target.id)), ("Port", .integer(Int64(target.endpoint.port))),
            ]
            if !configuration.subnets.isEmpty || target.availabilityZone != nil {
                fields.append(("AvailabilityZone", .string(target.zone)))
            }
            return .object([
                ("Target", .object(fields)),
                ("HealthCheckPort", .string(String(port))),
                ("TargetHealth", .object(health)),
                ("ActiveFlowCount", .integer(Int64(target.activeFlows))),
            ])
        }
        return .object([("TargetHealthDescriptions", .array(descriptions))])
    }

    func attributesResponse(_ index: Int) -> JSONText {
        .object([("Attributes", attributeList(groups[index].configuration.effectiveAttributes))])
    }

    /// POST register / deregister with `{"Targets":[{"Id":…,"Port":…}]}`: RegisterTargets and
    /// DeregisterTargets, all checked before any applies.
    func changeTargets(_ index: Int, _ body: [UInt8], register: Bool) -> AdminResponse {
        var reader = ConfigReader()
        guard let document = decodeBody(body, reader: &reader),
            let object = reader.readObject(document, "", keys: ["Targets"])
        else { return validationError(reader) }
        guard let list = object["Targets"], let items = reader.array(list, "Targets"), !items.isEmpty else {
            if reader.errors.isEmpty { reader.error("Targets", "missing: give at least one {\"Id\": …, \"Port\": …}") }
            return validationError(reader)
        }
        let name = groups[index].configuration.name
        let targets = items.enumerated().map { Given("Targets[\($0)]", $1) }
        return answer { () throws(APIError) -> JSONText in
            try commit(
                register
                    ? .registerTargets(group: name, targets: targets)
                    : .deregisterTargets(group: name, targets: targets))
            return .object([])
        }
    }

    /// PUT /instances/{id}: the address (and zone) an `instance` group's `Id=i-…` stands for, as EC2
    /// would know it. `{"PrivateIpAddress": "127.0.0.5", "AvailabilityZone": "us-east-1a"}`.
    func putInstance(_ id: String, _ body: [UInt8]) -> AdminResponse {
        var reader = ConfigReader()
        guard let document = decodeBody(body, reader: &reader),
            var object = reader.readObject(document, "", keys: ["InstanceId", "PrivateIpAddress", "AvailabilityZone"])
        else { return validationError(reader) }
        if let given = object["InstanceId"], given != .string(id) {
            reader.error("InstanceId", "\(given.shown) is not the \(id) of the path")
            return validationError(reader)
        }
        object["InstanceId"] = .string(id)
        return answer { () throws(APIError) -> JSONText in
            try commit(.putInstance(Given("", .object(object))))
            return instanceJSON(configuration.instances.first { $0.instanceID == id }!)
        }
    }

    func instanceJSON(_ instance: InstanceConfiguration) -> JSONText {
        .object([
            ("InstanceId", .string(instance.instanceID)),
            ("PrivateIpAddress", .string(instance.privateIPAddress.description)),
            ("AvailabilityZone", .optional(instance.availabilityZone)),
        ])
    }

    /// PUT attributes: ModifyTargetGroupAttributes. The keys given change, the others keep their values;
    /// checked under AWS's ranges, as the Query API checks them; applies to new flows (and timers
    /// started) from now on, or not at all.
    func modifyAttributes(_ index: Int, _ body: [UInt8]) -> AdminResponse {
        var reader = ConfigReader()
        guard let document = decodeBody(body, reader: &reader),
            let object = reader.readObject(document, "", keys: ["Attributes"]), let list = object["Attributes"]
        else {
            if reader.errors.isEmpty { reader.error("Attributes", "missing: give [{\"Key\": …, \"Value\": …}]") }
            return validationError(reader)
        }
        let name = groups[index].configuration.name
        return answer { () throws(APIError) -> JSONText in
            try commit(.modifyTargetGroupAttributes(name: name, attributes: Given("Attributes", list)))
            return attributesResponse(index)
        }
    }

    /// A change's JSON answer: 200 with what `body` returns, or AWS's error code and message.
    package func answer(_ body: () throws(APIError) -> JSONText) -> AdminResponse {
        do {
            return .json(200, try body())
        } catch {
            return .error(error.status, error.code, error.message)
        }
    }

    func decodeBody(_ body: [UInt8], reader: inout ConfigReader) -> JSONValue? {
        do {
            let (value, duplicates) = try JSONParser.parse(body)
            for problem in duplicates { reader.errors.append("body." + problem) }
            return reader.errors.isEmpty ? value : nil
        } catch {
            reader.error("body", "not valid JSON: \(error)")
            return nil
        }
    }

    func validationError(_ reader: ConfigReader) -> AdminResponse {
        .error(400, "ValidationError", reader.errors.joined(separator: "; "))
    }

    /// `GET /flows[?MaxItems=N][&Marker=ID]`: a page of every loop's flows, by id, at most
    /// `MaxItems` (default and most: 1000); `NextMarker` is there when more follow. A page costs each
    /// loop a scan and at most `MaxItems` copies, whatever it carries: listing flows never stalls them.
    func describeFlows(_ query: [String: String]) -> AdminResponse {
        var limit = Self.flowPageSize
        if let text = query["MaxItems"] {
            guard let value = Int(text), (1...Self.flowPageSize).contains(value) else {
                return .error(
                    400, "ValidationError", "MaxItems \(text): not a whole number from 1 to \(Self.flowPageSize)")
            }
            limit = value
        }
        var marker: UInt64 = 0
        if let text = query["Marker"] {
            guard let value = UInt64(text) else {
                return .error(400, "ValidationError", "Marker \(text): not a NextMarker this API returned")
            }
            marker = value
        }
        // A merge by id over the loops, each read in chunks: a loop copies out at most a chunk per job
        // (it serves its flows between jobs), and no more than the page needs, plus a chunk.
        struct Cursor {
            var after: UInt64
            var buffered: [FlowSummary] = []
            var position = 0
            var more = true
            var head: FlowSummary? { position < buffered.count ? buffered[position] : nil }
        }
        var cursors = loops.map { _ in Cursor(after: marker) }
        var page: [FlowSummary] = []
        page.reserveCapacity(limit)
        while page.count < limit {
            for index in cursors.indices where cursors[index].head == nil && cursors[index].more {
                let (after, chunk) = (cursors[index].after, Self.flowChunk)
                guard let (flows, more) = loops[index].perform({ $0.describeOwnFlows(after: after, limit: chunk) })
                else {
                    cursors[index].more = false
                    continue
                }
                cursors[index].buffered = flows
                cursors[index].position = 0
                cursors[index].more = more && !flows.isEmpty
                if let last = flows.last { cursors[index].after = last.id }
            }
            var next: (index: Int, flow: FlowSummary)?
            for index in cursors.indices {
                if let head = cursors[index].head, head.id < next?.flow.id ?? .max { next = (index, head) }
            }
            guard let next else { break }
            page.append(next.flow)
            cursors[next.index].position += 1
        }
        let more = cursors.contains { $0.head != nil || $0.more }
        var fields: [(String, JSONText)] = [("Flows", .array(page.map(\.json)))]
        if more, let last = page.last { fields.append(("NextMarker", .string(String(last.id)))) }
        return .json(200, .object(fields))
    }

    static let flowPageSize = 1000
    /// The most flows a loop copies out in one job for `/flows`.
    static let flowChunk = 128
}

extension ControlPlane {
    /// `--persist`: the running model back into the configuration file, when it changed. A failure is
    /// logged and the daemon goes on (the change itself is made).
    func persistIfAsked() {
        guard options.persists, let path = options.configPath else { return }
        let text = JSONText.pretty(liveModel.document.rendered) + "\n"
        guard text != persisted else { return }
        do {
            try Files.writeAtomically(Array(text.utf8), to: path)
            persisted = text
        } catch {
            options.log("--persist: cannot write \(path) (\(error)); the change is made but not saved")
        }
    }
}
