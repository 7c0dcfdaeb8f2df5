import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// Who may use the control address, and what a web page may not do there. One rule for every path
/// (the JSON API, the ELBv2 Query API, ARC's zonal shift API, `/config`, `/flows`, `/metrics`), checked
/// before any of them reads the request:
///
/// 1. `Host` names the control address: an IP literal, `localhost` or one of `Admin.HostNames`. A page
///    on a DNS name that was rebound to 127.0.0.1 sends its own name, and is refused.
/// 2. A browser's request from another origin is refused: an `Origin` other than the control address
///    itself, or `Sec-Fetch-Site` other than `same-origin` or `none`.
/// 3. A write has a body no HTML form can send: `Content-Type: application/json` on the JSON and zonal
///    shift APIs (a browser must ask first, and nothing here answers its preflight). The Query API
///    takes a form, as AWS's does, so unsigned it changes nothing through `GET`.
/// 4. With `Admin.Token` or keys set, every request carries `Authorization: Bearer <token>` or a SigV4
///    signature: by `Admin.AccessKeyId` and `Admin.SecretAccessKey`, or, with only a token, by any key
///    id with the token as its secret. `Admin.PublicMetrics` opens `GET /metrics` alone.
extension ControlPlane {
    /// Which API a request is for: errors come back in that API's own shape.
    package enum FrontEnd {
        case json
        case query
        case zonalShift
        /// ACM's JSON 1.1 protocol (`X-Amz-Target: CertificateManager.*`).
        case acm
    }

    static func frontEnd(of request: AdminRequest) -> FrontEnd {
        if isACMRequest(request) { return .acm }
        if isQueryRequest(request) { return .query }
        if isZonalShiftRequest(request) { return .zonalShift }
        return .json
    }

    /// An error in the shape of `frontEnd`: AWS's XML, ARC's REST-JSON, or the JSON API's.
    package func refusal(_ frontEnd: FrontEnd, _ status: Int, _ code: String, _ message: String) -> AdminResponse {
        switch frontEnd {
        case .query: return queryError(APIError(code: code, message: message, status: status))
        case .zonalShift: return arcError(status, code, message)
        case .json: return .error(status, code, message)
        case .acm: return acmError(code, message, status: status)
        }
    }

    /// nil when the request may go on to its API; else the answer that refuses it.
    func accessRefusal(_ request: AdminRequest) -> AdminResponse? {
        let frontEnd = Self.frontEnd(of: request)
        let admin = configuration.admin ?? AdminConfiguration()
        if let host = request.headers["host"], !Self.isControlHost(host, admin) {
            return refusal(
                frontEnd, 403, "InvalidHost",
                "Host \(host) is not this control address: use an IP address or localhost, or list the name in "
                    + "Admin.HostNames (a page on a rebound DNS name may not reach the API)")
        }
        if let origin = request.headers["origin"], !isControlOrigin(origin, admin) {
            return refusal(
                frontEnd, 403, "InvalidOrigin",
                "a request from the web page at \(origin) is refused: only tools (the AWS CLI, boto3, curl, "
                    + "localnlb ctl) and pages served from the control address itself may use it")
        }
        if let site = request.headers["sec-fetch-site"], site != "same-origin" && site != "none" {
            return refusal(
                frontEnd, 403, "InvalidOrigin",
                "a browser's \(site) request is refused: only tools and the control address itself may use it")
        }
        if ["POST", "PUT", "PATCH"].contains(request.method) && frontEnd != .query {
            let type = request.headers["content-type"] ?? ""
            let mediaType = type.split(separator: ";").first.map { String($0).trimmed.lowercased() } ?? ""
            // ACM's protocol is JSON 1.1, which no form or page of a browser sends unasked either.
            guard mediaType == "application/json" || (frontEnd == .acm && mediaType == "application/x-amz-json-1.1")
            else {
                return refusal(
                    frontEnd, 415, frontEnd == .zonalShift ? "ValidationException" : "UnsupportedMediaType",
                    "\(request.method) \(request.path) needs Content-Type: application/json"
                        + (type.isEmpty ? "" : " (not \(type))") + ", as curl -H 'Content-Type: application/json' sends"
                )
            }
        }
        if frontEnd == .query && request.method == "GET" && !admin.demandsCredentials,
            let action = request.query["Action"], !action.hasPrefix("Describe")
        {
            // An <img> or a link can make a browser GET anything: unsigned, a GET only reads.
            return refusal(
                frontEnd, 400, "ValidationError",
                "\(action) changes the model: POST it as a form, as the AWS CLI and boto3 do (an unsigned GET "
                    + "serves the Describe actions only)")
        }
        if admin.demandsCredentials {
            if admin.publicMetrics && request.method == "GET" && request.path == "/metrics" { return nil }
            return credentialsRefusal(request, admin, frontEnd)
        }
        if !admin.address.ip.isLoopback && frontEnd != .json {
            if frontEnd == .acm {
                return acmError(
                    "UnrecognizedClientException",
                    "this Admin.Address is not loopback: set Admin.AccessKeyId and Admin.SecretAccessKey, and sign "
                        + "with them", status: 403)
            }
            return queryAPIRefusal()
        }
        return nil
    }

    /// `Host: 127.0.0.1:8404`, `[::1]:8404`, `localhost`, or a name of `Admin.HostNames`.
    static func isControlHost(_ host: String, _ admin: AdminConfiguration) -> Bool {
        guard let name = hostName(host) else { return false }
        if name.first == "[" { return IPAddress(String(name.dropFirst().dropLast())) != nil }
        if IPAddress(name) != nil { return true }
        var lowered = name.lowercased()
        if lowered.hasSuffix(".") { lowered.removeLast() }
        return lowered == "localhost" || admin.hostNames.contains(lowered)
    }

    /// The name of `host:port` (an IPv6 literal keeps its brackets), nil when the port is not a number.
    static func hostName(_ host: String) -> String? {
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            guard rest.isEmpty || (rest.first == ":" && UInt16(rest.dropFirst()) != nil) else { return nil }
            return String(host[...close])
        }
        guard let colon = host.lastIndex(of: ":") else { return host }
        guard UInt16(host[host.index(after: colon)...]) != nil else { return nil }
        return String(host[..<colon])
    }

    /// `Origin: http://127.0.0.1:8404`: the control address itself (its IP, `localhost` on loopback, or a
    /// name of `Admin.HostNames`), on its port.
    func isControlOrigin(_ origin: String, _ admin: AdminConfiguration) -> Bool {
        guard origin.hasPrefix("http://") else { return false }
        let rest = String(origin.dropFirst("http://".count))
        guard let name = Self.hostName(rest) else { return false }
        let port = rest.count > name.count ? UInt16(rest.dropFirst(name.count + 1)) : 80
        guard port == (adminEndpoint ?? admin.address).port else { return false }
        let literal = name.first == "[" ? String(name.dropFirst().dropLast()) : name
        if let ip = IPAddress(literal) { return ip == admin.address.ip || admin.address.ip.isUnspecifiedAddress }
        let lowered = name.lowercased()
        return (lowered == "localhost" && admin.address.ip.isLoopback) || admin.hostNames.contains(lowered)
    }

    /// With credentials configured: a bearer token that matches, or a SigV4 signature that holds.
    func credentialsRefusal(_ request: AdminRequest, _ admin: AdminConfiguration, _ frontEnd: FrontEnd)
        -> AdminResponse?
    {
        let header = request.headers["authorization"] ?? ""
        if header.hasPrefix("Bearer ") {
            if let token = admin.token, SigV4.matches(String(header.dropFirst("Bearer ".count)), token) { return nil }
            return refusal(
                frontEnd, 401, frontEnd == .query ? "InvalidClientTokenId" : "AuthFailure",
                "the bearer token is not Admin.Token")
        }
        if header.hasPrefix("AWS4-HMAC-SHA256 ") {
            // Keys, or with only a token, any key id signing with the token as its secret.
            let secret = admin.secretAccessKey ?? admin.token!
            return verifySignature(
                request, accessKeyID: admin.secretAccessKey == nil ? nil : admin.accessKeyID, secret: secret,
                frontEnd)
        }
        if frontEnd == .json {
            return .error(
                401, "AuthFailure",
                "send Authorization: Bearer <Admin.Token>, or sign the request with SigV4 (localnlb ctl does either)")
        }
        return refusal(frontEnd, 403, "MissingAuthenticationToken", "Request is missing Authentication Token")
    }

    /// Checks a request's SigV4 signature: its form, its date (AWS's 15 minutes either way), its key
    /// (any, when `accessKeyID` is nil), that `X-Amz-Content-Sha256`, when sent, is the body's hash, and
    /// the signature itself over the body. nil when it holds, else AWS's error.
    func verifySignature(_ request: AdminRequest, accessKeyID: String?, secret: String, _ frontEnd: FrontEnd)
        -> AdminResponse?
    {
        guard let authorization = SigV4.Authorization(request.headers["authorization"] ?? ""),
            let amzDate = request.headers["x-amz-date"],
            authorization.scope.hasPrefix(String(amzDate.prefix(8)) + "/"),
            authorization.signedHeaders.contains("host")
        else {
            return refusal(
                frontEnd, 403, "IncompleteSignature",
                "the Authorization header is not AWS4-HMAC-SHA256 with Credential, SignedHeaders "
                    + "(host among them) and Signature, with an X-Amz-Date of the credential's day")
        }
        if let problem = SigV4.freshnessProblem(amzDate: amzDate, now: epochSecondsNow()) {
            return refusal(frontEnd, 403, "SignatureDoesNotMatch", problem)
        }
        if let accessKeyID, authorization.accessKeyID != accessKeyID {
            return refusal(
                frontEnd, 403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        }
        let signed = SigV4.Request(
            method: request.method, path: request.path, query: request.query, headers: request.headers,
            body: request.body)
        if let problem = SigV4.payloadProblem(signed) {
            return refusal(frontEnd, 403, "SignatureDoesNotMatch", problem)
        }
        let expected = SigV4.signature(
            signed, signedHeaders: authorization.signedHeaders, amzDate: amzDate, scope: authorization.scope,
            secret: secret)
        guard SigV4.matches(expected, authorization.signature) else {
            return refusal(
                frontEnd, 403, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                    + "Check your AWS Secret Access Key and signing method.")
        }
        return nil
    }
}

extension String {
    fileprivate var trimmed: String {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return String(text)
    }
}
