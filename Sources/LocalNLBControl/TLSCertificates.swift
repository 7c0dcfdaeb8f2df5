import Foundation
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// The certificates TLS listeners serve, by ARN, and the local certificate authority that issues the
/// ones nobody imported (mkcert's model): a template's ACM ARN runs as it is, and a client that
/// trusts `localnlb ca`'s certificate verifies the listener. The authority is made on first use and
/// kept in its directory (the key with mode 0600); the certificates it issues are made again on each
/// start, signed by the same authority.
package final class CertificateStore {
    let directory: String
    private(set) var authority: CertificatePEM?
    /// Every certificate by ARN, imported, requested or issued at first use, in the order they came.
    private(set) var records: [CertificateRecord] = []
    /// Whether the certificates are kept in `directory/certificates` (serve --persist).
    var persists = false

    package init(directory: String) { self.directory = directory }

    package var authorityPath: String { directory + "/ca.pem" }

    /// The authority: read from its directory, or made there now.
    package func loadAuthority() throws -> CertificatePEM {
        if let authority { return authority }
        let certificatePath = directory + "/ca.pem"
        let keyPath = directory + "/ca-key.pem"
        let files = FileManager.default
        if files.fileExists(atPath: certificatePath), files.fileExists(atPath: keyPath) {
            let found = CertificatePEM(
                chain: try String(contentsOfFile: certificatePath, encoding: .utf8),
                key: try String(contentsOfFile: keyPath, encoding: .utf8))
            authority = found
            return found
        }
        let made = try LocalCertificates.makeAuthority(commonName: "localnlb local CA")
        try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard files.createFile(atPath: keyPath, contents: Data(made.key.utf8), attributes: [.posixPermissions: 0o600]),
            files.createFile(
                atPath: certificatePath, contents: Data(made.chain.utf8), attributes: [.posixPermissions: 0o644])
        else {
            throw ListenerError(description: "cannot write the certificate authority to \(directory)")
        }
        authority = made
        return made
    }

    package func record(_ arn: String) -> CertificateRecord? { records.first { $0.arn == arn } }

    /// The certificate of `arn`: imported or requested, or issued now for `names`.
    func certificate(_ arn: String, names: [String]) throws -> CertificatePEM {
        if let known = record(arn) { return known.pem }
        let issued = try LocalCertificates.issue(names: names, by: try loadAuthority())
        try add(
            CertificateRecord(arn: arn, pem: issued, info: try CertificateInfo.validated(issued), type: "AMAZON_ISSUED")
        )
        return issued
    }

    /// Adds (or, for an ARN it has, replaces: a re-import) a certificate, and keeps it when persisting.
    func add(_ record: CertificateRecord) throws {
        if let index = records.firstIndex(where: { $0.arn == record.arn }) {
            records[index] = record
        } else {
            records.append(record)
        }
        try save(record)
    }

    func remove(_ arn: String) {
        records.removeAll { $0.arn == arn }
        if persists { try? FileManager.default.removeItem(atPath: file(arn)) }
    }

    func setTags(_ arn: String, _ tags: [(key: String, value: String)]) throws {
        guard let index = records.firstIndex(where: { $0.arn == arn }) else { return }
        records[index].tags = tags
        try save(records[index])
    }

    private func file(_ arn: String) -> String {
        directory + "/certificates/" + String(arn.split(separator: "/").last ?? "certificate") + ".json"
    }

    /// One file a certificate, mode 0600 (it holds the key).
    private func save(_ record: CertificateRecord) throws {
        guard persists else { return }
        let files = FileManager.default
        try files.createDirectory(atPath: directory + "/certificates", withIntermediateDirectories: true)
        let text = JSONText.object([
            ("CertificateArn", .string(record.arn)), ("Type", .string(record.type)),
            ("CreatedAt", .number(record.created)), ("Certificate", .string(record.pem.chain)),
            ("PrivateKey", .string(record.pem.key)),
            ("Tags", .array(record.tags.map { .object([("Key", .string($0.key)), ("Value", .string($0.value))]) })),
        ]).rendered
        guard
            files.createFile(
                atPath: file(record.arn), contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        else { throw ListenerError(description: "cannot write \(file(record.arn))") }
    }

    /// The certificates a persisting daemon kept, read back at start; one that cannot be read is named.
    func loadSaved(log: (String) -> Void) {
        let folder = directory + "/certificates"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names.sorted() where name.hasSuffix(".json") {
            let path = folder + "/" + name
            guard let data = FileManager.default.contents(atPath: path),
                let (value, _) = try? JSONParser.parse(Array(data)), case .object(let object) = value,
                case .string(let arn)? = object["CertificateArn"], case .string(let chain)? = object["Certificate"],
                case .string(let key)? = object["PrivateKey"]
            else {
                log("certificate \(path): not a certificate localnlb wrote; left alone")
                continue
            }
            let pem = CertificatePEM(chain: chain, key: key)
            guard let info = try? CertificateInfo.validated(pem) else {
                log("certificate \(path): no longer valid (expired, or the key does not match); left alone")
                continue
            }
            var record = CertificateRecord(
                arn: arn, pem: pem, info: info, type: object["Type"]?.attributeString ?? "IMPORTED")
            if case .number(let created)? = object["CreatedAt"] { record.created = created }
            if case .array(let tags)? = object["Tags"] {
                record.tags = tags.compactMap { tag -> (key: String, value: String)? in
                    guard case .object(let pair) = tag, let key = pair["Key"]?.attributeString else { return nil }
                    return (key, pair["Value"]?.attributeString ?? "")
                }
            }
            records.append(record)
        }
    }
}

/// A certificate as ACM keeps it: its ARN, PEM, what was read from it, how it came, its tags.
package struct CertificateRecord {
    package var arn: String
    package var pem: CertificatePEM
    package var info: CertificateInfo
    /// `IMPORTED`, or `AMAZON_ISSUED` (requested, or issued for a listener at first use).
    package var type: String
    package var created = Date().timeIntervalSince1970
    package var tags: [(key: String, value: String)] = []

    package init(arn: String, pem: CertificatePEM, info: CertificateInfo, type: String) {
        self.arn = arn
        self.pem = pem
        self.info = info
        self.type = type
    }
}

extension ControlPlane {
    /// The names a load balancer's certificate is issued for: its DNS name, its nodes' addresses and
    /// localhost.
    func certificateNames(_ listener: ListenerConfiguration, in model: Configuration) -> [String] {
        [model.names.dnsName(listener.loadBalancerName), "localhost"]
            + model.nodes(of: listener).flatMap(\.addresses).map(\.description)
    }

    /// Towards a `TLS` target group: the client side with AWS's backend policy for the listener's.
    func backendTLSContext(_ listener: ListenerConfiguration, in model: Configuration) throws(ListenerError)
        -> TLSClientContext?
    {
        guard model.targetGroups.first(where: { $0.name == listener.targetGroupName })?.protocolName == .tls else {
            return nil
        }
        let policy =
            SSLPolicy.all.first { $0.name == (listener.sslPolicy ?? SSLPolicy.defaultName) } ?? SSLPolicy.all[0]
        do {
            return try TLSClientContext(policy: TLSClientContext.backendPolicy(for: policy))
        } catch {
            throw ListenerError(description: "TLS listener :\(listener.port): the backend policy: \(error)")
        }
    }

    /// A trust store's CA bundle, read from the path its S3 key names.
    func trustStoreBundle(_ store: TrustStoreConfiguration) throws(TLSError) -> String {
        guard let data = FileManager.default.contents(atPath: store.key), let text = String(data: data, encoding: .utf8)
        else {
            throw TLSError("trust store \(store.name): cannot read its bundle \(store.key)")
        }
        return text
    }

    /// An Application Load Balancer listener's HTTP settings (its load balancer's routing attributes,
    /// its scheme and port), or nil for a network load balancer's.
    func httpSettings(
        _ listener: ListenerConfiguration, in model: Configuration, groupIndex: (String) -> Int?
    ) -> HTTPListenerSettings? {
        guard listener.protocolName.isHTTP,
            let balancer = model.loadBalancers.first(where: { $0.name == listener.loadBalancerName })
        else { return nil }
        let attributes = balancer.attributes
        var settings = HTTPListenerSettings()
        settings.scheme = listener.protocolName == .https ? "https" : "http"
        settings.port = listener.port
        settings.xffMode = HTTPListenerSettings.XFFMode(rawValue: attributes.xffHeaderProcessingMode) ?? .append
        settings.xffClientPort = attributes.xffClientPort
        settings.desyncMode = HTTPListenerSettings.DesyncMode(rawValue: attributes.desyncMitigationMode) ?? .defensive
        settings.dropInvalidHeaderFields = attributes.dropInvalidHeaderFields
        let scale = options.timeScale
        settings.idleNanoseconds = UInt64(Double(attributes.idleTimeoutSeconds) * scale * 1e9)
        settings.clientKeepAliveNanoseconds = UInt64(Double(attributes.clientKeepAliveSeconds) * scale * 1e9)
        if model.targetGroups.contains(where: { $0.protocolName == .https }) {
            // An ALB's backend connections use its backend policy (docs/alb.md §16): TLS 1.3 ones behind a TLS
            // 1.3 listener policy, else ELBSecurityPolicy-2016-08; the target's certificate is not verified.
            let policy =
                SSLPolicy.all.first { $0.name == (listener.sslPolicy ?? SSLPolicy.defaultName) } ?? SSLPolicy.all[0]
            settings.backendTLS = try? TLSClientContext(policy: TLSClientContext.backendPolicy(for: policy))
        }
        settings.serverHeader = listener.serverHeader
        settings.tlsHeaders = listener.protocolName == .https && attributes.xAmznTLSVersionAndCipherSuite
        settings.tlsVersionField = Array("\(listener.tlsVersionHeaderName): ".utf8)
        settings.tlsCipherSuiteField = Array("\(listener.tlsCipherSuiteHeaderName): ".utf8)
        settings.appendsListenerPort =
            !attributes.preserveHostHeader && listener.port != (listener.protocolName == .https ? 443 : 80)
        for (index, entry) in applicationResponseHeaders.enumerated()
        where !listener.responseHeaderValues[index].isEmpty {
            settings.addedHeaders += Array("\(entry.header): \(listener.responseHeaderValues[index])\r\n".utf8)
            settings.addedHeaderNames.append(Array(entry.header.lowercased().utf8))
        }
        if let action = listener.defaultAction {
            settings.defaultAction = compiled(action, groupIndex)
        }
        settings.rules = listener.rules.compactMap { rule in
            compiled(rule.action, groupIndex).map {
                HTTPRule(priority: rule.priority, conditions: rule.conditions.map(HTTPCondition.init), action: $0)
            }
        }
        return settings
    }

    /// A network load balancer listener's weighted forward as the loops take it (groups by index, their
    /// weights' sum, the group stickiness scaled), or no groups for a listener with one group (or an
    /// application load balancer's).
    func applyWeights(
        _ opened: inout Listener, _ listener: ListenerConfiguration, _ groupIndex: (String) -> Int?
    ) {
        (opened.weighted, opened.weightTotal, opened.groupStickyNanoseconds) = ([], 0, 0)
        guard !listener.protocolName.isHTTP, case .weightedForward(let weighted, let sticky)? = listener.defaultAction
        else { return }
        let groups = weighted.compactMap { entry in groupIndex(entry.name).map { (index: $0, weight: entry.weight) } }
        guard groups.count == weighted.count else { return }
        (opened.weighted, opened.weightTotal) = (groups, groups.map(\.weight).reduce(0, +))
        guard sticky > 0 else { return }
        let key = "\(listener.loadBalancerName):\(listener.port)"
        let table = groupStickiness[key] ?? GroupStickyTable()
        groupStickiness[key] = table
        opened.groupStickiness = table
        opened.groupStickyNanoseconds = UInt64(Double(sticky) * options.timeScale * 1e9)
    }

    /// A rule's (or a default) action as the loops take it: target groups by index; nil when a group it
    /// names is not there (the model checked that it is).
    func compiled(_ action: RuleAction, _ groupIndex: (String) -> Int?) -> HTTPAction? {
        switch action {
        case .forward(let name):
            return groupIndex(name).map { .forward(groupIndex: $0) }
        case .weightedForward(let weighted, let stickySeconds):
            let groups = weighted.compactMap { entry in groupIndex(entry.name).map { (index: $0, weight: entry.weight) }
            }
            let total = groups.map(\.weight).reduce(0, +)
            guard groups.count == weighted.count, total > 0 else { return nil }
            return .weightedForward(groups: groups, total: total, stickySeconds: stickySeconds)
        case .redirect(let redirect):
            return .redirect(redirect)
        case .fixedResponse(let status, let contentType, let body):
            return .fixedResponse(status: status, contentType: contentType, body: Array((body ?? "").utf8))
        }
    }

    /// A TLS listener's server side, or nil for another protocol; a certificate or policy that cannot
    /// be used is a ListenerError naming the listener and the cause.
    func tlsContext(_ listener: ListenerConfiguration, in model: Configuration) throws(ListenerError) -> TLSContext? {
        guard listener.protocolName.terminatesTLS else { return nil }
        let where_ = "TLS listener :\(listener.port) of \(listener.loadBalancerName)"
        guard let arn = listener.certificateArns.first else {
            throw ListenerError(description: "\(where_): no certificate")
        }
        let policyName = listener.sslPolicy ?? SSLPolicy.defaultName
        guard let policy = SSLPolicy.all.first(where: { $0.name == policyName }) else {
            throw ListenerError(description: "\(where_): security policy \(policyName) is not one localnlb knows")
        }
        var certificates: [CertificatePEM] = []
        for arn in listener.certificateArns {
            do {
                certificates.append(try certificateStore.certificate(arn, names: certificateNames(listener, in: model)))
            } catch {
                throw ListenerError(description: "\(where_): certificate \(arn): \(error)")
            }
        }
        do {
            let context = try TLSContext(
                certificates: certificates, policy: policy, alpnPolicy: listener.alpnPolicy ?? "None")
            if let mutual = listener.mutualAuthentication {
                guard let store = model.trustStores.first(where: { $0.name == mutual.trustStoreName }) else {
                    throw TLSError("no trust store \(mutual.trustStoreName)")
                }
                let lists = try store.revocations.map { revocation throws(TLSError) -> String in
                    guard let data = FileManager.default.contents(atPath: revocation.key),
                        let text = String(data: data, encoding: .utf8)
                    else {
                        throw TLSError("trust store \(store.name): cannot read its revocation list \(revocation.key)")
                    }
                    return text
                }
                try context.verifyClients(
                    bundle: try trustStoreBundle(store), ignoreExpiry: mutual.ignoreClientCertificateExpiry,
                    filters: mutual.identityFilters, revocationLists: lists)
            }
            return context
        } catch {
            throw ListenerError(description: "\(where_): certificate \(arn): \(error)")
        }
    }
}
