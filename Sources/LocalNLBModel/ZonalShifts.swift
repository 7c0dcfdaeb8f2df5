import ProxyProtocol

/// A zonal shift (ARC): traffic moved away from one zone of a load balancer until it expires or is
/// cancelled. The zone's nodes leave DNS; with cross-zone load balancing on, its targets get no new
/// flows either.
package struct ZonalShift {
    package var id: String
    package var resourceIdentifier: String
    package var awayFrom: String
    package var comment: String
    /// Seconds since the epoch (what ARC's JSON carries).
    package var startTime: Double
    package var expiryTime: Double
    /// When it expires on the control plane's clock (scaled by `--time-scale`).
    package var deadline: UInt64
    package var status = "ACTIVE"

    package var json: JSONText {
        .object([
            ("zonalShiftId", .string(id)), ("resourceIdentifier", .string(resourceIdentifier)),
            ("awayFrom", .string(awayFrom)), ("expiryTime", .number(expiryTime)), ("startTime", .number(startTime)),
            ("status", .string(status)), ("comment", .string(comment)),
        ])
    }
}

/// What `StartZonalShift` asks for, with the clock readings the change needs (the model reads no clock).
package struct ZonalShiftRequest: Sendable {
    package var resourceIdentifier: String
    package var awayFrom: String
    package var expiresIn: String
    package var comment: String
    /// The new shift's id, and now: seconds since the epoch, and the control plane's clock.
    package var id: String
    package var wallClock: Double
    package var now: UInt64
    package var timeScale: Double

    package init(
        resourceIdentifier: String, awayFrom: String, expiresIn: String, comment: String, id: String,
        wallClock: Double, now: UInt64, timeScale: Double
    ) {
        self.resourceIdentifier = resourceIdentifier
        self.awayFrom = awayFrom
        self.expiresIn = expiresIn
        self.comment = comment
        self.id = id
        self.wallClock = wallClock
        self.now = now
        self.timeScale = timeScale
    }
}

/// ARC's zonal shift rules, as the change function applies them (docs/zones.md §9).
extension Configuration {
    /// `1h`, `30m`: ARC's `expiresIn`, from 1 minute to 3 days; seconds.
    package static func expiresIn(_ text: String) -> Int? {
        // The bound is checked before the multiplication: `3000000000000000h` is a refusal, not an overflow.
        guard let unit = text.last, unit == "m" || unit == "h", let number = Int(text.dropLast()), number > 0,
            text.first != "0", number <= 3 * 24 * 60
        else { return nil }
        let seconds = number * (unit == "h" ? 3600 : 60)
        return seconds <= 3 * 86400 ? seconds : nil
    }

    static func invalidExpiresIn(_ text: String) -> APIError {
        APIError(
            code: "ValidationException",
            message: "expiresIn \(text): a number of minutes or hours (30m, 2h), at most 3 days",
            reason: "InvalidExpiresIn")
    }

    mutating func startZonalShift(_ request: ZonalShiftRequest) throws(APIError) -> String {
        guard let seconds = Self.expiresIn(request.expiresIn) else { throw Self.invalidExpiresIn(request.expiresIn) }
        let resource = request.resourceIdentifier
        guard let name = names.name(in: resource, kind: "loadbalancer/net"), resource == names.loadBalancer(name),
            let index = loadBalancerIndex(name)
        else {
            throw APIError(
                code: "ResourceNotFoundException",
                message: "No load balancer \(resource) is registered for zonal shift",
                status: 404)
        }
        let balancer = loadBalancers[index]
        guard balancer.attributes.zonalShift else {
            throw APIError(
                code: "ValidationException",
                message: "Zonal shift is not enabled for \(name): set its attribute zonal_shift.config.enabled to true",
                reason: "InvalidResourceIdentifier")
        }
        guard zones(of: balancer).contains(request.awayFrom) else {
            let zones = zones(of: balancer).sorted().joined(separator: ", ")
            throw APIError(
                code: "ValidationException", message: "\(request.awayFrom) is not a zone of \(name) (\(zones))",
                reason: "InvalidAz")
        }
        if let active = zonalShifts.first(where: { $0.resourceIdentifier == resource && $0.status == "ACTIVE" }) {
            throw APIError(
                code: "ConflictException", message: "A zonal shift (\(active.id)) is already active for \(name)",
                status: 409, reason: "ZonalShiftAlreadyExists", zonalShiftId: active.id)
        }
        zonalShifts.append(
            ZonalShift(
                id: request.id, resourceIdentifier: resource, awayFrom: request.awayFrom, comment: request.comment,
                startTime: request.wallClock, expiryTime: request.wallClock + Double(seconds),
                deadline: request.now + UInt64(Double(seconds) * request.timeScale * 1e9)))
        return "zonal shift \(request.id): load balancer \(name) away from \(request.awayFrom) for \(request.expiresIn)"
    }

    /// The index of the active shift `id`: ResourceNotFoundException, or ConflictException when it ended.
    func activeZonalShift(_ id: String) throws(APIError) -> Int {
        guard let index = zonalShifts.firstIndex(where: { $0.id == id }) else {
            throw APIError(code: "ResourceNotFoundException", message: "No zonal shift \(id)", status: 404)
        }
        guard zonalShifts[index].status == "ACTIVE" else {
            throw APIError(
                code: "ConflictException", message: "Zonal shift \(id) is \(zonalShifts[index].status), not ACTIVE",
                status: 409, reason: "ZonalShiftStatusNotActive")
        }
        return index
    }
}
