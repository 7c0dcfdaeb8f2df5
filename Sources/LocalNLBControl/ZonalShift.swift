import Foundation
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// ARC's zonal shift API (REST-JSON, as `aws arc-zonal-shift … --endpoint-url` and boto3 send it) on
/// the control API's address: `POST /zonalshifts`, `GET /zonalshifts`, `PATCH` and `DELETE
/// /zonalshifts/{id}`.
extension ControlPlane {
    static func isZonalShiftRequest(_ request: AdminRequest) -> Bool {
        request.path == "/zonalshifts" || request.path.hasPrefix("/zonalshifts/")
    }

    func zonalShiftAPI(_ request: AdminRequest) -> AdminResponse {
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

    func arcError(
        _ status: Int, _ type: String, _ message: String, reason: String? = nil, more: [(String, JSONText)] = []
    ) -> AdminResponse {
        var fields: [(String, JSONText)] = [("message", .string(message))]
        if let reason { fields.append(("reason", .string(reason))) }
        fields += more
        var response = AdminResponse.json(status, .object(fields))
        response.headers = [("x-amzn-ErrorType", type)]
        return response
    }

    /// An ARC answer: 2xx with what `body` returns, or ARC's error shape for the change's refusal.
    func arcAnswer(_ status: Int, _ body: () throws(APIError) -> JSONText) -> AdminResponse {
        do {
            return .json(status, try body())
        } catch {
            return arcError(
                error.status, error.code, error.message, reason: error.reason,
                more: error.zonalShiftId.map { [("zonalShiftId", .string($0))] } ?? [])
        }
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
        let request = ZonalShiftRequest(
            resourceIdentifier: resource, awayFrom: zone, expiresIn: expires, comment: comment,
            id: UUID().uuidString.lowercased(), wallClock: Date().timeIntervalSince1970, now: now,
            timeScale: options.timeScale)
        return arcAnswer(201) { () throws(APIError) -> JSONText in
            try commit(.startZonalShift(request))
            return configuration.zonalShifts.last!.json
        }
    }

    func listZonalShifts(_ query: [String: String]) -> AdminResponse {
        let items = configuration.zonalShifts.filter { shift in
            (query["status"].map { $0 == shift.status } ?? true)
                && (query["resourceIdentifier"].map { $0 == shift.resourceIdentifier } ?? true)
        }
        return .json(200, .object([("items", .array(items.map(\.json)))]))
    }

    /// DELETE cancels; PATCH changes `expiresIn` (from now) and `comment`. Only an active shift.
    func changeZonalShift(_ id: String, cancel: Bool, body: [UInt8]) -> AdminResponse {
        var change = Change.cancelZonalShift(id: id)
        if !cancel {
            guard let (value, _) = try? JSONParser.parse(body), case .object(let object) = value else {
                return arcError(400, "ValidationException", "the body is not a JSON object", reason: "MissingValue")
            }
            var comment: String?
            var expires: String?
            if case .string(let given)? = object["comment"] { comment = given }
            if case .string(let given)? = object["expiresIn"] { expires = given }
            change = .updateZonalShift(
                id: id, comment: comment, expiresIn: expires, wallClock: Date().timeIntervalSince1970, now: now,
                timeScale: options.timeScale)
        }
        return arcAnswer(200) { () throws(APIError) -> JSONText in
            try commit(change)
            return configuration.zonalShifts.first { $0.id == id }!.json
        }
    }

    /// Shifts whose time is up end (EXPIRED), and routing and DNS take the zone back.
    package func expireZonalShifts() {
        // Asked on every tick: the model is built only when a shift is due. The expiry refuses nothing.
        guard configuration.zonalShifts.contains(where: { $0.status == "ACTIVE" && now >= $0.deadline }) else { return }
        _ = try? commit(.expireZonalShifts(now: now))
    }

    /// The zones shifted away from, of the load balancer named `name`.
    package func shiftedZones(_ name: String) -> Set<String> {
        let arn = names.loadBalancer(name)
        return Set(
            configuration.zonalShifts.filter { $0.status == "ACTIVE" && $0.resourceIdentifier == arn }.map(\.awayFrom))
    }
}
