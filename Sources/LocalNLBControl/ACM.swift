import Foundation
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// A small ACM on the control address: what the AWS CLI's `aws acm` and boto3's `acm` client send
/// (`POST /`, `X-Amz-Target: CertificateManager.<Operation>`, AWS's JSON 1.1 protocol). Certificates
/// are imported (your PEM and key) or requested (issued at once by localnlb's certificate authority),
/// described, listed, fetched, tagged and deleted; a TLS listener names them by ARN.
extension ControlPlane {
    static func isACMRequest(_ request: AdminRequest) -> Bool {
        request.method == "POST" && (request.headers["x-amz-target"] ?? "").hasPrefix("CertificateManager.")
    }

    /// ACM's error: `{"__type": code, "message": …}`, 400.
    func acmError(_ code: String, _ message: String, status: Int = 400) -> AdminResponse {
        var response = AdminResponse.json(status, .object([("__type", .string(code)), ("message", .string(message))]))
        response.headers = [("x-amzn-ErrorType", code)]
        response.contentType = "application/x-amz-json-1.1"
        return response
    }

    func acmAPI(_ request: AdminRequest) -> AdminResponse {
        let operation = String((request.headers["x-amz-target"] ?? "").dropFirst("CertificateManager.".count))
        guard let (value, _) = try? JSONParser.parse(request.body.isEmpty ? Array("{}".utf8) : request.body),
            case .object(let input) = value
        else { return acmError("SerializationException", "the body is not a JSON object") }
        do throws(APIError) {
            let output = try acm(operation, input, region: region(of: request))
            var response = AdminResponse.json(200, output)
            response.contentType = "application/x-amz-json-1.1"
            return response
        } catch {
            return acmError(error.code, error.message, status: error.status)
        }
    }

    func acm(_ operation: String, _ input: [String: JSONValue], region: String) throws(APIError) -> JSONText {
        switch operation {
        case "ImportCertificate": return try importCertificate(input, region: region)
        case "RequestCertificate": return try requestCertificate(input, region: region)
        case "DescribeCertificate":
            return .object([("Certificate", describeCertificate(try knownCertificate(input)))])
        case "GetCertificate":
            let record = try knownCertificate(input)
            let parts = record.pem.chain.components(separatedBy: "-----END CERTIFICATE-----")
            let leaf = parts[0] + "-----END CERTIFICATE-----\n"
            let chain = record.pem.chain.dropFirst(leaf.count - 1).trimmingCharacters(in: .whitespacesAndNewlines)
            var fields: [(String, JSONText)] = [("Certificate", .string(leaf))]
            if !chain.isEmpty { fields.append(("CertificateChain", .string(chain + "\n"))) }
            return .object(fields)
        case "ListCertificates": return try listCertificates(input)
        case "DeleteCertificate":
            let record = try knownCertificate(input)
            let users = listenersUsing(record.arn)
            guard users.isEmpty else {
                throw APIError(
                    code: "ResourceInUseException",
                    message: "Certificate \(record.arn) is in use by \(users.joined(separator: ", "))")
            }
            certificateStore.remove(record.arn)
            options.log("certificate \(record.arn) deleted")
            return .object([])
        case "AddTagsToCertificate", "RemoveTagsFromCertificate":
            let record = try knownCertificate(input)
            let given = try tags(input["Tags"])
            var kept = record.tags
            if operation == "AddTagsToCertificate" {
                for tag in given {
                    kept.removeAll { $0.key == tag.key }
                    kept.append(tag)
                }
                guard kept.count <= 50 else {
                    throw APIError(code: "TooManyTagsException", message: "A certificate can have at most 50 tags")
                }
            } else {
                kept.removeAll { tag in
                    given.contains { $0.key == tag.key && ($0.value.isEmpty || $0.value == tag.value) }
                }
            }
            do {
                try certificateStore.setTags(record.arn, kept)
            } catch {
                throw APIError(code: "InvalidStateException", message: "\(error)")
            }
            return .object([])
        case "ListTagsForCertificate":
            let record = try knownCertificate(input)
            return .object([("Tags", tagList(record.tags))])
        default:
            throw APIError(
                code: "UnknownOperationException",
                message: "\(operation) is not an ACM operation localnlb serves (ImportCertificate, RequestCertificate, "
                    + "DescribeCertificate, ListCertificates, GetCertificate, DeleteCertificate, tags)")
        }
    }

    func importCertificate(_ input: [String: JSONValue], region: String) throws(APIError) -> JSONText {
        func pem(_ key: String, required: Bool) throws(APIError) -> String? {
            guard let value = input[key] else {
                if required { throw APIError(code: "ValidationException", message: "\(key) is required") }
                return nil
            }
            guard case .string(let text) = value, let data = Data(base64Encoded: text),
                let decoded = String(data: data, encoding: .utf8)
            else {
                throw APIError(
                    code: "ValidationException",
                    message: "\(key) is not base64 of a PEM text (the AWS CLI sends fileb://file.pem so)")
            }
            return decoded
        }
        let certificate = try pem("Certificate", required: true)!
        let key = try pem("PrivateKey", required: true)!
        let chain = try pem("CertificateChain", required: false) ?? ""
        let given = CertificatePEM(
            chain: certificate.hasSuffix("\n") ? certificate + chain : certificate + "\n" + chain, key: key)
        let info: CertificateInfo
        do {
            info = try CertificateInfo.validated(given)
        } catch {
            throw APIError(code: "ValidationException", message: "Could not import the certificate: \(error)")
        }
        var arn = newCertificateArn(region: region)
        if let existing = input["CertificateArn"]?.attributeString {
            // A re-import keeps the ARN (and the listeners that name it get the new certificate on the next change).
            guard certificateStore.record(existing) != nil else {
                throw APIError(code: "ResourceNotFoundException", message: "Could not find certificate \(existing)")
            }
            arn = existing
        }
        var record = CertificateRecord(arn: arn, pem: given, info: info, type: "IMPORTED")
        record.tags = try tags(input["Tags"])
        do {
            try certificateStore.add(record)
        } catch {
            throw APIError(code: "InvalidStateException", message: "\(error)")
        }
        options.log("certificate \(arn) imported: \(info.domainName), \(info.keyAlgorithm)")
        if !listenersUsing(arn).isEmpty {
            // A re-import: the listeners serving it take the new certificate for their next handshakes.
            do {
                _ = try commit(.replace(configuration))
            } catch {
                throw APIError(code: "InvalidStateException", message: "the listeners refuse it: \(error.message)")
            }
        }
        return .object([("CertificateArn", .string(arn))])
    }

    /// Whether `name` matches ACM's domain name pattern (253 characters at most).
    static func isDomainName(_ name: String) -> Bool {
        var rest = Substring(name)
        if rest.hasPrefix("*.") { rest = rest.dropFirst(2) }
        let labels = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard name.utf8.count <= 253, labels.count >= 2 else { return false }
        return labels.allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { byte in
                    (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                        || byte == 0x2D
                }
        }
    }

    /// Issued at once by localnlb's certificate authority: `ISSUED`, no validation to wait for.
    func requestCertificate(_ input: [String: JSONValue], region: String) throws(APIError) -> JSONText {
        guard let domain = input["DomainName"]?.attributeString, !domain.isEmpty else {
            throw APIError(code: "ValidationException", message: "DomainName is required")
        }
        var names = [domain]
        if case .array(let more)? = input["SubjectAlternativeNames"] {
            guard (1...100).contains(more.count) else {
                throw APIError(
                    code: "ValidationException", message: "SubjectAlternativeNames must have 1 to 100 names")
            }
            for case .string(let name) in more where !names.contains(name) { names.append(name) }
        }
        // ACM's pattern for a domain name: labels of letters, digits and hyphens (not at either end), at
        // least two, an optional `*.` first. A comma or a space would be read as two names by OpenSSL.
        for (index, name) in names.enumerated() where !Self.isDomainName(name) {
            throw APIError(
                code: "ValidationException",
                message:
                    "1 validation error detected: Value '\(name)' at '\(index == 0 ? "domainName" : "subjectAlternativeNames")' "
                    + "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                    + "^(\\*\\.)?(((?!-)[A-Za-z0-9-]{0,62}[A-Za-z0-9])\\.)+((?!-)[A-Za-z0-9-]{1,62}[A-Za-z0-9])$")
        }
        let keyType = input["KeyAlgorithm"]?.attributeString ?? "RSA_2048"
        let arn = newCertificateArn(region: region)
        do {
            let issued = try LocalCertificates.issue(
                names: names, keyType: keyType, by: try certificateStore.loadAuthority())
            var record = CertificateRecord(
                arn: arn, pem: issued, info: try CertificateInfo.validated(issued), type: "AMAZON_ISSUED")
            record.tags = try tags(input["Tags"])
            try certificateStore.add(record)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(code: "InvalidParameterException", message: "\(error)")
        }
        options.log("certificate \(arn) issued for \(names.joined(separator: ", "))")
        return .object([("CertificateArn", .string(arn))])
    }

    func listCertificates(_ input: [String: JSONValue]) throws(APIError) -> JSONText {
        var wanted: Set<String>?
        if case .array(let statuses)? = input["CertificateStatuses"] {
            wanted = Set(statuses.compactMap(\.attributeString))
        }
        let chosen = certificateStore.records.filter { _ in wanted?.contains("ISSUED") ?? true }
        let size = input["MaxItems"]?.attributeString.flatMap { Int($0) } ?? 1000
        guard (1...1000).contains(size) else {
            throw APIError(code: "ValidationException", message: "MaxItems must be between 1 and 1000")
        }
        var start = 0
        if let token = input["NextToken"]?.attributeString {
            guard let value = Int(token), (0...chosen.count).contains(value) else {
                throw APIError(code: "InvalidArgsException", message: "NextToken \(token) is not one this API gave")
            }
            start = value
        }
        let end = min(chosen.count, start + size)
        let summaries: [JSONText] = chosen[start..<end].map { record in
            .object([
                ("CertificateArn", .string(record.arn)), ("DomainName", .string(record.info.domainName)),
                (
                    "SubjectAlternativeNameSummaries",
                    .array(alternativeNames(record).map { .string($0) })
                ),
                ("Status", .string("ISSUED")), ("Type", .string(record.type)),
                ("KeyAlgorithm", .string(record.info.keyAlgorithm)),
                ("InUse", .bool(!listenersUsing(record.arn).isEmpty)),
                ("NotBefore", .number(record.info.notBefore)), ("NotAfter", .number(record.info.notAfter)),
                ("CreatedAt", .number(record.created)),
            ])
        }
        var fields: [(String, JSONText)] = [("CertificateSummaryList", .array(summaries))]
        if end < chosen.count { fields.append(("NextToken", .string(String(end)))) }
        return .object(fields)
    }

    func describeCertificate(_ record: CertificateRecord) -> JSONText {
        var fields: [(String, JSONText)] = [
            ("CertificateArn", .string(record.arn)), ("DomainName", .string(record.info.domainName)),
            ("SubjectAlternativeNames", .array(alternativeNames(record).map { .string($0) })),
            ("Serial", .string(record.info.serial)), ("Subject", .string(record.info.subject)),
            ("Issuer", .string(record.info.issuer)), ("Status", .string("ISSUED")), ("Type", .string(record.type)),
            ("KeyAlgorithm", .string(record.info.keyAlgorithm)),
            ("SignatureAlgorithm", .string(record.info.signatureAlgorithm)),
            ("NotBefore", .number(record.info.notBefore)), ("NotAfter", .number(record.info.notAfter)),
            ("InUseBy", .array(listenersUsing(record.arn).map { .string($0) })),
            ("CreatedAt", .number(record.created)), ("RenewalEligibility", .string("INELIGIBLE")),
        ]
        if record.type == "IMPORTED" {
            fields.append(("ImportedAt", .number(record.created)))
        } else {
            fields.append(("IssuedAt", .number(record.created)))
        }
        return .object(fields)
    }

    func alternativeNames(_ record: CertificateRecord) -> [String] {
        record.info.alternativeNames.isEmpty ? [record.info.domainName] : record.info.alternativeNames
    }

    /// The listeners (by ARN) that serve this certificate.
    func listenersUsing(_ arn: String) -> [String] {
        configuration.listeners.filter { $0.certificateArns.contains(arn) }.map {
            names.listener(loadBalancer: $0.loadBalancerName, port: $0.port)
        }
    }

    func knownCertificate(_ input: [String: JSONValue]) throws(APIError) -> CertificateRecord {
        guard let arn = input["CertificateArn"]?.attributeString else {
            throw APIError(code: "ValidationException", message: "CertificateArn is required")
        }
        guard arn.hasPrefix("arn:aws:acm:"), arn.contains(":certificate/") else {
            throw APIError(code: "InvalidArnException", message: "\(arn) is not an ACM certificate ARN")
        }
        guard let record = certificateStore.record(arn) else {
            throw APIError(code: "ResourceNotFoundException", message: "Could not find certificate \(arn)")
        }
        return record
    }

    func tags(_ value: JSONValue?) throws(APIError) -> [(key: String, value: String)] {
        guard let value else { return [] }
        guard case .array(let items) = value else {
            throw APIError(code: "InvalidTagException", message: "Tags is not a list of {Key, Value}")
        }
        return try items.map { item throws(APIError) -> (key: String, value: String) in
            guard case .object(let pair) = item, let key = pair["Key"]?.attributeString, !key.isEmpty, key.count <= 128
            else { throw APIError(code: "InvalidTagException", message: "a tag needs a Key of 1-128 characters") }
            return (key, pair["Value"]?.attributeString ?? "")
        }
    }

    func tagList(_ tags: [(key: String, value: String)]) -> JSONText {
        .array(tags.map { .object([("Key", .string($0.key)), ("Value", .string($0.value))]) })
    }

    func newCertificateArn(region: String) -> String {
        "arn:aws:acm:\(region):\(names.accountID):certificate/" + UUID().uuidString.lowercased()
    }
}
