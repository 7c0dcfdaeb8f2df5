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
    /// By ARN: imported ones and the ones issued here.
    var certificates: [String: CertificatePEM] = [:]

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

    /// The certificate of `arn`: imported, or issued now for `names`.
    func certificate(_ arn: String, names: [String]) throws -> CertificatePEM {
        if let known = certificates[arn] { return known }
        let issued = try LocalCertificates.issue(names: names, by: try loadAuthority())
        certificates[arn] = issued
        return issued
    }
}

extension ControlPlane {
    /// The names a load balancer's certificate is issued for: its DNS name, its nodes' addresses and
    /// localhost.
    func certificateNames(_ listener: ListenerConfiguration, in model: Configuration) -> [String] {
        [model.names.dnsName(listener.loadBalancerName), "localhost"]
            + model.nodes(of: listener).flatMap(\.addresses).map(\.description)
    }

    /// A TLS listener's server side, or nil for another protocol; a certificate or policy that cannot
    /// be used is a ListenerError naming the listener and the cause.
    func tlsContext(_ listener: ListenerConfiguration, in model: Configuration) throws(ListenerError) -> TLSContext? {
        guard listener.protocolName == .tls else { return nil }
        let where_ = "TLS listener :\(listener.port) of \(listener.loadBalancerName)"
        guard let arn = listener.certificateArns.first else {
            throw ListenerError(description: "\(where_): no certificate")
        }
        let policyName = listener.sslPolicy ?? SSLPolicy.defaultName
        guard let policy = SSLPolicy.all.first(where: { $0.name == policyName }) else {
            throw ListenerError(description: "\(where_): security policy \(policyName) is not one localnlb knows")
        }
        do {
            let certificate = try certificateStore.certificate(arn, names: certificateNames(listener, in: model))
            return try TLSContext(certificate: certificate, policy: policy, alpnPolicy: listener.alpnPolicy ?? "None")
        } catch {
            throw ListenerError(description: "\(where_): certificate \(arn): \(error)")
        }
    }
}
