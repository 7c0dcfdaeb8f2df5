import Foundation
import LocalNLBDataPlane
import LocalNLBModel
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

/// ARC's zonal shift API (REST-JSON, as `aws arc-zonal-shift … --endpoint-url` and boto3 send it) on
/// the control API's address: `POST /zonalshifts`, `GET /zonalshifts`, `PATCH` and `DELETE
/// /zonalshifts/{id}`.
extension ControlPlane {
    package static func isZonalShiftRequest(_ request: AdminRequest) -> Bool {
        request.path == "/zonalshifts" || request.path.hasPrefix("/zonalshifts/")
    }

    package func zonalShiftAPI(_ request: AdminRequest) -> AdminResponse {
        expireZonalShifts()
        let id =
            request.path.count > "/zonalshifts/".count ? String(request.path.dropFirst("/zonalshifts/".count)) : nil
        switch (request.method, id) {
        case ("POST", nil): return startZonalShift(request.body)
        case ("GET", nil): return listZonalShifts(request.query)
        case ("DELETE", let id?): return changeZonalShift(id, cancel: true, body: [])
        case ("PATCH", let id?): return changeZonalShift(id, cancel: false, body: request.body)
        default:
            return arcError(
                400, "ValidationException", "\(request.method) \(request.path) is not an ARC zonal shift call")
        }
    }

    package func arcError(
        _ status: Int, _ type: String, _ message: String, reason: String? = nil, more: [(String, JSONText)] = []
    ) -> AdminResponse {
        var fields: [(String, JSONText)] = [("message", .string(message))]
        if let reason { fields.append(("reason", .string(reason))) }
        fields += more
        var response = AdminResponse.json(status, .object(fields))
        response.headers = [("x-amzn-ErrorType", type)]
        return response
    }

    /// `1h`, `30m`: ARC's `expiresIn`, from 1 minute to 3 days; seconds.
    package static func expiresIn(_ text: String) -> Int? {
        // The bound is checked before the multiplication: `3000000000000000h` is a refusal, not an overflow.
        guard let unit = text.last, unit == "m" || unit == "h", let number = Int(text.dropLast()), number > 0,
            text.first != "0", number <= 3 * 24 * 60
        else { return nil }
        let seconds = number * (unit == "h" ? 3600 : 60)
        return seconds <= 3 * 86400 ? seconds : nil
    }

    package func startZonalShift(_ body: [UInt8]) -> AdminResponse {
        guard let (value, _) = try? JSONParser.parse(body), case .object(let object) = value,
            case .string(let resource)? = object["resourceIdentifier"], case .string(let zone)? = object["awayFrom"],
            case .string(let expires)? = object["expiresIn"]
        else {
            return arcError(
                400, "ValidationException", "resourceIdentifier, awayFrom and expiresIn are required",
                reason: "MissingValue")
        }
        var comment = ""
        if case .string(let given)? = object["comment"] { comment = given }
        guard let seconds = Self.expiresIn(expires) else {
            return arcError(
                400, "ValidationException",
                "expiresIn \(expires): a number of minutes or hours (30m, 2h), at most 3 days",
                reason: "InvalidExpiresIn")
        }
        guard let name = ResourceNames.loadBalancerName(in: resource), resource == names.loadBalancer(name),
            let index = configuration.loadBalancerIndex(name)
        else {
            return arcError(
                404, "ResourceNotFoundException", "No load balancer \(resource) is registered for zonal shift")
        }
        let balancer = configuration.loadBalancers[index]
        guard balancer.attributes.zonalShift else {
            return arcError(
                400, "ValidationException",
                "Zonal shift is not enabled for \(name): set its attribute zonal_shift.config.enabled to true",
                reason: "InvalidResourceIdentifier")
        }
        guard configuration.zones(of: balancer).contains(zone) else {
            let zones = configuration.zones(of: balancer).sorted().joined(separator: ", ")
            return arcError(
                400, "ValidationException", "\(zone) is not a zone of \(name) (\(zones))", reason: "InvalidAz")
        }
        if let active = zonalShifts.first(where: { $0.resourceIdentifier == resource && $0.status == "ACTIVE" }) {
            return arcError(
                409, "ConflictException", "A zonal shift (\(active.id)) is already active for \(name)",
                reason: "ZonalShiftAlreadyExists", more: [("zonalShiftId", .string(active.id))])
        }
        let start = Date().timeIntervalSince1970
        let shift = ZonalShift(
            id: UUID().uuidString.lowercased(), resourceIdentifier: resource, awayFrom: zone, comment: comment,
            startTime: start, expiryTime: start + Double(seconds),
            deadline: now + UInt64(Double(seconds) * options.timeScale * 1e9))
        zonalShifts.append(shift)
        options.log("zonal shift \(shift.id): load balancer \(name) away from \(zone) for \(expires)")
        publish(wait: true)
        return AdminResponse.json(201, shift.json)
    }

    package func listZonalShifts(_ query: [String: String]) -> AdminResponse {
        let items = zonalShifts.filter { shift in
            (query["status"].map { $0 == shift.status } ?? true)
                && (query["resourceIdentifier"].map { $0 == shift.resourceIdentifier } ?? true)
        }
        return .json(200, .object([("items", .array(items.map(\.json)))]))
    }

    /// DELETE cancels; PATCH changes `expiresIn` (from now) and `comment`. Only an active shift.
    package func changeZonalShift(_ id: String, cancel: Bool, body: [UInt8]) -> AdminResponse {
        guard let index = zonalShifts.firstIndex(where: { $0.id == id }) else {
            return arcError(404, "ResourceNotFoundException", "No zonal shift \(id)")
        }
        guard zonalShifts[index].status == "ACTIVE" else {
            return arcError(
                409, "ConflictException", "Zonal shift \(id) is \(zonalShifts[index].status), not ACTIVE",
                reason: "ZonalShiftStatusNotActive")
        }
        if cancel {
            zonalShifts[index].status = "CANCELED"
            options.log("zonal shift \(id): cancelled")
        } else {
            guard let (value, _) = try? JSONParser.parse(body), case .object(let object) = value else {
                return arcError(400, "ValidationException", "the body is not a JSON object", reason: "MissingValue")
            }
            if case .string(let comment)? = object["comment"] { zonalShifts[index].comment = comment }
            if case .string(let expires)? = object["expiresIn"] {
                guard let seconds = Self.expiresIn(expires) else {
                    return arcError(
                        400, "ValidationException", "expiresIn \(expires): a number of minutes or hours (30m, 2h)",
                        reason: "InvalidExpiresIn")
                }
                zonalShifts[index].expiryTime = Date().timeIntervalSince1970 + Double(seconds)
                zonalShifts[index].deadline = now + UInt64(Double(seconds) * options.timeScale * 1e9)
            }
        }
        publish(wait: true)
        return .json(200, zonalShifts[index].json)
    }

    /// Shifts whose time is up end (EXPIRED), and routing and DNS take the zone back.
    package func expireZonalShifts() {
        var ended = false
        for index in zonalShifts.indices
        where zonalShifts[index].status == "ACTIVE" && now >= zonalShifts[index].deadline {
            zonalShifts[index].status = "EXPIRED"
            options.log("zonal shift \(zonalShifts[index].id): expired")
            ended = true
        }
        if ended { publish(wait: false) }
    }

    /// The zones shifted away from, of the load balancer named `name`.
    package func shiftedZones(_ name: String) -> Set<String> {
        let arn = names.loadBalancer(name)
        return Set(zonalShifts.filter { $0.status == "ACTIVE" && $0.resourceIdentifier == arn }.map(\.awayFrom))
    }
}
